/**
 * The batch function's handler: the three steps of a batch job, the same under Step Functions and under the local
 * engine (`functions/local/batch-engine.ts`).
 *
 * - `start`: checks the locations, pins the version (a label or `latest` resolved now, so that it never changes
 *   under a running job) and writes the `RUNNING` job record.
 * - a batch of items (`ItemBatcher`'s `{Items, BatchInput}`): each input becomes the request a client would send to
 *   the infer route and goes through the very same API (decoding, checks, image preprocessing, the model service),
 *   so that a result equals the single request's answer. Each item ends as one result or one failure record at keys
 *   derived from its input key; an item that already has either is skipped (a resumed or redriven job redoes
 *   nothing). A 503 (the model could not be loaded right now) writes nothing and fails the batch, for a retry.
 * - `finish`: counts the outcomes in the bucket and writes the complete job record.
 */
import { randomUUID } from 'node:crypto';
import type { Limits } from '../core/catalog.js';
import {
  type BatchItemsEvent,
  type BatchItemsResult,
  type BatchJobSpec,
  checkBatchLocations,
  type FailureRecord,
  finishedRecord,
  inputKind,
  isItemKey,
  itemKeys,
  itemRequest,
  jobRecordKey,
  type JobRecord,
  JOB_ID_PATTERN,
  jsonLines,
  mapBounded,
  parseS3Uri,
  runningRecord,
  unsupportedKindReason,
} from '../core/batch/index.js';
import { BadRequestError, ServiceUnavailableError } from '../core/errors.js';
import type { Runtime } from '../wiring/runtime.js';
import { createApi } from './api.js';
import { bodyBytes } from './http.js';

/** Starts a job: what the state machine's first state (or the local engine) sends. */
export interface BatchStartEvent {
  readonly action: 'start';
  readonly jobId: string;
  readonly model: string;
  /** A version number, a label, or `latest`. */
  readonly version: string;
  /** `s3://<bucket>/batch/<folder>/` */
  readonly input: string;
  readonly output: string;
}

/** Ends a job: what the state machine's last state (or the local engine) sends. */
export interface BatchFinishEvent {
  readonly action: 'finish';
  readonly job: BatchJobSpec;
}

/** Any event of the batch function. */
export type BatchEvent = BatchStartEvent | BatchItemsEvent | BatchFinishEvent;

/** Items of one batch read and run at once: overlaps S3 reads and writes with inference. */
export const ITEMS_IN_FLIGHT = 4;

/** Settings of {@link createBatchHandler}. */
export interface BatchHandlerOptions {
  /** Request limits of a model (the same as its infer route's). @default the runtime's limits */
  readonly limitsFor?: (model: string) => Limits;
  /** Which engine runs the job, for the job record. */
  readonly engine: JobRecord['engine'];
  /** @default Date.now */
  readonly now?: () => number;
}

/** The batch handler: one function for the three steps. */
export interface BatchHandler {
  (event: BatchStartEvent): Promise<BatchJobSpec>;
  (event: BatchItemsEvent): Promise<BatchItemsResult>;
  (event: BatchFinishEvent): Promise<JobRecord>;
  (event: BatchEvent): Promise<BatchJobSpec | BatchItemsResult | JobRecord>;
}

const encoder = new TextEncoder();
const json = (value: unknown) => encoder.encode(`${JSON.stringify(value)}\n`);

