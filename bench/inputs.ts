/**
 * What the benchmarks send: input tensors made from a model's declared inputs, the same request in each wire
 * form, and the API Gateway events that carry them.
 */
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { writeFileSync } from 'node:fs';
import { ORT_TYPE_BY_DATATYPE } from '../functions/adapters/onnxruntime-session.js';
import { restApiEvent } from '../tools/lambda-events.js';
import { createTensorData, elementCount, encodeInferenceRequest } from '../functions/core/codec/index.js';
import { createPrng } from '../tools/onnx/prng.js';
import type { Tensor, TensorSpec } from '../functions/core/types.js';

/** Deterministic data for one input: dynamic dimensions become 1; values are small and valid for the type. */
export function inputTensor(spec: TensorSpec, seed = 7): Tensor {
  const shape = spec.shape.map((dim) => (dim < 0 ? 1 : dim));
  const count = elementCount(shape);
  const data = createTensorData(spec.datatype, count);
  const random = createPrng(seed);
  for (let i = 0; i < count; i++) {
    const r = random();
    switch (spec.datatype) {
      case 'FP32':
      case 'FP64':
        (data as Float32Array | Float64Array)[i] = r * 2 - 1;
        break;
      case 'INT64':
      case 'UINT64':
        (data as BigInt64Array)[i] = BigInt(Math.floor(r * 100));
        break;
      case 'BYTES':
        (data as string[])[i] = `text ${Math.floor(r * 100)}`;
        break;
      case 'BOOL':
        (data as Uint8Array)[i] = r < 0.5 ? 0 : 1;
        break;
      case 'FP16':
        (data as Uint16Array)[i] = 0x3c00; // 1.0
        break;
      default:
        (data as Uint8Array)[i] = Math.floor(r * 100);
    }
  }
  return { name: spec.name, datatype: spec.datatype, shape, data };
}

/** Inputs for every declared input of a model. */
export function modelInputs(specs: readonly TensorSpec[]): Tensor[] {
  return specs.map((spec, index) => inputTensor(spec, 7 + index));
}

/** A request in the binary tensor extension (binary outputs too), as a client library sends it. */
export function binaryRequest(tensors: readonly Tensor[]): { body: Uint8Array; headers: Record<string, string> } {
  const { body, headers } = encodeInferenceRequest(tensors, { binary: true, binaryOutput: true });
  return { body, headers: { ...headers } };
}

/** A V2 JSON request. */
export function jsonRequest(tensors: readonly Tensor[]): { body: Uint8Array; headers: Record<string, string> } {
  const { body, headers } = encodeInferenceRequest(tensors);
  return { body, headers: { ...headers } };
}

/**
 * The API Gateway REST event of `POST /v2/models/<model>/infer`, body base64-encoded as API Gateway delivers it
 * under the `*\/*` binary media type the stack declares.
 */
export function inferEvent(
  model: string,
  request: { body: Uint8Array; headers: Record<string, string> },
): APIGatewayProxyEvent {
  const headers: Record<string, string> = { host: 'abc123.execute-api.us-east-1.amazonaws.com', 'x-api-key': 'bench' };
  for (const [name, value] of Object.entries(request.headers)) headers[name.toLowerCase()] = value;
  return restApiEvent({
    method: 'POST',
    path: `/v2/models/${model}/infer`,
    headers,
    body: request.body,
    requestId: 'bench',
  });
}

/** One input as the child processes read it: onnxruntime's type, dims, and base64 bytes (or strings). */
export interface InputJson {
  readonly name: string;
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: string | readonly string[];
}

/** Writes `tensors` for the benchmark's child processes (the floor, the onnxruntime-web peer). */
export function writeInputsFile(file: string, tensors: readonly Tensor[]): void {
  const inputs: InputJson[] = tensors.map((t) => ({
    name: t.name,
    type: ORT_TYPE_BY_DATATYPE[t.datatype],
    dims: t.shape,
    data: Array.isArray(t.data)
      ? t.data
      : Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('base64'),
  }));
  writeFileSync(file, JSON.stringify(inputs));
}
