/**
 * The types registration's two modules share: `registration.ts` (the upload's outcome, the sample, the smoke test)
 * calls `file-registration.ts` (streaming to disk, archives), which is handed `validate` and speaks of the same
 * options and outcomes. Declared here, neither module imports the other's types, so they form no import cycle.
 */
import type { BlobStore } from './blob-store.js';
import type { Limits } from './catalog.js';
import type { Preprocess } from './image/spec.js';
import type { ModelRepository, NewVersion } from './model-repository.js';
import type { RewriteOptions } from './onnx/rewrites.js';
import type { RolloutPolicy } from './rollout.js';
import type { ModelSession, SessionFactory, SessionOptions } from './session.js';
import type { ValidatedModel } from './version-metadata.js';

/** What became of one uploaded object. */
export type RegistrationOutcome =
  | { readonly kind: 'registered'; readonly model: string; readonly version: string; readonly key: string }
  | { readonly kind: 'duplicate'; readonly model: string; readonly version: string; readonly key: string }
  | { readonly kind: 'rejected'; readonly model: string; readonly reason: string; readonly key: string }
  | { readonly kind: 'ignored'; readonly reason: string; readonly key: string };

/** Dependencies and settings of registration. */
export interface RegistrationOptions {
  /** Called after each step of adding a version: see `NewVersion.afterStep` (the crash tests' fault). @default none */
  readonly afterStep?: NewVersion['afterStep'];
  readonly store: BlobStore;
  readonly repository: ModelRepository;
  readonly sessionFactory: SessionFactory;
  readonly sessionOptions: SessionOptions;
  /** Largest model file accepted, in bytes. */
  readonly maxModelBytes: number;
  /** Limits applied to the optional sample request. */
  readonly limits: Limits;
  /**
   * Image preprocessing that catalog entries declare, per model (`CATALOG_PREPROCESS`): it applies to every upload
   * of the model and wins over the sidecar's, which may only repeat it.
   * @default none
   */
  readonly catalogPreprocess?: ReadonlyMap<string, Preprocess>;
  /**
   * Rollout policies that catalog entries declare, per model (`CATALOG_ROLLOUT`): as `catalogPreprocess`, it applies
   * to every upload of the model and wins over the sidecar's, which may only repeat it.
   * @default none
   */
  readonly catalogRollout?: ReadonlyMap<string, RolloutPolicy>;
  /** Folder for the upload's files while it registers. @default `<os.tmpdir()>` */
  readonly scratchDir?: string;
  /**
   * Stream the upload to a file in `scratchDir` and validate from the path (`file-registration.ts`): memory stays
   * bounded for large models, and `.zip` uploads need it. `false` keeps the whole upload in one buffer.
   * @default true
   */
  readonly fromFile?: boolean;
  /**
   * Largest model graph (an `.onnx` without its weights' values, what registration holds in memory of a model:
   * the weights never enter it) accepted; over it, the upload is refused with the reason, before the graph is
   * read. The register handler passes `MAX_GRAPH_BYTES`.
   * @default no limit
   */
  readonly maxGraphBytes?: number;
  /** @default () => new Date() */
  readonly now?: () => Date;
}

/**
 * How `validate` (`registration.ts`) gets a session for the (possibly rewritten) model, and which rewrite options apply. Without
 * one, the bytes are the whole model and are loaded from memory (stores without disk); registration from a file
 * passes the file and its skeleton (`file-registration.ts`).
 */
export interface ValidationTarget {
  readonly open?: (model: Uint8Array) => Promise<ModelSession>;
  readonly rewrite?: RewriteOptions;
  /**
   * The model is this file and the bytes given to `validate` are its skeleton (`onnx/skeleton.ts`): rewrites
   * apply to the skeleton, and `write` writes a rewritten skeleton with the file's weights put back (the same
   * model for the same bytes), so the weights never enter memory. Unchanged, the file itself is what gets stored.
   */
  readonly file?: {
    readonly path: string;
    readonly sha256: string;
    readonly size: number;
    readonly write: (model: Uint8Array) => Promise<{ path: string; sha256: string; size: number }>;
  };
}

/**
 * `validate` of `registration.ts`: rewrite, load, describe and smoke-test the model, or throw `ModelRejectedError`
 * with the reason. `file-registration.ts` is handed it, as the module that calls it cannot be imported back.
 */
export type Validate = (
  bytes: Uint8Array,
  key: string,
  options: RegistrationOptions,
  target?: ValidationTarget,
) => Promise<ValidatedModel>;
