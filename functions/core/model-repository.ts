/**
 * The model repository: the one place that knows the key layout of DESIGN.md and how the manifest changes.
 * Everything that reads or writes models, versions, manifests or rejections goes through here.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { BlobStore, DownloadedObject, DownloadOptions, LocalFile } from './blob-store.js';
import { z } from 'zod';
import { CorruptObjectError, ModelRejectedError, NotFoundError, PreconditionFailedError } from './errors.js';
import { DATATYPES, type Manifest, type ManifestVersion, type ModelMetadata, type Rejection } from './types.js';
import { isValidModelName } from './catalog.js';
import { MAX_ERROR_MESSAGE_CHARS } from './redact.js';
import { CAPTURE_PREFIX } from './capture.js';
import {
  ALL_AT_ONCE,
  finish,
  isActive,
  rolloutPolicySchema,
  rolloutStateSchema,
  startRollout,
  type DeclaredRollout,
} from './rollout.js';

/** The three top-level folders of the repository (DESIGN.md). */
export const REPOSITORY_PREFIXES = {
  uploads: 'uploads/',
  models: 'models/',
  rejected: 'rejected/',
  /** Data capture's batch files (`capture/<model>/<version>/yyyy/mm/dd/hh/<file>.jsonl`, `core/capture.ts`). */
  capture: CAPTURE_PREFIX,
} as const;

/** Prefix under which users upload candidate models. */
export const UPLOADS_PREFIX = REPOSITORY_PREFIXES.uploads;
/** Suffix of the single-file uploads that start a registration (the bucket notification filters on both). */
export const UPLOAD_SUFFIX = '.onnx';
/** Suffix of an upload holding one `.onnx` file and its external-data files (README, "External data"). */
export const ARCHIVE_SUFFIX = '.zip';
/**
 * Every suffix that starts a registration: the bucket notifications (one per suffix, as S3 allows one suffix per
 * filter) and the local S3's event filter both read this list.
 */
export const UPLOAD_SUFFIXES = [UPLOAD_SUFFIX, ARCHIVE_SUFFIX] as const;

/** True when an object created under `key` starts a registration. */
export function isRegistrationUpload(key: string): boolean {
  return key.startsWith(UPLOADS_PREFIX) && UPLOAD_SUFFIXES.some((suffix) => key.endsWith(suffix));
}

/** Keys of the repository layout. Model names must have been validated before they get here. */
export const repositoryKeys = {
  modelFile: (model: string, version: string) => `models/${model}/${version}/model.onnx`,
  metadata: (model: string, version: string) => `models/${model}/${version}/metadata.json`,
  /** An external-data file, beside `model.onnx` as onnxruntime looks for it. */
  dataFile: (model: string, version: string, location: string) => `models/${model}/${version}/${location}`,
  manifest: (model: string) => `models/${model}/manifest.json`,
  versionsPrefix: (model: string) => `models/${model}/`,
  /** Holds a version number for one upload's bytes while it registers (see `ModelRepository.addVersion`). */
  versionClaim: (model: string, version: string) => `models/${model}/claims/version-${version}.json`,
  claimsPrefix: (model: string) => `models/${model}/claims/`,
  /** The one outcome of the upload `sourceKey` (see {@link OutcomeRecord}): its name is a hash of the key. */
  outcome: (model: string, sourceKey: string) => `models/${model}/outcomes/${outcomeId(sourceKey)}.json`,
  outcomesPrefix: (model: string) => `models/${model}/outcomes/`,
  rejection: (model: string, time: string, file: string) => `rejected/${model}/${time}-${file}.json`,
  rejectionsPrefix: (model?: string) => (model === undefined ? 'rejected/' : `rejected/${model}/`),
} as const;

/**
 * Where refusals of uploads whose model name is not allowed are recorded: the name cannot be used in a key, and
 * `_` can never start a valid model name, so this folder cannot collide with a model's.
 */
export const INVALID_NAME_REJECTIONS = '_invalid-names';

