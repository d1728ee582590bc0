/**
 * The model repository: the one place that knows the key layout of DESIGN.md and how the manifest changes.
 * Everything that reads or writes models, versions, manifests or rejections goes through here.
 */
import { randomUUID } from 'node:crypto';
import type { BlobStore, DownloadedObject, DownloadOptions } from './blob-store.js';
import { z } from 'zod';
import { CorruptObjectError, NotFoundError, PreconditionFailedError } from './errors.js';
import { DATATYPES, type Manifest, type ManifestVersion, type ModelMetadata, type Rejection } from './types.js';
import { isValidModelName } from './catalog.js';
import { MAX_ERROR_MESSAGE_CHARS } from './redact.js';

/** The three top-level folders of the repository (DESIGN.md). */
export const REPOSITORY_PREFIXES = { uploads: 'uploads/', models: 'models/', rejected: 'rejected/' } as const;

/** Prefix under which users upload candidate models. */
export const UPLOADS_PREFIX = REPOSITORY_PREFIXES.uploads;
/** Suffix of the uploads that start a registration (the bucket notification filters on both). */
export const UPLOAD_SUFFIX = '.onnx';

/** Keys of the repository layout. Model names must have been validated before they get here. */
export const repositoryKeys = {
  modelFile: (model: string, version: string) => `models/${model}/${version}/model.onnx`,
  metadata: (model: string, version: string) => `models/${model}/${version}/metadata.json`,
  manifest: (model: string) => `models/${model}/manifest.json`,
  versionsPrefix: (model: string) => `models/${model}/`,
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
  readonly modelFile: Uint8Array;
  readonly sha256: string;
  readonly size: number;
  readonly sourceKey: string;
  readonly createdAt: string;
  readonly metadataFor: (version: string) => ModelMetadata;
}

const MAX_CONDITIONAL_ATTEMPTS = 50;
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
    throw new CorruptObjectError(key, `${key} is not valid JSON (${bytes.byteLength} bytes): restore it or fix it by hand`, { cause: error });
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
  public constructor(private readonly store: BlobStore) {}

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
    return object === undefined ? undefined : parseObject<Rejection>(object.body, key, 'rejection record', rejectionSchema);
  }

  /** Records why an upload was refused. Never touches the manifest. */
  public async recordRejection(rejection: Rejection): Promise<string> {
    // Reasons quote the upload (node names, sample text): bounded, as every message a client can read is.
    if (rejection.reason.length > MAX_ERROR_MESSAGE_CHARS) {
      const cut = rejection.reason.length - MAX_ERROR_MESSAGE_CHARS;
      rejection = { ...rejection, reason: `${rejection.reason.slice(0, MAX_ERROR_MESSAGE_CHARS)}... (${cut} more characters)` };
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
   * Adds a version: claims the next free number by creating its model file with `If-None-Match: *`, writes the
   * metadata, then appends it to the manifest with a conditional write, retrying on conflicts. Two concurrent
   * uploads thus get two numbers and both end in the manifest; an upload whose sha256 a version already has
   * creates nothing (S3 delivers events at least once).
   */
  public async addVersion(candidate: NewVersion): Promise<AddVersionResult> {
    const { model } = candidate;
    const existing = (await this.readManifest(model))?.manifest.versions.find((v) => v.sha256 === candidate.sha256);
    if (existing !== undefined) return { kind: 'duplicate', version: existing.version };

    const version = await this.claimVersion(candidate);
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
      if (duplicate !== undefined) {
        // A racing delivery of the same upload won; give our claimed number back.
        await this.store.delete(repositoryKeys.metadata(model, version));
        await this.store.delete(repositoryKeys.modelFile(model, version));
        return { kind: 'duplicate', version: duplicate.version };
      }
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
      const used = keys.map((key) => versionNumber(key.slice(repositoryKeys.versionsPrefix(model).length).split('/')[0] ?? ''));
      const version = String(Math.max(0, ...used) + 1);
      try {
        await this.store.put(repositoryKeys.modelFile(model, version), candidate.modelFile, { ifNoneMatch: '*' });
        return version;
      } catch (error) {
        if (!(error instanceof PreconditionFailedError)) throw error;
      }
    }
    throw new Error(`could not claim a version number for "${model}" after ${MAX_CONDITIONAL_ATTEMPTS} attempts`);
  }
}
