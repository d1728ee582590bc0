/**
 * The `register_memory` section: the register handler's peak memory, in a fresh process each (see
 * `register-memory-child.ts`), for the uploads that used to be read whole into memory:
 *
 * - `legacy_rewrite`: an opset-6 model with 100 MB of weights, which registration upgrades to opset 7 (a rewrite);
 * - `zip_embedded_weights`: a `.zip` of a few hundred KB whose `.onnx` holds 300 MiB of (zero) weights inside it;
 * - `large_attribute`: a 3 MB opset-1 `Reshape` whose `shape` attribute holds 3M ints.
 *
 * Each is reported as the growth in bytes, as a ratio to the model's size (the `.onnx`, unpacked for a `.zip`),
 * and as a ratio to the stated bound (README, "Registration memory"): 2.5 x the model's graph (the `.onnx` without
 * its weights' values, its skeleton) plus 64 MiB, so at most 2.5 x the model plus 64 MiB.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { onnx } from '../functions/core/onnx/proto.js';
import { readModelSkeleton } from '../functions/core/onnx/skeleton.js';
import { attr, encodeModel, ModelBuilder } from '../tools/onnx/index.js';
import { buildLargeModel } from '../tools/onnx/sample-models.js';
import { writeZip } from '../tools/zip-writer.js';
import { printedNumber, runTsxChild } from './child.js';

const MB = 1024 * 1024;
const CHILD = fileURLToPath(new URL('./register-memory-child.ts', import.meta.url));

/**
 * The stated bound of the register handler's peak memory growth for a model whose graph (skeleton) has
 * `graphBytes`: 2.5 x the graph plus 64 MiB (buffers and modules, whatever the model). Weights are never read
 * into memory, so they do not count.
 */
export function registerMemoryBound(graphBytes: number): number {
  return 2.5 * graphBytes + 64 * MB;
}

/** The size of the skeleton of `model` (`readModelSkeleton`), written to `dir` to be read as registration reads it. */
export async function graphBytesOf(dir: string, model: Uint8Array): Promise<number> {
  const file = join(dir, 'graph-size.onnx');
  mkdirSync(dir, { recursive: true });
  writeFileSync(file, model);
  try {
    return (await readModelSkeleton(file)).byteLength;
  } finally {
    rmSync(file, { force: true });
  }
}

/** An opset-6 model of `weightBytes` weights: registration raises its opset (a rewrite of the whole file). */
export function legacyRewriteModel(weightBytes: number): Uint8Array {
  const proto = onnx.ModelProto.decode(buildLargeModel(weightBytes));
  proto.opsetImport = [onnx.OperatorSetIdProto.create({ domain: '', version: 6 })];
  return encodeModel(proto);
}

/**
 * A `.zip` holding one `.onnx` with `weightBytes` of zero FP32 weights inside it (no external data): `y = Gather(w,
 * i)`, so the smoke input is one index, not the weights' size. Zeros deflate to almost nothing.
 */
export function embeddedWeightsZip(weightBytes: number): { zip: Uint8Array; model: Uint8Array } {
  const model = new ModelBuilder({ graphName: 'embedded' })
    .input('i', 'INT64', ['N'])
    .initializer('w', { datatype: 'FP32', dims: [weightBytes / 4], data: new Float32Array(weightBytes / 4) })
    .node('Gather', ['w', 'i'], ['y'])
    .output('y', 'FP32', ['N'])
    .toBytes();
  return { zip: writeZip([{ name: 'model.onnx', data: model }]), model };
}

/** An opset-1 `Reshape` of a `[1]` input whose `shape` attribute holds `count` ones. */
export function largeAttributeModel(count: number): Uint8Array {
  return new ModelBuilder({ opsets: { '': 1 } })
    .input('x', 'FP32', [1])
    .node('Reshape', ['x'], ['y'], { shape: attr.ints(new Array<number>(count).fill(1)) })
    .output('y', { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT } })
    .toBytes();
}

/** One registration measured in its own process. */
export interface RegisterMemory {
  readonly model_bytes: number;
  /** The model's skeleton: what registration holds of it in memory. */
  readonly graph_bytes: number;
  readonly upload_bytes: number;
  readonly peak_rss_growth_bytes: number;
  readonly peak_rss_over_model: number;
  /** Growth over {@link registerMemoryBound}: at most 1 when the bound holds. */
  readonly peak_rss_over_bound: number;
  readonly outcome: string;
  /** The refusal's reason, when refused. */
  readonly reason?: string;
}

/**
 * Registers `upload` (written under `uploads/<model>/<file>` of a fresh folder repository in `workDir`) in a fresh
 * process and reports its peak memory against the model's size and graph size. `env` is the handler's environment.
 */
export async function measureRegistration(
  workDir: string,
  file: string,
  upload: Uint8Array,
  model: { readonly bytes: number; readonly graphBytes: number },
  env: Readonly<Record<string, string>> = {},
): Promise<RegisterMemory> {
  const repo = join(workDir, `repo-${file}`);
  rmSync(repo, { recursive: true, force: true });
  mkdirSync(join(repo, 'uploads', 'measured'), { recursive: true });
  writeFileSync(join(repo, 'uploads', 'measured', file), upload);
  try {
    const out = await runTsxChild(CHILD, [repo, `uploads/measured/${file}`], `register ${file}`, env);
    const growth = printedNumber(out, 'growth', file);
    return {
      model_bytes: model.bytes,
      graph_bytes: model.graphBytes,
      upload_bytes: upload.byteLength,
      peak_rss_growth_bytes: growth,
      peak_rss_over_model: growth / model.bytes,
      peak_rss_over_bound: growth / registerMemoryBound(model.graphBytes),
      outcome: /outcome (\S+)/.exec(out)?.[1] ?? 'none',
      ...(/^reason (.*)$/m.test(out) ? { reason: /^reason (.*)$/m.exec(out)?.[1] ?? '' } : {}),
    };
  } finally {
    rmSync(repo, { recursive: true, force: true });
  }
}

/** What {@link measureRegisterMemory} reports, under `register_memory` in `bench/results.json`. */
export interface RegisterMemoryResults {
  readonly legacy_rewrite: RegisterMemory;
  readonly zip_embedded_weights: RegisterMemory;
  readonly large_attribute: RegisterMemory;
}

/** The model of each case (a `.zip`'s `.onnx`), its upload, and its sizes. */
async function measureCase(workDir: string, file: string, upload: Uint8Array, model: Uint8Array) {
  const size = { bytes: model.byteLength, graphBytes: await graphBytesOf(workDir, model) };
  return measureRegistration(workDir, file, upload, size);
}

/** Runs the section in `workDir` (removed parts as it goes). */
export async function measureRegisterMemory(
  workDir: string,
  step: (what: string) => void,
): Promise<RegisterMemoryResults> {
  step('register_memory: an opset-6 model with 100 MB of weights (rewritten)');
  const legacy = legacyRewriteModel(100 * MB);
  const legacyRewrite = await measureCase(workDir, 'legacy.onnx', legacy, legacy);
  step('register_memory: a .zip whose .onnx embeds 300 MiB of weights');
  const embedded = embeddedWeightsZip(300 * MB);
  const zip = await measureCase(workDir, 'embedded.zip', embedded.zip, embedded.model);
  step('register_memory: an opset-1 Reshape with a 3M-int shape attribute');
  const attribute = largeAttributeModel(3_000_000);
  const large = await measureCase(workDir, 'attribute.onnx', attribute, attribute);
  return { legacy_rewrite: legacyRewrite, zip_embedded_weights: zip, large_attribute: large };
}
