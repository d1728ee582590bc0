/**
 * Bad uploads, each through the real S3 protocol and the real `register` handler: every one is refused with its
 * reason under `rejected/`, `latest` does not move, and the model keeps serving. A file whose name does not end in
 * `.onnx` is not registered at all: the bucket notification (and the embedded server's) filters on the suffix.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFailingAtRunModel, encodeModel, ModelBuilder, tensorProto } from '../../tools/onnx/index.js';
import { onnx, type OnnxTypes } from '../../functions/core/onnx/proto.js';
import { type FlowStack, linearModel, outputData, startFlowStack } from './fixture.js';

/** The registration size limit of this stack: far above every test model but the oversized one. */
const MAX_MODEL_BYTES = 64 * 1024;

let flow: FlowStack;
const MODEL = 'victim';
const GOOD = linearModel(1);

beforeAll(async () => {
  flow = await startFlowStack({ MAX_MODEL_BYTES: String(MAX_MODEL_BYTES) });
  const outcome = await flow.uploadAndWait(MODEL, 'good.onnx', GOOD);
  if (outcome.kind !== 'registered') throw new Error(`the good model was not registered: ${JSON.stringify(outcome)}`);
});
afterAll(async () => {
  await flow?.close();
});

function identityWith(options: ConstructorParameters<typeof ModelBuilder>[0] = {}): ModelBuilder {
  return new ModelBuilder(options).input('x', 'FP32', ['N']).node('Identity', ['x'], ['y']).output('y', 'FP32', ['N']);
}

function withInitializer(initializer: OnnxTypes.ITensorProto): Uint8Array {
  const proto = new ModelBuilder()
    .input('x', 'FP32', ['N'])
    .node('Add', ['x', 'w'], ['y'])
    .output('y', 'FP32', ['N'])
    .toProto();
  proto.graph = { ...proto.graph, initializer: [initializer] };
  return encodeModel(proto);
}

const text = (s: string) => new TextEncoder().encode(s);
/** Deterministic noise: no fixed-seed flakiness, and never a valid protobuf by accident (checked by the test). */
const noise = Uint8Array.from({ length: 512 }, (_, i) => (i * 7919 + 13) % 251);

interface BadUpload {
  readonly kind: string;
  readonly file: string;
  readonly body: Uint8Array;
  readonly sample?: unknown;
  readonly reason: RegExp;
}

const BAD_UPLOADS: readonly BadUpload[] = [
  { kind: 'an empty file', file: 'empty.onnx', body: new Uint8Array(0), reason: /^the file is empty$/ },
  {
    kind: 'a truncated model',
    file: 'truncated.onnx',
    body: GOOD.slice(0, Math.floor(GOOD.length / 2)),
    reason: /not an ONNX model: .*truncated or corrupt protobuf data/,
  },
  { kind: 'random bytes', file: 'noise.onnx', body: noise, reason: /^The file is not an ONNX model/ },
  {
    kind: 'a text file renamed to .onnx',
    file: 'notes.onnx',
    body: text('hello, I am not a model\n'),
    reason: /^The file is not an ONNX model/,
  },
  {
    kind: 'valid protobuf that is not a model (a TensorProto)',
    file: 'tensor.onnx',
    body: onnx.TensorProto.encode(
      tensorProto('t', { datatype: 'FP32', dims: [2], data: new Float32Array([1, 2]) }),
    ).finish(),
    reason: /not an ONNX model: it holds no graph/,
  },
  {
    kind: 'an unsupported opset',
    file: 'opset99.onnx',
    body: identityWith({ opsets: { '': 99 } }).toBytes(),
    reason: /^onnxruntime cannot load the model: .*Opset 99 is under development/,
  },
  {
    kind: 'an operator onnxruntime does not know',
    file: 'unknown-op.onnx',
    body: new ModelBuilder()
      .input('x', 'FP32', ['N'])
      .node('NoSuchOp', ['x'], ['y'])
      .output('y', 'FP32', ['N'])
      .toBytes(),
    reason: /^onnxruntime cannot load the model: .*No Op registered for NoSuchOp/,
  },
  {
    kind: 'a missing initializer',
    file: 'missing-weights.onnx',
    body: new ModelBuilder()
      .input('x', 'FP32', ['N', 4])
      .node('MatMul', ['x', 'w'], ['y'])
      .output('y', 'FP32', ['N', 1])
      .toBytes(),
    reason: /^onnxruntime cannot load the model: .*Node input 'w' is not a graph input, initializer, or output/,
  },
  {
    kind: 'huge declared input dimensions',
    file: 'huge-input.onnx',
    body: new ModelBuilder()
      .input('x', 'FP32', [100_000, 100_000])
      .node('Identity', ['x'], ['y'])
      .output('y', 'FP32', [100_000, 100_000])
      .toBytes(),
    reason: /^the inputs declare 10000000000 elements .* over the 16777216-element limit of one request/,
  },
  {
    kind: 'an initializer declaring huge dimensions without the data',
    file: 'huge-initializer.onnx',
    body: withInitializer({ name: 'w', dims: [1_000_000_000, 1_000_000_000], dataType: 1, rawData: new Uint8Array(4) }),
    reason: /^onnxruntime cannot load the model: .*Initializer 'w' declares a size of/,
  },
  {
    kind: 'weights in an external data file',
    file: 'external.onnx',
    body: withInitializer({
      name: 'w',
      dims: [1],
      dataType: 1,
      dataLocation: 1,
      externalData: [{ key: 'location', value: 'w.bin' }],
    }),
    reason: /keeps 1 weight tensor\(s\) \(e\.g\. "w"\) in external data files/,
  },
  {
    kind: 'a model that fails at run time on the smoke input',
    file: 'fails-at-run.onnx',
    body: buildFailingAtRunModel(),
    reason:
      /^the smoke inference on generated inputs \(dynamic dimensions set to 1\) failed: .*out of data bounds.*upload a sample request as uploads\/victim\/fails-at-run\.onnx\.json/,
  },
  {
    kind: 'a model over MAX_MODEL_BYTES',
    file: 'too-big.onnx',
    body: new ModelBuilder()
      .input('x', 'FP32', ['N'])
      .initializer('w', { datatype: 'FP32', dims: [MAX_MODEL_BYTES / 4], data: new Float32Array(MAX_MODEL_BYTES / 4) })
      .node('Identity', ['x'], ['y'])
      .output('y', 'FP32', ['N'])
      .toBytes(),
    reason: new RegExp(`^the file has \\d+ bytes; the limit is ${MAX_MODEL_BYTES} \\(MAX_MODEL_BYTES\\)$`),
  },
  {
    kind: 'a sample whose expected output does not match',
    file: 'mismatch.onnx',
    body: linearModel(2),
    sample: {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 1, 1, 1] }],
      expected_outputs: [{ name: 'y', datatype: 'FP32', shape: [1, 1], data: [9] }],
    },
    reason: /^output y differs from the sample's expected output at element 0: expected 9, got 8/,
  },
  {
    kind: 'a sample that is not a V2 request',
    file: 'bad-sample.onnx',
    body: linearModel(4),
    sample: { instances: [[1, 2, 3, 4]] },
    reason: /^the sample uploads\/victim\/bad-sample\.onnx\.json is not a valid V2 request/,
  },
  {
    kind: 'a sample that does not fit the model',
    file: 'wrong-input.onnx',
    body: linearModel(5),
    sample: { inputs: [{ name: 'z', datatype: 'FP32', shape: [1, 4], data: [1, 1, 1, 1] }] },
    reason: /^the smoke inference on the sample request failed/,
  },
];

