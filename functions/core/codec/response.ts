/**
 * Inference responses on the wire: encoding what the server answers, and decoding it on the client side.
 */
import type { Limits } from '../catalog.js';
import { DEFAULT_LIMITS } from '../catalog.js';
import { BadRequestError, InferenceServerError } from '../errors.js';
import type { InferenceRequest, InferenceResponse, Tensor } from '../types.js';
import { encodeBinaryTensorData, takeBinaryTensor } from './binary-data.js';
import { BYTES_PER_ELEMENT } from './datatypes.js';
import { show } from './describe.js';
import { assertDocumentDepth, parseJsonObject, parseTensorDescriptor } from './document.js';
import type { JsonObject } from './document.js';
import { InvalidInferenceResponseError } from './errors.js';
import { decodeJsonTensor, toJsonData } from './json-data.js';
import { InexactJsonIntegerError, stringifyJson } from './json-text.js';
import { assertTensor, concatBytes, type EncodedMessage } from './message.js';
import { HEADERS, MEDIA_TYPES, headerValue } from './wire.js';

/** An encoded response: body plus `Content-Type` (and `Inference-Header-Content-Length` when binary). */
export type EncodedResponse = EncodedMessage;

const jsonEncoder = new TextEncoder();

/**
 * Encodes a response for the request it answers. Outputs the request asked for with `binary_data: true` (or, for
 * outputs it did not list, when `binary_data_output` was set) go after the JSON header in the binary tensor
 * extension, with `parameters.binary_data_size`; the rest carry flat JSON `data`. `response.outputParameters[name]`
 * is merged into that output's `parameters`. With no binary output the body is plain `application/json`.
 * @example
 * const { body, headers } = encodeInferenceResponse(response, request);
 */
export function encodeInferenceResponse(
  response: InferenceResponse,
  request: Pick<InferenceRequest, 'outputs' | 'binaryOutputByDefault'>,
): EncodedResponse {
  const { parts, headers } = encodeInferenceResponseParts(response, request);
  return { body: parts.length === 1 ? parts[0]! : concatBytes(parts), headers };
}

