/**
 * Reads the serialized `onnx.TensorProto` files of the ONNX backend test data (`input_N.pb`, `output_N.pb`) into
 * the core's tensors. Both storages are handled: `raw_data` (little-endian bytes) and the typed repeated fields.
 */
import { TYPED_ARRAY_BY_DATATYPE, createTensorData, elementCount } from '../functions/core/codec/index.js';
import {
  datatypeOfElementType,
  int64ToNumber,
  onnx,
  type Int64Like,
  type OnnxTypes,
} from '../functions/core/onnx/proto.js';
import type { Datatype, Tensor, TensorData } from '../functions/core/types.js';

/** A TensorProto whose element type KServe V2 has no datatype for (complex, bfloat16, float8...). */
export class UnsupportedTensorProtoError extends Error {
  public constructor(message: string) {
    super(message);
    this.name = 'UnsupportedTensorProtoError';
  }
}

/**
 * Decodes one serialized TensorProto. `name` defaults to the proto's own name.
 * @throws UnsupportedTensorProtoError for element types V2 cannot carry.
 */
export function decodeTensorProto(bytes: Uint8Array, name?: string): Tensor {
  const proto = onnx.TensorProto.decode(bytes);
  const datatype = datatypeOfElementType(proto.dataType);
  if (datatype === undefined) {
    throw new UnsupportedTensorProtoError(
      `TensorProto "${proto.name}" has element type ${proto.dataType}, which V2 cannot carry`,
    );
  }
  const shape = proto.dims.map((d) => int64ToNumber(d as Int64Like));
  return { name: name ?? proto.name, datatype, shape, data: elementsOf(proto, datatype, elementCount(shape)) };
}

function elementsOf(proto: OnnxTypes.TensorProto, datatype: Datatype, count: number): TensorData {
  if (datatype === 'BYTES') {
    const decoder = new TextDecoder();
    return proto.stringData.map((s) => decoder.decode(s));
  }
  if (proto.rawData.byteLength > 0) {
    // Copy: raw_data is a view into the file buffer at an arbitrary (unaligned) offset.
    const aligned = Uint8Array.from(proto.rawData).buffer;
    const View = TYPED_ARRAY_BY_DATATYPE[datatype];
    return new View(aligned, 0, count);
  }
  const data = createTensorData(datatype, count);
  // Which repeated field holds which type is fixed by onnx.proto.
  const source: ArrayLike<number | Int64Like> =
    datatype === 'FP32'
      ? proto.floatData
      : datatype === 'FP64'
        ? proto.doubleData
        : datatype === 'INT64'
          ? proto.int64Data
          : datatype === 'UINT32' || datatype === 'UINT64'
            ? proto.uint64Data
            : proto.int32Data;
  for (let i = 0; i < count; i += 1) {
    const value = source[i] ?? 0;
    if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
      (data as BigInt64Array)[i] = BigInt(typeof value === 'number' ? value : value.toString());
    } else {
      (data as Float64Array)[i] = typeof value === 'number' ? value : value.toNumber();
    }
  }
  return data;
}
