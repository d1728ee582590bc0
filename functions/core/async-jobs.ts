/**
 * Asynchronous inference requests (docs/async.md): a request names an input object in the model bucket and where the
 * answer goes; it is accepted with a job record, run later by an asynchronous invocation of the same infer
 * function, and its answer (or an error record) lands at the output location. This module holds the rules that do
 * not depend on where it runs: which keys a caller may name, the job record and its forward-only states (written
 * with conditional writes), and the shapes of the invocation events.
 */
import type { PutCondition, StoredObject } from './blob-store.js';
import { BadRequestError, NotFoundError, PayloadTooLargeError, PreconditionFailedError } from './errors.js';

/** The one prefix of the bucket that async requests read and write; nothing else is reachable through them. */
export const ASYNC_PREFIX = 'async/';

/** Limits of async requests (docs/async.md, "Limits"). */
export const ASYNC_LIMITS = {
  /** The largest input object: SageMaker Asynchronous Inference's limit, checked from the object's size. */
  maxInputBytes: 1024 ** 3,
  /** The largest answer written to the output location. */
  maxOutputBytes: 1024 ** 3,
  /** Longest accepted URI (S3 keys are at most 1,024 bytes, plus `s3://<bucket>/`). */
  maxUriLength: 1100,
} as const;

/**
 * How async jobs are invoked, deployed (the `async` alias's event invoke configuration, `infra/async-invocation.ts`)
 * and locally (`functions/local/async-invocation.ts`): the same numbers in both places.
 */
export const ASYNC_INVOCATION = {
  /** The alias of each infer function that async jobs invoke; its destinations are the jobs' alone. */
  alias: 'async',
  /** Attempts after the first when an invocation fails (storage, a model that cannot load): Lambda's default. */
  retryAttempts: 2,
  /** An event older than this is dropped to the on-failure destination: SageMaker's hour of async inference. */
  maxEventAgeSeconds: 3600,
} as const;

/** Where a model's async objects live: inputs a caller uploads, answers the function writes, and job records. */
export function asyncPrefixes(model: string): { inputs: string; outputs: string; jobs: string } {
  const root = `${ASYNC_PREFIX}${model}/`;
  return { inputs: `${root}inputs/`, outputs: `${root}outputs/`, jobs: `${root}jobs/` };
}

/** The key of a job's record. */
export function jobKey(model: string, id: string): string {
  return `${asyncPrefixes(model).jobs}${id}.json`;
}

/** Job ids are the UUIDs the accepting function draws; anything else is an unknown job. */
const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** True for a well-formed job id. */
export function isJobId(id: string): boolean {
  return JOB_ID.test(id);
}

/** The states of a job, in the only order they move. */
export type AsyncJobState = 'accepted' | 'running' | 'succeeded' | 'failed';

const STATE_RANK: Readonly<Record<AsyncJobState, number>> = { accepted: 0, running: 1, succeeded: 2, failed: 2 };

/** True when a job in `state` has its final outcome. */
export function isFinalState(state: AsyncJobState): boolean {
  return STATE_RANK[state] === 2;
}

/** The job record stored at {@link jobKey} and answered by `GET /v2/models/<m>/jobs/<id>`. */
export interface AsyncJob {
  readonly id: string;
  readonly model: string;
  /** The version pinned when the job was accepted: a later `latest` or label never changes a running job. */
  readonly version: string;
  readonly state: AsyncJobState;
  readonly input_location: string;
  readonly output_location: string;
  readonly accepted_at: string;
  readonly updated_at: string;
  /** Why the job failed (also in the error record at `output_location`). */
  readonly error?: string;
}

/** An S3 location: bucket and key. */
export interface S3Location {
  readonly bucket: string;
  readonly key: string;
}

/** `s3://bucket/key`. */
export function s3Uri(location: S3Location): string {
  return `s3://${location.bucket}/${location.key}`;
}

/**
 * Parses the `input_location` or `output_location` of a request and applies the rule of docs/async.md: the model
 * bucket, under `async/<model>/inputs/` for an input and `async/<model>/outputs/` for an answer; no `..` or empty
 * segment. Every refusal names the rule and the prefix to use.
 * @throws BadRequestError
 */
export function parseAsyncLocation(
  value: unknown,
  parameter: 'input_location' | 'output_location',
  options: { bucket: string; model: string },
): S3Location {
  const prefixes = asyncPrefixes(options.model);
  const prefix = parameter === 'input_location' ? prefixes.inputs : prefixes.outputs;
  const rule =
    `${parameter} must be an S3 URI in the model bucket under s3://${options.bucket}/${prefix} ` +
    '(async requests read inputs/ and write outputs/ of async/<model>/ only)';
  if (typeof value !== 'string' || value.length === 0) throw new BadRequestError(`${rule}; it is missing`);
  if (value.length > ASYNC_LIMITS.maxUriLength) throw new BadRequestError(`${rule}; this one is too long`);
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(value);
  if (match === null) throw new BadRequestError(`${rule}; "${value.slice(0, 200)}" is not s3://<bucket>/<key>`);
  const [, bucket = '', key = ''] = match;
  if (bucket !== options.bucket) {
    throw new BadRequestError(`${rule}; bucket "${bucket.slice(0, 63)}" is not the model bucket`);
  }
  const rest = key.startsWith(prefix) ? key.slice(prefix.length) : undefined;
  const segments = rest?.split('/') ?? [];
  if (
    rest === undefined ||
    rest.length === 0 ||
    segments.some((segment) => segment === '' || segment === '.' || segment === '..') ||
    // Control characters would be a different key in a listing or a log than the caller meant.
    // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing them is the point
    /[\u0000-\u001f\u007f]/.test(rest)
  ) {
    throw new BadRequestError(`${rule}; "${value.slice(0, 200)}" is not`);
  }
  return { bucket, key };
}

