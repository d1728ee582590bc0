/**
 * Codec costs on the reference tensor, a 1x3x224x224 FP32 image: decoding its V2 JSON body against
 * `JSON.parse` of the same body alone, and against its binary form; and the sizes of an OCR batch on the wire.
 */
import { DEFAULT_LIMITS } from '../functions/core/catalog.js';
import { decodeInferenceRequest, elementCount, encodeInferenceRequest } from '../functions/core/codec/index.js';
import { createPrng, uniformFloat32 } from '../tools/onnx/prng.js';
import type { Tensor } from '../functions/core/types.js';
import { medians, timeAlternating } from './stats.js';

/** What {@link measureCodec} reports. */
export interface CodecResults {
  readonly image_json_bytes: number;
  readonly image_binary_bytes: number;
  readonly json_parse_ms: number;
  readonly json_decode_ms: number;
  /** The standard path (JSON.parse, then the fillers), for comparison with the fast path. */
  readonly json_decode_standard_ms: number;
  readonly binary_decode_ms: number;
  readonly json_decode_over_parse: number;
  readonly binary_speedup_vs_json: number;
  readonly ocr_batch_json_bytes: number;
  readonly ocr_batch_binary_base64_bytes: number;
}

/** Random floats as a client gets them from float32 pixels: printed with up to 17 significant digits. */
function imageTensor(shape: number[], seed: number): Tensor {
  const count = elementCount(shape);
  return { name: 'x', datatype: 'FP32', shape, data: uniformFloat32(createPrng(seed), count, 2.5) };
}

/**
 * Times V2 JSON decoding of the reference image against `JSON.parse` alone and against its binary form, after
 * checking that both decodings agree; also sizes an OCR batch in both forms.
 */
export async function measureCodec(): Promise<CodecResults> {
  const image = imageTensor([1, 3, 224, 224], 3);
  const json = encodeInferenceRequest([image]);
  const binary = encodeInferenceRequest([image], { binary: true });
  const text = Buffer.from(json.body).toString('utf8');
  const limits = DEFAULT_LIMITS;
  const jsonOptions = { contentType: 'application/json', limits };
  const binaryOptions = {
    contentType: 'application/octet-stream',
    inferenceHeaderContentLength: binary.headers['Inference-Header-Content-Length'],
    limits,
  };
  // Guard: all three decode the same tensor before anything is timed.
  const decoded = decodeInferenceRequest(json.body, jsonOptions).inputs[0]?.data;
  const reference = decodeInferenceRequest(binary.body, binaryOptions).inputs[0]?.data;
  if (
    !(decoded instanceof Float32Array) ||
    !(reference instanceof Float32Array) ||
    Buffer.compare(Buffer.from(decoded.buffer), Buffer.from(reference.buffer)) !== 0
  ) {
    throw new Error('the JSON and binary decodings of the benchmark image differ');
  }

  const samples = await timeAlternating(
    {
      parse: () => JSON.parse(text),
      decode: () => decodeInferenceRequest(json.body, jsonOptions),
      standard: () => decodeInferenceRequest(json.body, { ...jsonOptions, jsonFastPath: false }),
    },
    { warmup: 5, blocks: 10, perBlock: 4 },
  );
  // Binary decoding is 100x faster: its own loop, long enough for the allocator to reach its steady state.
  const binarySamples = await timeAlternating(
    { binary: () => decodeInferenceRequest(binary.body, binaryOptions) },
    { warmup: 500, blocks: 4, perBlock: 250 },
  );
  const m = { ...medians(samples), ...medians(binarySamples) };

  const ocr = imageTensor([6, 3, 32, 960], 5);
  const ocrJson = encodeInferenceRequest([ocr]);
  const ocrBinary = encodeInferenceRequest([ocr], { binary: true });
  return {
    image_json_bytes: json.body.byteLength,
    image_binary_bytes: binary.body.byteLength,
    json_parse_ms: m.parse,
    json_decode_ms: m.decode,
    json_decode_standard_ms: m.standard,
    binary_decode_ms: m.binary,
    json_decode_over_parse: m.decode / m.parse,
    binary_speedup_vs_json: m.decode / m.binary,
    ocr_batch_json_bytes: ocrJson.body.byteLength,
    ocr_batch_binary_base64_bytes: Math.ceil(ocrBinary.body.byteLength / 3) * 4,
  };
}