/**
 * The file name (without `.json`) of an upload's outcome record: the sha256 (hex) of its key, so that any key (up
 * to S3's 1,024 bytes, any characters) makes a short, fixed-length key, and a listing of `models/<m>/outcomes/`
 * alone tells which uploads have an outcome.
 */
export function outcomeId(sourceKey: string): string {
  return createHash('sha256').update(sourceKey, 'utf8').digest('hex');
}

/** S3's longest key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;

/**
 * The one recorded outcome of an upload, at `models/<model>/outcomes/<sha256 of the upload key>.json`, written last
 * (after the manifest, or after the rejection record): once it exists, reconciliation never reads the upload again.
 */
export interface OutcomeRecord {
  readonly sourceKey: string;
  /** `registered` as `version`; `duplicate` of `version` (the same bytes under another key); or `refused`. */
  readonly outcome: 'registered' | 'duplicate' | 'refused';
  readonly version?: string;
  /** Why it was refused (as in its rejection record). */
  readonly reason?: string;
  /** Where the rejection record is (`rejected/<model>/...`). */
  readonly rejectionKey?: string;
  /** sha256 of the uploaded bytes, when they were read. */
  readonly sha256?: string;
  readonly decidedAt: string;
}

/** The durable steps of {@link ModelRepository.addVersion}, in order (for fault injection: see `NewVersion.afterStep`). */
export const REGISTRATION_STEPS = ['claimed', 'version-file', 'manifest'] as const;
/** One of {@link REGISTRATION_STEPS}. */
export type RegistrationStep = (typeof REGISTRATION_STEPS)[number];

/**
 * True for a store error that refuses this request for good (an S3 400 such as `KeyTooLongError` or
 * `InvalidArgument`, a file name the local file system cannot hold): retrying the upload cannot help, so it is
 * refused with the reason. Outages (5xx, throttling, timeouts, lost connections), `AccessDenied` (the role is fixed
 * by a deploy) and failed conditions are not: the upload stays pending and is retried.
 */
export function isStoreRefusal(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e !== undefined && e !== null && depth < 5; depth += 1) {
    const candidate = e as { $metadata?: { httpStatusCode?: number }; statusCode?: unknown; code?: unknown };
    const status = candidate.$metadata?.httpStatusCode ?? candidate.statusCode;
    if (status === 400) return true;
    if (candidate.code === 'ENAMETOOLONG') return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}
/** A manifest and the etag it was read with, for a conditional update. */
export interface ManifestSnapshot {
  readonly manifest: Manifest;
  readonly etag: string;
}

/** Outcome of {@link ModelRepository.addVersion}. */
export type AddVersionResult =
  | { readonly kind: 'added'; readonly version: string; readonly manifest: Manifest }
  | { readonly kind: 'duplicate'; readonly version: string };

/** What a new version consists of. `metadataFor` receives the version number once it is claimed. */
export interface NewVersion {
  readonly model: string;
  /** The model's bytes, or a file on local disk that is streamed to the store (a large model served unchanged). */
  readonly modelFile: Uint8Array | LocalFile;
  readonly sha256: string;
  readonly size: number;
  readonly sourceKey: string;
  readonly createdAt: string;
  readonly metadataFor: (version: string) => ModelMetadata;
  /**
   * External-data files, written beside the model file once the version number is claimed and before the
   * metadata, so that a version in the manifest always has all its files. Each is streamed from its local `path`.
   */
  readonly dataFiles?: readonly (LocalFile & { readonly location: string })[];
  /**
   * Called after each durable step, before the next one: the fault-injection point of the crash tests (a process
   * killed there must leave a state the next attempt finishes).
   */
  readonly afterStep?: (step: RegistrationStep) => void | Promise<void>;
  /**
   * The rollout policy this version registers under (the catalog entry's or the sidecar's); without one, the
   * manifest's `rolloutPolicy`, else all-at-once. Under any other policy a new highest version becomes the rollout's
   * candidate and `latest` stays on the stable version (docs/rollouts.md).
   */
  readonly rollout?: DeclaredRollout;
}

const MAX_CONDITIONAL_ATTEMPTS = 50;

