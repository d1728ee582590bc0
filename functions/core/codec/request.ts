/**
 * Inference requests on the wire: decoding what clients send (server side) and encoding what clients send (tests,
 * CLI, conformance runner, benchmarks).
 */
import type { Limits } from '../catalog.js';
import { BadRequestError, PayloadTooLargeError } from '../errors.js';
import type { EncodedInput, InferenceRequest, RequestedOutput, Tensor, TensorData, TensorSpec } from '../types.js';
import {
  decodeBinaryTensorData,
  decodeBytesElements,
  decodeOpaqueBytesElements,
  encodeBinaryTensorData,
  takeBinaryTensor,
} from './binary-data.js';
import { BYTES_PER_ELEMENT, createTensorData, isFixedSize } from './datatypes.js';
import { formatShape, plural, quoteName, show } from './describe.js';
import {
  DATA_DEPTH,
  assertDocumentDepth,
  assertUniqueNames,
  isJsonObject,
  optionalBoolean,
  parseJsonObject,
  parseParameters,
  parseTensorDescriptor,
} from './document.js';
import type { JsonObject, TensorDescriptor } from './document.js';
import { fillFromJsonSpan, findDataSpans, withoutSpans, type DataSpan } from './json-span.js';
import { decodeJsonTensor, nestJsonData, toJsonData } from './json-data.js';
import { InexactJsonIntegerError } from './json-text.js';
import { HEADERS, MEDIA_TYPES, parseMediaType, requestForm } from './wire.js';
import { stringifyJson } from './json-text.js';
import { assertTensor, concatBytes, type EncodedMessage } from './message.js';

/** How {@link decodeInferenceRequest} reads a body. */
export interface DecodeOptions {
  /** The request's `Content-Type` header value, if any. */
  readonly contentType?: string;
  /** The request's `Inference-Header-Content-Length` header value, if any. */
  readonly inferenceHeaderContentLength?: string;
  readonly limits: Limits;
  /** The model's declared inputs: needed only for the raw binary form, where the body carries no header. */
  readonly modelInputs?: readonly TensorSpec[];
  /**
   * Read large numeric `data` arrays of V2 JSON straight from the bytes into the tensors (see `json-span.ts`);
   * `false` decodes with `JSON.parse` alone. Both give the same tensors and the same errors.
   * @default true
   */
  readonly jsonFastPath?: boolean;
  /**
   * Inputs that take an encoded image (the model declares their image preprocessing). Sent as BYTES, such an
   * input's elements are opaque bytes, not UTF-8 text: in the binary extension each element is the image file as
   * sent; in V2 JSON each element is the file base64-encoded. They are returned in `encodedInputs`, not in
   * `inputs`, and bounded by the body limit rather than `maxBytesElementSize`. Sent as any other datatype, such an
   * input is an ordinary tensor (already preprocessed by the client).
   */
  readonly encodedInputs?: ReadonlySet<string>;
}

const EXPECTED_REQUEST = 'with an "inputs" array';

/** The output parameter of Triton's classification extension (the Python client's `class_count`). */
export const CLASSIFICATION_PARAMETER = 'classification';

/**
 * Decodes a KServe V2 inference request in any of its forms: V2 JSON (flat or nested `data`); Triton's binary
 * tensor extension (a JSON header of `Inference-Header-Content-Length` bytes, then the bytes of every input that
 * has `parameters.binary_data_size`, in order), also under SageMaker's
 * `application/vnd.sagemaker-triton.binary+json;json-header-size=N`; and the raw form
 * (`Inference-Header-Content-Length: 0`: the whole body is the one model input's bytes, outputs binary by default).
 *
 * Every limit is checked before the memory it guards is allocated.
 * @throws BadRequestError (400) for malformed or inconsistent requests, PayloadTooLargeError (413) over a size
 *   limit (body, elements, BYTES element).
 * @example
 * const request = decodeInferenceRequest(body, { contentType: 'application/json', limits: DEFAULT_LIMITS });
 */
