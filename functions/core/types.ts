/**
 * The vocabulary shared by every part of the core: KServe V2 datatypes, tensors, requests and responses,
 * model metadata and the manifest. Pure types and constants; no I/O.
 */
import type { Preprocess } from './image/spec.js';
import type { RolloutPolicy, RolloutState } from './rollout.js';

/** KServe V2 / Open Inference Protocol tensor datatypes that onnxruntime-node can feed and fetch. */
export const DATATYPES = [
  'BOOL',
  'UINT8',
  'UINT16',
  'UINT32',
  'UINT64',
  'INT8',
  'INT16',
  'INT32',
  'INT64',
  'FP16',
  'FP32',
  'FP64',
  'BYTES',
] as const;

/** One of {@link DATATYPES}. */
export type Datatype = (typeof DATATYPES)[number];

/**
 * In-memory element storage per datatype. BOOL is one byte per element (0 or 1); FP16 holds IEEE half bits;
 * BYTES holds UTF-8 decoded strings (onnxruntime's string tensors).
 */
export interface TensorDataByType {
  BOOL: Uint8Array;
  UINT8: Uint8Array;
  UINT16: Uint16Array;
  UINT32: Uint32Array;
  UINT64: BigUint64Array;
  INT8: Int8Array;
  INT16: Int16Array;
  INT32: Int32Array;
  INT64: BigInt64Array;
  FP16: Uint16Array;
  FP32: Float32Array;
  FP64: Float64Array;
  BYTES: string[];
}

/** Element storage of any datatype. */
export type TensorData = TensorDataByType[Datatype];

/** A named, shaped, typed tensor: what requests carry in and responses carry out. */
export interface Tensor {
  readonly name: string;
  readonly datatype: Datatype;
  readonly shape: readonly number[];
  readonly data: TensorData;
}

/** A tensor declared by a model: `shape` uses -1 for a dynamic dimension. */
export interface TensorSpec {
  readonly name: string;
  readonly datatype: Datatype;
  readonly shape: readonly number[];
}

/** An output the client asked for, and whether it wants it in the binary extension. */
export interface RequestedOutput {
  readonly name: string;
  readonly binary: boolean;
  /**
   * Triton's classification extension (`parameters.classification`, the client's `class_count`): answer with the
   * top `classCount` classes as BYTES `"score:index[:label]"` instead of the tensor.
   */
  readonly classCount?: number;
}

/** A decoded inference request, independent of its wire format. */
export interface InferenceRequest {
  readonly id?: string;
  readonly inputs: readonly Tensor[];
  /** Outputs named by the client; `undefined` means all of the model's outputs. */
  readonly outputs?: readonly RequestedOutput[];
  /** Request-level `binary_data_output`: the default for outputs not listed in `outputs`. */
  readonly binaryOutputByDefault: boolean;
  /** Request-level `parameters` as sent (validated by whoever reads them). */
  readonly parameters: Readonly<Record<string, unknown>>;
  /**
   * BYTES inputs that carry encoded images for inputs with declared image preprocessing (the codec's
   * `encodedInputs` option), kept as bytes and not in `inputs`: `core/image` decodes and preprocesses them into
   * tensors before inference.
   */
  readonly encodedInputs?: readonly EncodedInput[];
}

/** A BYTES input whose elements are opaque bytes (an encoded image each), as the request sent them. */
export interface EncodedInput {
  readonly name: string;
  /** The request's shape of the BYTES tensor (`[N]` for N images). */
  readonly shape: readonly number[];
  readonly elements: readonly Uint8Array[];
}

/** The answer to an inference request, before it is put on the wire. */
export interface InferenceResponse {
  readonly modelName: string;
  readonly modelVersion: string;
  readonly id?: string;
  readonly outputs: readonly Tensor[];
  /** Per-output extra JSON fields (e.g. `{label: probability}` rows), keyed by output name. */
  readonly outputParameters?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** Response-level `parameters` (e.g. where an image body landed in the input tensor). */
  readonly parameters?: Readonly<Record<string, unknown>>;
}

/** A graph rewrite applied at registration, recorded in the version's metadata. */
export interface AppliedRewrite {
  /** e.g. `"remove-zipmap"`. */
  readonly kind: string;
  /** The graph output it changed. */
  readonly output: string;
  readonly detail: string;
}

/** `models/<model>/<version>/metadata.json`: everything needed to describe and serve one version. */
export interface ModelMetadata {
  readonly name: string;
  readonly version: string;
  readonly platform: 'onnxruntime_onnx';
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
  readonly sha256: string;
  readonly size: number;
  /** The `uploads/...` key the version was registered from. */
  readonly sourceKey: string;
  readonly createdAt: string;
  readonly rewrites: readonly AppliedRewrite[];
  /** Class labels per output whose ZipMap was removed: column i of the probabilities is label i. */
  readonly classLabels?: Readonly<Record<string, readonly (string | number)[]>>;
  /** Declared image preprocessing per input (from the upload's sidecar or the catalog entry). */
  readonly preprocess?: Preprocess;
  /**
   * External-data files of a version registered from a `.zip` (README, "External data"): stored beside
   * `model.onnx` under their `location`, each with its own checksum. Absent for a single-file model.
   */
  readonly externalData?: readonly ExternalDataFile[];
}

/** One external-data file of a version: `models/<model>/<version>/<location>`. */
export interface ExternalDataFile {
  /** Path relative to `model.onnx`, as the model's initializers name it (`location`). */
  readonly location: string;
  readonly sha256: string;
  readonly size: number;
}

/** State of one version in the manifest. */
export type VersionState = 'READY' | 'UNAVAILABLE';

/** One version's row in the manifest. */
export interface ManifestVersion {
  readonly version: string;
  readonly state: VersionState;
  readonly sha256: string;
  readonly size: number;
  readonly sourceKey: string;
  readonly createdAt: string;
  readonly reason?: string;
}

/** `models/<model>/manifest.json`. */
export interface Manifest {
  readonly name: string;
  /** Version served by `/v2/models/<m>` without `/versions/<v>`. */
  readonly latest: string;
  readonly versions: readonly ManifestVersion[];
  /** Optional named pointers (`stable`, `canary`) to versions. */
  readonly labels: Readonly<Record<string, string>>;
  /** The model's rollout policy set with the CLI (`rollout <m> policy`): used when no catalog entry or sidecar sets one. */
  readonly rolloutPolicy?: RolloutPolicy;
  /** The model's last rollout (docs/rollouts.md): `latest` is its stable version while it runs. */
  readonly rollout?: RolloutState;
}

/** `rejected/<model>/<time>-<file>.json`. */
export interface Rejection {
  readonly model: string;
  readonly sourceKey: string;
  readonly rejectedAt: string;
  readonly reason: string;
  readonly sha256?: string;
}