/** Options of {@link ModelRepository}. */
export interface ModelRepositoryOptions {
  /** Clock of the claims' `claimedAt`, for tests. @default Date.now */
  readonly now?: () => number;
}

/** What a version claim (`models/<m>/claims/version-<n>.json`) records. */
interface VersionClaim {
  readonly version: string;
  readonly sha256: string;
  readonly sourceKey: string;
  readonly claimedAt: string;
  /** The registration that held it was refused: the number is free for the next version. */
  readonly released?: boolean;
}

/** A version claim as read, with the etag a takeover or release is conditioned on. */
interface HeldClaim extends VersionClaim {
  readonly key: string;
  readonly etag: string;
}
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function toJsonBytes(value: unknown): Uint8Array {
  return encoder.encode(`${JSON.stringify(value, null, 2)}\n`);
}

const tensorSpecSchema = z.object({
  name: z.string(),
  datatype: z.enum(DATATYPES),
  shape: z.array(z.number().int().min(-1)),
});

// Unknown fields pass through: a newer writer's additions survive this reader's conditional rewrite of the manifest.
const manifestSchema = z
  .object({
    name: z.string(),
    latest: z.string(),
    versions: z.array(
      z
        .object({
          version: z.string(),
          state: z.enum(['READY', 'UNAVAILABLE']),
          sha256: z.string(),
          size: z.number(),
          sourceKey: z.string(),
          createdAt: z.string(),
          reason: z.string().optional(),
        })
        .passthrough(),
    ),
    labels: z.record(z.string()).default({}),
    rolloutPolicy: rolloutPolicySchema.optional(),
    rollout: rolloutStateSchema.optional(),
  })
  .passthrough();

const metadataSchema = z
  .object({
    name: z.string(),
    version: z.string(),
    platform: z.literal('onnxruntime_onnx'),
    inputs: z.array(tensorSpecSchema),
    outputs: z.array(tensorSpecSchema),
    sha256: z.string(),
    size: z.number(),
    sourceKey: z.string(),
    createdAt: z.string(),
    rewrites: z.array(z.object({ kind: z.string(), output: z.string(), detail: z.string() }).passthrough()).default([]),
    classLabels: z.record(z.array(z.union([z.string(), z.number()]))).optional(),
  })
  .passthrough();

const claimSchema = z
  .object({
    version: z.string(),
    sha256: z.string(),
    sourceKey: z.string(),
    claimedAt: z.string(),
    released: z.boolean().optional(),
  })
  .passthrough();

const outcomeSchema = z
  .object({
    sourceKey: z.string(),
    outcome: z.enum(['registered', 'duplicate', 'refused']),
    version: z.string().optional(),
    reason: z.string().optional(),
    rejectionKey: z.string().optional(),
    sha256: z.string().optional(),
    decidedAt: z.string(),
  })
  .passthrough();

const rejectionSchema = z
  .object({
    model: z.string(),
    sourceKey: z.string(),
    rejectedAt: z.string(),
    reason: z.string(),
    sha256: z.string().optional(),
  })
  .passthrough();

/**
 * The one reader of the repository's JSON objects: parses `bytes` and checks them against `schema`, or throws a
 * {@link CorruptObjectError} naming `key` and what is wrong, so that one bad object stays its model's problem.
 */
function parseObject<T>(bytes: Uint8Array, key: string, what: string, schema: z.ZodType<T, z.ZodTypeDef, unknown>): T {
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(bytes));
  } catch (error) {
    throw new CorruptObjectError(
      key,
      `${key} is not valid JSON (${bytes.byteLength} bytes): restore it or fix it by hand`,
      { cause: error },
    );
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined || issue.path.length === 0 ? '' : ` at "${issue.path.join('.')}"`;
    throw new CorruptObjectError(
      key,
      `${key} is not a valid ${what}${where}: ${issue?.message ?? 'wrong shape'}; restore it or fix it by hand`,
      { cause: parsed.error },
    );
  }
  return parsed.data;
}

