/**
 * The HTTP API of DESIGN.md over the serving core: route, decode, call the {@link ModelService}, encode.
 * The same function serves the deployed `infer` and `control` Lambdas (each scoped to its routes) and the local
 * gateway.
 */
import { randomUUID } from 'node:crypto';
import packageJson from '../../package.json' with { type: 'json' };
import { createSharpImageDecoder } from '../adapters/sharp-image-decoder.js';
import {
  decodeInferenceRequest,
  encodeInferenceResponseParts,
  MEDIA_TYPES,
  minimumResponseBytes,
  parseMediaType,
} from '../core/codec/index.js';
import type { ImageDecoder } from '../core/image/decoder.js';
import type { ImagePlacement } from '../core/image/preprocess.js';
import { declaredImageInputs, decodeEncodedImages, decodeImageRequest, isImageBody } from '../core/image/request.js';
import type { BatchJobs } from '../core/batch/index.js';
import type { CapturedBody, CaptureSink } from '../core/capture.js';
import type { Limits } from '../core/catalog.js';
import { ENV } from '../core/contract.js';
import {
  type AsyncJob,
  type AsyncJobEvent,
  type AsyncObjectStore,
  type AsyncRequest,
  advanceJob,
  checkInputSize,
  createJob,
  isAsyncRequest,
  parseAsyncRequest,
  readJob,
  s3Uri,
} from '../core/async-jobs.js';
import { BadRequestError, NotFoundError, PayloadTooLargeError, ServiceUnavailableError } from '../core/errors.js';
import { PLATFORM_LIMITS } from '../core/platform-limits.js';
import { modelConfig } from '../core/triton.js';
import { modelOpenApi, serverOpenApi, type OpenApiInfo } from '../core/openapi.js';
import { compressResponse, decodeContentEncoding } from './compression.js';
import type { ModelService, ResolvedVersion, RoutedTarget, ShadowedEvent } from '../core/model-service.js';
import type { InferenceRequest, InferenceResponse, Manifest, ModelMetadata } from '../core/types.js';
import { ALL_AT_ONCE } from '../core/rollout.js';
import { bodyByteLength, bodyBytes, errorResponse, jsonResponse, type HttpRequest, type HttpResponse } from './http.js';
import { MODEL_ROUTES, matchRoute } from './routes.js';
import { createShadowRunner, type ShadowRunner } from './shadow-runner.js';

/** Server name reported by `GET /v2`. */
export const SERVER_NAME = 'onnx-serverless';
/** Version reported by `GET /v2`: the package's own (bundled; esbuild inlines the JSON). */
export const SERVER_VERSION: string = packageJson.version;
/**
 * Protocol extensions we implement, and only those: Triton's `model_repository` is left out (its load and unload
 * are not served; versions come from uploads), and so is `statistics` (counts would be one Lambda instance's).
 */
export const EXTENSIONS = [
  'binary_tensor_data',
  'classification',
  'model_configuration',
  'classification_zipmap',
] as const;

/** What the OpenAPI documents say about the server. */
const OPENAPI_INFO: OpenApiInfo = { title: SERVER_NAME, version: SERVER_VERSION, extensions: EXTENSIONS };

/** Refused uploads listed in a model's metadata, newest last (all of them: `npm run models -- rejections <m>`). */
const METADATA_REJECTIONS = 20;

/** Which routes an API instance serves. */
export type ApiScope =
  | { readonly kind: 'all' }
  | { readonly kind: 'control' }
  /** The per-model function: only this model's routes. */
  | { readonly kind: 'model'; readonly model: string };

/**
 * How answers leave the function: `buffered` as one Lambda result (6 MB, binary bodies base64-encoded), or
 * `streamed` onto Lambda's response stream (function URLs with `RESPONSE_STREAM`, REST APIs with
 * `responseTransferMode: STREAM`), raw bytes up to {@link PLATFORM_LIMITS.maxStreamedResponseBytes}.
 */
export type ResponseDelivery = 'buffered' | 'streamed';

