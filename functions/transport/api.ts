/**
 * The HTTP API of DESIGN.md over the serving core: route, decode, call the {@link ModelService}, encode.
 * The same function serves the deployed `infer` and `control` Lambdas (each scoped to its routes) and the local
 * gateway.
 */
import packageJson from '../../package.json' with { type: 'json' };
import { createSharpImageDecoder } from '../adapters/sharp-image-decoder.js';
import {
  decodeInferenceRequest,
  encodeInferenceResponse,
  MEDIA_TYPES,
  minimumResponseBytes,
  parseMediaType,
} from '../core/codec/index.js';
import type { ImageDecoder } from '../core/image/decoder.js';
import type { ImagePlacement } from '../core/image/preprocess.js';
import { declaredImageInputs, decodeEncodedImages, decodeImageRequest, isImageBody } from '../core/image/request.js';
import type { BatchJobs } from '../core/batch/index.js';
import type { Limits } from '../core/catalog.js';
import { BadRequestError, NotFoundError, PayloadTooLargeError } from '../core/errors.js';
import { modelConfig } from '../core/triton.js';
import { compressResponse, decodeContentEncoding } from './compression.js';
import type { ModelService } from '../core/model-service.js';
import type { ModelMetadata } from '../core/types.js';
import { errorResponse, jsonResponse, type HttpRequest, type HttpResponse } from './http.js';
import { MODEL_ROUTES, matchRoute } from './routes.js';

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

/** Refused uploads listed in a model's metadata, newest last (all of them: `npm run models -- rejections <m>`). */
const METADATA_REJECTIONS = 20;

/** Which routes an API instance serves. */
export type ApiScope =
  | { readonly kind: 'all' }
  | { readonly kind: 'control' }
  /** The per-model function: only this model's routes. */
  | { readonly kind: 'model'; readonly model: string };

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
  /** Decoder of image bodies. @default sharp (libvips), loaded on the first image request */
  readonly imageDecoder?: ImageDecoder;
  /**
   * The engine behind the batch routes (`npm start`'s local engine). Deployed, jobs are Step Functions executions
   * started on the state machine, and these routes answer 404 saying so.
   * @default none
   */
  readonly batch?: BatchJobs;
}

/** A function from request to response that never throws. */
export type Api = (request: HttpRequest) => Promise<HttpResponse>;

/** Builds the API handler. */
export function createApi(options: ApiOptions): Api {
  const { service, scope } = options;
  const imageDecoder = options.imageDecoder ?? createSharpImageDecoder();
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
          modelMetadataBody(target.metadata, manifest?.versions ?? [], manifest?.labels ?? {}, rejections),
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
        const target = await service.resolve(route.model, route.version);
        const body = await decodeContentEncoding(
          request.body,
          request.headers['content-encoding'],
          limits.maxBodyBytes,
        );
        const contentType = request.headers['content-type'];
        const headerLength = request.headers['inference-header-content-length'];
        const mediaType = parseMediaType(contentType).type;
        // An image body: decoded and preprocessed as the model's metadata declares (README, "Image inputs").
        const image =
          headerLength === undefined && isImageBody(mediaType)
            ? await decodeImageRequest(body, {
                mediaType,
                metadata: target.metadata,
                decoder: imageDecoder,
                limits,
                binaryOutputs: !acceptsJson(request.headers.accept),
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
        let parameters: Record<string, unknown> | undefined =
          image === undefined ? undefined : { image: image.placement };
        if (decoded.encodedInputs !== undefined) {
          const images = await decodeEncodedImages(decoded, {
            metadata: target.metadata,
            decoder: imageDecoder,
            limits,
          });
          decoded = images.request;
          parameters = imageParameters(images.placements);
        }
        const answered = await service.infer(target, decoded, { timeoutMs: limits.timeoutMs });
        const response = parameters === undefined ? answered : { ...answered, parameters };
        // Refused from the element counts first: building a response of a billion numbers to measure it would take
        // seconds and gigabytes, or crash the process outright. The floor is of the uncompressed body: compression
        // saves bytes on the wire, it does not raise the limit on what is built.
        const floor = minimumResponseBytes(response, decoded);
        assertResponseFits(floor.binary ? base64Bytes(floor.bytes) : floor.bytes, !floor.binary, limits, 'at least ');
        const encoded = encodeInferenceResponse(response, decoded);
        const headers = Object.fromEntries(
          Object.entries(encoded.headers).map(([name, value]) => [name.toLowerCase(), value]),
        );
        // Compressed here, so that the size check measures what travels in the Lambda result.
        const answer = await compressResponse(
          { statusCode: 200, headers, body: encoded.body },
          request.headers['accept-encoding'],
          limits.minCompressBytes,
        );
        checkResponseSize(answer, limits);
        options.onInference?.({
          model: route.model,
          requestBytes: request.body.byteLength,
          responseBytes: encoded.body.byteLength,
        });
        return answer;
      }
    }
  }
}

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
  const body = typeof response.body === 'string' ? Buffer.from(response.body) : response.body;
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
        'request fewer outputs ("outputs": [{"name": ...}]), or send fewer rows per request',
    );
  }
}

function modelMetadataBody(
  metadata: ModelMetadata,
  versions: readonly { version: string; state: string }[],
  labels: Readonly<Record<string, string>>,
  rejections: readonly { sourceKey: string; rejectedAt: string; reason: string }[],
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
    },
  };
}
