/**
 * The model repository: the one place that knows the key layout of DESIGN.md and how the manifest changes.
 * Everything that reads or writes models, versions, manifests or rejections goes through here.
 */
import { randomUUID } from 'node:crypto';
import type { BlobStore, DownloadedObject, DownloadOptions, LocalFile } from './blob-store.js';
import { z } from 'zod';
import { CorruptObjectError, NotFoundError, PreconditionFailedError } from './errors.js';
import { DATATYPES, type Manifest, type ManifestVersion, type ModelMetadata, type Rejection } from './types.js';
import { isValidModelName } from './catalog.js';
import { MAX_ERROR_MESSAGE_CHARS } from './redact.js';

/** The three top-level folders of the repository (DESIGN.md). */
export const REPOSITORY_PREFIXES = { uploads: 'uploads/', models: 'models/', rejected: 'rejected/' } as const;

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
  /** Marks that a registration of these exact bytes is under way or done (see `ModelRepository.addVersion`). */
  contentClaim: (model: string, sha256: string) => `models/${model}/claims/${sha256}.json`,
  rejection: (model: string, time: string, file: string) => `rejected/${model}/${time}-${file}.json`,
  rejectionsPrefix: (model?: string) => (model === undefined ? 'rejected/' : `rejected/${model}/`),
} as const;

/**
 * Where refusals of uploads whose model name is not allowed are recorded: the name cannot be used in a key, and
 * `_` can never start a valid model name, so this folder cannot collide with a model's.
 */
export const INVALID_NAME_REJECTIONS = '_invalid-names';

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
}

const MAX_CONDITIONAL_ATTEMPTS = 50;