export function decodeInferenceRequest(body: Uint8Array, options: DecodeOptions): InferenceRequest {
  const { limits } = options;
  if (body.byteLength > limits.maxBodyBytes) {
    throw new PayloadTooLargeError(
      `the request body is ${body.byteLength} bytes; the limit is ${limits.maxBodyBytes} bytes (limits.maxBodyBytes)`,
    );
  }
  const form = requestForm(options.contentType, options.inferenceHeaderContentLength, body.byteLength);
  if (form.kind === 'raw') return decodeRawRequest(body, options);
  const encoded = options.encodedInputs ?? NO_ENCODED_INPUTS;
  if (form.kind === 'json' && options.jsonFastPath !== false && body.byteLength >= FAST_JSON_MIN_SPAN_BYTES) {
    const fast = decodeJsonRequestFast(body, limits, FAST_JSON_MIN_SPAN_BYTES, encoded);
    if (fast !== undefined) return fast;
  }
  const binary = form.kind === 'binary';
  const decode = (lossless: boolean) => {
    const document = binary
      ? parseJsonObject(
          body.subarray(0, form.headerLength),
          `the inference header (the first ${form.headerLength} bytes of the body)`,
          EXPECTED_REQUEST,
          lossless,
        )
      : parseJsonObject(body, jsonBodyName(options.contentType), EXPECTED_REQUEST, lossless);
    return decodeRequestDocument(document, body, binary ? form.headerLength : undefined, limits, lossless, encoded);
  };
  try {
    return decode(false);
  } catch (error) {
    // A 64-bit integer past 2^53: JSON.parse may have rounded it, so read the text again, exactly.
    if (error instanceof InexactJsonIntegerError) return decode(true);
    throw error;
  }
}

/**
 * How messages name a JSON body: with a content type that does not say JSON, also why it was read as JSON (as
 * Triton does, the form follows `Inference-Header-Content-Length`, never `Content-Type`).
 */
function jsonBodyName(contentType: string | undefined): string {
  const type = parseMediaType(contentType).type;
  if (type === '' || type === MEDIA_TYPES.json) return 'the request body';
  return (
    `the request body (read as V2 JSON although its Content-Type is ${show(type)}: without an ` +
    `${HEADERS.inferenceHeaderContentLength} header every body is V2 JSON)`
  );
}

/**
 * `data` arrays shorter than this stay in the document for JSON.parse (and bodies shorter than this skip the fast
 * path): for them the fast path's bookkeeping costs more than it saves.
 */
export const FAST_JSON_MIN_SPAN_BYTES = 1024;

/** Where an input's `data` was before the fast path took it out of the document. */
class DataSpanValue {
  public constructor(public readonly span: DataSpan) {}
}

/** Stops the fast path; the standard path then decodes the body from scratch. */
class FastPathUnavailableError extends Error {
  public constructor() {
    super('the JSON fast path cannot decode this body');
    this.name = 'FastPathUnavailableError';
  }
}

/**
 * The fast path of V2 JSON requests (see `json-span.ts`): the request as the standard path would decode it, or
 * `undefined` when the fast path cannot take this body (then nothing, errors included, has been decided).
 * `minSpanBytes` is exported for the tests, which take every array down this path.
 */
export function decodeJsonRequestFast(
  body: Uint8Array,
  limits: Limits,
  minSpanBytes: number = FAST_JSON_MIN_SPAN_BYTES,
  encodedInputs: ReadonlySet<string> = NO_ENCODED_INPUTS,
): InferenceRequest | undefined {
  // Taking `data` out of the document hides it from the depth check of the document's own levels.
  if (limits.maxJsonDepth < DATA_DEPTH) return undefined;
  const spans = findDataSpans(body, minSpanBytes);
  if (spans === undefined) return undefined;
  try {
    const document = parseJsonObject(withoutSpans(body, spans), 'the request body', EXPECTED_REQUEST);
    const rawInputs = document.inputs;
    for (const span of spans) {
      const raw: unknown = Array.isArray(rawInputs) ? rawInputs[span.input] : undefined;
      if (!isJsonObject(raw) || raw.data !== 0) return undefined;
      raw.data = new DataSpanValue(span);
    }
    return decodeRequestDocument(document, body, undefined, limits, false, encodedInputs);
  } catch {
    return undefined;
  }
}

