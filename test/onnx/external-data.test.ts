/** The external-data references of a model, and their check against an archive's files. */
import { describe, expect, it } from 'vitest';
import { ModelRejectedError } from '../../functions/core/errors.js';
import { checkExternalData, externalDataReferences } from '../../functions/core/onnx/external-data.js';
import { readModelFile } from '../../functions/core/onnx/model-file.js';
import { ModelBuilder } from '../../tools/onnx/index.js';
import { withExternalData } from '../../tools/onnx/external-data.js';

/** A model with FP32 `w` [3, 5] and INT64 `k` [2] in external data, with the entries `entries` gives. */
function references(entries?: Parameters<typeof withExternalData>[2]) {
  const proto = new ModelBuilder()
    .input('x', 'FP32', [3])
    .initializer('w', { datatype: 'FP32', dims: [3, 5], data: new Float32Array(15) })
    .initializer('k', { datatype: 'INT64', dims: [2], data: new BigInt64Array(2) })
    .node('MatMul', ['x', 'w'], ['y'])
    .output('y', 'FP32', [5])
    .toProto();
  return externalDataReferences(readModelFile(withExternalData(proto, 'w.bin', entries).model));
}

function reason(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (error instanceof ModelRejectedError) return error.message;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('external data', () => {
  it('reads location, offset and length; without a length, the size from dims and data type', () => {
    // Act
    const found = references((tensor, offset) => ({ location: `${tensor}.bin`, offset: String(offset) }));

    // Assess
    expect(found).toEqual([
      { tensor: 'w', location: 'w.bin', offset: 0, length: 60 },
      { tensor: 'k', location: 'k.bin', offset: 64, length: 16 },
    ]);
  });

  it("resolves locations against the model's folder in the archive", () => {
    // Act
    const used = checkExternalData(references(), 'export/model.onnx', new Map([['export/w.bin', 80]]));

    // Assess
    expect([...used]).toEqual([['w.bin', 'export/w.bin']]);
  });

  it.each([
    ['C:/w.bin', /not a plain relative path/],
    ['a\\\\..\\\\w.bin', /not a plain relative path/],
    ['sub/./w.bin', /not a plain relative path/],
    ['metadata.json', /a name the repository uses itself/],
  ])('refuses the location %s', (location, expected) => {
    // Act
    const refs = references((_t, offset, length) => ({ location, offset: String(offset), length: String(length) }));

    // Assess
    expect(reason(() => checkExternalData(refs, 'model.onnx', new Map([[location, 1000]])))).toMatch(expected);
  });

  it('refuses a computed size past the end of the file, and an offset that is not a byte count', () => {
    // Act
    const computed = references((_t, offset) => ({ location: 'w.bin', offset: String(offset) }));
    const tooFar = reason(() => checkExternalData(computed, 'model.onnx', new Map([['w.bin', 79]])));
    const notANumber = reason(() => references(() => ({ location: 'w.bin', offset: '-1' })));

    // Assess
    expect(tooFar).toBe(
      'initializer "k" reads 16 bytes at offset 64 of "w.bin", beyond its 79 bytes: the data file is truncated or ' +
        'belongs to another export of the model',
    );
    expect(notANumber).toBe('initializer "w" has external-data offset "-1", not a byte count');
  });
});