/** Settings of {@link createApi}. */
export interface ApiOptions {
  readonly service: ModelService;
  readonly scope: ApiScope;
  /** Limits per model name (falls back to `defaultLimits`). */
  readonly limitsFor: (model: string) => Limits;
  /**
   * Why the server is not ready yet (start-up registrations still running), or `undefined` once it is. While it
   * returns a reason, `GET /v2/health/ready` and the model readiness routes answer 503 with `"ready": false`, as
   * Triton and KServe do until their models are loaded. Deployed functions have nothing to wait for.
   * @default always ready
   */
  readonly notReadyReason?: () => string | undefined;
  /** Measures, for metrics; optional. */
  readonly onInference?: (event: { model: string; requestBytes: number; responseBytes: number }) => void;
  /**
   * Receives every answered inference: the request as it arrived (decompressed) and the answer as encoded (before
   * compression), for data capture, which samples and buffers them. @default none
   */
  readonly capture?: CaptureSink;
  /**
   * How answers leave the function, which decides the response size limit: `limits.maxResponseBytes` of the Lambda
   * result when buffered, the streamed limit when streamed (see {@link ResponseDelivery}).
   * @default 'buffered'
   */
  readonly delivery?: ResponseDelivery;
  /** Decoder of image bodies. @default sharp (libvips), loaded on the first image request */
  readonly imageDecoder?: ImageDecoder;
  /**
   * The console page served at `/` (the control function's `consolePage`), given the request's `Accept-Encoding`.
   * Injected rather than imported so that the infer functions' bundles, which never serve it, leave it out.
   * @default none: `/` is a 404
   */
  readonly consolePage?: (acceptEncoding: string | undefined) => Promise<HttpResponse>;
  /** Runs a shadow rollout's copies. @default {@link createShadowRunner}: one at a time, after the answer */
  readonly shadow?: ShadowRunner;
  /**
   * The engine behind the batch routes (`npm start`'s local engine). Deployed, jobs are Step Functions executions
   * started on the state machine, and these routes answer 404 saying so.
   * @default none
   */
  readonly batch?: BatchJobs;
  /** Async requests and their job status route. @default refused: no model bucket */
  readonly asyncJobs?: AsyncJobsOptions;
}

/** What async requests need (docs/async.md); without it they are refused with a 400 saying why. */
export interface AsyncJobsOptions {
  /** The model bucket: the only bucket input and output locations may name. */
  readonly bucket: string;
  /** Inputs, answers and job records, under `async/` only. */
  readonly store: AsyncObjectStore;
  /**
   * Hands an accepted job to an asynchronous invocation of the same function: deployed, a Lambda `Event`
   * invocation of its `async` alias; locally, the local runtime's equivalent.
   */
  readonly invoke: (event: AsyncJobEvent) => Promise<void>;
  /** The clock of job records. @default the system clock */
  readonly now?: () => Date;
}

/** A function from request to response that never throws. */
export type Api = (request: HttpRequest) => Promise<HttpResponse>;