/** Everything after the JSON document is parsed; `binaryStart` is the header length of the binary form. */
function decodeRequestDocument(
  document: JsonObject,
  body: Uint8Array,
  binaryStart: number | undefined,
  limits: Limits,
  exactIntegers = false,
  encodedInputs: ReadonlySet<string> = NO_ENCODED_INPUTS,
): InferenceRequest {
  assertDocumentDepth(document, 'inputs', limits.maxJsonDepth);

  const id = parseId(document.id, limits);
  const parameters = parseParameters(document.parameters, 'the request');
  const binaryOutputByDefault = optionalBoolean(parameters, 'binary_data_output', 'the request') ?? false;
  const rawInputs = document.inputs;
  if (!Array.isArray(rawInputs)) {
    throw new BadRequestError(
      `the request must have an "inputs" array of tensors ({"name", "shape", "datatype", "data"}), got ${show(rawInputs)}`,
    );
  }
  if (rawInputs.length > limits.maxInputs) {
    throw new BadRequestError(
      `the request has ${rawInputs.length} inputs; the limit is ${limits.maxInputs} (limits.maxInputs)`,
    );
  }
  const outputs = parseRequestedOutputs(document.outputs, limits, binaryOutputByDefault);

  // Every descriptor is checked, and the element limit charged, before any tensor is allocated.
  const budget = { remaining: limits.maxElements, maxElements: limits.maxElements };
  const descriptors = rawInputs.map((raw, index) => parseTensorDescriptor(raw, 'input', index, budget));
  assertUniqueNames(
    descriptors.map((d) => d.name),
    'input',
  );

  let offset = binaryStart ?? body.byteLength;
  const inputs: Tensor[] = [];
  const encoded: EncodedInput[] = [];
  for (const descriptor of descriptors) {
    if (descriptor.datatype === 'BYTES' && encodedInputs.has(descriptor.name)) {
      if (descriptor.binaryDataSize !== undefined && binaryStart === undefined) throw noBinaryPart(descriptor);
      encoded.push(decodeEncodedInput(descriptor, body, offset, limits));
      offset += descriptor.binaryDataSize ?? 0;
      continue;
    }
    if (descriptor.data instanceof DataSpanValue) {
      inputs.push(decodeSpanTensor(descriptor, descriptor.data.span, body, limits));
      continue;
    }
    if (descriptor.binaryDataSize === undefined) {
      inputs.push(decodeJsonTensor(descriptor, limits, exactIntegers));
      continue;
    }
    if (binaryStart === undefined) throw noBinaryPart(descriptor);
    inputs.push(takeBinaryTensor(descriptor, body, offset, limits));
    offset += descriptor.binaryDataSize;
  }
  if (offset !== body.byteLength) {
    throw new BadRequestError(
      `${body.byteLength - offset} bytes follow the inference header and the binary inputs it declares; ` +
        'every byte after the header must belong to an input with "binary_data_size"',
    );
  }
  return {
    ...(id === undefined ? {} : { id }),
    inputs,
    ...(outputs === undefined ? {} : { outputs }),
    binaryOutputByDefault,
    parameters,
    ...(encoded.length === 0 ? {} : { encodedInputs: encoded }),
  };
}

const NO_ENCODED_INPUTS: ReadonlySet<string> = new Set();

function noBinaryPart(descriptor: TensorDescriptor): BadRequestError {
  return new BadRequestError(
    `${descriptor.subject}: has "binary_data_size" but the request has no binary part; send the ` +
      `${HEADERS.inferenceHeaderContentLength} header with the byte length of the JSON header`,
  );
}

/** Standard base64 (RFC 4648 section 4), padded: what Python's `base64.b64encode` and `Buffer`'s `base64` write. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * An encoded-image input (see `DecodeOptions.encodedInputs`): binary elements as sent, JSON strings
 * base64-decoded. Bounded by the body limit, not `maxBytesElementSize` (a phone photo is megabytes).
 */