/** The body of an async request: a V2 JSON object whose parameters name the locations. */
export interface AsyncRequest {
  readonly input: S3Location;
  readonly output: S3Location;
  /** The request `id`, echoed in the answer as a synchronous request's is. */
  readonly requestId?: string;
}

/**
 * True when a request body names an `input_location`, without parsing it: a synchronous request (megabytes of
 * numbers) pays one byte search, not a second JSON parse.
 */
function mentionsInputLocation(body: Uint8Array): boolean {
  return Buffer.from(body.buffer, body.byteOffset, body.byteLength).includes('"input_location"');
}

/** The largest async request body: two URIs and an id, far below this. */
const MAX_ASYNC_REQUEST_BYTES = 16 * 1024;

/** The top level of a JSON request body, or `undefined` when it is not a JSON object. */
function requestObject(body: Uint8Array): { id?: unknown; inputs?: unknown; parameters?: unknown } | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
  } catch {
    return undefined;
  }
  return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? parsed : undefined;
}

function parametersOf(request: { parameters?: unknown } | undefined): Record<string, unknown> {
  const parameters = request?.parameters;
  return (typeof parameters === 'object' && parameters !== null ? parameters : {}) as Record<string, unknown>;
}

/**
 * True when a body is an async request: a JSON object with `parameters.input_location`. A synchronous request that
 * merely mentions the name (a BYTES element, say) is not, and goes to its own decoder.
 */
export function isAsyncRequest(body: Uint8Array): boolean {
  return mentionsInputLocation(body) && parametersOf(requestObject(body)).input_location !== undefined;
}

/**
 * Reads an async request ({@link isAsyncRequest}): `{"id"?, "parameters": {"input_location", "output_location"}}`
 * and no `inputs` (the tensors are in the input object).
 * @throws BadRequestError naming what to change
 */
export function parseAsyncRequest(body: Uint8Array, options: { bucket: string; model: string }): AsyncRequest {
  if (body.byteLength > MAX_ASYNC_REQUEST_BYTES) {
    throw new BadRequestError(
      `an async request (parameters.input_location) carries no tensors and at most ${MAX_ASYNC_REQUEST_BYTES} ` +
        'bytes; put the inputs in the input object',
    );
  }
  const request = requestObject(body) ?? {};
  if (request.inputs !== undefined) {
    throw new BadRequestError(
      'an async request takes its tensors from parameters.input_location; remove "inputs" (or drop ' +
        'input_location to infer synchronously)',
    );
  }
  if (request.id !== undefined && typeof request.id !== 'string') {
    throw new BadRequestError('"id" must be a string');
  }
  const parameters = parametersOf(request);
  const input = parseAsyncLocation(parameters.input_location, 'input_location', options);
  const output = parseAsyncLocation(parameters.output_location, 'output_location', options);
  return { input, output, ...(request.id === undefined ? {} : { requestId: request.id }) };
}

/** Refuses an input object over {@link ASYNC_LIMITS.maxInputBytes}, from its size, before any byte is read. */
export function checkInputSize(location: S3Location, size: number | undefined): void {
  if (size === undefined) {
    throw new NotFoundError(`input_location ${s3Uri(location)}: no such object; upload the input first`);
  }
  if (size > ASYNC_LIMITS.maxInputBytes) {
    throw new PayloadTooLargeError(
      `input_location ${s3Uri(location)} has ${size} bytes; the limit of an async input is ` +
        `${ASYNC_LIMITS.maxInputBytes} bytes (1 GiB): split it into several requests`,
    );
  }
}

/** An object's size and the headers an async input's format is read from. */
export interface ObjectHead {
  readonly size: number;
  readonly etag: string;
  /** `Content-Type` as stored. */
  readonly contentType?: string;
  /** User metadata (`x-amz-meta-<name>`), names in lower case without the prefix. */
  readonly metadata: Readonly<Record<string, string>>;
}

/** How a stored object is written: its content type and user metadata. */
export interface ObjectWriteOptions {
  readonly contentType?: string;
  readonly metadata?: Readonly<Record<string, string>>;
}

/**
 * The storage an async job needs (implemented on S3 by `functions/adapters/s3-async-store.ts`): the input's size
 * before it is read, the input as one buffer, conditional writes of job records, and answers with their headers.
 */
