/**
 * The OpenAPI 3.1 documents the API serves: `GET /v2/openapi.json` (the deployment's API, every path of the route
 * table {@link API_ROUTES}) and `GET /v2/models/<m>/openapi.json` (one model's routes, with request and response
 * schemas made from its metadata, and an example request that the model answers). Schema names follow the Open
 * Inference Protocol's own REST document (`inference_request`, `metadata_model_response`, ...).
 */
import { API_ROUTES, operationId, pathParameters, type ApiRoute, type RouteKind } from './api-routes.js';
import { MODEL_NAME_PATTERN } from './catalog.js';
import { elementCount, smallestShape } from './codec/index.js';
import { encodePng } from './image/png.js';
import { syntheticImage } from './image/preprocess.js';
import type { Preprocess } from './image/spec.js';
import type { Datatype, ModelMetadata, TensorSpec } from './types.js';

/** An OpenAPI document as JSON. */
export type OpenApiDocument = Record<string, unknown>;

/** What the documents say about the server. */
export interface OpenApiInfo {
  readonly title: string;
  readonly version: string;
  /** Protocol extensions served (`GET /v2`'s `extensions`). */
  readonly extensions: readonly string[];
}

/** A V2 JSON inference request body. */
export interface ExampleRequest {
  readonly inputs: readonly { name: string; datatype: Datatype; shape: number[]; data: unknown[] }[];
}

/** Height and width of the test card sent as the example image (small: it travels base64 in the document). */
const EXAMPLE_IMAGE_SIZE = [48, 64] as const;

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown) => ({ 'application/json': { schema } });
const error = (description: string) => ({ description, content: json(ref('inference_error_response')) });

/** Datatypes whose JSON elements are integers (64-bit ones may also be decimal strings, read exactly). */
const INTEGER_TYPES: ReadonlySet<Datatype> = new Set(['UINT8', 'UINT16', 'UINT32', 'INT8', 'INT16', 'INT32']);

/** The JSON schema of one element of a tensor of `datatype` in V2 JSON (README, "JSON"). */
function elementSchema(datatype: Datatype): Record<string, unknown> {
  if (datatype === 'BOOL') return { type: 'boolean' };
  if (datatype === 'BYTES') return { type: 'string' };
  if (INTEGER_TYPES.has(datatype)) return { type: 'integer' };
  if (datatype === 'INT64' || datatype === 'UINT64') {
    return { anyOf: [{ type: 'integer' }, { type: 'string', pattern: '^-?[0-9]+$' }] };
  }
  return { anyOf: [{ type: 'number' }, { enum: ['NaN', 'Infinity', '-Infinity'] }] };
}

/** Flat or nested data of one datatype. */
function dataSchema(datatype: Datatype): Record<string, unknown> {
  return { type: 'array', items: { anyOf: [elementSchema(datatype), { type: 'array' }] } };
}

/** A shape schema: fixed dimensions as constants, dynamic ones (-1) any positive size. */
function shapeSchema(shape: readonly number[]): Record<string, unknown> {
  return {
    type: 'array',
    prefixItems: shape.map((dim) => (dim < 0 ? { type: 'integer', minimum: 0 } : { const: dim })),
    minItems: shape.length,
    maxItems: shape.length,
  };
}

/** A V2 JSON tensor object (an input of a request, an output of a response) with the given field schemas. */
function tensorObject(
  fields: { name: unknown; datatype: unknown; shape: unknown; data: unknown },
  required: readonly string[],
): Record<string, unknown> {
  const { name, datatype, shape, data } = fields;
  return { type: 'object', properties: { name, datatype, shape, parameters: ref('parameters'), data }, required };
}

/** Any tensor's fields, as the Open Inference Protocol's document gives them. */
const ANY_TENSOR = {
  name: { type: 'string' },
  datatype: { type: 'string' },
  shape: { type: 'array', items: { type: 'integer', minimum: 0 } },
  data: ref('tensor_data'),
};

