/**
 * The KServe V2 / Open Inference Protocol tensor codec: V2 JSON and Triton's binary tensor extension, requests and
 * responses, server and client side. Pure TypeScript; no I/O.
 */
export {
  BYTES_PER_ELEMENT,
  FP16_MAX,
  FP32_MAX,
  INT64_RANGE,
  INTEGER_RANGE,
  TYPED_ARRAY_BY_DATATYPE,
  bytesPerElement,
  createTensorData,
  elementCount,
  float16BitsToFloat32,
  float32ToFloat16Bits,
  isDatatype,
  isFixedSize,
  isTensorDataOf,
  smallestShape,
} from './datatypes.js';
export type { FixedSizeDatatype } from './datatypes.js';
export { decodeBinaryTensorData, encodeBinaryTensorData, encodeBytesElements } from './binary-data.js';
export { NON_FINITE_STRINGS, toJsonData } from './json-data.js';
export { InvalidInferenceResponseError } from './errors.js';
export type { EncodedMessage } from './message.js';
export {
  CLASSIFICATION_PARAMETER,
  decodeInferenceRequest,
  encodeInferenceRequest,
  encodeRawInferenceRequest,
} from './request.js';
export type { DecodeOptions, EncodeRequestOptions, EncodedRequest } from './request.js';
export {
  decodeInferenceResponse,
  encodeInferenceResponse,
  encodeInferenceResponseParts,
  minimumResponseBytes,
} from './response.js';
export type { EncodedResponse, EncodedResponseParts } from './response.js';
export { ACCEPTED_REQUEST_FORMS, HEADERS, MEDIA_TYPES, headerValue, parseMediaType, requestForm } from './wire.js';
export type { MediaType, RequestForm } from './wire.js';
