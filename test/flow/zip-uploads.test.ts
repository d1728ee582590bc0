/**
 * Archive uploads (`uploads/<model>/<name>.zip`: one .onnx file and its external-data files), through the real S3
 * protocol, the real `register` handler and real onnxruntime: a good archive becomes a version that serves its
 * reference outputs, stored as model.onnx with its data file beside it; every bad archive is refused with its
 * reason, and the previous version keeps serving.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelBuilder } from '../../tools/onnx/index.js';
import { withExternalData, type ExternalDataModel } from '../../tools/onnx/external-data.js';
import { writeZip, type ZipEntry } from '../../tools/zip-writer.js';
import type { ModelMetadata } from '../../functions/core/types.js';
import { type FlowStack, outputData, startFlowStack } from './fixture.js';

/** The registration size limit of this stack (archive bytes, and unpacked bytes). */
const MAX_MODEL_BYTES = 64 * 1024;
const MODEL = 'zipped';

/** y = x W + b with x [N, 4], W [4, 2], b [2]: weights a constant folder cannot remove, all in external data. */
const W = Float32Array.from([0.5, -1, 2, 0.25, -0.75, 1.5, 1, -2]);
const B = Float32Array.from([0.125, -3]);
function affine(): ModelBuilder {
  return new ModelBuilder({ graphName: 'affine' })
    .input('x', 'FP32', ['N', 4])
    .initializer('W', { datatype: 'FP32', dims: [4, 2], data: W })
    .initializer('B', { datatype: 'FP32', dims: [2], data: B })
    .node('MatMul', ['x', 'W'], ['xw'])
    .node('Add', ['xw', 'B'], ['y'])
    .output('y', 'FP32', ['N', 2]);
}
function reference(row: readonly number[]): number[] {
  return [0, 1].map((j) => row.reduce((sum, x, i) => sum + x * (W[i * 2 + j] ?? 0), 0) + (B[j] ?? 0));
}

const external = (entries?: Parameters<typeof withExternalData>[2]): ExternalDataModel =>
  withExternalData(affine().toProto(), 'model.onnx.data', entries);
const GOOD = external();
const DATA = GOOD.files.get('model.onnx.data') ?? new Uint8Array(0);
const goodEntries = (prefix = ''): ZipEntry[] => [
  { name: `${prefix}model.onnx`, data: GOOD.model },
  { name: `${prefix}model.onnx.data`, data: DATA },
];
/** Deterministic incompressible bytes. */
const noise = (length: number) => Uint8Array.from({ length }, (_, i) => (i * 7919 + ((i * i) >>> 3)) % 251);

let flow: FlowStack;
beforeAll(async () => {
  flow = await startFlowStack({ MAX_MODEL_BYTES: String(MAX_MODEL_BYTES) });
});
afterAll(async () => {
  await flow?.close();
});

