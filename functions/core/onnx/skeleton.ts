/**
 * The skeleton of an ONNX file on disk: the whole `ModelProto` but the payloads of its weights, read without
 * loading the file. Registration decides from it whether a graph rewrite applies (`rewrites.ts` reads the header,
 * the graph's inputs, outputs, nodes and the initializers' names, types, shapes and external-data references, never
 * their values), so a model served unchanged never has its weights in JavaScript memory: onnxruntime reads the file
 * itself and the version is written from the file.
 *
 * The scan reads field headers at their offsets (a 64 KiB window) and jumps over the weights:
 * `ModelProto.graph` (7) → `GraphProto.initializer` (5) and `sparse_initializer` (15) → the `TensorProto` data
 * fields. Every other byte is kept as it is, so the skeleton is a well-formed model with empty tensors.
 */
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import protobuf from 'protobufjs/minimal.js';
import { concatBytes } from '../codec/message.js';
import { ModelRejectedError } from '../errors.js';
import { FIELD } from './model-file.js';
import { LENGTH_DELIMITED, lengthDelimitedField, readFields } from './wire.js';

/**
 * `TensorProto` fields that hold values: float_data (4), int32_data (5), string_data (6), int64_data (7),
 * raw_data (9), double_data (10), uint64_data (11).
 */
const TENSOR_DATA_FIELDS: ReadonlySet<number> = new Set([4, 5, 6, 7, 9, 10, 11]);
/** `SparseTensorProto.values` (1) and `.indices` (2): tensors whose data the skeleton drops too. */
const SPARSE_TENSOR_FIELDS: ReadonlySet<number> = new Set([1, 2]);

const WINDOW_BYTES = 64 * 1024;

/** One field occurrence, by offsets in the file. */
interface FileField {
  readonly number: number;
  readonly wireType: number;
  readonly start: number;
  /** Offset of a length-delimited field's payload (after its length); of the value otherwise. */
  readonly valueStart: number;
  readonly end: number;
}

/** Positional reads of a file through a small window: field headers cost one read per jump, not per byte. */
class WindowReader {
  private readonly window = Buffer.allocUnsafe(WINDOW_BYTES);
  private windowStart = 0;
  private windowLength = 0;

  /** Bytes copied out by {@link bytes} so far. */
  private copied = 0;

  public constructor(
    private readonly handle: FileHandle,
    public readonly size: number,
    private readonly maxCopied = Number.POSITIVE_INFINITY,
  ) {}

  private async byteAt(position: number): Promise<number> {
    if (position < this.windowStart || position >= this.windowStart + this.windowLength) {
      if (position >= this.size) throw new RangeError(`truncated: byte ${position} is past the end of the file`);
      const { bytesRead } = await this.handle.read(this.window, 0, WINDOW_BYTES, position);
      this.windowStart = position;
      this.windowLength = bytesRead;
      if (bytesRead === 0) throw new RangeError(`truncated: nothing to read at byte ${position}`);
    }
    return this.window[position - this.windowStart] ?? 0;
  }

  /** A varint (up to 2^53, enough for lengths and tags) and the offset after it. */
  public async varint(position: number): Promise<{ value: number; next: number }> {
    let value = 0;
    for (let index = 0; index < 10; index++) {
      const byte = await this.byteAt(position + index);
      value += (byte & 0x7f) * 2 ** (7 * index);
      if (byte < 0x80) return { value, next: position + index + 1 };
    }
    throw new Error(`invalid varint at byte ${position}`);
  }

  /** A copy of `[start, end)`. */
  public async bytes(start: number, end: number): Promise<Uint8Array> {
    this.copied += end - start;
    if (this.copied > this.maxCopied) {
      throw new ModelRejectedError(
        `the model's graph (the file without its weights' values: nodes, attributes, inputs and outputs) holds ` +
          `more than ${this.maxCopied} bytes, the most registration holds in memory (MAX_GRAPH_BYTES); move large ` +
          'constants from node attributes to initializers (weights, which never enter memory), or raise ' +
          "MAX_GRAPH_BYTES together with the register function's memory",
      );
    }
    const out = Buffer.allocUnsafe(end - start);
    let offset = 0;
    while (offset < out.byteLength) {
      const { bytesRead } = await this.handle.read(out, offset, out.byteLength - offset, start + offset);
      if (bytesRead === 0) throw new RangeError(`truncated: the file ends before byte ${end}`);
      offset += bytesRead;
    }
    return out;
  }