const SHARED_SCHEMAS = {
  parameters: { type: 'object', description: 'Free-form parameters (the Open Inference Protocol leaves them open)' },
  tensor_data: {
    type: 'array',
    description: 'Tensor elements, flat (row-major) or nested; FP tensors accept "NaN", "Infinity", "-Infinity"',
    items: { anyOf: [ref('tensor_data'), { type: 'number' }, { type: 'string' }, { type: 'boolean' }] },
  },
  metadata_server_response: {
    type: 'object',
    properties: {
      name: { type: 'string' },
      version: { type: 'string' },
      extensions: { type: 'array', items: { type: 'string' } },
    },
    required: ['name', 'version', 'extensions'],
  },
  metadata_tensor: {
    type: 'object',
    properties: {
      name: { type: 'string' },
      datatype: { type: 'string' },
      shape: { type: 'array', items: { type: 'integer' }, description: '-1 is a dynamic dimension' },
    },
    required: ['name', 'datatype', 'shape'],
  },
  metadata_model_response: {
    type: 'object',
    properties: {
      name: { type: 'string' },
      versions: { type: 'array', items: { type: 'string' } },
      platform: { type: 'string' },
      inputs: { type: 'array', items: ref('metadata_tensor') },
      outputs: { type: 'array', items: ref('metadata_tensor') },
      parameters: {
        type: 'object',
        description:
          'version, sha256, created_at, source_key, labels (stable, canary), rewrites, preprocess (declared image ' +
          'preprocessing), class_labels, rejections (latest refused uploads with their reasons)',
      },
    },
    required: ['name', 'platform', 'inputs', 'outputs'],
  },
  request_input: tensorObject(ANY_TENSOR, ['name', 'shape', 'datatype']),
  request_output: {
    type: 'object',
    properties: { name: { type: 'string' }, parameters: ref('parameters') },
    required: ['name'],
  },
  inference_request: {
    type: 'object',
    properties: {
      id: { type: 'string' },
      parameters: ref('parameters'),
      inputs: { type: 'array', items: ref('request_input') },
      outputs: { type: 'array', items: ref('request_output') },
    },
    required: ['inputs'],
  },
  response_output: tensorObject(ANY_TENSOR, ['name', 'shape', 'datatype']),
  inference_response: {
    type: 'object',
    properties: {
      model_name: { type: 'string' },
      model_version: { type: 'string' },
      id: { type: 'string' },
      parameters: {
        type: 'object',
        description: 'For image requests: `image` (original_size, scale, pad, size) and `images` per input',
      },
      outputs: { type: 'array', items: ref('response_output') },
    },
    required: ['model_name', 'model_version', 'outputs'],
  },
  inference_error_response: {
    type: 'object',
    properties: { error: { type: 'string', description: 'What went wrong and what to change' } },
    required: ['error'],
  },
  repository_index_response: {
    type: 'array',
    items: {
      type: 'object',
      properties: {
        name: { type: 'string' },
        version: { type: 'string', description: 'Empty for a refused upload' },
        state: { enum: ['READY', 'UNAVAILABLE'] },
        reason: { type: 'string' },
      },
      required: ['name', 'version', 'state', 'reason'],
    },
  },
  model_config_response: {
    type: 'object',
    description: "Triton's model configuration (platform, max_batch_size, input and output with data_type, dims)",
    properties: { name: { type: 'string' }, platform: { type: 'string' }, max_batch_size: { type: 'integer' } },
    required: ['name', 'platform'],
  },
} as const;

const PARAMETERS = {
  model: {
    name: 'model',
    in: 'path',
    required: true,
    description: 'A model name',
    schema: { type: 'string', pattern: MODEL_NAME_PATTERN.source },
  },
  version: {
    name: 'version',
    in: 'path',
    required: true,
    description: 'A version number (1, 2, ...) or a label of the manifest (stable, canary); without it, latest',
    schema: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' },
  },
  id: {
    name: 'id',
    in: 'path',
    required: true,
    description: "An async request's job id, as its 202 answer gave it",
    schema: { type: 'string' },
  },
  jobId: {
    name: 'jobId',
    in: 'path',
    required: true,
    description: "A batch job's id, as its start gave it",
    schema: { type: 'string' },
  },
} as const;