/** Versions are decimal integers; order them numerically. */
function versionNumber(version: string): number {
  return /^[1-9][0-9]*$/.test(version) ? Number(version) : 0;
}

/** Reads and writes the repository through a {@link BlobStore}. */
export class ModelRepository {
  private readonly now: () => number;

  public constructor(
    private readonly store: BlobStore,
    options: ModelRepositoryOptions = {},
  ) {
    this.now = options.now ?? Date.now;
  }

  /** Names of the models that have a manifest. */
  public async listModels(): Promise<string[]> {
    const keys = await this.store.list('models/');
    return keys
      .map((key) => /^models\/([^/]+)\/manifest\.json$/.exec(key)?.[1])
      .filter((name): name is string => name !== undefined && isValidModelName(name))
      .sort();
  }

  /** The manifest with its etag, or `undefined` for a model that has none. */
  public async readManifest(model: string): Promise<ManifestSnapshot | undefined> {
    const key = repositoryKeys.manifest(model);
    const object = await this.store.get(key);
    if (object === undefined) return undefined;
    return { manifest: parseObject<Manifest>(object.body, key, 'manifest', manifestSchema), etag: object.etag };
  }

  /** A version's metadata; `NotFoundError` when it does not exist. */
  public async readMetadata(model: string, version: string): Promise<ModelMetadata> {
    const key = repositoryKeys.metadata(model, version);
    const object = await this.store.get(key);
    if (object === undefined) throw new NotFoundError(`model "${model}" has no version "${version}"`);
    return parseObject<ModelMetadata>(object.body, key, 'version metadata', metadataSchema);
  }

  /** A version's model file; `NotFoundError` when it does not exist. */
  public async readModelFile(model: string, version: string): Promise<Uint8Array> {
    const object = await this.store.get(repositoryKeys.modelFile(model, version));
    if (object === undefined) throw new NotFoundError(`model "${model}" has no file for version "${version}"`);
    return object.body;
  }

  /** Streams a version's model file into the local `file`; `NotFoundError` when it does not exist. */
  public async downloadModelFile(
    model: string,
    version: string,
    file: string,
    options: DownloadOptions,
  ): Promise<DownloadedObject> {
    const object = await this.store.download(repositoryKeys.modelFile(model, version), file, options);
    if (object === undefined) throw new NotFoundError(`model "${model}" has no file for version "${version}"`);
    return object;
  }

  /** Streams one external-data file of a version into the local `file`; `NotFoundError` when it does not exist. */
  public async downloadDataFile(
    model: string,
    version: string,
    location: string,
    file: string,
    options: DownloadOptions,
  ): Promise<DownloadedObject> {
    const object = await this.store.download(repositoryKeys.dataFile(model, version, location), file, options);
    if (object === undefined) {
      throw new NotFoundError(`model "${model}" has no external-data file "${location}" for version "${version}"`);
    }
    return object;
  }

  /** Rejections of one model (or all), oldest first; with `latest`, only that many of the newest. */
  public async listRejections(model?: string, options: { latest?: number } = {}): Promise<Rejection[]> {
    const rejections: Rejection[] = [];
    const keys = await this.listRejectionKeys(model);
    // Keys start with the time of refusal: the newest are last, and only those are read when `latest` is given.
    for (const key of options.latest === undefined ? keys : keys.slice(-options.latest)) {
      try {
        const rejection = await this.readRejection(key);
        if (rejection !== undefined) rejections.push(rejection);
      } catch (error) {
        // A corrupt record still says an upload was refused: listed with what is wrong, the others unaffected.
        if (!(error instanceof CorruptObjectError)) throw error;
        const folder = key.slice(repositoryKeys.rejectionsPrefix().length).split('/')[0] ?? '';
        rejections.push({ model: folder, sourceKey: key, rejectedAt: '', reason: error.message });
      }
    }
    return rejections;
  }

  /** Keys of the rejections of one model (or all), oldest first: cheap to poll for new ones. */
  public listRejectionKeys(model?: string): Promise<string[]> {
    return this.store.list(repositoryKeys.rejectionsPrefix(model));
  }