function decodeEncodedInput(
  descriptor: TensorDescriptor,
  body: Uint8Array,
  offset: number,
  limits: Limits,
): EncodedInput {
  const { name, shape, count, subject } = descriptor;
  const size = descriptor.binaryDataSize;
  if (size !== undefined) {
    const remaining = body.byteLength - offset;
    if (size > remaining) {
      throw new BadRequestError(
        `${subject}: "binary_data_size" is ${size} but only ${remaining} bytes of binary data are left in the body`,
      );
    }
    const target = { subject, datatype: 'BYTES' as const, maxBytesElementSize: Number.MAX_SAFE_INTEGER };
    const elements = decodeOpaqueBytesElements(target, body.subarray(offset, offset + size), count);
    if (elements.length !== count) {
      throw new BadRequestError(
        `${subject}: its binary data holds ${elements.length} BYTES elements, but its shape needs ${count}`,
      );
    }
    return { name, shape, elements };
  }
  const unlimited = { ...limits, maxBytesElementSize: limits.maxBodyBytes };
  const texts = (
    descriptor.data instanceof DataSpanValue
      ? decodeSpanTensor(descriptor, descriptor.data.span, body, unlimited)
      : decodeJsonTensor(descriptor, unlimited)
  ).data as string[];
  const elements = texts.map((text, index) => {
    if (!BASE64.test(text)) {
      throw new BadRequestError(
        `${subject}: BYTES element ${index} is not base64: in V2 JSON, an input that takes an image carries each ` +
          'image file base64-encoded (standard alphabet, padded); or send the file itself in the binary tensor ' +
          'extension, or as the whole body with its image Content-Type',
      );
    }
    const bytes = Buffer.from(text, 'base64');
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  });
  return { name, shape, elements };
}

function decodeSpanTensor(descriptor: TensorDescriptor, span: DataSpan, body: Uint8Array, limits: Limits): Tensor {
  const { name, datatype, shape, count, subject } = descriptor;
  const data = createTensorData(datatype, count);
  const target = {
    subject,
    datatype,
    shape,
    count,
    dataDepth: DATA_DEPTH,
    maxJsonDepth: limits.maxJsonDepth,
    maxBytesElementSize: limits.maxBytesElementSize,
  };
  if (!fillFromJsonSpan(target, body, span.start, span.end, data)) throw new FastPathUnavailableError();
  return { name, datatype, shape, data };
}

function parseId(value: unknown, limits: Limits): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new BadRequestError(`"id" must be a string, got ${show(value)}`);
  if (value.length > limits.maxIdLength) {
    throw new BadRequestError(
      `"id" is ${value.length} characters; the limit is ${limits.maxIdLength} (limits.maxIdLength)`,
    );
  }
  return value;
}

function parseRequestedOutputs(
  value: unknown,
  limits: Limits,
  binaryByDefault: boolean,
): RequestedOutput[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) {
    throw new BadRequestError(`"outputs" must be an array of {"name", "parameters"?} objects, got ${show(value)}`);
  }
  if (value.length > limits.maxOutputs) {
    throw new BadRequestError(
      `the request asks for ${value.length} outputs; the limit is ${limits.maxOutputs} (limits.maxOutputs)`,
    );
  }
  const outputs = value.map((raw: unknown, index): RequestedOutput => {
    if (!isJsonObject(raw) || typeof raw.name !== 'string' || raw.name.length === 0) {
      throw new BadRequestError(
        `outputs[${index}] must be an object with a non-empty "name" string, got ` +
          `${isJsonObject(raw) ? `"name" ${show(raw.name)}` : show(raw)}`,
      );
    }
    const where = `requested output ${quoteName(raw.name)}`;
    const parameters = parseParameters(raw.parameters, where);
    const binary = optionalBoolean(parameters, 'binary_data', where);
    if (parameters.shared_memory_region !== undefined) {
      throw new BadRequestError(
        `${where} asks for shared memory ("shared_memory_region"), which a serverless endpoint cannot share with ` +
          'its clients; leave it out to receive the output in the response',
      );
    }
    const classCount = parameters[CLASSIFICATION_PARAMETER];
    if (
      classCount !== undefined &&
      !(typeof classCount === 'number' && Number.isSafeInteger(classCount) && classCount >= 0)
    ) {
      throw new BadRequestError(
        `${where} parameter "${CLASSIFICATION_PARAMETER}" must be a non-negative integer (the number of top classes ` +
          `to return), got ${show(classCount)}`,
      );
    }
    return {
      name: raw.name,
      binary: binary ?? binaryByDefault,
      ...(typeof classCount === 'number' && classCount > 0 ? { classCount } : {}),
    };
  });
  assertUniqueNames(
    outputs.map((o) => o.name),
    'requested output',
  );
  return outputs;
}