async function assertStillServing(): Promise<void> {
  const manifest = await flow.manifest(MODEL);
  expect(manifest?.latest).toBe('1');
  expect(manifest?.versions.map((v) => v.version)).toEqual(['1']);
  const answer = await flow.infer(MODEL, [[1, 2, 3, 4]]);
  expect([answer.status, outputData(answer)]).toEqual([200, [10]]);
}

describe('corrupt uploads', () => {
  it.each(BAD_UPLOADS)(
    'refuses $kind with its reason; latest stays and serves',
    async ({ file, body, sample, reason }) => {
      // Act
      const outcome = await flow.uploadAndWait(MODEL, file, body, sample);

      // Assess
      expect(outcome.kind).toBe('rejected');
      expect(outcome.kind === 'rejected' ? outcome.reason : '').toMatch(reason);
      const recorded = (await flow.rejections(MODEL)).filter((r) => r.sourceKey === `uploads/${MODEL}/${file}`);
      expect(recorded.map((r) => r.reason)).toEqual([expect.stringMatching(reason)]);
      await assertStillServing();
    },
  );

  it.each([
    ['with ".."', 'bad..name'],
    ['starting with "-"', '-lead'],
    ['of 129 characters', 'a'.repeat(129)],
  ])('refuses a model name %s before building any key from it', async (_, name) => {
    // Act
    const outcome = await flow.uploadAndWait(name, 'm.onnx', GOOD);

    // Assess
    expect(outcome).toMatchObject({ kind: 'rejected', reason: expect.stringMatching(/is not an allowed model name/) });
    const recorded = await flow.stack.runtime.repository.listRejections('_invalid-names');
    expect(recorded.filter((r) => r.model === name).map((r) => r.sourceKey)).toEqual([`uploads/${name}/m.onnx`]);
    expect(await flow.store.list(`models/${name}/`)).toEqual([]);
    await assertStillServing();
  });

  it('does not register a file without the .onnx suffix at all (the notification filters on it)', async () => {
    // Prepare
    const keys = [`uploads/${MODEL}/model.onnx.txt`, `uploads/${MODEL}/model.pt`, `uploads/${MODEL}/model.onnx.json`];

    // Act: then a marker upload; once its outcome is in and all deliveries settled, nothing else can be pending.
    for (const key of keys) await flow.store.put(key, linearModel(9));
    const marker = await flow.uploadAndWait(MODEL, 'marker.onnx', GOOD);
    await flow.stack.settled();

    // Assess
    expect(marker).toMatchObject({ kind: 'duplicate', version: '1' });
    for (const key of keys) expect(flow.outcomesFor(key)).toEqual([]);
    const rejectedKeys = (await flow.rejections(MODEL)).map((r) => r.sourceKey);
    for (const key of keys) expect(rejectedKeys).not.toContain(key);
    await assertStillServing();
  });
});
