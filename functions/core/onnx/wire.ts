/**
 * Protobuf wire-level access to ONNX files: list a message's fields as byte ranges, and rebuild a message with some
 * fields replaced. Edits made this way keep every byte the edit does not touch, including fields that onnx-proto's
 * schema (IR version 8) does not know, which a decode/encode round trip through protobufjs would silently drop.
 */
import protobuf from 'protobufjs/minimal.js';
import { concatBytes } from '../codec/message.js';

/** Protobuf wire type of embedded messages, strings and bytes. */
export const LENGTH_DELIMITED = 2;

/** One field occurrence of a serialized message. */
export interface WireField {
  readonly number: number;
  readonly wireType: number;
  /** Offset of the field's tag. */
  readonly start: number;
  /** Offset just past the field. */
  readonly end: number;
  /** The payload of a length-delimited field (without tag and length); empty for other wire types. */
  readonly value: Uint8Array;
}

/**
 * The top-level fields of a serialized message, in file order. Throws `RangeError` or `Error` when the bytes are
 * not a well-formed protobuf message (truncated, field number 0, invalid wire type).
 */
export function readFields(bytes: Uint8Array): WireField[] {
  const reader = protobuf.Reader.create(bytes);
  const fields: WireField[] = [];
  while (reader.pos < reader.len) {
    const start = reader.pos;
    const tag = reader.uint32();
    const number = tag >>> 3;
    const wireType = tag & 7;
    if (number === 0) throw new Error(`field number 0 at byte ${start}`);
    let value = bytes.subarray(0, 0);
    if (wireType === LENGTH_DELIMITED) {
      const length = reader.uint32();
      const valueStart = reader.pos;
      reader.skip(length);
      value = bytes.subarray(valueStart, reader.pos);
    } else {
      reader.skipType(wireType);
    }
    fields.push({ number, wireType, start, end: reader.pos, value });
  }
  return fields;
}

/**
 * Visits the top-level fields of a serialized message, in file order, without making an object per field: for
 * payloads where a repeated scalar may occur millions of times (an unpacked `ints` attribute). `valueStart` is the
 * payload's offset for a length-delimited field, the value's otherwise. Throws as {@link readFields} does.
 */
export function scanFields(
  bytes: Uint8Array,
  visit: (number: number, wireType: number, start: number, valueStart: number, end: number) => void,
): void {
  const reader = protobuf.Reader.create(bytes);
  while (reader.pos < reader.len) {
    const start = reader.pos;
    const tag = reader.uint32();
    const number = tag >>> 3;
    const wireType = tag & 7;
    if (number === 0) throw new Error(`field number 0 at byte ${start}`);
    let valueStart = reader.pos;
    if (wireType === LENGTH_DELIMITED) {
      const length = reader.uint32();
      valueStart = reader.pos;
      reader.skip(length);
    } else {
      reader.skipType(wireType);
    }
    visit(number, wireType, start, valueStart, reader.pos);
  }
}

/**
 * Rebuilds a message from its fields: `replace` maps a field (by identity) to the new payload of the same
 * length-delimited field number, to several payloads that take its place in order (e.g. nodes inserted before a
 * node, which keeps a graph's nodes in topological order), or to `null` to drop it; `append` adds length-delimited
 * fields at the end. Untouched fields are copied byte for byte.
 */
export function rebuildMessage(
  bytes: Uint8Array,
  fields: readonly WireField[],
  replace: ReadonlyMap<WireField, Uint8Array | readonly Uint8Array[] | null>,
  append: readonly { readonly number: number; readonly value: Uint8Array }[] = [],
): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const field of fields) {
    const replacement = replace.get(field);
    if (replacement === undefined) parts.push(bytes.subarray(field.start, field.end));
    else if (replacement instanceof Uint8Array) parts.push(lengthDelimitedField(field.number, replacement));
    else if (replacement !== null)
      for (const value of replacement) parts.push(lengthDelimitedField(field.number, value));
  }
  for (const field of append) parts.push(lengthDelimitedField(field.number, field.value));
  return concatBytes(parts);
}

/** A length-delimited field `number` holding `value`, serialized (tag, length, payload). */
export function lengthDelimitedField(number: number, value: Uint8Array): Uint8Array {
  const header = protobuf.Writer.create()
    .uint32(((number << 3) | LENGTH_DELIMITED) >>> 0)
    .uint32(value.length)
    .finish();
  return concatBytes([header, value]);
}
