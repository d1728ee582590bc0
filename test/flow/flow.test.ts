/**
 * The local flow of the README, end to end over the real S3 protocol and real HTTP: upload, register, infer; a new
 * version while the old one stays reachable by its pinned route; duplicate events; concurrent uploads; rollback.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../functions/cli/cli.js';
import { type FlowStack, linearModel, outputData, startFlowStack } from './fixture.js';

let flow: FlowStack;

beforeAll(async () => {
  flow = await startFlowStack();
});
afterAll(async () => {
  await flow?.close();
});

describe('upload, register, serve', () => {
  it('registers an upload as version 1 and serves it at latest and at /versions/1', async () => {
    // Act
    const outcome = await flow.uploadAndWait('sum', 'sum.onnx', linearModel(1));
    const latest = await flow.infer('sum', [[1, 2, 3, 4]]);
    const pinned = await flow.infer('sum', [[1, 1, 1, 1]], '1');

    // Assess
    expect(outcome).toMatchObject({ kind: 'registered', model: 'sum', version: '1' });
    expect(latest.status).toBe(200);
    expect(latest.body).toMatchObject({ model_name: 'sum', model_version: '1' });
    expect(outputData(latest)).toEqual([10]);
    expect(outputData(pinned)).toEqual([4]);
  });

  it('serves a changed upload as version 2 while version 1 stays reachable by its pinned route', async () => {
    // Prepare
    await flow.uploadAndWait('evolving', 'v1.onnx', linearModel(1));

    // Act
    const outcome = await flow.uploadAndWait('evolving', 'v2.onnx', linearModel(2, 1));
    const latest = await flow.infer('evolving', [[1, 2, 3, 4]]);
    const v1 = await flow.infer('evolving', [[1, 2, 3, 4]], '1');
    const v2 = await flow.infer('evolving', [[1, 2, 3, 4]], '2');

    // Assess
    expect(outcome).toMatchObject({ kind: 'registered', version: '2' });
    expect([latest.body, outputData(latest)]).toEqual([expect.objectContaining({ model_version: '2' }), [21]]);
    expect([v1.body, outputData(v1)]).toEqual([expect.objectContaining({ model_version: '1' }), [10]]);
    expect(outputData(v2)).toEqual([21]);
    expect((await flow.manifest('evolving'))?.latest).toBe('2');
  });

  it('makes no new version of a duplicate event or of the same bytes under another name', async () => {
    // Prepare
    const bytes = linearModel(3);
    await flow.uploadAndWait('dup', 'a.onnx', bytes);

    // Act: S3 delivers at least once (same key again), and users re-upload the same file under a new name.
    const again = await flow.uploadAndWait('dup', 'a.onnx', bytes);
    const renamed = await flow.uploadAndWait('dup', 'copy-of-a.onnx', bytes);

    // Assess
    expect(again).toMatchObject({ kind: 'duplicate', version: '1' });
    expect(renamed).toMatchObject({ kind: 'duplicate', version: '1' });
    const manifest = await flow.manifest('dup');
    expect(manifest?.versions.map((v) => v.version)).toEqual(['1']);
    expect(await flow.store.list('models/dup/2/')).toEqual([]);
  });

  it('gives two concurrent uploads two versions, both in the manifest and both served', async () => {
    // Act
    const [a, b] = await Promise.all([
      flow.uploadAndWait('race', 'a.onnx', linearModel(5)),
      flow.uploadAndWait('race', 'b.onnx', linearModel(7)),
    ]);

    // Assess
    expect([a?.kind, b?.kind]).toEqual(['registered', 'registered']);
    const versions = [a, b].map((o) => (o !== undefined && 'version' in o ? o.version : '')).sort();
    expect(versions).toEqual(['1', '2']);
    const manifest = await flow.manifest('race');
    expect(manifest?.versions.map((v) => v.version)).toEqual(['1', '2']);
    expect(manifest?.latest).toBe('2');
    const byVersion = await Promise.all(['1', '2'].map((v) => flow.infer('race', [[1, 1, 1, 1]], v)));
    // Which upload won number 1 is up to the race; each version answers with its own weights.
    const expected = [a, b].map((o, i) => ({
      version: o !== undefined && 'version' in o ? o.version : '',
      y: [20, 28][i],
    }));
    for (const { version, y } of expected) expect(outputData(byVersion[Number(version) - 1]!)).toEqual([y]);
  });

  it('rolls back with `promote` and the endpoint serves the promoted version', async () => {
    // Prepare
    await flow.uploadAndWait('rollback', 'v1.onnx', linearModel(1));
    await flow.uploadAndWait('rollback', 'v2.onnx', linearModel(2));
    const before = await flow.infer('rollback', [[1, 1, 1, 1]]);
    const lines: string[] = [];

    // Act
    const code = await runCli(['promote', 'rollback', '1'], {
      out: (line) => lines.push(line),
      env: { S3_ENDPOINT: flow.stack.s3.endpoint },
    });
    const after = await flow.infer('rollback', [[1, 1, 1, 1]]);

    // Assess
    expect(outputData(before)).toEqual([8]);
    expect(code).toBe(0);
    expect(lines[0]).toBe('rollback: latest -> version 1 (was 2)');
    expect(after.body).toMatchObject({ model_version: '1' });
    expect(outputData(after)).toEqual([4]);
    expect((await flow.infer('rollback', [[1, 1, 1, 1]], '2')).status).toBe(200);
  });

  it('lists every version and every refused upload in the repository index', async () => {
    // Prepare
    await flow.uploadAndWait('indexed', 'good.onnx', linearModel(1));
    await flow.uploadAndWait('indexed', 'bad.onnx', new TextEncoder().encode('not a model'));

    // Act
    const index = await flow.request('POST', '/v2/repository/index');

    // Assess
    expect(index.status).toBe(200);
    const rows = (index.body as { name: string; version: string; state: string; reason: string }[]).filter(
      (r) => r.name === 'indexed',
    );
    expect(rows).toEqual([
      { name: 'indexed', version: '1', state: 'READY', reason: '' },
      {
        name: 'indexed',
        version: '',
        state: 'UNAVAILABLE',
        reason: expect.stringMatching(
          /^upload uploads\/indexed\/bad\.onnx was rejected at .*: The file is not an ONNX model/,
        ),
      },
    ]);
  });
});