function decodeRawRequest(body: Uint8Array, options: DecodeOptions): InferenceRequest {
  const specs = options.modelInputs;
  const [spec] = specs ?? [];
  if (spec === undefined || specs?.length !== 1) {
    const has =
      specs === undefined ? "the model's inputs are not known here" : `this model has ${plural(specs.length, 'input')}`;
    throw new BadRequestError(
      `the raw binary form (${HEADERS.inferenceHeaderContentLength}: 0, the whole body is one input's bytes) needs ` +
        `a model with exactly one input, and ${has}; send a JSON inference header naming each input instead`,
    );
  }
  const { limits } = options;
  const subject = `input ${quoteName(spec.name)}`;
  const { datatype } = spec;
  let count: number;
  let data: TensorData | undefined;
  if (isFixedSize(datatype)) {
    const width = BYTES_PER_ELEMENT[datatype];
    if (body.byteLength % width !== 0) {
      throw new BadRequestError(
        `${subject}: the raw body is ${body.byteLength} bytes, not a whole number of ${datatype} elements ` +
          `(${width} bytes each)`,
      );
    }
    count = body.byteLength / width;
  } else {
    data = decodeBytesElements(
      { subject, datatype, maxBytesElementSize: limits.maxBytesElementSize },
      body,
      limits.maxElements,
    );
    count = data.length;
  }
  if (count > limits.maxElements) {
    throw new PayloadTooLargeError(
      `${subject}: the raw body holds ${count} elements; the limit is ${limits.maxElements} (limits.maxElements)`,
    );
  }
  const shape = inferShape(spec, count, subject);
  data ??= decodeBinaryTensorData({ subject, datatype, maxBytesElementSize: limits.maxBytesElementSize }, body, count);
  return { inputs: [{ name: spec.name, datatype, shape, data }], binaryOutputByDefault: true, parameters: {} };
}

/** The concrete shape of a raw body of `count` elements: at most one dynamic (-1) dimension can be inferred. */
function inferShape(spec: TensorSpec, count: number, subject: string): number[] {
  const declared = formatShape(spec.shape);
  const useHeader = `send the JSON header form (${HEADERS.inferenceHeaderContentLength}: N) with the shape instead`;
  const dynamic = spec.shape.filter((dim) => dim < 0).length;
  const known = spec.shape.reduce((product, dim) => (dim < 0 ? product : product * dim), 1);
  if (dynamic === 0) {
    if (known !== count) {
      throw new BadRequestError(
        `${subject}: the model declares shape ${declared} (${plural(known, 'element')}), but the raw body holds ` +
          `${plural(count, `${spec.datatype} element`)}`,
      );
    }
    return [...spec.shape];
  }
  if (dynamic > 1) {
    throw new BadRequestError(
      `${subject}: the model declares shape ${declared} with ${dynamic} dynamic dimensions, so a raw body cannot ` +
        `say its shape; ${useHeader}`,
    );
  }
  if (known === 0 || count % known !== 0) {
    throw new BadRequestError(
      `${subject}: ${plural(count, `${spec.datatype} element`)} in the raw body do not fill shape ${declared} ` +
        `(a multiple of ${known} is needed); ${useHeader}`,
    );
  }
  return spec.shape.map((dim) => (dim < 0 ? count / known : dim));
}

