/**
 * Tensor bytes in Triton's binary tensor extension, both directions. Fixed-size datatypes are little-endian element
 * arrays (BOOL one byte, 0 or 1); BYTES is a sequence of elements, each a 4-byte little-endian length followed by
 * that many bytes. This server holds BYTES as UTF-8 strings (onnxruntime's string tensors), so BYTES elements must
 * be valid UTF-8 without NUL (onnxruntime-node passes them as C strings, which a NUL would cut).
 */
import { BadRequestError, PayloadTooLargeError } from '../errors.js';
import type { Limits } from '../catalog.js';
import type { Datatype, Tensor, TensorData } from '../types.js';
import { BYTES_PER_ELEMENT, createTensorData, isFixedSize } from './datatypes.js';
import type { FixedSizeDatatype } from './datatypes.js';
import { formatShape } from './describe.js';
import type { TensorDescriptor } from './document.js';
import { nulReason, utf8Length } from './json-data.js';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * A tensor's elements as binary-extension bytes. Fixed-size data is returned as a view over the typed array's own
 * memory (no copy); BYTES are serialised into a new buffer.
 */
export function encodeBinaryTensorData(datatype: Datatype, data: TensorData): Uint8Array {
  if (datatype === 'BYTES') return encodeBytesElements(data as readonly string[]);
  const typed = data as Exclude<TensorData, string[]>;
  return new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
}