/** Builds the API handler. */
export function createApi(options: ApiOptions): Api {
  const { service, scope } = options;
  const imageDecoder = options.imageDecoder ?? createSharpImageDecoder();
  const delivery = options.delivery ?? 'buffered';
  const shadow = options.shadow ?? createShadowRunner();
  const inference = createInference(service, imageDecoder);
  return async (request) => {
    // Only successful inference answers are compressed (in the infer route), as Triton does: its clients decode no
    // other answer (tritonclient.http.aio reads metadata, the repository index and errors as plain UTF-8), and
    // aiohttp sends `Accept-Encoding: gzip` on every request.
    try {
      return await answer(request);
    } catch (error) {
      return errorResponse(error, request.requestId);
    }
  };

  function batchJobs(): BatchJobs {
    if (options.batch === undefined) {
      throw new NotFoundError(
        "batch jobs are not started through this endpoint: deployed, start an execution of the stack's batch " +
          'state machine (docs/batch.md); locally, npm run models -- batch',
      );
    }
    return options.batch;
  }

  async function answer(request: HttpRequest): Promise<HttpResponse> {
    const route = matchRoute(request.method, request.path);
    const isModelRoute = MODEL_ROUTES.has(route.kind);
    if (scope.kind === 'control' && isModelRoute)
      throw new NotFoundError('model routes are served by the model functions');
    if (scope.kind === 'model' && (!isModelRoute || ('model' in route && route.model !== scope.model))) {
      throw new NotFoundError(`no route ${request.path.slice(0, 200)} on the endpoint of model "${scope.model}"`);
    }
    switch (route.kind) {
      case 'console':
        if (options.consolePage === undefined) throw new NotFoundError('the console is served by the control function');
        return options.consolePage(request.headers['accept-encoding']);
      case 'server-openapi':
        return jsonResponse(200, serverOpenApi(OPENAPI_INFO));
      case 'model-openapi': {
        const target = await service.resolve(route.model, route.version);
        return jsonResponse(200, modelOpenApi(target.metadata, OPENAPI_INFO, route.version));
      }
      case 'batch-start': {
        const batch = batchJobs();
        const started = await batch.start({
          model: route.model,
          version: route.version ?? 'latest',
          ...batchLocations(request.body),
        });
        return jsonResponse(202, {
          ...started,
          status_url: `/v2/models/${encodeURIComponent(started.model)}/batch/${started.jobId}`,
        });
      }
      case 'batch-status':
        return jsonResponse(200, await batchJobs().status(route.model, route.jobId));
      case 'server-metadata':
        return jsonResponse(200, { name: SERVER_NAME, version: SERVER_VERSION, extensions: EXTENSIONS });
      case 'health-live':
        return jsonResponse(200, { live: true });
      case 'health-ready': {
        const reason = options.notReadyReason?.();
        if (reason !== undefined) return notReady({}, reason);
        return jsonResponse(200, { ready: true });
      }
      case 'repository-index':
        return jsonResponse(200, await service.repositoryIndex());
      case 'repository-control':
        throw new BadRequestError(
          `models are not ${route.action}ed on request here: every READY version is served, loaded on its first ` +
            'request; upload a model file to uploads/<model>/ to add a version, and promote (npm run models -- ' +
            'promote) to change the latest',
        );
      case 'model-config': {
        const target = await service.resolve(route.model, route.version);
        return jsonResponse(200, modelConfig(target.metadata, options.limitsFor(route.model)));
      }
      case 'model-metadata': {
        const target = await service.resolve(route.model, route.version);
        const manifest = await service.manifest(route.model);
        const rejections = await service.rejections(route.model, METADATA_REJECTIONS);
        return jsonResponse(
          200,
          modelMetadataBody(target.metadata, manifest?.versions ?? [], manifest?.labels ?? {}, rejections, manifest),
        );
      }
      case 'model-ready': {
        const reason = options.notReadyReason?.();
        if (reason !== undefined) return notReady({ name: route.model }, reason);
        const target = await service.resolve(route.model, route.version);
        return jsonResponse(200, { name: route.model, version: target.version, ready: true });
      }
      case 'model-infer': {
        const limits = options.limitsFor(route.model);
        if (request.body.byteLength > limits.maxBodyBytes) {
          throw new PayloadTooLargeError(
            `the request body has ${request.body.byteLength} bytes; the limit is ${limits.maxBodyBytes} ` +
              '(limits.maxBodyBytes): send the binary tensor extension (about 3x smaller than JSON numbers) or ' +
              'fewer rows per request',
          );
        }
        const target = await service.route(route.model, route.version);
        const body = await decodeContentEncoding(
          request.body,
          request.headers['content-encoding'],
          limits.maxBodyBytes,
        );
        // An async request names its input object instead of carrying tensors (docs/async.md).
        if (request.headers['inference-header-content-length'] === undefined && isAsyncRequest(body)) {
          const jobs = asyncJobsOf(target.model);
          return await acceptAsync(target, jobs, parseAsyncRequest(body, { bucket: jobs.bucket, model: target.model }));
        }
        const { response, decoded } = await inference.run(
          target,
          await inference.decode(target, body, request.headers, limits),
          limits,
        );
        // Refused from the element counts first: building a response of a billion numbers to measure it would take
        // seconds and gigabytes, or crash the process outright. The floor is of the uncompressed body: compression
        // saves bytes on the wire, it does not raise the limit on what is built.
        const floor = minimumResponseBytes(response, decoded);
        if (delivery === 'streamed') assertStreamFits(floor.bytes, !floor.binary, 'at least ');
        else
          assertResponseFits(floor.binary ? base64Bytes(floor.bytes) : floor.bytes, !floor.binary, limits, 'at least ');
        // Streamed, the body stays in its pieces (header, then each binary output): never joined into a copy.
        const encoded = encodeInferenceResponseParts(response, decoded);
        const headers: Record<string, string> = {
          ...Object.fromEntries(Object.entries(encoded.headers).map(([name, value]) => [name.toLowerCase(), value])),
          ...versionHeaders(target),
        };
        const answerBody = delivery === 'streamed' ? encoded.parts : bodyBytes(encoded.parts);
        const responseBytes = bodyByteLength(answerBody);
        // Compressed here, so that the size check measures what travels in the Lambda result.
        const answer = await compressResponse(
          { statusCode: 200, headers, body: answerBody },
          request.headers['accept-encoding'],
          limits.minCompressBytes,
        );
        if (delivery === 'streamed') {
          const contentType = answer.headers['content-type'] ?? '';
          const json = contentType.startsWith('application/json') && answer.headers['content-encoding'] === undefined;
          assertStreamFits(bodyByteLength(answer.body), json);
        } else checkResponseSize(answer, limits);
        // Built only where capture is on: a function without it does no capture work per request.
        const capture = options.capture?.enabled === true ? options.capture : undefined;
        const captured = capture === undefined ? undefined : capturedBody(body, request.headers);
        const candidate = target.shadow;
        if (candidate !== undefined) {
          // The client's answer is final: the copy only feeds the rollout's figures (docs/rollouts.md, "Shadow").
          shadow(async () => {
            const { copy, comparison } = await service.shadow(route.model, candidate, decoded, response, {
              timeoutMs: limits.timeoutMs,
            });
            // Sampled as the client's exchanges are: the copy's answer, and how it compares (docs/rollouts.md).
            if (copy === undefined || capture === undefined || captured === undefined) return;
            const copied = encodeInferenceResponseParts(copy, decoded);
            capture.capture({
              model: route.model,
              version: candidate,
              request: captured,
              response: capturedBody(copied.parts, copied.headers),
              ...(decoded.id === undefined ? {} : { inferenceId: decoded.id }),
              customAttributes: shadowAttributes(target.version, comparison),
            });
          });
        }
        options.onInference?.({ model: route.model, requestBytes: request.body.byteLength, responseBytes });
        if (capture !== undefined && captured !== undefined) {
          capture.capture({
            model: route.model,
            version: target.version,
            request: captured,
            response: capturedBody(answerBody, headers),
            ...(decoded.id === undefined ? {} : { inferenceId: decoded.id }),
          });
        }
        return answer;
      }
      case 'model-job': {
        const jobs = asyncJobsOf(route.model);
        return jsonResponse(200, await readJob(jobs.store, route.model, route.id));
      }
    }
  }

  function asyncJobsOf(model: string): AsyncJobsOptions {
    if (options.asyncJobs === undefined) {
      throw new BadRequestError(
        `async requests need the model bucket; this server serves "${model}" from a folder (MODEL_DIR)`,
      );
    }
    return options.asyncJobs;
  }

  /**
   * Accepts an async request: checks both locations against the rule and the input's size, pins the version, writes
   * the job record, and hands the job to an asynchronous invocation. 202 with the job and where its answer will be.
   */
  async function acceptAsync(
    target: ResolvedVersion,
    jobs: AsyncJobsOptions,
    request: AsyncRequest,
  ): Promise<HttpResponse> {
    checkInputSize(request.input, (await jobs.store.head(request.input.key))?.size);
    const clock = jobs.now ?? (() => new Date());
    const now = clock().toISOString();
    const job: AsyncJob = {
      id: randomUUID(),
      model: target.model,
      version: target.version,
      state: 'accepted',
      input_location: s3Uri(request.input),
      output_location: s3Uri(request.output),
      accepted_at: now,
      updated_at: now,
    };
    await createJob(jobs.store, job);
    try {
      await jobs.invoke({ asyncInference: { model: job.model, id: job.id } });
    } catch (error) {
      // Never queued, so nothing will ever run it: the record says so, and the caller may simply ask again.
      await advanceJob(jobs.store, job.model, job.id, 'failed', clock(), 'the job could not be queued');
      throw new ServiceUnavailableError('the async job could not be queued; send the request again', 1, {
        cause: error,
      });
    }
    return jsonResponse(
      202,
      {
        ...(request.requestId === undefined ? {} : { id: request.requestId }),
        model_name: job.model,
        model_version: job.version,
        job_id: job.id,
        status: job.state,
        output_location: job.output_location,
        status_location: `/v2/models/${encodeURIComponent(job.model)}/jobs/${job.id}`,
      },
      { location: `/v2/models/${encodeURIComponent(job.model)}/jobs/${job.id}` },
    );
  }
}

