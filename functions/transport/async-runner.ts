/**
 * Runs accepted async jobs (docs/async.md): the work of an asynchronous invocation of the infer function, and the
 * record of its on-failure destination. Both move the job record forward only (`advanceJob`), so a retried
 * invocation, a late failure record or a duplicate event never undoes an outcome.
 */
import {
  ASYNC_LIMITS,
  type AsyncFailureRecord,
  type AsyncJob,
  type AsyncJobEvent,
  advanceJob,
  checkInputSize,
  failureReason,
  isFinalState,
  readJob,
} from '../core/async-jobs.js';
import type { Limits } from '../core/catalog.js';
import { encodeInferenceResponse, HEADERS, minimumResponseBytes } from '../core/codec/index.js';
import { InferenceServerError, PayloadTooLargeError, ServiceUnavailableError } from '../core/errors.js';
import type { ModelService, ResolvedVersion } from '../core/model-service.js';
import { redactInternals } from '../core/redact.js';
import type { AsyncJobsOptions, DecodedBody, Inference } from './api.js';

/** The binary extension's header, lower-case as object metadata and our header maps carry it. */
const HEADER_LENGTH = HEADERS.inferenceHeaderContentLength.toLowerCase();

/** What an async invocation answers (Lambda's on-success destination receives it as `responsePayload`). */
export interface AsyncJobResult {
  readonly job_id: string;
  readonly model_name: string;
  readonly model_version: string;
  readonly status: AsyncJob['state'];
  readonly output_location: string;
  readonly error?: string;
}

/** Settings of {@link createAsyncRunner}. */
export interface AsyncRunnerOptions {
  readonly service: ModelService;
  readonly inference: Inference;
  readonly jobs: AsyncJobsOptions;
  /** The model's request limits; an async input may be larger (`ASYNC_LIMITS`), everything else holds. */
  readonly limitsFor: (model: string) => Limits;
  /** Told why an error record could not be written (for the log); the job ends failed all the same. */
  readonly onRecordError?: (error: unknown) => void;
}

/** The async side of the infer function. */
export interface AsyncRunner {
  /**
   * Runs a job: answer at its output location and `succeeded`, or an error record and `failed` when the request
   * itself is at fault (bad input, a model that fails on it). Anything that may pass on another attempt (storage,
   * a model that cannot load right now, a bug) is thrown, so that Lambda retries the invocation and, after the last
   * attempt, sends the failure record to {@link AsyncRunner.recordFailure}.
   */
  run(event: AsyncJobEvent): Promise<AsyncJobResult>;
  /** The on-failure destination: records why the job's invocations failed, unless it already has an outcome. */
  recordFailure(record: AsyncFailureRecord): Promise<AsyncJobResult>;
}

