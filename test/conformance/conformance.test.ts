/**
 * The shared conformance corpus through the whole product (`npm run conformance`, in-process): every model is
 * uploaded to the embedded S3 server, registered by the `register` handler, and asked over HTTP. Skipped, with a
 * message saying why, where the corpus is absent (a fresh clone outside CI); a failure under REQUIRE_CONFORMANCE=1.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { InferenceClient } from '../../conformance/client.js';
import { discoverCases, resolveCorpusDir, type Category } from '../../conformance/corpus.js';
import { planCase } from '../../conformance/plans.js';
import { countsByCategory, writeResults } from '../../conformance/report.js';
import {
  ONNXRUNTIME_AGREES,
  runConformance,
  type CaseResult,
  type ConformanceReport,
} from '../../conformance/runner.js';
import { createS3Client } from '../../functions/adapters/s3-client.js';
import { describeWithCorpus } from '../support/corpus.js';
import { startLocal, type LocalStack } from '../../functions/local/local-runtime.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const corpusDir = resolveCorpusDir(repoRoot);

function lines(results: readonly CaseResult[]): string {
  return results.map((r) => `${r.category}/${r.name}: ${r.detail}`).join('\n');
}

describeWithCorpus(corpusDir, 'conformance corpus, end to end', () => {
  let report: ConformanceReport;
  const of = (category: Category, kind?: CaseResult['result']) =>
    report.cases.filter((c) => c.category === category && (kind === undefined || c.result === kind));

  // About 100 s alone on 2 cores for 167 cases; the margin is for a CI machine shared with other jobs.
  beforeAll(async () => {
    report = await runConformance({ corpusDir });
  }, 600_000);

  it('reports every case once, and nothing failed for reasons other than the oracle', () => {
    // Assess
    const expected = discoverCases(corpusDir).map((c) => `${c.category}/${c.name}`);
    expect(report.cases.map((c) => `${c.category}/${c.name}`)).toEqual(expected);
    expect(report.total).toBe(expected.length);
    expect(report.served_and_matching + report.refused_at_registration + report.mismatch + report.other_failure).toBe(
      report.total,
    );
    expect(lines(report.cases.filter((c) => c.result === 'other_failure'))).toBe('');
  });

  it('serves every ONNX backend case, the opset-6 exports upgraded to opset 7; only training graphs are refused', () => {
    // Assess: a refusal of a model onnxruntime runs directly would be an other_failure (checked by the runner).
    const counts = countsByCategory(report)['onnx-backend'];
    expect(lines(of('onnx-backend', 'mismatch'))).toBe('');
    expect(counts.served_and_matching + counts.refused_at_registration).toBe(counts.total);
    for (const refused of of('onnx-backend', 'refused_at_registration')) {
      expect(refused.detail).toMatch(/^onnxruntime cannot load the model: .*ai\.onnx\.preview\.training:Gradient/);
    }
    // The 2017-2018 PyTorch exports (opset 6) are served through the version converter and match their references.
    const upgraded = of('onnx-backend', 'served_and_matching').filter((c) => c.detail.includes('upgrade-opset'));
    expect(upgraded.map((c) => c.name)).toEqual(
      expect.arrayContaining([
        'test_AvgPool2d',
        'test_BatchNorm2d_eval',
        'test_Linear',
        'test_PReLU_2d_multiparam',
        'test_operator_add_broadcast',
      ]),
    );
    // StringNormalizer models are served, in C.UTF-8 where the runtime lacks en_US.UTF-8 (as on Lambda).
    expect(report.cases.filter((c) => /locale/.test(c.detail) && c.result !== 'served_and_matching')).toEqual([]);
    expect(of('onnx-backend', 'served_and_matching').some((c) => c.detail.includes('BYTES in JSON and binary'))).toBe(
      true,
    );
  });

  it("serves every TensorFlow/Keras and CNTK export, matching the original framework's predictions", () => {
    // Assess
    const cases = of('frameworks');
    expect(cases.length).toBeGreaterThan(0);
    expect(lines(cases.filter((c) => c.result !== 'served_and_matching'))).toBe('');
    expect(cases.some((c) => c.name.startsWith('tensorflow_keras-'))).toBe(true);
    expect(cases.some((c) => c.name.startsWith('cntk-'))).toBe(true);
  });

  it('serves every light CNN and PaddlePaddle model, matching their oracles, over the binary extension', () => {
    // Assess
    for (const category of ['onnx-light', 'paddle'] as const) {
      const cases = of(category);
      expect(cases.length).toBeGreaterThan(0);
      expect(lines(cases.filter((c) => c.result !== 'served_and_matching'))).toBe('');
      for (const served of cases) expect(served.detail).toContain('binary tensors');
    }
  });

  it('serves scikit-learn models, ZipMap classifiers included; a mismatch is only ever the model file disagreeing with scikit-learn', () => {
    // Assess
    const served = of('sklearn', 'served_and_matching');
    expect(served.length).toBeGreaterThan(of('sklearn').length / 2);
    const zipMapServed = served.filter((c) => c.detail.includes('remove-zipmap'));
    expect(zipMapServed.length).toBeGreaterThan(0);
    expect(zipMapServed.filter((c) => c.detail.includes('zipmap rows checked')).length).toBeGreaterThan(0);
    // What onnxruntime computes from the file is what the server returns; the file itself disagrees with scikit-learn
    // (old onnxmltools SVC conversions without probabilities, see the README).
    for (const mismatch of of('sklearn', 'mismatch')) expect(mismatch.detail.startsWith(ONNXRUNTIME_AGREES)).toBe(true);
    // Refused: only a case whose inputs onnxruntime itself refuses for this model (checked directly by the runner).
    for (const refused of of('sklearn', 'refused_at_registration')) {
      expect(refused.detail).toMatch(
        /^the smoke inference on the sample request failed: the model refused the inputs: /,
      );
    }
  });

  it('writes results.json in the agreed format', async () => {
    // Prepare
    const dir = await mkdtemp(path.join(os.tmpdir(), 'conformance-results-'));
    const file = path.join(dir, 'results.json');

    // Act
    await writeResults(file, report);

    // Assess
    const written = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    expect(Object.keys(written)).toEqual([
      'total',
      'served_and_matching',
      'refused_at_registration',
      'mismatch',
      'other_failure',
      'cases',
    ]);
    expect((written.cases as CaseResult[])[0]).toEqual({
      category: expect.any(String),
      name: expect.any(String),
      result: expect.stringMatching(/^(served_and_matching|refused_at_registration|mismatch|other_failure)$/),
      detail: expect.any(String),
    });
    await rm(dir, { recursive: true, force: true });
  });
});

describeWithCorpus(corpusDir, 'a model onnxruntime cannot run, uploaded over a served one', () => {
  let stack: LocalStack;
  let dataDir: string;

  beforeAll(async () => {
    ort.env.logLevel = 'fatal';
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'conformance-isolation-'));
    stack = await startLocal({ port: 0, s3Port: 0, dataDir, silent: true });
  });
  afterAll(async () => {
    await stack.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("is refused with onnxruntime's reason while the previous version keeps serving", async () => {
    // Prepare: a backend case with a single JSON-sized input, and a training graph onnxruntime cannot load.
    const cases = discoverCases(corpusDir, ['onnx-backend']);
    const servedCase = cases.find((c) => c.name === 'test_Sigmoid');
    const refusedCase = cases.find((c) => c.name === 'test_gradient_of_add');
    if (servedCase === undefined || refusedCase === undefined)
      throw new Error('the corpus lacks test_Sigmoid or test_gradient_of_add');
    const [served, refused] = await Promise.all([planCase(servedCase), planCase(refusedCase)]);
    const s3 = createS3Client({
      endpoint: stack.s3.endpoint,
      region: stack.s3.region,
      credentials: stack.s3.credentials,
    });
    const client = new InferenceClient(stack.gatewayUrl);
    const put = async (key: string, body: Uint8Array) => {
      await s3.send(new PutObjectCommand({ Bucket: stack.s3.bucket, Key: key, Body: body }));
      await stack.settled();
    };
    await put('uploads/net/v1.onnx', served.model);
    const inputs = served.requests[0] ?? [];
    const before = await client.infer('net', inputs);

    // Act
    await put('uploads/net/v2.onnx', refused.model);

    // Assess
    const outcomes = stack.registrations.flatMap((r) => r.outcomes);
    expect(outcomes.map((o) => o.kind)).toEqual(['registered', 'rejected']);
    const after = await client.infer('net', inputs);
    expect(after.modelVersion).toBe('1');
    expect(after.outputs).toEqual(before.outputs);
    expect(
      served.check([
        after.outputs.map((o) => ({
          datatype: o.datatype,
          shape: o.shape,
          values: Array.from(o.data as Float32Array),
        })),
      ]),
    ).toEqual([]);
    const index = await client.repositoryIndex();
    expect(index).toEqual([
      { name: 'net', version: '1', state: 'READY', reason: '' },
      {
        name: 'net',
        version: '',
        state: 'UNAVAILABLE',
        reason: expect.stringContaining('ai.onnx.preview.training:Gradient'),
      },
    ]);
    s3.destroy();
  });
});