/** A request body decoded for a model: the request, and the image placements an answer reports. */
export interface DecodedBody {
  readonly request: InferenceRequest;
  readonly parameters?: Record<string, unknown>;
}

/** Decodes and runs request bodies: see {@link createInference}. */
export interface Inference {
  /** Decodes a body as its headers say. */
  decode(
    target: ResolvedVersion,
    body: Uint8Array,
    headers: Readonly<Record<string, string>>,
    limits: Limits,
  ): Promise<DecodedBody>;
  /** Runs a decoded body. */
  run(
    target: ResolvedVersion,
    decoded: DecodedBody,
    limits: Limits,
  ): Promise<{ response: InferenceResponse; decoded: InferenceRequest }>;
}

export function createInference(service: ModelService, imageDecoder: ImageDecoder): Inference {
  const decode: Inference['decode'] = async (target, body, headers, limits) => {
    const contentType = headers['content-type'];
    const headerLength = headers['inference-header-content-length'];
    const mediaType = parseMediaType(contentType).type;
    // An image body: decoded and preprocessed as the model's metadata declares (README, "Image inputs").
    const image =
      headerLength === undefined && isImageBody(mediaType)
        ? await decodeImageRequest(body, {
            mediaType,
            metadata: target.metadata,
            decoder: imageDecoder,
            limits,
            binaryOutputs: !acceptsJson(headers.accept),
          })
        : undefined;
    let decoded =
      image?.request ??
      decodeInferenceRequest(body, {
        contentType,
        inferenceHeaderContentLength: headerLength,
        limits,
        modelInputs: target.metadata.inputs,
        encodedInputs: declaredImageInputs(target.metadata),
      });
    // Images in BYTES elements of inputs with declared preprocessing (README, "Images in a V2 request").
    let parameters: Record<string, unknown> | undefined = image === undefined ? undefined : { image: image.placement };
    if (decoded.encodedInputs !== undefined) {
      const images = await decodeEncodedImages(decoded, {
        metadata: target.metadata,
        decoder: imageDecoder,
        limits,
      });
      decoded = images.request;
      parameters = imageParameters(images.placements);
    }
    return { request: decoded, ...(parameters === undefined ? {} : { parameters }) };
  };
  const run: Inference['run'] = async (target, { request, parameters }, limits) => {
    const answered = await service.infer(target, request, { timeoutMs: limits.timeoutMs });
    return { response: parameters === undefined ? answered : { ...answered, parameters }, decoded: request };
  };
  return { decode, run };
}

