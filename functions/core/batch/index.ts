/** Batch jobs: locations, items and their keys, the job record. Pure: no I/O, no AWS. */
export * from './items.js';
export * from './job.js';
export * from './locations.js';
