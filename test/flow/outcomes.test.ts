/**
 * Every upload gets exactly one recorded outcome (`models/<m>/outcomes/<sha256 of the key>.json`), through the real
 * stack (`startLocal()`: S3 protocol, events, register handler, onnxruntime): registered, duplicate of a version, or
 * refused with a reason, including the `.zip` uploads whose external-data locations the store cannot hold. Versions
 * stay numbered 1..n with no orphan `model.onnx`, and an upload with an outcome is never registered again: not by
 * a later event of its model, not by a restart.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pendingUploads } from '../../functions/core/registration.js';
import { describeDenial } from '../../functions/local/s3-access.js';
import { withExternalData } from '../../tools/onnx/external-data.js';
import { ModelBuilder } from '../../tools/onnx/index.js';
import { writeZip } from '../../tools/zip-writer.js';
import { expectOneOutcomeEach } from './outcome-checks.js';
import { type FlowStack, linearModel, startFlowStack } from './fixture.js';

/** y = x W with x [N, 4]: its weights all in one external-data file named `location`. */
function archive(location: string, seed: number): Uint8Array {
  const weights = Float32Array.from({ length: 8 }, (_, i) => seed + i);
  const proto = new ModelBuilder({ graphName: 'affine' })
    .input('x', 'FP32', ['N', 4])
    .initializer('W', { datatype: 'FP32', dims: [4, 2], data: weights })
    .node('MatMul', ['x', 'W'], ['y'])
    .output('y', 'FP32', ['N', 2])
    .toProto();
  const external = withExternalData(proto, location);
  return writeZip([
    { name: 'model.onnx', data: external.model },
    ...[...external.files].map(([name, data]) => ({ name, data })),
  ]);
}

/** A location `depth` folders of 200 bytes deep. */
const deepLocation = (depth: number): string => `${'d'.repeat(200)}/`.repeat(depth).concat('w.bin');

let flow: FlowStack;
let dataDir: string;
beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'onnx-serverless-outcomes-'));
  flow = await startFlowStack({}, { dataDir });
});
afterAll(async () => {
  await flow?.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe('one outcome per upload', () => {
  it('records registered, duplicate and refused once each, and never reads them again', async () => {
    // Act: a version, the same bytes under another name, a refused file, then another event of the model.
    const first = await flow.uploadAndWait('once', 'a.onnx', linearModel(2));
    const duplicate = await flow.uploadAndWait('once', 'copy-of-a.onnx', linearModel(2));
    const refused = await flow.uploadAndWait('once', 'broken.onnx', new TextEncoder().encode('not a model'));
    const second = await flow.uploadAndWait('once', 'b.onnx', linearModel(3));

    // Assess
    expect([first, duplicate, refused.kind, second]).toEqual([
      expect.objectContaining({ kind: 'registered', version: '1' }),
      expect.objectContaining({ kind: 'duplicate', version: '1' }),
      'rejected',
      expect.objectContaining({ kind: 'registered', version: '2' }),
    ]);
    const state = await expectOneOutcomeEach(flow.store, 'once');
    expect(
      Object.fromEntries([...state.outcomes].map(([key, r]) => [key, [r.outcome, r.version ?? r.reason]])),
    ).toEqual({
      'uploads/once/a.onnx': ['registered', '1'],
      'uploads/once/copy-of-a.onnx': ['duplicate', '1'],
      'uploads/once/broken.onnx': ['refused', refused.kind === 'rejected' ? refused.reason : ''],
      'uploads/once/b.onnx': ['registered', '2'],
    });
    // The refusal's record points at its rejection, which the index and the CLI list.
    const rejectionKey = state.outcomes.get('uploads/once/broken.onnx')?.rejectionKey;
    expect(rejectionKey).toMatch(/^rejected\/once\/.*broken\.onnx\.json$/);
    expect(await flow.store.list('rejected/once/')).toEqual([rejectionKey]);
    // b.onnx's event reconciled nothing: the duplicate and the refusal have their outcome already.
    expect(flow.stack.registrations.flatMap((r) => r.reconciled ?? [])).toEqual([]);
    expect(await pendingUploads(flow.stack.runtime)).toEqual([]);
    expect(flow.denials.map(describeDenial)).toEqual([]);
  });

  it.each([
    ['a location that contains the local store\'s marker "._S3rver_"', 'weights._S3rver_object'],
    ['a location whose file name has 240 bytes', `${'w'.repeat(236)}.bin`],
    ['a location that makes a key over 1,024 bytes', deepLocation(5)],
    ['a location longer than PATH_MAX', deepLocation(21)],
  ])('gives a .zip with %s exactly one outcome, and uses no number it does not keep', async (_, location) => {
    // Prepare: the model's number 1 is taken by a plain version first.
    const model = `zip-${location.length}-${location.slice(0, 4).replace(/[^a-z]/g, '')}`;
    await flow.uploadAndWait(model, 'plain.onnx', linearModel(1));

    // Act: the archive, then a good upload that must get the next number.
    const outcome = await flow.uploadAndWait(model, 'weights.zip', archive(location, 1));
    const next = await flow.uploadAndWait(model, 'next.onnx', linearModel(5));

    // Assess: exactly one outcome each, numbers 1..n, every model.onnx a listed version's.
    const state = await expectOneOutcomeEach(flow.store, model);
    const recorded = state.outcomes.get(`uploads/${model}/weights.zip`);
    if (outcome.kind === 'rejected') {
      expect(recorded).toMatchObject({ outcome: 'refused', reason: outcome.reason });
      expect(next).toMatchObject({ kind: 'registered', version: '2' });
    } else {
      expect(outcome).toMatchObject({ kind: 'registered', version: '2' });
      expect(recorded).toMatchObject({ outcome: 'registered', version: '2' });
      expect(next).toMatchObject({ kind: 'registered', version: '3' });
    }
    if (new TextEncoder().encode(location).byteLength > 1000) {
      expect(outcome).toMatchObject({ kind: 'rejected' });
    }
    if (location.length > 1000 && location.length < 4096) {
      expect(outcome).toMatchObject({ kind: 'rejected', reason: expect.stringContaining("S3's 1024-byte limit") });
    }
    if (location.length > 4096) {
      expect(outcome).toMatchObject({ kind: 'rejected', reason: expect.stringMatching(/ENAMETOOLONG.*too long/) });
      expect(outcome.kind === 'rejected' && outcome.reason).not.toMatch(/\/tmp|onnx-serverless-register/);
    }
    expect(await pendingUploads(flow.stack.runtime, model)).toEqual([]);
    expect(flow.denials.map(describeDenial)).toEqual([]);
  });

  it('starts again on the same data without registering anything again', async () => {
    // Act: a restart on the same data folder (the outcomes above are all recorded).
    await flow.close();
    flow = await startFlowStack({}, { dataDir });
    await flow.stack.settled();

    // Assess: nothing was pending, so the start reconciled nothing (nor downloaded anything to do so).
    expect(flow.stack.registrations).toEqual([]);
    await expectOneOutcomeEach(flow.store, 'once');
  });
});