/**
 * A body as data capture takes it (the request as it arrived, decompressed; an answer before compression, or its
 * pieces) with its content headers, whatever the case of their names.
 */
function capturedBody(body: CapturedBody['body'], headers: Readonly<Record<string, string>>): CapturedBody {
  const lower = Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));
  const contentType = lower['content-type'];
  const headerLength = lower['inference-header-content-length'];
  return {
    body,
    ...(contentType === undefined ? {} : { contentType }),
    ...(headerLength === undefined ? {} : { inferenceHeaderContentLength: headerLength }),
  };
}

/**
 * A shadow copy's comparison as capture record attributes: which version answered the client, the largest
 * differences (a non-finite one as text, which JSON cannot hold) and, for classifiers, whether the labels agree.
 */
function shadowAttributes(stable: string, comparison: ShadowedEvent): Record<string, string | number | boolean> {
  const figure = (value: number) => (Number.isFinite(value) ? value : String(value));
  return {
    shadow_of: stable,
    ...(comparison.absDiff === undefined ? {} : { max_abs_diff: figure(comparison.absDiff) }),
    ...(comparison.relDiff === undefined ? {} : { max_rel_diff: figure(comparison.relDiff) }),
    ...(comparison.labelsAgree === undefined ? {} : { labels_agree: comparison.labelsAgree }),
  };
}

