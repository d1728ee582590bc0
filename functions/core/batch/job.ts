/**
 * A batch job as data: what its children receive (the pinned version, the locations), what each batch of items
 * reports, and the job record written last. The record is counted from the stored outcomes, never from what the
 * children reported, so that a resumed, redriven or repeated job reports what is in the bucket.
 */
import { isItemKey, itemKeys } from './items.js';
import type { S3Location } from './locations.js';

/** What every child of a job receives (Step Functions' `ItemBatcher.BatchInput`): the version is already pinned. */
export interface BatchJobSpec {
  readonly jobId: string;
  readonly model: string;
  /** An immutable version number, resolved from a label or `latest` when the job started. */
  readonly version: string;
  readonly input: S3Location;
  readonly output: S3Location;
  /** When the job started (ISO 8601). */
  readonly startedAt: string;
}

/** One listed input, in the shape of Step Functions' `S3ObjectsItemReader` items (only `Key` is required). */
export interface BatchItem {
  readonly Key: string;
  readonly Size?: number;
}

/** The event of one child: a batch of items, in `ItemBatcher`'s shape. */
export interface BatchItemsEvent {
  readonly Items: readonly BatchItem[];
  readonly BatchInput: BatchJobSpec;
}

/** What one child did. */
export interface BatchItemsResult {
  /** Items whose result was written now. */
  readonly succeeded: number;
  /** Items whose failure record was written now. */
  readonly failed: number;
  /** Items that already had a result or a failure record (a resumed or repeated job). */
  readonly skipped: number;
}

/** States of a job record. */
export type JobState = 'RUNNING' | 'SUCCEEDED';

/**
 * Defaults of a job's engine, as constants so that docs/batch.md can quote them: items per child (Step Functions'
 * `ItemBatcher.MaxItemsPerBatch`; the bench measures 32), children in flight locally (`BATCH_MAX_CONCURRENCY`) and
 * deployed (context `batchMaxConcurrency`, never above the batch function's reserved concurrency
 * `batchReservedConcurrency`), and the share of failed children a deployed job tolerates
 * (`batchToleratedFailurePercentage`; a failed item is a failure record, not a failed child).
 */
export const BATCH_DEFAULTS = {
  itemsPerChild: 32,
  localMaxConcurrency: 2,
  maxConcurrency: 10,
  reservedConcurrency: 10,
  toleratedFailurePercentage: 10,
} as const;

/** Failed keys a job record lists; the failure records hold them all. */
export const JOB_RECORD_FAILED_KEYS = 1000;

/** The job record: `batch/_jobs/<model>/<job-id>.json`, written `RUNNING` first and complete last. */
export interface JobRecord extends BatchJobSpec {
  readonly state: JobState;
  /** `local` under `npm start`, `step-functions` deployed. */
  readonly engine: 'local' | 'step-functions';
  readonly finishedAt?: string;
  readonly durationMs?: number;
  readonly counts?: {
    /** Input objects listed. */
    readonly inputs: number;
    readonly results: number;
    readonly failures: number;
    /** Inputs with neither (only when the job ended early, e.g. over its tolerated failure percentage). */
    readonly pending: number;
  };
  /** Input keys with a failure record, at most {@link JOB_RECORD_FAILED_KEYS}. */
  readonly failedKeys?: readonly string[];
  readonly failedKeysTruncated?: boolean;
  readonly itemsPerSecond?: number;
}

/** The record of a job that has just started. */
export function runningRecord(spec: BatchJobSpec, engine: JobRecord['engine']): JobRecord {
  return { ...spec, state: 'RUNNING', engine };
}

/**
 * The complete record, from the input listing and the output listing (every key of each prefix).
 * `finishedAtMs` is when the last item ended.
 */
export function finishedRecord(
  spec: BatchJobSpec,
  engine: JobRecord['engine'],
  inputKeys: readonly string[],
  outputKeys: readonly string[],
  finishedAtMs: number,
): JobRecord {
  const written = new Set(outputKeys);
  let results = 0;
  let pending = 0;
  const failed: string[] = [];
  const items = inputKeys.filter(isItemKey);
  for (const key of items) {
    const keys = itemKeys(key, spec.input.prefix, spec.output.prefix);
    if (written.has(keys.result)) results++;
    else if (written.has(keys.failure)) failed.push(key);
    else pending++;
  }
  const durationMs = Math.max(0, finishedAtMs - Date.parse(spec.startedAt));
  return {
    ...spec,
    state: 'SUCCEEDED',
    engine,
    finishedAt: new Date(finishedAtMs).toISOString(),
    durationMs,
    counts: { inputs: items.length, results, failures: failed.length, pending },
    failedKeys: failed.slice(0, JOB_RECORD_FAILED_KEYS),
    failedKeysTruncated: failed.length > JOB_RECORD_FAILED_KEYS,
    itemsPerSecond: durationMs === 0 ? items.length : Math.round((items.length / durationMs) * 1000 * 10) / 10,
  };
}

/** The failure record of one item: why it has no result. Deterministic, so that a repeated write changes nothing. */
export interface FailureRecord {
  readonly input: string;
  readonly model: string;
  readonly version: string;
  /** The HTTP status the same request gets from the infer route (4xx: the input's fault). */
  readonly status: number;
  readonly error: string;
}

/**
 * Runs `work` on each of `items` with at most `concurrency` in flight; resolves with the results in order, or
 * rejects with the first failure once every started task has settled (nothing is left running).
 */
export async function mapBounded<T, R>(
  items: readonly T[],
  concurrency: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failure: { error: unknown } | undefined;
  const lane = async () => {
    while (failure === undefined && next < items.length) {
      const index = next++;
      try {
        results[index] = await work(items[index] as T, index);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, lane));
  if (failure !== undefined) throw failure.error;
  return results;
}

/** What starting a job takes (the route's body and the CLI's arguments). */
export interface BatchJobRequest {
  readonly model: string;
  /** A version number, a label, or `latest`. */
  readonly version: string;
  readonly input: string;
  readonly output: string;
}

/** The batch engine as the API sees it: start a job, read its record. */
export interface BatchJobs {
  /** Pins the version, writes the `RUNNING` record and starts the job; resolves with that record. */
  start(request: BatchJobRequest): Promise<JobRecord>;
  /** The job's record. @throws NotFoundError for an unknown job. */
  status(model: string, jobId: string): Promise<JobRecord>;
}