/** Builds the runner of one infer function. */
export function createAsyncRunner(options: AsyncRunnerOptions): AsyncRunner {
  const { store } = options.jobs;
  const now = options.jobs.now ?? (() => new Date());

  async function fail(job: AsyncJob, reason: string): Promise<AsyncJobResult> {
    // The error record first: a caller who sees `failed` finds the reason at the output location too. If it cannot
    // be written (the same fault that failed the job, say), the job still ends failed, saying so.
    let recorded = reason;
    try {
      await store.put(
        keyOf(job.output_location, options.jobs.bucket),
        Buffer.from(
          JSON.stringify({ error: reason, job_id: job.id, model_name: job.model, model_version: job.version }, null, 2),
        ),
        {},
        { contentType: 'application/json' },
      );
    } catch (error) {
      options.onRecordError?.(error);
      recorded = `${reason} (the error record could not be written to ${job.output_location})`;
    }
    const written = await advanceJob(store, job.model, job.id, 'failed', now(), recorded);
    return resultOf(written ?? (await readJob(store, job.model, job.id)));
  }

  /**
   * Reads the input object and decodes it. The object is read straight into one buffer of its size (no chunks to
   * join) and is unreachable once this returns: the run holds only the decoded tensors.
   */
  async function decodeInput(key: string, target: ResolvedVersion, limits: Limits): Promise<DecodedBody> {
    const location = { bucket: options.jobs.bucket, key };
    const head = await store.head(key);
    // Checked from the object's size before a byte is read.
    checkInputSize(location, head?.size);
    const input = await store.get(key);
    // The object may have been replaced since the HEAD.
    checkInputSize(location, input?.body.byteLength);
    // JSON answers unless the input asks for binary outputs (an image input's default would be binary).
    const headers: Record<string, string> = {
      'content-type': head?.contentType ?? 'application/json',
      accept: 'application/json',
    };
    const headerLength = head?.metadata[HEADER_LENGTH];
    if (headerLength !== undefined) headers[HEADER_LENGTH] = headerLength;
    return await options.inference.decode(target, input?.body ?? new Uint8Array(), headers, limits);
  }

  return {
    async run(event) {
      const { model, id } = event.asyncInference;
      const accepted = await readJob(store, model, id);
      if (isFinalState(accepted.state)) return resultOf(accepted);
      const job = (await advanceJob(store, model, id, 'running', now())) ?? accepted;
      try {
        // The version pinned at acceptance, whatever `latest` says now.
        const target = await options.service.resolve(model, job.version);
        const limits: Limits = {
          ...options.limitsFor(model),
          maxBodyBytes: ASYNC_LIMITS.maxInputBytes,
          maxResponseBytes: ASYNC_LIMITS.maxOutputBytes,
        };
        const body = await decodeInput(keyOf(job.input_location, options.jobs.bucket), target, limits);
        const { response, decoded } = await options.inference.run(target, body, limits);
        const floor = minimumResponseBytes(response, decoded);
        if (floor.bytes > ASYNC_LIMITS.maxOutputBytes) {
          throw new PayloadTooLargeError(
            `the answer would be at least ${floor.bytes} bytes, over the ${ASYNC_LIMITS.maxOutputBytes}-byte limit ` +
              'of an async answer: request fewer outputs or split the input',
          );
        }
        const encoded = encodeInferenceResponse(response, decoded);
        const encodedHeaders = Object.fromEntries(
          Object.entries(encoded.headers).map(([name, value]) => [name.toLowerCase(), value]),
        );
        const answerHeaderLength = encodedHeaders[HEADER_LENGTH];
        await store.put(
          keyOf(job.output_location, options.jobs.bucket),
          encoded.body,
          {},
          {
            contentType: encodedHeaders['content-type'] ?? 'application/json',
            ...(answerHeaderLength === undefined ? {} : { metadata: { [HEADER_LENGTH]: answerHeaderLength } }),
          },
        );
        const written = await advanceJob(store, model, id, 'succeeded', now());
        return resultOf(written ?? (await readJob(store, model, id)));
      } catch (error) {
        // The request's own fault: another attempt would fail the same way. A 503 (cannot load now) may pass.
        if (error instanceof InferenceServerError && !(error instanceof ServiceUnavailableError)) {
          return await fail(job, redactInternals(error.message));
        }
        throw error;
      }
    },

    async recordFailure(record) {
      const { model, id } = record.requestPayload.asyncInference;
      const job = await readJob(store, model, id);
      if (isFinalState(job.state)) return resultOf(job);
      return await fail(job, redactInternals(failureReason(record)));
    },
  };
}

/** The key of an `s3://<bucket>/<key>` location of a job (checked against the rule when the job was accepted). */
function keyOf(uri: string, bucket: string): string {
  return uri.slice(`s3://${bucket}/`.length);
}

function resultOf(job: AsyncJob): AsyncJobResult {
  return {
    job_id: job.id,
    model_name: job.model,
    model_version: job.version,
    status: job.state,
    output_location: job.output_location,
    ...(job.error === undefined ? {} : { error: job.error }),
  };
}