  /** One rejection by its key, or `undefined` if it is gone. */
  public async readRejection(key: string): Promise<Rejection | undefined> {
    const object = await this.store.get(key);
    return object === undefined
      ? undefined
      : parseObject<Rejection>(object.body, key, 'rejection record', rejectionSchema);
  }

  /** Records why an upload was refused. Never touches the manifest. */
  public async recordRejection(rejection: Rejection): Promise<string> {
    // Reasons quote the upload (node names, sample text): bounded, as every message a client can read is.
    if (rejection.reason.length > MAX_ERROR_MESSAGE_CHARS) {
      const cut = rejection.reason.length - MAX_ERROR_MESSAGE_CHARS;
      rejection = {
        ...rejection,
        reason: `${rejection.reason.slice(0, MAX_ERROR_MESSAGE_CHARS)}... (${cut} more characters)`,
      };
    }
    const folder = isValidModelName(rejection.model) ? rejection.model : INVALID_NAME_REJECTIONS;
    const file = (rejection.sourceKey.split('/').pop() ?? 'upload').replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 100);
    // Two refusals of the same file name in the same millisecond must not share a key: add a random tag.
    const time = `${rejection.rejectedAt.replace(/[:.]/g, '-')}-${randomUUID().slice(0, 8)}`;
    const key = repositoryKeys.rejection(folder, time, file);
    await this.store.put(key, toJsonBytes(rejection));
    return key;
  }

  /** Records the one outcome of an upload (see {@link OutcomeRecord}); a later upload under the same key replaces it. */
  public async recordOutcome(model: string, record: OutcomeRecord): Promise<string> {
    const key = repositoryKeys.outcome(model, record.sourceKey);
    await this.store.put(key, toJsonBytes(record));
    return key;
  }

  /** The {@link outcomeId}s of the uploads of `model` that have an outcome: one listing, no reads. */
  public async outcomeIds(model: string): Promise<Set<string>> {
    const prefix = repositoryKeys.outcomesPrefix(model);
    const keys = await this.store.list(prefix);
    return new Set(keys.map((key) => key.slice(prefix.length).replace(/\.json$/, '')));
  }

  /** The outcome recorded for the upload `sourceKey` of `model`, or `undefined` if it has none yet. */
  public async readOutcome(model: string, sourceKey: string): Promise<OutcomeRecord | undefined> {
    const key = repositoryKeys.outcome(model, sourceKey);
    const object = await this.store.get(key);
    return object === undefined
      ? undefined
      : parseObject<OutcomeRecord>(object.body, key, 'outcome record', outcomeSchema);
  }

  /** Every outcome recorded for uploads of `model`, in key order. */
  public async listOutcomes(model: string): Promise<OutcomeRecord[]> {
    const records: OutcomeRecord[] = [];
    for (const key of await this.store.list(repositoryKeys.outcomesPrefix(model))) {
      const object = await this.store.get(key);
      if (object !== undefined) records.push(parseObject(object.body, key, 'outcome record', outcomeSchema));
    }
    return records;
  }

  /**
   * Adds a version, with steps that a later attempt can always finish or redo, whatever killed an earlier one (no
   * lock to wait for, no takeover delay):
   *
   * 1. The keys the version needs are checked first (S3 holds keys of up to 1,024 bytes): a key that cannot be stored
   *    is a refusal before any number is taken.
   * 2. A number is claimed: `models/<m>/claims/version-<n>.json`, created with `If-None-Match: *`, names the bytes'
   *    sha256. An attempt finds its bytes' claim again (a process that died after claiming), reuses a released one
   *    (a registration refused after claiming), or creates the next. Two deliveries of the same bytes racing keep the
   *    lower number and release the other before writing any file, so numbers are never skipped.
   * 3. The data files, the model file and the metadata are written under the number (overwriting what a dead
   *    attempt left), then the row is appended to the manifest with a conditional write, retrying on conflicts.
   *
   * A failure that storage will not fix by retrying ({@link isStoreRefusal}) releases the number and propagates (the
   * caller refuses the upload); any other failure propagates and keeps the claim for the next attempt.
   */
  public async addVersion(candidate: NewVersion): Promise<AddVersionResult> {
    const { model } = candidate;
    const listed = (await this.readManifest(model))?.manifest.versions.find((v) => v.sha256 === candidate.sha256);
    if (listed !== undefined) return { kind: 'duplicate', version: listed.version };
    assertStorableKeys(candidate);

    const claim = await this.claimNumber(candidate);
    const { version } = claim;
    try {
      await candidate.afterStep?.('claimed');
      // Streamed one after the other: memory stays at the store's upload buffers whatever the files weigh. The
      // model file goes last, so that a data file the store refuses leaves no model file under the number.
      for (const file of candidate.dataFiles ?? []) {
        await this.store.putFile(repositoryKeys.dataFile(model, version, file.location), file.path);
      }
      const key = repositoryKeys.modelFile(model, version);
      const { modelFile } = candidate;
      if (modelFile instanceof Uint8Array) await this.store.put(key, modelFile);
      else await this.store.putFile(key, modelFile.path);
      await candidate.afterStep?.('version-file');
      await this.store.put(repositoryKeys.metadata(model, version), toJsonBytes(candidate.metadataFor(version)));
      const result = await this.appendToManifest(candidate, version);
      if (result.kind === 'duplicate' && result.version !== version) await this.releaseNumber(claim);
      else await candidate.afterStep?.('manifest');
      return result;
    } catch (error) {
      if (isStoreRefusal(error)) await this.releaseNumber(claim);
      throw error;
    }
  }

  /** Appends `version` to the manifest (conditional write, retried), unless the bytes are listed by then. */
  private async appendToManifest(candidate: NewVersion, version: string): Promise<AddVersionResult> {
    const { model } = candidate;
    const row: ManifestVersion = {
      version,
      state: 'READY',
      sha256: candidate.sha256,
      size: candidate.size,
      sourceKey: candidate.sourceKey,
      createdAt: candidate.createdAt,
    };
    for (let attempt = 0; attempt < MAX_CONDITIONAL_ATTEMPTS; attempt += 1) {
      const snapshot = await this.readManifest(model);
      const duplicate = snapshot?.manifest.versions.find((v) => v.sha256 === candidate.sha256);
      if (duplicate !== undefined) {
        return { kind: 'duplicate', version: duplicate.version };
      }
      const versions = [...(snapshot?.manifest.versions ?? []), row].sort(
        (a, b) => versionNumber(a.version) - versionNumber(b.version),
      );
      const highest = String(Math.max(...versions.map((v) => versionNumber(v.version))));
      const manifest = withNewVersion(snapshot?.manifest, { name: model, latest: highest, versions }, candidate);
      try {
        await this.writeManifest(model, manifest, snapshot?.etag);
        return { kind: 'added', version, manifest };
      } catch (error) {
        if (!(error instanceof PreconditionFailedError)) throw error;
      }
    }
    throw new Error(`could not update the manifest of "${model}" after ${MAX_CONDITIONAL_ATTEMPTS} attempts`);
  }

  /**
   * The number `candidate`'s bytes register under: the lowest unreleased claim that already names them (an earlier
   * attempt died, or another delivery of the same bytes runs now), else a free number taken with a conditional
   * write: a released claim, or a claim whose bytes the manifest lists under another number, or the next number.
   */
  private async claimNumber(candidate: NewVersion): Promise<HeldClaim> {
    const { model, sha256 } = candidate;
    const body = (version: string): VersionClaim => ({
      version,
      sha256,
      sourceKey: candidate.sourceKey,
      claimedAt: new Date(this.now()).toISOString(),
    });
    for (let attempt = 0; attempt < MAX_CONDITIONAL_ATTEMPTS; attempt += 1) {
      const { claims, used, listedShas } = await this.readClaims(model);
      const own = claims.find((c) => c.sha256 === sha256 && c.released !== true);
      if (own !== undefined) return own;
      const free = claims.find((c) => c.released === true || listedShas.has(c.sha256));
      const version = free?.version ?? String(Math.max(0, ...used) + 1);
      const key = repositoryKeys.versionClaim(model, version);
      let taken: HeldClaim;
      try {
        const { etag } = await this.store.put(
          key,
          toJsonBytes(body(version)),
          free === undefined ? { ifNoneMatch: '*' } : { ifMatch: free.etag },
        );
        taken = { ...body(version), etag, key };
      } catch (error) {
        if (!(error instanceof PreconditionFailedError)) throw error;
        continue;
      }
      // Another delivery of the same bytes may hold a lower number: that one wins, this one is given back before
      // any file is written under it.
      const lower = (await this.readClaims(model)).claims.find(
        (c) => c.sha256 === sha256 && c.released !== true && versionNumber(c.version) < versionNumber(version),
      );
      if (lower === undefined) return taken;
      await this.releaseNumber(taken);
      return lower;
    }
    throw new Error(`could not claim a version number for "${model}" after ${MAX_CONDITIONAL_ATTEMPTS} attempts`);
  }

  /**
   * The claims of numbers the manifest does not list (lowest first; the listed ones are done and never read), every
   * number in use (listed or claimed), and the sha256 values the manifest lists.
   */
  private async readClaims(model: string): Promise<{ claims: HeldClaim[]; used: number[]; listedShas: Set<string> }> {
    const versions = (await this.readManifest(model))?.manifest.versions ?? [];
    const listed = new Set(versions.map((v) => v.version));
    const prefix = repositoryKeys.claimsPrefix(model);
    const numbers = (await this.store.list(prefix))
      .map((key) => /^version-([1-9][0-9]*)\.json$/.exec(key.slice(prefix.length))?.[1])
      .filter((n): n is string => n !== undefined);
    const claims: HeldClaim[] = [];
    for (const version of numbers.filter((n) => !listed.has(n)).sort((a, b) => versionNumber(a) - versionNumber(b))) {
      const key = repositoryKeys.versionClaim(model, version);
      const object = await this.store.get(key);
      if (object === undefined) continue;
      claims.push({
        ...parseObject<VersionClaim>(object.body, key, 'version claim', claimSchema),
        etag: object.etag,
        key,
      });
    }
    return {
      claims,
      used: [...versions.map((v) => versionNumber(v.version)), ...numbers.map(versionNumber)],
      listedShas: new Set(versions.map((v) => v.sha256)),
    };
  }

  /** Gives a claimed number back, for the next version. Best effort: a claim changed meanwhile is someone else's. */
  private async releaseNumber(claim: HeldClaim): Promise<void> {
    const { etag, key, ...body } = claim;
    await this.store.put(key, toJsonBytes({ ...body, released: true }), { ifMatch: etag }).catch((error: unknown) => {
      if (!(error instanceof PreconditionFailedError)) throw error;
    });
  }
  /**
   * Points `latest` (or a label such as `stable`) at an existing version: rollback and promotion.
   * `NotFoundError` when the model or the version does not exist.
   */
  public async setPointer(model: string, version: string, label?: string): Promise<Manifest> {
    const written = await this.updateManifest(model, (manifest) => {
      const row = manifest.versions.find((v) => v.version === version);
      if (row === undefined) throw new NotFoundError(`model "${model}" has no version "${version}"`);
      if (row.state !== 'READY') throw new NotFoundError(`version "${version}" of "${model}" is not READY`);
      return label === undefined
        ? { ...manifest, latest: version }
        : { ...manifest, labels: { ...manifest.labels, [label]: version } };
    });
    // `change` above always returns a manifest: undefined cannot come back.
    return written as Manifest;
  }

  /**
   * Changes the manifest of `model` with a conditional write: `change` gets the manifest as just read and returns the
   * new one, or `undefined` to leave it. A concurrent writer (a registration, another controller) makes the write
   * fail its condition; the manifest is then read again and `change` decides again on what is there now, so neither
   * update is lost. `NotFoundError` for a model without a manifest.
   */
  public async updateManifest(
    model: string,
    change: (manifest: Manifest) => Manifest | undefined,
  ): Promise<Manifest | undefined> {
    for (let attempt = 0; attempt < MAX_CONDITIONAL_ATTEMPTS; attempt += 1) {
      const snapshot = await this.readManifest(model);
      if (snapshot === undefined) throw new NotFoundError(`unknown model "${model}"`);
      const manifest = change(snapshot.manifest);
      if (manifest === undefined) return undefined;
      try {
        await this.writeManifest(model, manifest, snapshot.etag);
        return manifest;
      } catch (error) {
        if (!(error instanceof PreconditionFailedError)) throw error;
      }
    }
    throw new Error(`could not update the manifest of "${model}" after ${MAX_CONDITIONAL_ATTEMPTS} attempts`);
  }

  private async writeManifest(model: string, manifest: Manifest, etag: string | undefined): Promise<void> {
    await this.store.put(
      repositoryKeys.manifest(model),
      toJsonBytes(manifest),
      etag === undefined ? { ifNoneMatch: '*' } : { ifMatch: etag },
    );
  }
}

