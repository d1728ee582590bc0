/**
 * The external-data references of an ONNX model (`TensorProto.external_data`: `location`, `offset`, `length`), and
 * their check against the files an archive holds. onnxruntime opens `location` relative to the model file and reads
 * `length` bytes at `offset`; a reference that leaves the archive's folder, names a file the archive lacks, or reads
 * past a file's end must be refused at registration, not discovered (or exploited) at serving.
 */
import path from 'node:path';
import { ModelRejectedError } from '../errors.js';
import { FIELD, type ModelFile } from './model-file.js';
import { onnx, type OnnxTypes } from './proto.js';
import { readFields } from './wire.js';

/** One initializer's external-data reference. */
export interface ExternalDataReference {
  readonly tensor: string;
  /** `location` as written in the model (relative to the model file). */
  readonly location: string;
  readonly offset: number;
  /** Bytes read: `length` when given, else the tensor's size from its dims and data type (`undefined` if unknown). */
  readonly length: number | undefined;
}

/** Bytes per element of the ONNX data types with a fixed size (`TensorProto.DataType`); 4-bit types are 0.5. */
const ELEMENT_BYTES: Readonly<Record<number, number>> = {
  1: 4,
  2: 1,
  3: 1,
  4: 2,
  5: 2,
  6: 4,
  7: 8,
  9: 1,
  10: 2,
  11: 8,
  12: 4,
  13: 8,
  14: 8,
  15: 16,
  16: 2,
  17: 1,
  18: 1,
  19: 1,
  20: 1,
  21: 0.5,
  22: 0.5,
  23: 0.5,
};

/** Names the repository gives the version's own files: a data file must not take their place. */
const RESERVED_NAMES = new Set(['model.onnx', 'metadata.json', 'manifest.json']);

/** Every initializer of `file` that keeps its data in an external file. */
export function externalDataReferences(file: ModelFile): ExternalDataReference[] {
  const references: ExternalDataReference[] = [];
  for (const field of file.graphFields) {
    if (field.number !== FIELD.graph.initializer) continue;
    if (!readFields(field.value).some((f) => f.number === FIELD.tensor.externalData)) continue;
    const tensor = onnx.TensorProto.decode(field.value);
    const entries = new Map((tensor.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
    const location = entries.get('location') ?? '';
    const offset = integerEntry(entries.get('offset'), tensor.name, 'offset') ?? 0;
    const declared = integerEntry(entries.get('length'), tensor.name, 'length');
    references.push({ tensor: tensor.name, location, offset, length: declared ?? tensorBytes(tensor) });
  }
  return references;
}

/**
 * Checks every reference against the archive: `location` must be a plain relative path that stays inside the
 * model's folder, name a file of the archive, and `offset + length` must lie within that file. Returns the
 * `location`s used, each with the archive entry it resolves to. Throws {@link ModelRejectedError} with the reason.
 *
 * @param modelEntry - the `.onnx` file's path inside the archive (locations are relative to its folder)
 * @param sizes - every regular file of the archive by its path inside the archive, with its size
 */
export function checkExternalData(
  references: readonly ExternalDataReference[],
  modelEntry: string,
  sizes: ReadonlyMap<string, number>,
): Map<string, string> {
  const base = path.posix.dirname(modelEntry);
  const used = new Map<string, string>();
  for (const ref of references) {
    const where = `initializer "${ref.tensor}"`;
    const location = ref.location;
    const segments = location.split('/');
    if (
      location === '' ||
      location.startsWith('/') ||
      /^[A-Za-z]:/.test(location) ||
      location.includes('\\') ||
      location.includes('\u0000') ||
      segments.some((s) => s === '' || s === '.' || s === '..')
    ) {
      throw new ModelRejectedError(
        `${where} keeps its data at location "${location.slice(0, 200)}", which is not a plain relative path inside ` +
          'the archive (no "..", no absolute path, no backslash): save the model with its data files beside it ' +
          "(onnx.save_model(model, 'model.onnx', save_as_external_data=True, location='model.onnx.data'))",
      );
    }
    if (RESERVED_NAMES.has(location)) {
      throw new ModelRejectedError(
        `${where} keeps its data in "${location}", a name the repository uses itself: rename the data file`,
      );
    }
    const entry = base === '.' ? location : `${base}/${location}`;
    const size = sizes.get(entry);
    if (size === undefined) {
      throw new ModelRejectedError(
        `${where} keeps its data in "${location}", which the archive does not hold (looked for "${entry}"): zip the ` +
          'data files together with the .onnx file, keeping their relative paths',
      );
    }
    if (ref.length === undefined) {
      if (ref.offset > size) throw beyond(where, location, ref.offset, 0, size);
    } else if (ref.offset + ref.length > size) {
      throw beyond(where, location, ref.offset, ref.length, size);
    }
    used.set(location, entry);
  }
  return used;
}

function beyond(where: string, location: string, offset: number, length: number, size: number): ModelRejectedError {
  return new ModelRejectedError(
    `${where} reads ${length} bytes at offset ${offset} of "${location}", beyond its ${size} bytes: the data file is ` +
      'truncated or belongs to another export of the model',
  );
}

function integerEntry(value: string | undefined, tensor: string, key: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9]{1,16}$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new ModelRejectedError(
      `initializer "${tensor}" has external-data ${key} "${value.slice(0, 40)}", not a byte count`,
    );
  }
  return Number(value);
}

function tensorBytes(tensor: OnnxTypes.TensorProto): number | undefined {
  const perElement = ELEMENT_BYTES[tensor.dataType];
  if (perElement === undefined) return undefined;
  const count = tensor.dims.reduce<number>((n: number, d: unknown) => n * Number(d), 1);
  return Math.ceil(count * perElement);
}