/** BYTES elements as the binary extension carries them: 4-byte little-endian length, then the UTF-8 bytes. */
export function encodeBytesElements(elements: readonly string[]): Uint8Array {
  let total = 0;
  for (const element of elements) total += 4 + utf8Length(element);
  const buffer = Buffer.alloc(total);
  let offset = 0;
  for (const element of elements) {
    const written = buffer.write(element, offset + 4, 'utf8');
    buffer.writeUInt32LE(written, offset);
    offset += 4 + written;
  }
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

/** Byte length of `count` elements of a fixed-size datatype. */
export function fixedByteLength(datatype: FixedSizeDatatype, count: number): number {
  return count * BYTES_PER_ELEMENT[datatype];
}

/** What decoding needs to know about the tensor whose bytes it reads. */
export interface BinaryTarget {
  /** `input "x"` or `output "y"`. */
  readonly subject: string;
  readonly datatype: Datatype;
  readonly maxBytesElementSize: number;
}

/**
 * Decodes `count` elements from exactly `bytes` (the caller has checked that a fixed-size tensor's byte length is
 * `count` times the element size). Fixed-size data is copied once into a new, aligned typed array.
 */
export function decodeBinaryTensorData(target: BinaryTarget, bytes: Uint8Array, count: number): TensorData {
  const { datatype } = target;
  if (!isFixedSize(datatype)) {
    const elements = decodeBytesElements(target, bytes, count);
    if (elements.length !== count) {
      throw new BadRequestError(
        `${target.subject}: its binary data holds ${elements.length} BYTES elements, but its shape needs ${count}`,
      );
    }
    return elements;
  }
  const out = createTensorData(datatype, count);
  // Slices of a request buffer may start at any byte; copying into a fresh typed array realigns them.
  new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(bytes);
  if (datatype === 'BOOL') {
    const bad = (out as Uint8Array).findIndex((b) => b > 1);
    if (bad >= 0) {
      throw new BadRequestError(
        `${target.subject}: BOOL element ${bad} is the byte ${out[bad]}; BOOL bytes must be 0 or 1`,
      );
    }
  }
  return out;
}

/** Whether `element` could be UTF-8 text by its first byte (a JPEG starts 0xFF, a PNG 0x89: never UTF-8 leads). */
function isUtf8Cheap(element: Uint8Array): boolean {
  const first = element[0];
  return first === undefined || first < 0x80 || (first >= 0xc2 && first <= 0xf4);
}

/** The format of an image file by its signature, or `undefined`. */
function imageFormatOf(element: Uint8Array): 'JPEG' | 'PNG' | 'WebP' | undefined {
  const at = (i: number) => element[i];
  if (at(0) === 0xff && at(1) === 0xd8 && at(2) === 0xff) return 'JPEG';
  if (at(0) === 0x89 && at(1) === 0x50 && at(2) === 0x4e && at(3) === 0x47) return 'PNG';
  const riff = String.fromCharCode(...element.subarray(0, 4));
  const webp = String.fromCharCode(...element.subarray(8, 12));
  return riff === 'RIFF' && webp === 'WEBP' ? 'WebP' : undefined;
}

/**
 * Reads length-prefixed BYTES elements until `bytes` ends; refuses more than `maxCount` elements (so a body of
 * empty elements cannot outgrow the shape or the element limit) and any element over the size limit.
 */
export function decodeBytesElements(target: BinaryTarget, bytes: Uint8Array, maxCount: number): string[] {
  return readBytesElements(target, bytes, maxCount, (element, index) => {
    const nul = element.indexOf(0);
    if (nul >= 0 || !isUtf8Cheap(element)) {
      // Said only when refusing (the decision never sniffs): an image file where text was expected.
      const image = imageFormatOf(element);
      if (image !== undefined) {
        throw new BadRequestError(
          `${target.subject}: BYTES element ${index} holds a ${image} image, but this input takes text: images go to ` +
            'an input the model declares image preprocessing for ("preprocess" in its catalog entry or upload sidecar)',
        );
      }
    }
    if (nul >= 0) throw new BadRequestError(`${target.subject}: BYTES element ${index} ${nulReason(nul)}`);
    try {
      return strictUtf8.decode(element);
    } catch (error) {
      throw new BadRequestError(
        `${target.subject}: BYTES element ${index} is not valid UTF-8; this server carries BYTES as UTF-8 strings`,
        { cause: error },
      );
    }
  });
}

/**
 * Reads length-prefixed BYTES elements as opaque bytes (views into `bytes`, no UTF-8 or NUL check): the elements of
 * an input that carries encoded images. The same framing and limits as {@link decodeBytesElements}.
 */
export function decodeOpaqueBytesElements(target: BinaryTarget, bytes: Uint8Array, maxCount: number): Uint8Array[] {
  return readBytesElements(target, bytes, maxCount, (element) => element);
}

function readBytesElements<T>(
  target: BinaryTarget,
  bytes: Uint8Array,
  maxCount: number,
  take: (element: Uint8Array, index: number) => T,
): T[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = bytes.byteLength;
  const elements: T[] = [];
  let offset = 0;
  while (offset < end) {
    const index = elements.length;
    if (index >= maxCount) {
      throw new BadRequestError(
        `${target.subject}: its binary data holds more than the ${maxCount} BYTES elements its shape allows`,
      );
    }
    if (end - offset < 4) {
      throw new BadRequestError(
        `${target.subject}: BYTES element ${index} is cut short: its 4-byte length prefix has only ${end - offset} ` +
          'bytes left',
      );
    }
    const length = view.getUint32(offset, true);
    offset += 4;
    if (length > target.maxBytesElementSize) {
      throw new PayloadTooLargeError(
        `${target.subject}: BYTES element ${index} is ${length} bytes; the limit is ${target.maxBytesElementSize} ` +
          'bytes per BYTES element (limits.maxBytesElementSize)',
      );
    }
    if (length > end - offset) {
      throw new BadRequestError(
        `${target.subject}: BYTES element ${index} declares ${length} bytes but only ${end - offset} remain in the ` +
          "tensor's binary data",
      );
    }
    elements.push(take(bytes.subarray(offset, offset + length), index));
    offset += length;
  }
  return elements;
}

/** Reads a tensor's `binary_data_size` bytes starting at `offset`, checking them against its shape first. */
export function takeBinaryTensor(
  descriptor: TensorDescriptor,
  body: Uint8Array,
  offset: number,
  limits: Pick<Limits, 'maxBytesElementSize'>,
): Tensor {
  const { name, datatype, shape, count, subject } = descriptor;
  const size = descriptor.binaryDataSize ?? 0;
  const remaining = body.byteLength - offset;
  if (size > remaining) {
    throw new BadRequestError(
      `${subject}: "binary_data_size" is ${size} but only ${remaining} bytes of binary data are left in the body`,
    );
  }
  if (isFixedSize(datatype) && size !== fixedByteLength(datatype, count)) {
    throw new BadRequestError(
      `${subject}: "binary_data_size" is ${size} bytes, but shape ${formatShape(shape)} of ${datatype} needs ` +
        `${count} x ${BYTES_PER_ELEMENT[datatype]} = ${fixedByteLength(datatype, count)} bytes`,
    );
  }
  const data = decodeBinaryTensorData(
    { subject, datatype, maxBytesElementSize: limits.maxBytesElementSize },
    body.subarray(offset, offset + size),
    count,
  );
  return { name, datatype, shape, data };
}
