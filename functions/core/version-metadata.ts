/**
 * The one place a version's `metadata.json` is assembled from what validation found, for both registration paths
 * (the upload read into memory, and the upload streamed to a file, `.zip` included).
 */
import type { LocalFile } from './blob-store.js';
import type { AppliedRewrite } from './types.js';
import type { Preprocess } from './image/spec.js';
import type { DeclaredRollout } from './rollout.js';
import type { ExternalDataFile, ModelMetadata, TensorSpec } from './types.js';

/** What validation found out about a model (the result of registration's `validate`). */
export interface ValidatedModel {
  /** The model to store: rewritten bytes, or the uploaded file itself when no rewrite applied (`LocalFile`). */
  readonly model: Uint8Array | LocalFile;
  readonly servedSha256: string;
  /** Bytes of the model served. */
  readonly size: number;
  readonly rewrites: readonly AppliedRewrite[];
  readonly classLabels: Readonly<Record<string, readonly (string | number)[]>>;
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
  readonly preprocess?: Preprocess | undefined;
  /** The rollout policy the version registers under (catalog entry or sidecar), kept out of its metadata. */
  readonly rollout?: DeclaredRollout | undefined;
}

/** The metadata of `version` of `model`, registered from the upload `sourceKey`. */
export function versionMetadata(
  validated: ValidatedModel,
  where: {
    model: string;
    version: string;
    sourceKey: string;
    createdAt: string;
    externalData?: readonly ExternalDataFile[];
  },
): ModelMetadata {
  return {
    name: where.model,
    version: where.version,
    platform: 'onnxruntime_onnx',
    inputs: validated.inputs,
    outputs: validated.outputs,
    sha256: validated.servedSha256,
    size: validated.size,
    sourceKey: where.sourceKey,
    createdAt: where.createdAt,
    rewrites: validated.rewrites,
    ...(Object.keys(validated.classLabels).length > 0 ? { classLabels: validated.classLabels } : {}),
    ...(validated.preprocess === undefined ? {} : { preprocess: validated.preprocess }),
    ...(where.externalData === undefined ? {} : { externalData: where.externalData }),
  };
}