/** Builds the batch handler over `runtime` (whose store reads and writes the model bucket's `batch/`). */
export function createBatchHandler(runtime: Runtime, options: BatchHandlerOptions): BatchHandler {
  const { store, service } = runtime;
  const limitsFor = options.limitsFor ?? (() => runtime.config.limits);
  const now = options.now ?? Date.now;
  const api = createApi({ service, scope: { kind: 'all' }, limitsFor });

  async function start(event: BatchStartEvent): Promise<BatchJobSpec> {
    if (typeof event.jobId !== 'string' || !JOB_ID_PATTERN.test(event.jobId)) {
      throw new BadRequestError(`job id must match ${JOB_ID_PATTERN.source}`);
    }
    const bucket = runtime.config.bucket ?? '';
    const input = parseS3Uri(event.input, 'input');
    const output = parseS3Uri(event.output, 'output');
    checkBatchLocations(bucket, input, output);
    const version = event.version === 'latest' ? undefined : event.version;
    const target = await service.resolve(event.model, version, { refresh: true });
    const spec: BatchJobSpec = {
      jobId: event.jobId,
      model: target.model,
      version: target.version,
      input,
      output,
      startedAt: new Date(now()).toISOString(),
    };
    await store.put(jobRecordKey(spec.model, spec.jobId), json(runningRecord(spec, options.engine)));
    return spec;
  }

  /** The infer route's answer to `request` on the pinned version. */
  function infer(job: BatchJobSpec, headers: Readonly<Record<string, string>>, body: Uint8Array) {
    return api({
      method: 'POST',
      path: `/v2/models/${encodeURIComponent(job.model)}/versions/${encodeURIComponent(job.version)}/infer`,
      headers,
      body,
      requestId: randomUUID(),
    });
  }

  function failure(job: BatchJobSpec, key: string, status: number, error: string): Uint8Array {
    const record: FailureRecord = { input: key, model: job.model, version: job.version, status, error };
    return json(record);
  }

  /** The result body, or the failure's status and message; throws on a 503 (retry later, write nothing). */
  async function answer(
    job: BatchJobSpec,
    headers: Readonly<Record<string, string>>,
    body: Uint8Array,
  ): Promise<{ ok: true; body: Uint8Array } | { ok: false; status: number; error: string }> {
    const response = await infer(job, headers, body);
    const bytes = bodyBytes(response.body);
    if (response.statusCode === 200) return { ok: true, body: bytes };
    if (response.statusCode === 503) {
      throw new ServiceUnavailableError(
        `model "${job.model}" version ${job.version} is unavailable right now: ${errorOf(bytes)}`,
        Number(response.headers['retry-after'] ?? 1),
      );
    }
    return { ok: false, status: response.statusCode, error: errorOf(bytes) };
  }

  async function runItem(job: BatchJobSpec, key: string): Promise<'succeeded' | 'failed' | 'skipped'> {
    const keys = itemKeys(key, job.input.prefix, job.output.prefix);
    // Either record means the item is done: a resumed job goes on where it stopped.
    if ((await store.get(keys.result)) !== undefined || (await store.get(keys.failure)) !== undefined) return 'skipped';
    const fail = async (status: number, error: string) => {
      await store.put(keys.failure, failure(job, key, status, error));
      return 'failed' as const;
    };
    const kind = inputKind(key);
    if (kind === undefined) return fail(400, unsupportedKindReason(key));
    const object = await store.get(key);
    if (object === undefined) return fail(404, `the input ${key} was deleted before the job read it`);
    if (kind === 'jsonl') {
      const lines = jsonLines(object.body);
      if (lines.length === 0) return fail(400, 'the JSON Lines object holds no request (one V2 request per line)');
      // One result line per request line, in order: the answer, or {"line", "status", "error"}.
      const answers = await mapBounded(lines, 1, async ({ line, bytes }) => {
        const outcome = await answer(job, { 'content-type': 'application/json', accept: 'application/json' }, bytes);
        return outcome.ok
          ? new TextDecoder().decode(outcome.body).trimEnd()
          : JSON.stringify({ line, status: outcome.status, error: outcome.error });
      });
      await store.put(keys.result, encoder.encode(`${answers.join('\n')}\n`));
      return 'succeeded';
    }
    const request = itemRequest(kind, key, object.body);
    if (typeof request === 'string') return fail(400, request);
    const outcome = await answer(job, request.headers, request.body);
    if (!outcome.ok) return fail(outcome.status, outcome.error);
    await store.put(keys.result, outcome.body);
    return 'succeeded';
  }

  async function items(event: BatchItemsEvent): Promise<BatchItemsResult> {
    const job = event.BatchInput;
    const outcomes = await mapBounded(event.Items.map((item) => item.Key).filter(isItemKey), ITEMS_IN_FLIGHT, (key) =>
      runItem(job, key),
    );
    return {
      succeeded: outcomes.filter((o) => o === 'succeeded').length,
      failed: outcomes.filter((o) => o === 'failed').length,
      skipped: outcomes.filter((o) => o === 'skipped').length,
    };
  }

  async function finish(event: BatchFinishEvent): Promise<JobRecord> {
    const job = event.job;
    const [inputs, outputs] = await Promise.all([store.list(job.input.prefix), store.list(job.output.prefix)]);
    const record = finishedRecord(job, options.engine, inputs, outputs, now());
    await store.put(jobRecordKey(job.model, job.jobId), json(record));
    return record;
  }

  return (async (event: BatchEvent) => {
    if ('Items' in event) return items(event);
    if (event.action === 'start') return start(event);
    if (event.action === 'finish') return finish(event);
    throw new BadRequestError('a batch event is {"action": "start" | "finish", ...} or {"Items", "BatchInput"}');
  }) as BatchHandler;
}

/** The `error` of an error answer's JSON body. */
function errorOf(body: Uint8Array): string {
  try {
    const parsed = JSON.parse(new TextDecoder().decode(body)) as { error?: unknown };
    if (typeof parsed.error === 'string') return parsed.error;
  } catch {
    // An error body is always {"error": ...}; anything else is reported as it is.
  }
  return new TextDecoder().decode(body).slice(0, 1000);
}
