/**
 * The deployable artifacts, built exactly as `cdk deploy` builds them: the app synthesized with bundling (esbuild
 * bundles of the handlers, the onnxruntime layer of the function's architecture), and each layer's size.
 */
import { App, Stack } from 'aws-cdk-lib';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { parseCatalogEntry } from '../functions/core/catalog.js';
import { stagedFunction, type StagedFunction, type TemplateJson } from '../tools/lambda-process.js';
import { OnnxServerlessStack } from '../infra/onnx-serverless-stack.js';
import { LAYER_ARCHITECTURES, buildOnnxruntimeLayer, type LayerArchitecture } from '../layers/onnxruntime/build.js';

/** The staged infer function of one model. */
export interface InferArtifact extends StagedFunction {
  readonly logicalId: string;
  /** Bytes of `index.mjs`, the code Lambda loads. */
  readonly bundleBytes: number;
  /** Bytes of its source map, shipped next to it (`NODE_OPTIONS=--enable-source-maps`). */
  readonly sourceMapBytes: number;
}

/**
 * Synthesizes the stack for one catalog entry (`name`, with `catalog` as its `models/<name>.json`) into
 * `workDir`, and returns its infer function as staged.
 */
export function synthesizeInfer(name: string, catalog: Record<string, unknown>, workDir: string): InferArtifact {
  const entry = parseCatalogEntry(name, catalog);
  const app = new App({ outdir: join(workDir, 'cdk.out') });
  const stack = new OnnxServerlessStack(app, 'Bench', {
    models: [entry],
    sharedArchitecture: entry.architecture,
    layerBuildDir: join(workDir, 'layers'),
  });
  const assembly = app.synth();
  const fn = stack.endpoints.get(name)?.inferFunction.function;
  if (fn === undefined) throw new Error(`the stack has no infer function for ${name}`);
  const logicalId = Stack.of(fn).resolve(Stack.of(fn).getLogicalId(fn.node.defaultChild as never)) as string;
  const template = assembly.getStackByName(stack.stackName).template as TemplateJson;
  const staged = stagedFunction(template, assembly.directory, logicalId);
  const mapFile = join(staged.bundleDir, 'index.mjs.map');
  let sourceMapBytes = 0;
  try {
    sourceMapBytes = statSync(mapFile).size;
  } catch {
    // No source map staged.
  }
  return { ...staged, logicalId, bundleBytes: statSync(join(staged.bundleDir, 'index.mjs')).size, sourceMapBytes };
}

/** Unzipped bytes of the onnxruntime layer of every architecture, built into `workDir`. */
export function layerSizes(workDir: string): Record<LayerArchitecture, number> {
  return Object.fromEntries(
    LAYER_ARCHITECTURES.map((arch) => [
      arch,
      buildOnnxruntimeLayer(arch, join(workDir, 'layer-sizes', arch)).unzippedBytes,
    ]),
  ) as Record<LayerArchitecture, number>;
}