/** An encoded response as the pieces its body is made of, in order. */
export interface EncodedResponseParts {
  /** The JSON document (the whole body, or the binary extension's header), then each binary output's bytes. */
  readonly parts: readonly Uint8Array[];
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * {@link encodeInferenceResponse} without joining the body: a stream writes the header, then each binary output's
 * bytes (views of the output tensors, not copies), so a large answer is never held twice.
 */
export function encodeInferenceResponseParts(
  response: InferenceResponse,
  request: Pick<InferenceRequest, 'outputs' | 'binaryOutputByDefault'>,
): EncodedResponseParts {
  const binaryByName = new Map(request.outputs?.map((output) => [output.name, output.binary]));
  const chunks: Uint8Array[] = [];
  const outputs = response.outputs.map((tensor): JsonObject => {
    assertTensor(tensor);
    const { name, datatype, shape } = tensor;
    const extra =
      response.outputParameters !== undefined && Object.hasOwn(response.outputParameters, name)
        ? response.outputParameters[name]
        : undefined;
    if (binaryByName.get(name) ?? request.binaryOutputByDefault) {
      const bytes = encodeBinaryTensorData(datatype, tensor.data);
      chunks.push(bytes);
      return { name, datatype, shape, parameters: { ...extra, binary_data_size: bytes.byteLength } };
    }
    return {
      name,
      datatype,
      shape,
      ...(extra === undefined ? {} : { parameters: { ...extra } }),
      data: toJsonData(datatype, tensor.data),
    };
  });
  const document: JsonObject = {
    model_name: response.modelName,
    model_version: response.modelVersion,
    ...(response.id === undefined ? {} : { id: response.id }),
    ...(response.parameters === undefined ? {} : { parameters: response.parameters as JsonObject }),
    outputs,
  };
  // One JSON.stringify over the whole document: V8's serializer is the fastest way to print the numbers (-0 aside).
  const header = jsonEncoder.encode(stringifyJson(document));
  if (chunks.length === 0) return { parts: [header], headers: { [HEADERS.contentType]: MEDIA_TYPES.json } };
  return {
    parts: [header, ...chunks],
    headers: {
      [HEADERS.contentType]: MEDIA_TYPES.octetStream,
      [HEADERS.inferenceHeaderContentLength]: String(header.byteLength),
    },
  };
}

/**
 * The fewest bytes {@link encodeInferenceResponse} could produce for `response`, counted from each output's element
 * count before any text is built: exact for binary outputs, and for JSON a floor (one character per number and a
 * comma, `true` or `""` per BOOL or BYTES element). A caller with a size limit refuses from this first, so that a
 * tiny request asking for a huge output never makes the encoder build (or V8 fail to build) a response that would
 * be refused anyway. `binary` tells whether the body would be the binary extension.
 */
export function minimumResponseBytes(
  response: Pick<InferenceResponse, 'outputs'>,
  request: Pick<InferenceRequest, 'outputs' | 'binaryOutputByDefault'>,
): { readonly bytes: number; readonly binary: boolean } {
  const binaryByName = new Map(request.outputs?.map((output) => [output.name, output.binary]));
  let bytes = 0;
  let binary = false;
  for (const { name, datatype, data } of response.outputs) {
    const count = data.length;
    if (binaryByName.get(name) ?? request.binaryOutputByDefault) {
      binary = true;
      bytes += datatype === 'BYTES' ? binaryBytesSize(data as readonly string[]) : count * BYTES_PER_ELEMENT[datatype];
    } else {
      const perElement = datatype === 'BOOL' ? 5 : datatype === 'BYTES' ? 3 : 2;
      bytes += Math.max(0, count * perElement - 1);
    }
  }
  return { bytes, binary };
}

function binaryBytesSize(elements: readonly string[]): number {
  // Four length bytes each, plus at least one UTF-8 byte per UTF-16 unit of the text.
  let bytes = 0;
  for (const element of elements) bytes += 4 + element.length;
  return bytes;
}

/** Limits for decoding responses: only the structural ones apply; a client takes what the server sends. */
const RESPONSE_LIMITS: Limits = {
  ...DEFAULT_LIMITS,
  maxBodyBytes: Number.MAX_SAFE_INTEGER,
  maxElements: Number.MAX_SAFE_INTEGER,
  maxBytesElementSize: Number.MAX_SAFE_INTEGER,
  maxOutputs: Number.MAX_SAFE_INTEGER,
};

/**
 * Decodes a V2 inference response (JSON, or the binary tensor extension when `Inference-Header-Content-Length` is
 * among `headers`, matched case-insensitively). Fields of an output's `parameters` other than `binary_data_size`
 * come back in `outputParameters`.
 * @throws InvalidInferenceResponseError when the body is not a V2 response; an `{"error": ...}` body's message is
 *   included.
 */
export function decodeInferenceResponse(
  body: Uint8Array,
  headers: Readonly<Record<string, string | undefined>>,
): InferenceResponse {
  try {
    try {
      return decodeResponseOrThrow(body, headers, false);
    } catch (error) {
      // A 64-bit integer past 2^53 printed as a number (as Triton prints them): read the text again, exactly.
      if (error instanceof InexactJsonIntegerError) return decodeResponseOrThrow(body, headers, true);
      throw error;
    }
  } catch (error) {
    if (error instanceof InferenceServerError) {
      throw new InvalidInferenceResponseError(`invalid inference response: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

function decodeResponseOrThrow(
  body: Uint8Array,
  headers: Readonly<Record<string, string | undefined>>,
  lossless: boolean,
): InferenceResponse {
  const limits = RESPONSE_LIMITS;
  const lengthHeader = headerValue(headers, HEADERS.inferenceHeaderContentLength);
  let headerLength = body.byteLength;
  if (lengthHeader !== undefined) {
    headerLength = /^[0-9]+$/.test(lengthHeader.trim()) ? Number(lengthHeader.trim()) : NaN;
    if (!(headerLength <= body.byteLength)) {
      throw new BadRequestError(
        `${HEADERS.inferenceHeaderContentLength} is ${show(lengthHeader)}, not a length within the ${body.byteLength}-byte body`,
      );
    }
  }
  const what = lengthHeader === undefined ? 'the response body' : 'the response header';
  const document = parseJsonObject(body.subarray(0, headerLength), what, 'with an "outputs" array', lossless);
  if (typeof document.error === 'string' && document.outputs === undefined) {
    throw new InvalidInferenceResponseError(`the server answered with an error: ${document.error}`);
  }
  assertDocumentDepth(document, 'outputs', limits.maxJsonDepth);
  const { model_name: modelName, model_version: modelVersion, id, outputs: rawOutputs } = document;
  if (typeof modelName !== 'string') throw new BadRequestError(`"model_name" must be a string, got ${show(modelName)}`);
  if (typeof modelVersion !== 'string' && typeof modelVersion !== 'number') {
    throw new BadRequestError(`"model_version" must be a string, got ${show(modelVersion)}`);
  }
  if (id !== undefined && typeof id !== 'string') throw new BadRequestError(`"id" must be a string, got ${show(id)}`);
  if (!Array.isArray(rawOutputs)) throw new BadRequestError(`"outputs" must be an array, got ${show(rawOutputs)}`);

  const budget = { remaining: limits.maxElements, maxElements: limits.maxElements };
  const descriptors = rawOutputs.map((raw, index) => parseTensorDescriptor(raw, 'output', index, budget));
  const outputs: Tensor[] = [];
  const outputParameters: Record<string, Record<string, unknown>> = {};
  let offset = headerLength;
  for (const descriptor of descriptors) {
    const { name, count, binaryDataSize } = descriptor;
    const { binary_data_size: _size, ...extra } = descriptor.parameters;
    if (Object.keys(extra).length > 0) outputParameters[name] = extra;
    if (binaryDataSize !== undefined) {
      outputs.push(takeBinaryTensor(descriptor, body, offset, limits));
      offset += binaryDataSize;
      continue;
    }
    // No element limit applies here, so the body bounds the allocation: every JSON element takes at least a byte.
    if (count > headerLength) {
      throw new BadRequestError(
        `${descriptor.subject}: shape needs ${count} elements, more than the JSON body could hold`,
      );
    }
    outputs.push(decodeJsonTensor(descriptor, limits, lossless));
  }
  if (offset !== body.byteLength) {
    throw new BadRequestError(`${body.byteLength - offset} bytes after the binary outputs belong to no output`);
  }
  return {
    modelName,
    modelVersion: String(modelVersion),
    ...(id === undefined ? {} : { id }),
    outputs,
    ...(Object.keys(outputParameters).length === 0 ? {} : { outputParameters }),
  };
}