/** A request or response on the wire: its body and the headers that describe it. */
export type EncodedRequest = EncodedMessage;

/** How {@link encodeInferenceRequest} lays out a request. */
export interface EncodeRequestOptions {
  /**
   * Send every input in the binary tensor extension instead of JSON `data`.
   * @default false
   */
  readonly binary?: boolean;
  /**
   * Outputs to ask for: a name (the server's default form), or `{name, binary}` to set `binary_data`.
   * @default all of the model's outputs
   */
  readonly outputs?: readonly (string | RequestedOutput)[];
  /** Request-level `binary_data_output`: the form of outputs not listed. Omitted when undefined. */
  readonly binaryOutput?: boolean;
  readonly id?: string;
  /** Extra request-level parameters. */
  readonly parameters?: Readonly<Record<string, unknown>>;
  /**
   * JSON `data` nested by shape instead of flat (ignored for binary inputs).
   * @default false
   */
  readonly nested?: boolean;
}

const jsonEncoder = new TextEncoder();

/**
 * Encodes a client request: V2 JSON, or (with `binary: true`) the binary tensor extension with every input's bytes
 * after the JSON header. Throws an `Error` for a tensor whose data does not fit its datatype and shape.
 * @example
 * const { body, headers } = encodeInferenceRequest(
 *   [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: new Float32Array([1, 2]) }],
 *   { binary: true, outputs: [{ name: 'y', binary: true }] },
 * );
 */
export function encodeInferenceRequest(tensors: readonly Tensor[], options: EncodeRequestOptions = {}): EncodedRequest {
  const chunks: Uint8Array[] = [];
  const inputs = tensors.map((tensor): JsonObject => {
    assertTensor(tensor);
    const { name, shape, datatype } = tensor;
    if (options.binary === true) {
      const bytes = encodeBinaryTensorData(datatype, tensor.data);
      chunks.push(bytes);
      return { name, shape, datatype, parameters: { binary_data_size: bytes.byteLength } };
    }
    const flat = toJsonData(datatype, tensor.data);
    return { name, shape, datatype, data: options.nested === true ? nestJsonData(flat, shape) : flat };
  });
  const parameters: JsonObject = { ...options.parameters };
  if (options.binaryOutput !== undefined) parameters.binary_data_output = options.binaryOutput;
  const document: JsonObject = {
    ...(options.id === undefined ? {} : { id: options.id }),
    ...(Object.keys(parameters).length === 0 ? {} : { parameters }),
    inputs,
  };
  if (options.outputs !== undefined) {
    document.outputs = options.outputs.map((output) =>
      typeof output === 'string'
        ? { name: output }
        : {
            name: output.name,
            parameters: {
              binary_data: output.binary,
              ...(output.classCount === undefined ? {} : { [CLASSIFICATION_PARAMETER]: output.classCount }),
            },
          },
    );
  }
  const header = jsonEncoder.encode(stringifyJson(document));
  if (options.binary !== true) {
    return { body: header, headers: { [HEADERS.contentType]: MEDIA_TYPES.json } };
  }
  return {
    body: concatBytes([header, ...chunks]),
    headers: {
      [HEADERS.contentType]: MEDIA_TYPES.octetStream,
      [HEADERS.inferenceHeaderContentLength]: String(header.byteLength),
    },
  };
}

/**
 * Encodes the raw binary form: the body is `tensor`'s bytes alone, with `Inference-Header-Content-Length: 0`; the
 * server takes the name and shape from the model (one input, at most one dynamic dimension).
 */
export function encodeRawInferenceRequest(tensor: Pick<Tensor, 'datatype' | 'data'>): EncodedRequest {
  const bytes = encodeBinaryTensorData(tensor.datatype, tensor.data);
  return {
    body: bytes.slice(),
    headers: { [HEADERS.contentType]: MEDIA_TYPES.octetStream, [HEADERS.inferenceHeaderContentLength]: '0' },
  };
}