/**
 * The manifest once `candidate` is listed (`next` holds its rows and the highest version): under all-at-once the
 * highest version becomes `latest` (and ends a rollout still running, superseded); under another policy a new
 * highest version becomes the candidate of a new rollout against `latest`, which stays there. While a rollout runs,
 * a version registered under a guarded policy waits, listed and pinnable: one rollout at a time, so that neither its
 * registration nor the controller's next step undoes the other (start its rollout with the CLI once this one ends).
 * The first version of a model has nothing to roll out against.
 */
function withNewVersion(
  previous: Manifest | undefined,
  next: Pick<Manifest, 'name' | 'latest' | 'versions'>,
  candidate: NewVersion,
): Manifest {
  const declared = candidate.rollout;
  const modelPolicy = declared?.declaredBy === 'catalog' ? declared.policy : previous?.rolloutPolicy;
  const base: Manifest = {
    ...previous,
    ...next,
    labels: previous?.labels ?? {},
    ...(modelPolicy === undefined ? {} : { rolloutPolicy: modelPolicy }),
  };
  const policy = declared?.policy ?? previous?.rolloutPolicy ?? ALL_AT_ONCE;
  const added = next.versions.find((v) => v.sha256 === candidate.sha256)?.version;
  const running = previous?.rollout;
  if (previous === undefined || added !== next.latest) return { ...base, latest: previous?.latest ?? next.latest };
  if (policy.strategy === 'all-at-once') {
    if (!isActive(running)) return base;
    return {
      ...base,
      rollout: finish(
        running,
        'rolled-back',
        `superseded by version ${added}, registered all-at-once`,
        candidate.createdAt,
      ),
    };
  }
  if (isActive(running)) return { ...base, latest: previous.latest };
  return {
    ...base,
    latest: previous.latest,
    rollout: startRollout(policy, previous.latest, added, candidate.createdAt),
  };
}

/**
 * Refuses a version whose keys S3 cannot hold (over {@link MAX_KEY_BYTES} bytes), before any number is claimed: a
 * long `location` in a `.zip` would otherwise fail half-way through writing the version. Counted with a ten-digit
 * version number, so that the answer does not depend on which number it would get.
 */
function assertStorableKeys(candidate: NewVersion): void {
  const version = '9'.repeat(10);
  const keys = [
    repositoryKeys.modelFile(candidate.model, version),
    ...(candidate.dataFiles ?? []).map((file) => repositoryKeys.dataFile(candidate.model, version, file.location)),
  ];
  const tooLong = keys.find((key) => encoder.encode(key).byteLength > MAX_KEY_BYTES);
  if (tooLong !== undefined) {
    throw new ModelRejectedError(
      `the version would need the key "${tooLong.slice(0, 120)}..." of ${encoder.encode(tooLong).byteLength} bytes, over ` +
        `S3's ${MAX_KEY_BYTES}-byte limit: shorten the external-data file names (their "location") and upload again`,
    );
  }
}
