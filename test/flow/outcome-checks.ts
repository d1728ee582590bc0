/**
 * The invariants of "every upload gets exactly one outcome", read from a bucket through any {@link BlobStore} (the
 * local stack's, or an SDK client on the S3 fixture): shared by the flow, crash and artifact tests.
 */
import { expect } from 'vitest';
import type { BlobStore } from '../../functions/core/blob-store.js';
import {
  isRegistrationUpload,
  ModelRepository,
  outcomeId,
  repositoryKeys,
  type OutcomeRecord,
} from '../../functions/core/model-repository.js';

/** What the bucket says about one model's uploads and versions. */
export interface OutcomeState {
  /** The upload keys (`.onnx`, `.zip`) under `uploads/<model>/`. */
  readonly uploads: readonly string[];
  /** The outcome record of each upload that has one, by upload key. */
  readonly outcomes: ReadonlyMap<string, OutcomeRecord>;
  /** Outcome record files whose hash matches no upload. */
  readonly strayOutcomes: number;
  /** The manifest's version numbers, in order. */
  readonly versions: readonly string[];
  /** Numbers that have a `model.onnx`. */
  readonly modelFiles: readonly string[];
  /** Numbers claimed, not released, and not in the manifest (a registration under way, or abandoned). */
  readonly openClaims: readonly string[];
}

/** Reads {@link OutcomeState} of `model`. */
export async function outcomeState(store: BlobStore, model: string): Promise<OutcomeState> {
  const repository = new ModelRepository(store);
  const uploads = (await store.list(`uploads/${model}/`)).filter(isRegistrationUpload);
  const records = await repository.listOutcomes(model);
  const outcomes = new Map(records.map((r) => [r.sourceKey, r]));
  const ids = new Set(uploads.map(outcomeId));
  const strayOutcomes = (await store.list(repositoryKeys.outcomesPrefix(model))).filter(
    (key) => !ids.has(key.slice(repositoryKeys.outcomesPrefix(model).length).replace(/\.json$/, '')),
  ).length;
  const versions = ((await repository.readManifest(model))?.manifest.versions ?? []).map((v) => v.version);
  const prefix = repositoryKeys.versionsPrefix(model);
  const modelFiles = (await store.list(prefix))
    .map((key) => /^([0-9]+)\/model\.onnx$/.exec(key.slice(prefix.length))?.[1])
    .filter((n): n is string => n !== undefined)
    .sort((a, b) => Number(a) - Number(b));
  const openClaims: string[] = [];
  for (const key of await store.list(repositoryKeys.claimsPrefix(model))) {
    const version = /version-([0-9]+)\.json$/.exec(key)?.[1];
    if (version === undefined || versions.includes(version)) continue;
    const claim = JSON.parse(new TextDecoder().decode((await store.get(key))?.body)) as { released?: boolean };
    if (claim.released !== true) openClaims.push(version);
  }
  return { uploads, outcomes, strayOutcomes, versions, modelFiles, openClaims };
}

/**
 * Asserts that every upload of `model` has its one outcome record, that the versions are numbered 1..n without a
 * gap, that every `model.onnx` belongs to a listed version, and that no claim is left open. Returns the state.
 */
export async function expectOneOutcomeEach(store: BlobStore, model: string): Promise<OutcomeState> {
  const state = await outcomeState(store, model);
  expect([...state.outcomes.keys()].sort()).toEqual([...state.uploads].sort());
  expect(state.strayOutcomes).toBe(0);
  expect(state.versions).toEqual(state.versions.map((_, i) => String(i + 1)));
  expect(state.modelFiles).toEqual(state.versions);
  expect(state.openClaims).toEqual([]);
  for (const record of state.outcomes.values()) {
    if (record.outcome === 'refused') {
      expect(record.reason).toEqual(expect.any(String));
      expect(record.version).toBeUndefined();
    } else {
      expect(state.versions).toContain(record.version);
    }
  }
  return state;
}