/** Headers of an inference request besides the body (README, "Binary" and "HTTP compression"). */
const INFER_HEADERS = [
  {
    name: 'Inference-Header-Content-Length',
    in: 'header',
    required: false,
    description: "The binary tensor extension: byte length of the body's JSON header (0: the raw form)",
    schema: { type: 'integer', minimum: 0 },
  },
  {
    name: 'Content-Encoding',
    in: 'header',
    required: false,
    description: 'A compressed request body',
    schema: { enum: ['gzip', 'deflate', 'identity'] },
  },
  {
    name: 'Accept-Encoding',
    in: 'header',
    required: false,
    description:
      'gzip or deflate: a successful answer is compressed when it is large enough (README, HTTP compression)',
    schema: { type: 'string' },
  },
  {
    name: 'Accept',
    in: 'header',
    required: false,
    description: 'application/json: an image request answered in V2 JSON instead of the binary extension',
    schema: { type: 'string' },
  },
] as const;

const BINARY = { schema: { type: 'string', contentMediaType: 'application/octet-stream' } };

/** The binary and image bodies an inference route takes besides V2 JSON. */
const OTHER_INFER_BODIES = {
  'application/octet-stream': {
    schema: {
      ...BINARY.schema,
      description:
        "Triton's binary tensor extension: a JSON header (Inference-Header-Content-Length bytes), then raw tensor bytes",
    },
  },
  'image/jpeg': BINARY,
  'image/png': BINARY,
  'image/webp': BINARY,
};

/** Responses of a route kind (200 and the errors it can answer besides 500). */
function responses(kind: RouteKind, schemas: { request: unknown; response: unknown }): Record<string, unknown> {
  const notFound = error('Unknown model or version');
  switch (kind) {
    case 'console':
      return { 200: { description: 'The console page', content: { 'text/html': { schema: { type: 'string' } } } } };
    case 'server-metadata':
      return { 200: { description: 'OK', content: json(ref('metadata_server_response')) } };
    case 'server-openapi':
    case 'model-openapi':
      return { 200: { description: 'An OpenAPI 3.1 document', content: json({ type: 'object' }) }, 404: notFound };
    case 'health-live':
      return { 200: { description: 'Live', content: json({ type: 'object', properties: { live: { const: true } } }) } };
    case 'health-ready':
      return {
        200: { description: 'Ready', content: json({ type: 'object', properties: { ready: { const: true } } }) },
        503: error('Start-up registrations are still running; retry after Retry-After seconds'),
      };
    case 'repository-index':
      return { 200: { description: 'OK', content: json(ref('repository_index_response')) } };
    case 'repository-control':
      return { 400: error('Versions are made by uploads; every READY version is served') };
    case 'model-metadata':
      return { 200: { description: 'OK', content: json(ref('metadata_model_response')) }, 404: notFound };
    case 'model-ready':
      return {
        200: {
          description: 'Ready',
          content: json({
            type: 'object',
            properties: { name: { type: 'string' }, version: { type: 'string' }, ready: { const: true } },
          }),
        },
        404: notFound,
        503: error('Not ready yet; retry after Retry-After seconds'),
      };
    case 'model-config':
      return { 200: { description: 'OK', content: json(ref('model_config_response')) }, 404: notFound };
    case 'batch-start':
      return {
        202: { description: 'The job started: its id and status URL', content: json({ type: 'object' }) },
        400: error('The input or output location breaks the rule (the message names it)'),
        404: notFound,
      };
    case 'batch-status':
      return {
        200: { description: "The job's record: counts, durations, failed keys", content: json({ type: 'object' }) },
        404: error('Unknown model or job'),
      };
    case 'model-job':
      return {
        200: {
          description: 'The job record: its state (accepted, running, succeeded, failed), version and locations',
          content: json({ type: 'object', properties: { state: { type: 'string' } } }),
        },
        404: error('Unknown model or job'),
      };
    case 'model-infer':
      return {
        200: {
          description: 'The outputs, as V2 JSON or in the binary extension (Inference-Header-Content-Length)',
          content: { 'application/json': { schema: schemas.response }, 'application/octet-stream': BINARY },
        },
        202: {
          description:
            'An async request (parameters.input_location and output_location) was accepted: the job id and where its answer will be',
          content: json({ type: 'object' }),
        },
        400: error('The request does not fit the model (the message says what to change)'),
        404: notFound,
        413: error('The body or the response is over a limit'),
        415: error('Unsupported content type or encoding'),
        503: error('The model cannot be loaded right now; retry after Retry-After seconds'),
      };
  }
}