/**
 * Response headers that say which version answered (`x-model-version`, as the body's `model_version`) and, while a
 * rollout splits the model's unpinned traffic, its role (`x-rollout-role: stable|candidate`, docs/rollouts.md).
 */
export function versionHeaders(target: RoutedTarget): Record<string, string> {
  return {
    [VERSION_HEADERS.version]: target.version,
    ...(target.role === undefined ? {} : { [VERSION_HEADERS.role]: target.role }),
  };
}

/** Names of the {@link versionHeaders}. */
export const VERSION_HEADERS = { version: 'x-model-version', role: 'x-rollout-role' } as const;

/** The `{"input", "output"}` body of `POST .../batch`. */
function batchLocations(body: Uint8Array): { input: string; output: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(body));
  } catch {
    parsed = undefined;
  }
  const { input, output } = (parsed ?? {}) as { input?: unknown; output?: unknown };
  if (typeof input !== 'string' || typeof output !== 'string') {
    throw new BadRequestError(
      'a batch job is started with {"input": "s3://<bucket>/batch/<in>/", "output": "s3://<bucket>/batch/<out>/"}',
    );
  }
  return { input, output };
}

/**
 * The response's `parameters` for images sent in BYTES elements: `images` maps each image input to the placement of
 * each of its elements; `image` repeats the placement when the request held exactly one image, as an image body's
 * answer carries it.
 */
function imageParameters(placements: Readonly<Record<string, readonly ImagePlacement[]>>): Record<string, unknown> {
  const all = Object.values(placements).flat();
  return { ...(all.length === 1 ? { image: all[0] } : {}), images: placements };
}

/** True when an `Accept` header asks for JSON (image requests otherwise answer in the binary extension). */
function acceptsJson(accept: string | undefined): boolean {
  return (accept ?? '').split(',').some((part) => parseMediaType(part).type === MEDIA_TYPES.json);
}

/** Seconds a client is told to wait before asking again while the server starts. */
const NOT_READY_RETRY_AFTER_SECONDS = 1;

/** 503 with `"ready": false` and why, plus `Retry-After`: a readiness probe reads the status, a person the reason. */
function notReady(fields: Record<string, string>, reason: string): HttpResponse {
  return jsonResponse(
    503,
    { ...fields, ready: false, error: reason },
    { 'retry-after': String(NOT_READY_RETRY_AFTER_SECONDS) },
  );
}

/**
 * Bytes a response body adds to the Lambda result that carries it: a binary body travels base64-encoded (4/3
 * larger); a JSON body travels as a JSON string inside the result, where each double quote and backslash gains an
 * escaping backslash (BYTES outputs of short strings grow by up to half that way).
 */
export function lambdaBodyBytes(body: Uint8Array, contentType: string, contentEncoding?: string): number {
  if (!contentType.startsWith('application/json') || contentEncoding !== undefined) return base64Bytes(body.byteLength);
  let escapes = 0;
  for (let i = 0; i < body.byteLength; i++) {
    const byte = body[i];
    // JSON.stringify already escaped control characters, so only these two get a backslash of their own.
    if (byte === 0x22 || byte === 0x5c) escapes++;
  }
  return body.byteLength + escapes;
}

