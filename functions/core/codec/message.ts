/** Pieces shared by the request and response encoders. */
import type { Tensor } from '../types.js';
import { elementCount, isDatatype, isTensorDataOf } from './datatypes.js';
import { formatShape, quoteName } from './describe.js';

/** A message on the wire: its body and the headers that describe it. */
export interface EncodedMessage {
  readonly body: Uint8Array;
  readonly headers: Readonly<Record<string, string>>;
}

/** One buffer holding `parts` back to back: each part is copied exactly once. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const part of parts) total += part.byteLength;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

/**
 * Throws a plain `Error` when a tensor we are about to encode is inconsistent: that is a bug in the caller (the
 * server or a client program), not something a request can cause, so it must not look like a 4xx.
 */
export function assertTensor(tensor: Tensor): void {
  const subject = `tensor ${quoteName(tensor.name)}`;
  if (!isDatatype(tensor.datatype)) throw new Error(`${subject}: unknown datatype ${String(tensor.datatype)}`);
  if (!tensor.shape.every((dim) => Number.isSafeInteger(dim) && dim >= 0)) {
    throw new Error(`${subject}: shape ${formatShape(tensor.shape)} must hold non-negative integers`);
  }
  if (!isTensorDataOf(tensor.datatype, tensor.data)) {
    throw new Error(`${subject}: its data is not the storage of a ${tensor.datatype} tensor`);
  }
  const count = elementCount(tensor.shape);
  if (tensor.data.length !== count) {
    throw new Error(
      `${subject}: shape ${formatShape(tensor.shape)} needs ${count} elements, its data has ${tensor.data.length}`,
    );
  }
}