/** The operation of one route. */
function operation(route: ApiRoute, schemas: { request: unknown; response: unknown }, example?: ExampleRequest) {
  const parameters = [
    ...pathParameters(route.path).map((name) => PARAMETERS[name as keyof typeof PARAMETERS]),
    ...(route.kind === 'model-infer' ? INFER_HEADERS : []),
  ];
  return {
    operationId: operationId(route),
    summary: route.summary,
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(route.kind === 'model-infer'
      ? {
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: schemas.request,
                ...(example === undefined ? {} : { examples: { example: { value: example } } }),
              },
              ...OTHER_INFER_BODIES,
            },
          },
        }
      : {}),
    responses: responses(route.kind, schemas),
  };
}

/** Adds `operation` under `path` and `method` of `paths`. */
function addOperation(paths: Record<string, Record<string, unknown>>, path: string, method: string, op: unknown) {
  paths[path] = { ...(paths[path] ?? {}), [method.toLowerCase()]: op };
}

function document(info: OpenApiInfo, title: string, description: string, servers: string, body: object) {
  return {
    openapi: '3.1.0',
    info: { title, version: info.version, description },
    // Relative to the document, so that the deployed stage (`/prod`) is part of every URL.
    servers: [{ url: servers, description: 'The API root, relative to this document' }],
    security: [{}, { api_key: [] }],
    ...body,
  };
}

const SECURITY_SCHEMES = {
  api_key: {
    type: 'apiKey',
    in: 'header',
    name: 'x-api-key',
    description: 'Deployed with the default api-key authorization (IAM is the option); not needed under npm start',
  },
};

/** The deployment's API: every route of {@link API_ROUTES}, as OpenAPI 3.1. */
export function serverOpenApi(info: OpenApiInfo): OpenApiDocument {
  const paths: Record<string, Record<string, unknown>> = {};
  const schemas = { request: ref('inference_request'), response: ref('inference_response') };
  for (const route of API_ROUTES) addOperation(paths, route.path, route.method, operation(route, schemas));
  return document(
    info,
    info.title,
    'KServe V2 / Open Inference Protocol, with the extensions ' +
      `${info.extensions.join(', ')}, HTTP compression, image bodies for models that declare image preprocessing, ` +
      'versions and labels. Each model describes its own tensors at /v2/models/{model}/openapi.json.',
    '..',
    { paths, components: { schemas: SHARED_SCHEMAS, securitySchemes: SECURITY_SCHEMES } },
  );
}

/** The declared image preprocessing of `input`, if any. */
function imageDeclaration(preprocess: Preprocess | undefined, input: string) {
  return preprocess?.images[input];
}

/** The fields of one of a model's tensors: its name and datatype fixed, its shape and data typed. */
function modelTensor(spec: TensorSpec) {
  return {
    name: { const: spec.name },
    datatype: { const: spec.datatype },
    shape: shapeSchema(spec.shape),
    data: dataSchema(spec.datatype),
  };
}

/** A request input of this model: its name, datatype and shape fixed; an image input may be sent as BYTES files. */
function inputSchema(spec: TensorSpec, preprocess: Preprocess | undefined): Record<string, unknown> {
  const tensor = tensorObject(modelTensor(spec), ['name', 'datatype', 'shape', 'data']);
  const image = imageDeclaration(preprocess, spec.name);
  if (image === undefined) return tensor;
  const files = {
    type: 'object',
    description: 'Image files (JPEG, PNG or WebP), each base64-encoded, preprocessed as declared',
    properties: {
      name: { const: spec.name },
      datatype: { const: 'BYTES' },
      shape: { type: 'array', items: { type: 'integer', minimum: 1 }, minItems: 1, maxItems: 2 },
      data: { type: 'array', items: { type: 'string', contentEncoding: 'base64' } },
    },
    required: ['name', 'datatype', 'shape', 'data'],
  };
  return { oneOf: [tensor, files], 'x-image-preprocess': image };
}

function outputSchema(spec: TensorSpec): Record<string, unknown> {
  return tensorObject(modelTensor(spec), ['name', 'datatype', 'shape']);
}