export interface AsyncObjectStore {
  /** The object's size and headers, or `undefined` when there is none. */
  head(key: string): Promise<ObjectHead | undefined>;
  /** The object, read straight into one buffer of its size; `undefined` when there is none. */
  get(key: string): Promise<StoredObject | undefined>;
  /** Writes `body` under `key` if `condition` holds (else `PreconditionFailedError`). */
  put(key: string, body: Uint8Array, condition?: PutCondition, options?: ObjectWriteOptions): Promise<{ etag: string }>;
}

/** The event that runs an accepted job: an asynchronous (`Event`) invocation of the model's infer function. */
export interface AsyncJobEvent {
  readonly asyncInference: { readonly model: string; readonly id: string };
}

/** True for an {@link AsyncJobEvent}. */
export function isAsyncJobEvent(event: unknown): event is AsyncJobEvent {
  const job = (event as Partial<AsyncJobEvent> | null | undefined)?.asyncInference;
  return typeof job === 'object' && job !== null && typeof job.model === 'string' && typeof job.id === 'string';
}

/**
 * What Lambda's on-failure destination receives after the last attempt of an {@link AsyncJobEvent} failed (or it
 * waited past the maximum event age): the original event, why, and the function's error.
 * @see https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html
 */
export interface AsyncFailureRecord {
  readonly requestContext: { readonly condition: string; readonly approximateInvokeCount?: number };
  readonly requestPayload: AsyncJobEvent;
  readonly responsePayload?: { readonly errorMessage?: string; readonly errorType?: string } | null;
}

/** True for an {@link AsyncFailureRecord} of an async job. */
export function isAsyncFailureRecord(event: unknown): event is AsyncFailureRecord {
  const record = event as Partial<AsyncFailureRecord> | null | undefined;
  return typeof record?.requestContext?.condition === 'string' && isAsyncJobEvent(record.requestPayload);
}

/** The reason a failure record gives, for the job's error: Lambda's condition and the function's message. */
export function failureReason(record: AsyncFailureRecord): string {
  const attempts = record.requestContext.approximateInvokeCount;
  const message = record.responsePayload?.errorMessage;
  const condition =
    record.requestContext.condition === 'EventAgeExceeded'
      ? 'the job waited longer than the maximum event age before it could run'
      : `the job failed after ${attempts ?? 'all'} attempt(s)`;
  return message === undefined ? condition : `${condition}: ${message}`;
}

/** Reads a stored job record. */
export function parseJob(object: StoredObject, key: string): AsyncJob {
  try {
    return JSON.parse(Buffer.from(object.body).toString('utf8')) as AsyncJob;
  } catch (error) {
    throw new Error(`job record ${key} is not JSON`, { cause: error });
  }
}

function encodeJob(job: AsyncJob): Uint8Array {
  return Buffer.from(JSON.stringify(job, null, 2));
}

/** Writes a new job record (`accepted`); refuses to overwrite one (`If-None-Match: *`). */
export async function createJob(store: AsyncObjectStore, job: AsyncJob): Promise<void> {
  await store.put(jobKey(job.model, job.id), encodeJob(job), { ifNoneMatch: '*' }, { contentType: 'application/json' });
}

/** Conditional-write races lost before giving up: each loss means another writer moved the job meanwhile. */
const MAX_RACES = 8;

/**
 * Moves a job forward to `state` with a conditional write (`If-Match` on the record read), so that two writers
 * (a retried invocation, the failure destination) never move it backwards: `accepted` → `running` →
 * `succeeded` | `failed`. Returns the job as written, or `undefined` when it already was at or past `state`.
 */
export async function advanceJob(
  store: AsyncObjectStore,
  model: string,
  id: string,
  state: AsyncJobState,
  at: Date,
  error?: string,
): Promise<AsyncJob | undefined> {
  const key = jobKey(model, id);
  for (let race = 0; race < MAX_RACES; race++) {
    const stored = await store.get(key);
    if (stored === undefined) throw new NotFoundError(`no async job ${id} of model "${model}"`);
    const job = parseJob(stored, key);
    if (STATE_RANK[job.state] >= STATE_RANK[state]) return undefined;
    const next: AsyncJob = {
      ...job,
      state,
      updated_at: at.toISOString(),
      ...(error === undefined ? {} : { error }),
    };
    try {
      await store.put(key, encodeJob(next), { ifMatch: stored.etag }, { contentType: 'application/json' });
      return next;
    } catch (failure) {
      if (!(failure instanceof PreconditionFailedError)) throw failure;
    }
  }
  throw new Error(`job ${id} of model "${model}" kept changing under ${MAX_RACES} conditional writes`);
}

/** Reads a job for the status route. */
export async function readJob(store: AsyncObjectStore, model: string, id: string): Promise<AsyncJob> {
  if (!isJobId(id)) throw new NotFoundError(`no async job "${id.slice(0, 64)}": job ids are the UUIDs a 202 gave`);
  const key = jobKey(model, id);
  const stored = await store.get(key);
  if (stored === undefined) throw new NotFoundError(`no async job ${id} of model "${model}"`);
  return parseJob(stored, key);
}