  /**
   * The fields of the message at `[start, end)`, in file order, one at a time: a tensor written with unpacked
   * repeated values has one field per value, which is never collected.
   */
  public async *fields(start: number, end: number): AsyncGenerator<FileField> {
    let position = start;
    while (position < end) {
      const tag = await this.varint(position);
      const number = Math.floor(tag.value / 8);
      const wireType = tag.value % 8;
      if (number === 0) throw new Error(`field number 0 at byte ${position}`);
      let valueStart = tag.next;
      let fieldEnd: number;
      if (wireType === 0) fieldEnd = (await this.varint(valueStart)).next;
      else if (wireType === 1) fieldEnd = valueStart + 8;
      else if (wireType === 5) fieldEnd = valueStart + 4;
      else if (wireType === LENGTH_DELIMITED) {
        const length = await this.varint(valueStart);
        valueStart = length.next;
        fieldEnd = length.next + length.value;
      } else throw new Error(`invalid wire type ${wireType} at byte ${position}`);
      if (fieldEnd > end) throw new RangeError(`truncated: a field at byte ${position} runs past its message`);
      yield { number, wireType, start: position, valueStart, end: fieldEnd };
      position = fieldEnd;
    }
  }
}

/**
 * The model in `file` without its weight values (see the module comment). Throws `ModelRejectedError` when the
 * file is not a protobuf message, as `readModelFile` does for bytes, or when the skeleton would hold more than
 * `maxBytes` (checked before each piece is read: a graph over the limit is never read whole).
 *
 * @example
 * const skeleton = await readModelSkeleton('/tmp/upload.onnx');
 * const { rewrites } = rewriteForServing(skeleton); // no rewrite: serve the file itself
 */
export async function readModelSkeleton(
  file: string,
  maxBytes: number = Number.POSITIVE_INFINITY,
): Promise<Uint8Array> {
  const handle = await open(file, 'r');
  try {
    const reader = new WindowReader(handle, (await handle.stat()).size, maxBytes);
    try {
      return await skeletonOf(reader);
    } catch (error) {
      if (error instanceof ModelRejectedError) throw error;
      const reason = error instanceof RangeError ? 'truncated or corrupt protobuf data' : String(error);
      throw new ModelRejectedError(
        `The file is not an ONNX model: it does not parse as an ONNX ModelProto (${reason}). Upload the binary .onnx ` +
          'file your exporter wrote (torch.onnx.export, skl2onnx, tf2onnx, paddle2onnx, ...).',
        { cause: error },
      );
    }
  } finally {
    await handle.close();
  }
}

async function skeletonOf(reader: WindowReader): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const top of reader.fields(0, reader.size)) {
    if (top.number === FIELD.model.graph && top.wireType === LENGTH_DELIMITED) {
      const graph: Uint8Array[] = [];
      for await (const entry of reader.fields(top.valueStart, top.end)) {
        const isTensor = entry.number === FIELD.graph.initializer && entry.wireType === LENGTH_DELIMITED;
        const isSparse = entry.number === FIELD.graph.sparseInitializer && entry.wireType === LENGTH_DELIMITED;
        if (isTensor) graph.push(lengthDelimitedField(entry.number, await tensorSkeleton(reader, entry)));
        else if (isSparse) graph.push(lengthDelimitedField(entry.number, await sparseSkeleton(reader, entry)));
        else graph.push(await reader.bytes(entry.start, entry.end));
      }
      parts.push(lengthDelimitedField(top.number, concatBytes(graph)));
    } else {
      parts.push(await reader.bytes(top.start, top.end));
    }
  }
  return concatBytes(parts);
}

/** A `TensorProto` without its values: name, type, dims and external-data references stay. */
async function tensorSkeleton(reader: WindowReader, tensor: FileField): Promise<Uint8Array> {
  const kept: Uint8Array[] = [];
  for await (const entry of reader.fields(tensor.valueStart, tensor.end)) {
    if (!TENSOR_DATA_FIELDS.has(entry.number)) kept.push(await reader.bytes(entry.start, entry.end));
  }
  return concatBytes(kept);
}

