/**
 * The model repository: the one place that knows the key layout of DESIGN.md and how the manifest changes.
 * Everything that reads or writes models, versions, manifests or rejections goes through here.
 */
import { randomUUID } from 'node:crypto';
import type { BlobStore, DownloadedObject, DownloadOptions } from './blob-store.js';
import { NotFoundError, PreconditionFailedError } from './errors.js';
import type { Manifest, ManifestVersion, ModelMetadata, Rejection } from './types.js';
import { isValidModelName } from './catalog.js';

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
  /**
   * External-data files, written beside the model file once the version number is claimed and before the
   * metadata, so that a version in the manifest always has all its files. `read` gives one file's bytes.
   */
  readonly dataFiles?: readonly { readonly location: string; readonly read: () => Promise<Uint8Array> }[];
}

const MAX_CONDITIONAL_ATTEMPTS = 50;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function toJsonBytes(value: unknown): Uint8Array {
  return encoder.encode(`${JSON.stringify(value, null, 2)}\n`);
}

function parseJson<T>(bytes: Uint8Array, key: string): T {
  try {
    return JSON.parse(decoder.decode(bytes)) as T;
  } catch (error) {
    throw new Error(`${key} is not valid JSON`, { cause: error });
  }
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
    return { manifest: parseJson<Manifest>(object.body, key), etag: object.etag };
  }

  /** A version's metadata; `NotFoundError` when it does not exist. */
  public async readMetadata(model: string, version: string): Promise<ModelMetadata> {
    const key = repositoryKeys.metadata(model, version);
    const object = await this.store.get(key);
    if (object === undefined) throw new NotFoundError(`model "${model}" has no version "${version}"`);
    return parseJson<ModelMetadata>(object.body, key);
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
      const rejection = await this.readRejection(key);
      if (rejection !== undefined) rejections.push(rejection);
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
    return object === undefined ? undefined : parseJson<Rejection>(object.body, key);
  }

  /** Records why an upload was refused. Never touches the manifest. */
  public async recordRejection(rejection: Rejection): Promise<string> {
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
    // One file in memory at a time: the largest external-data file bounds what this costs.
    for (const file of candidate.dataFiles ?? []) {
      await this.store.put(repositoryKeys.dataFile(model, version, file.location), await file.read());
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
      if (duplicate !== undefined) {
        // A racing delivery of the same upload won; give our claimed number back.
        await this.store.delete(repositoryKeys.metadata(model, version));
        for (const file of candidate.dataFiles ?? []) {
          await this.store.delete(repositoryKeys.dataFile(model, version, file.location));
        }
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
