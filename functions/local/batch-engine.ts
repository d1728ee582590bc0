/**
 * The local engine of batch jobs under `npm start`: what Step Functions' Distributed Map does deployed, over the
 * same batch handler. It lists the input prefix (the `ItemReader`, with the state machine's own grants), cuts the
 * keys into batches (`ItemBatcher`), runs at most `concurrency` batches at once (`MaxConcurrency`), retries a batch
 * that met a 503 (the `Retry` of the map's task), then asks the handler for the job record. Jobs whose record is
 * still `RUNNING` when the stack starts (the process was killed) are resumed: their finished items are skipped.
 */
import { randomUUID } from 'node:crypto';
import type { BlobStore } from '../core/blob-store.js';
import {
  BATCH_JOBS_PREFIX,
  type BatchJobRequest,
  type BatchJobs,
  type BatchJobSpec,
  jobRecordKey,
  JOB_ID_PATTERN,
  type JobRecord,
  mapBounded,
  planBatches,
} from '../core/batch/index.js';
import { NotFoundError, ServiceUnavailableError } from '../core/errors.js';
import type { BatchHandler } from '../transport/batch-handler.js';

/** Settings of {@link createLocalBatchEngine}. */
export interface LocalBatchEngineOptions {
  /** The batch function (its own role). */
  readonly handler: BatchHandler;
  /** Lists input prefixes, as the state machine's `ItemReader` does (the state machine's role). */
  readonly lister: BlobStore;
  /** Reads job records (the batch function's role). */
  readonly records: BlobStore;
  /** Items per batch (`ItemBatcher.MaxItemsPerBatch`). */
  readonly batchSize: number;
  /** Batches in flight (`MaxConcurrency`). */
  readonly concurrency: number;
  /** Attempts of a batch that meets a 503. @default 3 */
  readonly attempts?: number;
  /** Wait before retrying a batch. @default 1000 ms, doubled per attempt */
  readonly retryDelayMs?: number;
  /** Told of every job's end (deployed, the state machine publishes the record on the stack's topic). */
  readonly onFinished?: (record: JobRecord) => void;
  /** Told of a job that could not finish (its record stays `RUNNING`; the next start resumes it). */
  readonly onError?: (job: BatchJobSpec, error: unknown) => void;
}

/** The local engine: {@link BatchJobs} plus resuming and waiting. */
export interface LocalBatchEngine extends BatchJobs {
  /** Resumes every job whose record is `RUNNING` and that this engine does not run; resolves with their ids. */
  resume(): Promise<string[]>;
  /** Resolves when every job started so far has ended. */
  settled(): Promise<void>;
  /**
   * Starts no further batch, waits for those in flight, and leaves unfinished jobs `RUNNING` (the next start resumes
   * them), as a stopped process would: shutdown stays bounded by one batch, not by a whole job.
   */
  stop(): Promise<void>;
}

const decoder = new TextDecoder();

/** Builds the local engine. */
export function createLocalBatchEngine(options: LocalBatchEngineOptions): LocalBatchEngine {
  const running = new Map<string, Promise<void>>();
  let stopping = false;
  const attempts = options.attempts ?? 3;
  const retryDelayMs = options.retryDelayMs ?? 1000;

  async function runBatch(job: BatchJobSpec, keys: readonly string[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await options.handler({ Items: keys.map((Key) => ({ Key })), BatchInput: job });
        return;
      } catch (error) {
        if (!(error instanceof ServiceUnavailableError) || attempt >= attempts) throw error;
        await new Promise((resolve) => setTimeout(resolve, retryDelayMs * 2 ** (attempt - 1)));
      }
    }
  }

  async function run(job: BatchJobSpec): Promise<void> {
    const keys = await options.lister.list(job.input.prefix);
    // A batch that still fails after its retries leaves its items pending (the record counts them): the others go on.
    await mapBounded(planBatches(keys, options.batchSize), options.concurrency, async (batch) => {
      if (stopping) return;
      await runBatch(job, batch).catch((error: unknown) => options.onError?.(job, error));
    });
    if (stopping) return;
    const record = await options.handler({ action: 'finish', job });
    options.onFinished?.(record);
  }

  function launch(job: BatchJobSpec): void {
    const id = `${job.model}/${job.jobId}`;
    if (running.has(id) || stopping) return;
    const done = run(job)
      .catch((error: unknown) => options.onError?.(job, error))
      .finally(() => running.delete(id));
    running.set(id, done);
  }

  async function readRecord(key: string): Promise<JobRecord | undefined> {
    const object = await options.records.get(key);
    return object === undefined ? undefined : (JSON.parse(decoder.decode(object.body)) as JobRecord);
  }

  return {
    async start(request: BatchJobRequest): Promise<JobRecord> {
      const job = await options.handler({ action: 'start', jobId: randomUUID(), ...request });
      launch(job);
      return { ...job, state: 'RUNNING', engine: 'local' };
    },
    async status(model: string, jobId: string): Promise<JobRecord> {
      const record = JOB_ID_PATTERN.test(jobId) ? await readRecord(jobRecordKey(model, jobId)) : undefined;
      if (record === undefined) throw new NotFoundError(`model "${model}" has no batch job "${jobId.slice(0, 80)}"`);
      return record;
    },
    async resume(): Promise<string[]> {
      const resumed: string[] = [];
      for (const key of await options.lister.list(BATCH_JOBS_PREFIX)) {
        const record = await readRecord(key);
        if (record?.state !== 'RUNNING' || running.has(`${record.model}/${record.jobId}`)) continue;
        const { jobId, model, version, input, output, startedAt } = record;
        launch({ jobId, model, version, input, output, startedAt });
        resumed.push(jobId);
      }
      return resumed;
    },
    async settled(): Promise<void> {
      while (running.size > 0) await Promise.allSettled([...running.values()]);
    },
    async stop(): Promise<void> {
      stopping = true;
      await this.settled();
    },
  };
}