async function sparseSkeleton(reader: WindowReader, sparse: FileField): Promise<Uint8Array> {
  const kept: Uint8Array[] = [];
  for await (const entry of reader.fields(sparse.valueStart, sparse.end)) {
    if (SPARSE_TENSOR_FIELDS.has(entry.number) && entry.wireType === LENGTH_DELIMITED) {
      kept.push(lengthDelimitedField(entry.number, await tensorSkeleton(reader, entry)));
    } else kept.push(await reader.bytes(entry.start, entry.end));
  }
  return concatBytes(kept);
}

/** Graph fields whose values the skeleton drops: they are taken from the original file when a model is written. */
function isWeightField(number: number, wireType: number): boolean {
  return (
    wireType === LENGTH_DELIMITED && (number === FIELD.graph.initializer || number === FIELD.graph.sparseInitializer)
  );
}

/** Bytes written or copied per write: the whole memory a rewritten model costs beyond its skeleton. */
const COPY_BYTES = 1024 * 1024;

/**
 * Writes to `target` the model whose skeleton is `skeleton` (a rewrite of `source`'s skeleton: nodes, inputs,
 * outputs or opsets changed, the initializers left as they were), with the weights of `source` put back: each
 * initializer of the skeleton is replaced, in order, by the whole initializer field of `source`, copied from disk
 * in 1 MiB pieces. So a rewrite costs its skeleton in memory, never the weights. Returns the written file's sha256
 * and size.
 *
 * @example
 * const skeleton = await readModelSkeleton(upload);
 * const { model } = rewriteForServing(skeleton);
 * if (model !== skeleton) await writeWithWeights(upload, model, rewrittenPath);
 */
export async function writeWithWeights(
  source: string,
  skeleton: Uint8Array,
  target: string,
): Promise<{ sha256: string; size: number }> {
  const input = await open(source, 'r');
  const output = await open(target, 'w');
  try {
    const reader = new WindowReader(input, (await input.stat()).size);
    const weights: FileField[] = [];
    for await (const top of reader.fields(0, reader.size)) {
      if (top.number !== FIELD.model.graph || top.wireType !== LENGTH_DELIMITED) continue;
      for await (const entry of reader.fields(top.valueStart, top.end))
        if (isWeightField(entry.number, entry.wireType)) weights.push(entry);
    }
    const hash = createHash('sha256');
    let size = 0;
    // Small fields (nodes, value infos) are gathered into writes of about COPY_BYTES.
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      const bytes = concatBytes(pending);
      pending = [];
      pendingBytes = 0;
      let offset = 0;
      while (offset < bytes.byteLength) offset += (await output.write(bytes, offset)).bytesWritten;
    };
    const write = async (bytes: Uint8Array) => {
      hash.update(bytes);
      size += bytes.byteLength;
      pending.push(bytes);
      pendingBytes += bytes.byteLength;
      if (pendingBytes >= COPY_BYTES) await flush();
    };
    const copy = async (from: FileField) => {
      for (let start = from.start; start < from.end; start += COPY_BYTES)
        await write(await reader.bytes(start, Math.min(from.end, start + COPY_BYTES)));
    };
    for (const top of readFields(skeleton)) {
      if (top.number !== FIELD.model.graph || top.wireType !== LENGTH_DELIMITED) {
        await write(skeleton.subarray(top.start, top.end));
        continue;
      }
      const graphFields = readFields(top.value);
      const kept = graphFields.filter((entry) => isWeightField(entry.number, entry.wireType));
      if (kept.length !== weights.length || kept.some((entry, i) => entry.number !== weights[i]?.number)) {
        throw new Error(
          `the rewritten skeleton has ${kept.length} initializers where the file has ${weights.length}: a rewrite must leave them as they are`,
        );
      }
      let length = 0;
      let index = 0;
      for (const entry of graphFields) {
        const original = isWeightField(entry.number, entry.wireType) ? weights[index++] : undefined;
        length += original === undefined ? entry.end - entry.start : original.end - original.start;
      }
      await write(
        protobuf.Writer.create()
          .uint32(((top.number << 3) | LENGTH_DELIMITED) >>> 0)
          .uint32(length)
          .finish(),
      );
      index = 0;
      for (const entry of graphFields) {
        const original = isWeightField(entry.number, entry.wireType) ? weights[index++] : undefined;
        if (original === undefined) await write(top.value.subarray(entry.start, entry.end));
        else await copy(original);
      }
    }
    await flush();
    return { sha256: hash.digest('hex'), size };
  } finally {
    await output.close();
    await input.close();
  }
}