/** Options of {@link ModelRepository}. */
export interface ModelRepositoryOptions {
  /**
   * How long a duplicate delivery waits for the delivery that claimed the same bytes to list them in the manifest.
   * @default 20 s
   */
  readonly claimWaitMs?: number;
  /**
   * Age after which a claim whose registration never reached the manifest is taken over (the claiming invocation
   * must have died: Lambda's longest timeout is 15 minutes).
   * @default 15 minutes
   */
  readonly claimStaleMs?: number;
  /** Clock and sleep, for tests. */
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

/** What a content claim records. */
interface ContentClaim {
  readonly sha256: string;
  readonly sourceKey: string;
  readonly claimedAt: string;
  /** Set once the claiming registration has its version number. */
  readonly version?: string;
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
  .object({ sha256: z.string(), sourceKey: z.string(), claimedAt: z.string(), version: z.string().optional() })
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
  private readonly claimWaitMs: number;
  private readonly claimStaleMs: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  public constructor(
    private readonly store: BlobStore,
    options: ModelRepositoryOptions = {},
  ) {
    this.claimWaitMs = options.claimWaitMs ?? 20_000;
    this.claimStaleMs = options.claimStaleMs ?? 15 * 60_000;
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
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

  /**
   * Adds a version. First claims the bytes themselves: `models/<model>/claims/<sha256>.json`, created with
   * `If-None-Match: *`, so that of two deliveries of the same upload (S3 delivers events at least once) exactly one
   * goes on; the other waits for it to list the bytes in the manifest and reports a duplicate. Only the claimant
   * then claims the next free number by creating its model file with `If-None-Match: *`, writes the metadata, and
   * appends it to the manifest with a conditional write, retrying on conflicts. So two concurrent uploads of
   * different bytes get two numbers and both end in the manifest, and a duplicate delivery claims no number: it
   * never leaves files behind nor needs `s3:DeleteObject`. A claim whose registration died before reaching the
   * manifest is taken over once stale, reusing the number it had recorded.
   */
  public async addVersion(candidate: NewVersion): Promise<AddVersionResult> {
    const { model } = candidate;
    const existing = (await this.readManifest(model))?.manifest.versions.find((v) => v.sha256 === candidate.sha256);
    if (existing !== undefined) return { kind: 'duplicate', version: existing.version };

    const claim = await this.claimContent(candidate);
    if (claim.kind === 'duplicate') return claim;
    const version = claim.version ?? (await this.claimVersion(candidate));
    if (claim.version === undefined) {
      const recorded: ContentClaim = { ...claim.body, version };
      // Best effort: the number lets a takeover reuse it; losing this race only costs that reuse.
      await this.store.put(claim.key, toJsonBytes(recorded), { ifMatch: claim.etag }).catch((error: unknown) => {
        if (!(error instanceof PreconditionFailedError)) throw error;
      });
    }
    // Streamed one after the other: memory stays at the store's upload buffers whatever the files weigh.
    for (const file of candidate.dataFiles ?? []) {
      await this.store.putFile(repositoryKeys.dataFile(model, version, file.location), file.path);
    }
    const metadata = candidate.metadataFor(version);
    await this.store.put(repositoryKeys.metadata(model, version), toJsonBytes(metadata));
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
      if (duplicate !== undefined) return { kind: 'duplicate', version: duplicate.version };
      const versions = [...(snapshot?.manifest.versions ?? []), row].sort(
        (a, b) => versionNumber(a.version) - versionNumber(b.version),
      );
      const latest = String(Math.max(...versions.map((v) => versionNumber(v.version))));
      const manifest: Manifest = { name: model, latest, versions, labels: snapshot?.manifest.labels ?? {} };
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
   * Claims `candidate`'s bytes for this registration, or waits for the registration that holds the claim. Returns
   * the claim to go on with (and the version it recorded, on a takeover), or the duplicate's version.
   */
  private async claimContent(
    candidate: NewVersion,
  ): Promise<
    | { kind: 'claimed'; key: string; etag: string; body: ContentClaim; version?: string }
    | { kind: 'duplicate'; version: string }
  > {
    const { model, sha256 } = candidate;
    const key = repositoryKeys.contentClaim(model, sha256);
    const body: ContentClaim = {
      sha256,
      sourceKey: candidate.sourceKey,
      claimedAt: new Date(this.now()).toISOString(),
    };
    const started = this.now();
    for (let delay = 50; ; delay = Math.min(delay * 2, 1_000)) {
      const current = await this.store.get(key);
      if (current === undefined) {
        try {
          const { etag } = await this.store.put(key, toJsonBytes(body), { ifNoneMatch: '*' });
          return { kind: 'claimed', key, etag, body };
        } catch (error) {
          if (!(error instanceof PreconditionFailedError)) throw error;
          continue; // another delivery claimed it between the read and the write: wait for it
        }
      }
      const held: ContentClaim = parseObject(current.body, key, 'content claim', claimSchema);
      const listed = (await this.readManifest(model))?.manifest.versions.find((v) => v.sha256 === sha256);
      if (listed !== undefined) return { kind: 'duplicate', version: listed.version };
      if (this.now() - Date.parse(held.claimedAt) > this.claimStaleMs) {
        // The claimant died before the manifest: take over, keeping the number it recorded (if any).
        try {
          const renewed: ContentClaim = { ...body, ...(held.version === undefined ? {} : { version: held.version }) };
          const { etag } = await this.store.put(key, toJsonBytes(renewed), { ifMatch: current.etag });
          return {
            kind: 'claimed',
            key,
            etag,
            body: renewed,
            ...(held.version === undefined ? {} : { version: held.version }),
          };
        } catch (error) {
          if (!(error instanceof PreconditionFailedError)) throw error;
          continue;
        }
      }
      if (this.now() - started > this.claimWaitMs) {
        throw new Error(
          `another delivery of ${held.sourceKey} (sha256 ${sha256}) has been registering it since ${held.claimedAt}; ` +
            'giving up for now so that the event is retried',
        );
      }
      await this.sleep(delay);
    }
  }

  /**
   * Points `latest` (or a label such as `stable`) at an existing version: rollback and promotion.
   * `NotFoundError` when the model or the version does not exist.
   */
  public async setPointer(model: string, version: string, label?: string): Promise<Manifest> {
    for (let attempt = 0; attempt < MAX_CONDITIONAL_ATTEMPTS; attempt += 1) {
      const snapshot = await this.readManifest(model);
      if (snapshot === undefined) throw new NotFoundError(`unknown model "${model}"`);
      const row = snapshot.manifest.versions.find((v) => v.version === version);
      if (row === undefined) throw new NotFoundError(`model "${model}" has no version "${version}"`);
      if (row.state !== 'READY') throw new NotFoundError(`version "${version}" of "${model}" is not READY`);
      const manifest: Manifest =
        label === undefined
          ? { ...snapshot.manifest, latest: version }
          : { ...snapshot.manifest, labels: { ...snapshot.manifest.labels, [label]: version } };
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

  private async claimVersion(candidate: NewVersion): Promise<string> {
    const { model } = candidate;
    for (let attempt = 0; attempt < MAX_CONDITIONAL_ATTEMPTS; attempt += 1) {
      // Numbers already used: in the manifest, or claimed by a registration still in progress (files only).
      const keys = await this.store.list(repositoryKeys.versionsPrefix(model));
      const used = keys.map((key) =>
        versionNumber(key.slice(repositoryKeys.versionsPrefix(model).length).split('/')[0] ?? ''),
      );
      const version = String(Math.max(0, ...used) + 1);
      try {
        // The model file is the claim on the number: created only if absent. A large one is streamed from disk (on
        // S3 a multipart upload whose completion carries the condition, so a lost race stores nothing).
        const key = repositoryKeys.modelFile(model, version);
        const { modelFile } = candidate;
        if (modelFile instanceof Uint8Array) await this.store.put(key, modelFile, { ifNoneMatch: '*' });
        else await this.store.putFile(key, modelFile.path, { ifNoneMatch: '*' });
        return version;
      } catch (error) {
        if (!(error instanceof PreconditionFailedError)) throw error;
      }
    }
    throw new Error(`could not claim a version number for "${model}" after ${MAX_CONDITIONAL_ATTEMPTS} attempts`);
  }
}