function base64Bytes(bytes: number): number {
  return Math.ceil(bytes / 3) * 4;
}

/**
 * Lambda returns at most 6 MB synchronously, counted on the result as it travels: refuse clearly rather than let
 * the platform fail the invocation (API Gateway would answer a bare 502). `qualifier` is "at least " when
 * `onTheWire` is a floor computed before the body was built.
 */
function checkResponseSize(response: HttpResponse, limits: Limits): void {
  const contentType = response.headers['content-type'] ?? '';
  const contentEncoding = response.headers['content-encoding'];
  const body = bodyBytes(response.body);
  assertResponseFits(
    lambdaBodyBytes(body, contentType, contentEncoding),
    contentType.startsWith('application/json') && contentEncoding === undefined,
    limits,
  );
}

/** Refuses a response of `onTheWire` bytes over the limit; `qualifier` is "at least " for a floor. */
function assertResponseFits(onTheWire: number, json: boolean, limits: Limits, qualifier = ''): void {
  if (onTheWire > limits.maxResponseBytes) {
    throw new PayloadTooLargeError(
      `the response would be ${qualifier}${onTheWire} bytes${json ? ' as JSON' : ' base64-encoded'}, over the ` +
        `${limits.maxResponseBytes}-byte limit of a Lambda response (limits.maxResponseBytes): ` +
        (json ? 'request binary outputs ("binary_data_output": true, about 3x smaller for numbers), ' : '') +
        'request fewer outputs ("outputs": [{"name": ...}]), send fewer rows per request, or serve through a ' +
        `front that streams answers up to ${PLATFORM_LIMITS.maxStreamedResponseBytes} bytes (cdk deploy ` +
        `-c streaming=true, or -c api=url; locally ${ENV.responseStreaming}=true npm start)`,
    );
  }
}

/** Refuses an answer of `bytes` over what a streamed Lambda response may carry; `qualifier` as above. */
function assertStreamFits(bytes: number, json: boolean, qualifier = ''): void {
  const limit = PLATFORM_LIMITS.maxStreamedResponseBytes;
  if (bytes > limit) {
    throw new PayloadTooLargeError(
      `the response would be ${qualifier}${bytes} bytes${json ? ' as JSON' : ''}, over the ${limit}-byte limit ` +
        'of a streamed Lambda response: ' +
        (json ? 'request binary outputs ("binary_data_output": true, about 3x smaller for numbers), ' : '') +
        'request fewer outputs ("outputs": [{"name": ...}]), or send fewer rows per request',
    );
  }
}

function modelMetadataBody(
  metadata: ModelMetadata,
  versions: readonly { version: string; state: string }[],
  labels: Readonly<Record<string, string>>,
  rejections: readonly { sourceKey: string; rejectedAt: string; reason: string }[],
  manifest: Pick<Manifest, 'rollout' | 'rolloutPolicy'> | undefined,
) {
  return {
    name: metadata.name,
    versions: versions.filter((v) => v.state === 'READY').map((v) => v.version),
    platform: metadata.platform,
    inputs: metadata.inputs,
    outputs: metadata.outputs,
    parameters: {
      version: metadata.version,
      sha256: metadata.sha256,
      created_at: metadata.createdAt,
      source_key: metadata.sourceKey,
      labels,
      rewrites: metadata.rewrites,
      ...(metadata.preprocess === undefined ? {} : { preprocess: metadata.preprocess }),
      ...(metadata.classLabels === undefined ? {} : { class_labels: metadata.classLabels }),
      rejections,
      // The policy the next upload registers under (without a sidecar's), and the last rollout (docs/rollouts.md).
      rollout_policy: manifest?.rolloutPolicy ?? ALL_AT_ONCE,
      ...(manifest?.rollout === undefined ? {} : { rollout: manifest.rollout }),
    },
  };
}