describe('zip uploads', () => {
  it('registers a model with external data and serves its reference outputs; stores model.onnx and its data file', async () => {
    // Act
    const outcome = await flow.uploadAndWait(MODEL, 'affine.zip', writeZip(goodEntries()));
    const answer = await flow.infer(MODEL, [[1, 2, 3, 4]]);

    // Assess
    expect(outcome).toMatchObject({ kind: 'registered', version: '1' });
    expect(answer.status).toBe(200);
    outputData(answer).forEach((value, i) => {
      expect(value).toBeCloseTo(reference([1, 2, 3, 4])[i] ?? NaN, 5);
    });
    expect(await flow.store.list(`models/${MODEL}/1/`)).toEqual([
      `models/${MODEL}/1/metadata.json`,
      `models/${MODEL}/1/model.onnx`,
      `models/${MODEL}/1/model.onnx.data`,
    ]);
    const metadata = JSON.parse(
      new TextDecoder().decode((await flow.store.get(`models/${MODEL}/1/metadata.json`))?.body),
    ) as ModelMetadata;
    const stored = (await flow.store.get(`models/${MODEL}/1/model.onnx.data`))?.body ?? new Uint8Array(0);
    expect(metadata.externalData).toEqual([
      { location: 'model.onnx.data', size: DATA.length, sha256: createHash('sha256').update(stored).digest('hex') },
    ]);
    expect(Buffer.from(stored).equals(Buffer.from(DATA))).toBe(true);
  });

  it('registers an archive whose files sit in a folder (zip -r of the export folder)', async () => {
    // Act
    const outcome = await flow.uploadAndWait('foldered', 'export.zip', writeZip(goodEntries('export/')));
    const answer = await flow.infer('foldered', [[-1, 0, 0.5, 2]]);

    // Assess
    expect(outcome).toMatchObject({ kind: 'registered', version: '1' });
    outputData(answer).forEach((value, i) => {
      expect(value).toBeCloseTo(reference([-1, 0, 0.5, 2])[i] ?? NaN, 5);
    });
  });

  it('refuses to serve a version whose stored data file no longer matches its sha256 (503, nothing cached)', async () => {
    // Prepare: registered, then its data file altered in storage before any load (fault injected).
    const outcome = await flow.uploadAndWait('tampered', 'affine.zip', writeZip(goodEntries()));
    const altered = Uint8Array.from(DATA, (byte, i) => (i === 0 ? byte ^ 0xff : byte));
    await flow.store.put('models/tampered/1/model.onnx.data', altered);

    // Act
    const first = await flow.infer('tampered', [[1, 2, 3, 4]]);
    await flow.store.put('models/tampered/1/model.onnx.data', DATA);
    const second = await flow.infer('tampered', [[1, 2, 3, 4]]);

    // Assess
    expect(outcome).toMatchObject({ kind: 'registered', version: '1' });
    expect(first.status).toBe(503);
    expect(first.headers.get('retry-after')).not.toBeNull();
    expect(JSON.stringify(first.body)).toMatch(/data file \\"model\.onnx\.data\\" does not match its checksum/);
    expect(second.status).toBe(200);
  });

  const escaping = (location: string) =>
    external((_t, offset, length) => ({ location, offset: String(offset), length: String(length) }));
  const BAD: readonly { kind: string; body: () => Uint8Array; reason: RegExp }[] = [
    {
      kind: 'a location that escapes with ../',
      body: () =>
        writeZip([
          { name: 'model.onnx', data: escaping('../model.onnx.data').model },
          { name: 'model.onnx.data', data: DATA },
        ]),
      reason: /location "\.\.\/model\.onnx\.data", which is not a plain relative path/,
    },
    {
      kind: 'an absolute location',
      body: () =>
        writeZip([
          { name: 'model.onnx', data: escaping('/etc/passwd').model },
          { name: 'model.onnx.data', data: DATA },
        ]),
      reason: /location "\/etc\/passwd", which is not a plain relative path/,
    },
    {
      kind: 'a data file that is a symlink',
      body: () =>
        writeZip([
          goodEntries()[0] as ZipEntry,
          { name: 'model.onnx.data', data: new TextEncoder().encode('/etc/passwd'), mode: 0o120777 },
        ]),
      reason: /"model\.onnx\.data" is a symbolic link/,
    },
    {
      kind: 'a missing data file',
      body: () => writeZip([goodEntries()[0] as ZipEntry]),
      reason: /keeps its data in "model\.onnx\.data", which the archive does not hold/,
    },
    {
      kind: 'an offset and length beyond the data file',
      body: () =>
        writeZip([
          {
            name: 'model.onnx',
            data: external((_t, offset, length) => ({
              location: 'model.onnx.data',
              offset: String(offset),
              length: String(length + 64),
            })).model,
          },
          { name: 'model.onnx.data', data: DATA },
        ]),
      reason: /reads \d+ bytes at offset \d+ of "model\.onnx\.data", beyond its \d+ bytes/,
    },
    {
      kind: 'two .onnx files',
      body: () => writeZip([...goodEntries(), { name: 'other.onnx', data: GOOD.model }]),
      reason: /holds 2 \.onnx files \("model\.onnx", "other\.onnx"\); it must hold exactly one/,
    },
    {
      kind: 'a file no initializer references',
      body: () => writeZip([...goodEntries(), { name: 'notes.txt', data: new TextEncoder().encode('hi') }]),
      reason: /holds files no initializer of "model\.onnx" references \("notes\.txt"\)/,
    },
    {
      kind: 'a zip bomb that declares fewer bytes than it inflates to',
      body: () =>
        writeZip([...goodEntries(), { name: 'bomb.bin', data: new Uint8Array(1024 * 1024), declaredSize: 100 }]),
      reason: /"bomb\.bin" inflates to more bytes than it declares/,
    },
    {
      kind: 'an archive that unpacks beyond the size cap',
      body: () =>
        writeZip([
          goodEntries()[0] as ZipEntry,
          { name: 'model.onnx.data', data: new Uint8Array(2 * MAX_MODEL_BYTES) },
        ]),
      reason: /files add up to more than 65536 bytes unpacked \(MAX_MODEL_BYTES\)/,
    },
    {
      kind: 'an archive over the size limit',
      body: () => writeZip([...goodEntries(), { name: 'big.bin', data: noise(MAX_MODEL_BYTES + 1), deflate: false }]),
      reason: /^the archive has \d+ bytes; the limit is 65536 \(MAX_MODEL_BYTES\)$/,
    },
    { kind: 'a file that is not a zip', body: () => noise(300), reason: /not a readable zip archive/ },
  ];

  it.each(BAD)(
    'refuses $kind with its reason; the previous version stays and serves',
    async ({ kind, body, reason }) => {
      // Act
      const file = `${kind.replace(/[^a-z]+/g, '-')}.zip`;
      const outcome = await flow.uploadAndWait(MODEL, file, body());

      // Assess
      expect(outcome.kind).toBe('rejected');
      expect(outcome.kind === 'rejected' ? outcome.reason : '').toMatch(reason);
      const recorded = (await flow.rejections(MODEL)).filter((r) => r.sourceKey === `uploads/${MODEL}/${file}`);
      expect(recorded.map((r) => r.reason)).toEqual([expect.stringMatching(reason)]);
      const manifest = await flow.manifest(MODEL);
      expect(manifest?.versions.map((v) => v.version)).toEqual(['1']);
      const answer = await flow.infer(MODEL, [[1, 2, 3, 4]]);
      expect(answer.status).toBe(200);
      expect(await flow.store.list(`models/${MODEL}/2/`)).toEqual([]);
    },
  );
});