/** Standard base64 of bytes (what the V2 JSON of an image input carries). */
function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/**
 * A V2 JSON request that `metadata`'s model answers: each input at its smallest shape (dynamic dimensions 1),
 * zero-filled as registration's smoke inference sends it, and each input with declared image preprocessing as one
 * PNG test card in a BYTES element.
 */
export function exampleRequest(metadata: ModelMetadata): ExampleRequest {
  const [height, width] = EXAMPLE_IMAGE_SIZE;
  return {
    inputs: metadata.inputs.map((spec) => {
      if (imageDeclaration(metadata.preprocess, spec.name) !== undefined) {
        return {
          name: spec.name,
          datatype: 'BYTES',
          shape: [1],
          data: [base64(encodePng(syntheticImage(height, width)))],
        };
      }
      const shape = smallestShape(spec.shape);
      const zero = spec.datatype === 'BOOL' ? false : spec.datatype === 'BYTES' ? '' : 0;
      const data = new Array<unknown>(elementCount(shape)).fill(zero);
      return { name: spec.name, datatype: spec.datatype, shape, data };
    }),
  };
}

/** Which model routes a model's document describes: the ones a client of the model calls. */
const MODEL_DOCUMENT_KINDS: ReadonlySet<RouteKind> = new Set([
  'model-metadata',
  'model-ready',
  'model-config',
  'model-infer',
]);

/**
 * One model's API: its routes (from {@link API_ROUTES}, the model's name in the path, and `version` when the
 * document was asked for one) with request and response schemas naming its inputs and outputs, their datatypes
 * and shapes, declared image preprocessing, and {@link exampleRequest} as the inference example.
 */
export function modelOpenApi(metadata: ModelMetadata, info: OpenApiInfo, version?: string): OpenApiDocument {
  const request = {
    type: 'object',
    properties: {
      id: { type: 'string' },
      parameters: ref('parameters'),
      inputs: {
        type: 'array',
        items: { oneOf: metadata.inputs.map((spec) => inputSchema(spec, metadata.preprocess)) },
        minItems: metadata.inputs.length,
        maxItems: metadata.inputs.length,
      },
      outputs: {
        type: 'array',
        items: {
          type: 'object',
          properties: { name: { enum: metadata.outputs.map((o) => o.name) }, parameters: ref('parameters') },
          required: ['name'],
        },
      },
    },
    required: ['inputs'],
  };
  const response = {
    type: 'object',
    properties: {
      model_name: { const: metadata.name },
      model_version: { type: 'string' },
      id: { type: 'string' },
      parameters: ref('parameters'),
      outputs: { type: 'array', items: { oneOf: metadata.outputs.map(outputSchema) } },
    },
    required: ['model_name', 'model_version', 'outputs'],
  };
  const schemas = { request: ref(`${metadata.name}_request`), response: ref(`${metadata.name}_response`) };
  const example = exampleRequest(metadata);
  const paths: Record<string, Record<string, unknown>> = {};
  const modelPath = (template: string) =>
    template
      .replace('{model}', encodeURIComponent(metadata.name))
      .replace('{version}', encodeURIComponent(version ?? ''));
  for (const route of API_ROUTES) {
    if (!MODEL_DOCUMENT_KINDS.has(route.kind) || route.path.includes('{version}') !== (version !== undefined)) continue;
    const op = operation({ ...route, path: modelPath(route.path) }, schemas, example);
    addOperation(paths, modelPath(route.path), route.method, op);
  }
  const images = Object.keys(metadata.preprocess?.images ?? {});
  return document(
    info,
    `${metadata.name} (version ${metadata.version})`,
    `Model "${metadata.name}" served by ${info.title}, version ${metadata.version} (sha256 ${metadata.sha256}).` +
      (images.length > 0
        ? ` Image inputs (${images.join(', ')}) take JPEG, PNG or WebP files, as an image/* body or base64 in ` +
          'BYTES elements, preprocessed as their x-image-preprocess declares.'
        : ''),
    // The document sits at /v2/models/<m>[/versions/<v>]/openapi.json.
    version === undefined ? '../../..' : '../../../../..',
    {
      paths,
      components: {
        schemas: { ...SHARED_SCHEMAS, [`${metadata.name}_request`]: request, [`${metadata.name}_response`]: response },
        securitySchemes: SECURITY_SCHEMES,
      },
    },
  );
}
