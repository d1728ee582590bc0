/**
 * Lambda entry point `batch`: the three steps of a batch job that the stack's state machine invokes (start, each
 * batch of items of its Distributed Map, finish; `transport/batch-handler.ts`). It writes results under `batch/`,
 * so it brings the AWS SDK's S3 client, as `register` does.
 */
import { createBatchHandler } from '../transport/batch-handler.js';
import { bootstrap } from '../wiring/bootstrap.js';
import { writableStoreFromConfig } from '../wiring/writable-store.js';

const { runtime } = await bootstrap('batch', { store: writableStoreFromConfig });

/** The handler Lambda calls. */
export const handler = createBatchHandler(runtime, { engine: 'step-functions' });
