/**
 * The onnxruntime-node Lambda layer of one architecture, built at synth time by `layers/onnxruntime/build.ts`.
 */
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  LAMBDA_UNZIPPED_LIMIT_BYTES,
  NODE_ARCH,
  buildOnnxruntimeLayer,
  formatMegabytes,
} from '../layers/onnxruntime/build.js';
import { NODE_RUNTIMES, lambdaArchitecture, lambdaRuntime, type Architecture } from './lambda-runtime.js';

/**
 * The layer may use at most this share of Lambda's 250 MB so the function bundle, and a future onnxruntime
 * release, still fit.
 */
export const LAYER_BUDGET_BYTES = Math.floor(LAMBDA_UNZIPPED_LIMIT_BYTES * 0.6);

/** Props of {@link OnnxruntimeLayer}. */
export interface OnnxruntimeLayerProps {
  /** The architecture whose native binaries the layer holds. */
  readonly architecture: Architecture;
  /**
   * Where to build the layer's files.
   * @default `layers/onnxruntime/build/<architecture>` (git-ignored)
   */
  readonly buildDir?: string;
}

/** `nodejs/node_modules/onnxruntime-node` + `onnxruntime-common`, with only `linux/<cpu>` binaries. */
export class OnnxruntimeLayer extends Construct {
  /** The architecture the layer was built for. */
  public readonly architecture: Architecture;
  /** The layer version to attach to functions of that architecture. */
  public readonly layerVersion: lambda.LayerVersion;
  /** Unzipped size, counted against Lambda's 250 MB together with the function's bundle. */
  public readonly unzippedBytes: number;

  constructor(scope: Construct, id: string, props: OnnxruntimeLayerProps) {
    super(scope, id);
    this.architecture = props.architecture;
    const build = buildOnnxruntimeLayer(props.architecture, props.buildDir);
    if (build.unzippedBytes > LAYER_BUDGET_BYTES) {
      throw new Error(
        `${this.node.path}: the ${props.architecture} onnxruntime layer is ${formatMegabytes(build.unzippedBytes)} ` +
          `unzipped, over its ${formatMegabytes(LAYER_BUDGET_BYTES)} budget of Lambda's 250 MB; check that ` +
          "layers/onnxruntime/build.ts still copies only one platform's binaries",
      );
    }
    this.unzippedBytes = build.unzippedBytes;
    const version = (
      JSON.parse(
        readFileSync(join(build.dir, 'nodejs', 'node_modules', 'onnxruntime-node', 'package.json'), 'utf8'),
      ) as { version: string }
    ).version;
    this.layerVersion = new lambda.LayerVersion(this, 'Layer', {
      code: lambda.Code.fromAsset(build.dir),
      compatibleArchitectures: [lambdaArchitecture(props.architecture)],
      // onnxruntime-node's binaries are N-API: one build serves every supported Node major.
      compatibleRuntimes: NODE_RUNTIMES.map(lambdaRuntime),
      license: 'MIT',
      description:
        `onnxruntime-node ${version}, linux/${NODE_ARCH[props.architecture]} binaries only ` +
        `(${formatMegabytes(build.unzippedBytes)} unzipped)`,
    });
  }
}
