/**
 * Registration from a file on local disk, with bounded memory: the upload is streamed to a scratch folder (parallel
 * ranged GETs, sha256 on the way) instead of being read into one buffer, and onnxruntime creates the validation
 * session from the path. Both upload forms go through here:
 *
 * - `uploads/<model>/<name>.onnx`: the file itself. Only its skeleton (the model without its weight values) is read
 *   into memory; rewrites apply to it, and a rewritten model is written with the weights copied from the file.
 *   The version is streamed from the file (the upload, or the rewritten copy).
 * - `uploads/<model>/<name>.zip`: one `.onnx` file and the external-data files its initializers reference. The
 *   archive is unpacked with the guards of `model-archive.ts`, the `.onnx` read as a skeleton too (weights stored
 *   inside it never enter memory either), its references checked by `onnx/external-data.ts`, and laid out as the
 *   version will be stored (`model.onnx` with each data file beside it under its `location`),
 *   so that onnxruntime reads the data files from disk. The version is then stored file by file.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ModelRejectedError } from './errors.js';
import { ARCHIVE_SUFFIX } from './model-repository.js';
import { unpackModelArchive } from './model-archive.js';
import { scratchMbFor } from './model-service.js';
import { checkExternalData, externalDataReferences } from './onnx/external-data.js';
import { readModelFile } from './onnx/model-file.js';
import type { RewriteOptions } from './onnx/rewrites.js';
import { readModelSkeleton, writeWithWeights } from './onnx/skeleton.js';
import type { RegistrationOptions, RegistrationOutcome, Validate, ValidationTarget } from './registration-types.js';
import type { ExternalDataFile } from './types.js';
import { versionMetadata } from './version-metadata.js';

/** Ranged GETs that stream the upload to disk (the serving defaults: 8 MiB parts; fewer in flight). */
const ARCHIVE_DOWNLOAD = { partBytes: 8 * 1024 * 1024, concurrency: 4 } as const;

/**
 * Scratch disk (`/tmp`, in MB) the register function needs for archives up to `maxModelBytes`: the archive and its
 * unpacked files are on disk together until the archive is removed.
 */
export function registerScratchMbFor(maxModelBytes: number): number {
  return scratchMbFor(2 * maxModelBytes);
}

/**
 * Registers the upload (`.onnx` or `.zip`) under `key` for `model` (a valid name). `reject` records a refusal (of a
 * reason, or of what was thrown: a storage failure it rethrows) and returns its outcome. Storage failures throw, so
 * that the event is delivered again; the scratch folder is always removed.
 */
export async function registerFromFile(
  key: string,
  model: string,
  options: RegistrationOptions,
  reject: (cause: unknown, sha256?: string) => Promise<RegistrationOutcome>,
  validate: Validate,
): Promise<RegistrationOutcome> {
  const scratch = options.scratchDir ?? os.tmpdir();
  await mkdir(scratch, { recursive: true });
  const root = await mkdtemp(path.join(scratch, 'onnx-serverless-register-'));
  try {
    const isArchive = key.endsWith(ARCHIVE_SUFFIX);
    const upload = path.join(root, isArchive ? 'upload.zip' : 'upload.onnx');
    const downloaded = await options.store.download(key, upload, ARCHIVE_DOWNLOAD);
    if (downloaded === undefined) return { kind: 'ignored', reason: 'the object no longer exists', key };
    if (downloaded.size === 0) return reject('the file is empty');
    if (downloaded.size > options.maxModelBytes) {
      return reject(
        `the ${isArchive ? 'archive' : 'file'} has ${downloaded.size} bytes; the limit is ${options.maxModelBytes} (MAX_MODEL_BYTES)`,
      );
    }
    // The version's identity is the upload's: the same upload delivered twice is one version.
    const { sha256 } = downloaded;
    const existing = (await options.repository.readManifest(model))?.manifest.versions.find((v) => v.sha256 === sha256);
    if (existing !== undefined) return { kind: 'duplicate', model, version: existing.version, key };

    let prepared: Awaited<ReturnType<typeof prepareArchive>>;
    try {
      prepared = isArchive
        ? await prepareArchive(upload, root, key, options, validate)
        : await prepareFile(upload, downloaded, root, key, options, validate);
    } catch (error) {
      return reject(error, sha256); // a refusal, unless storage failed (then rethrown: the upload stays pending)
    }
    const { validated, dataFiles } = prepared;
    const createdAt = (options.now ?? (() => new Date()))().toISOString();
    const result = await options.repository.addVersion({
      model,
      modelFile: validated.model,
      sha256,
      size: downloaded.size,
      sourceKey: key,
      createdAt,
      ...(options.afterStep && { afterStep: options.afterStep }),
      ...(validated.rollout && { rollout: validated.rollout }),
      ...(isArchive ? { dataFiles: dataFiles.map((file) => ({ location: file.location, path: file.path })) } : {}),
      metadataFor: (version) =>
        versionMetadata(validated, {
          model,
          version,
          sourceKey: key,
          createdAt,
          ...(isArchive
            ? {
                externalData: dataFiles.map(
                  ({ location, sha256: fileSha, size }): ExternalDataFile => ({ location, sha256: fileSha, size }),
                ),
              }
            : {}),
        }),
    });
    return { kind: result.kind === 'added' ? 'registered' : 'duplicate', model, version: result.version, key };
  } catch (error) {
    // Redelivering the event would fail the same way: record why, so the user sees it and what to change.
    if (!isNoSpace(error)) throw error;
    return reject(
      'the register function ran out of temporary storage (/tmp) for this upload and its unpacked files: check the ' +
        'file is under MAX_MODEL_BYTES, or give the register function more ephemeral storage, then upload again',
    );
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/** A write that failed because the disk is full (as the adapters raise it, or wrapped once). */
function isNoSpace(error: unknown): boolean {
  const code = (value: unknown) => (value as NodeJS.ErrnoException | undefined)?.code;
  return code(error) === 'ENOSPC' || code((error as Error | undefined)?.cause) === 'ENOSPC';
}

/**
 * A single `.onnx`. Rewrites apply to its skeleton (the model without its weight values, `onnx/skeleton.ts`), and a
 * rewritten model is written beside the upload with the upload's weights copied back from disk: the weights never
 * enter memory, rewritten or not. Unchanged, the session is created from the downloaded file and the version is
 * streamed from it. Throws `ModelRejectedError` with the reason.
 */
async function prepareFile(
  upload: string,
  downloaded: { readonly size: number; readonly sha256: string },
  root: string,
  key: string,
  options: RegistrationOptions,
  validate: Validate,
) {
  const skeleton = await readModelSkeleton(upload, options.maxGraphBytes);
  const target = fileTarget(skeleton, upload, { path: upload, ...downloaded }, path.join(root, 'model.onnx'), options);
  const validated = await validate(skeleton, key, options, target);
  return { validated, dataFiles: [] as { location: string; path: string; size: number; sha256: string }[] };
}

/**
 * How `validate` loads and stores the model whose skeleton is `skeleton`, read from `source`: unchanged, from
 * `stored` (the source itself, or a link to it where the version is laid out); rewritten, from `rewrittenPath`,
 * written with the source's weights (once per rewritten model: loading and storing it share the file).
 */
function fileTarget(
  skeleton: Uint8Array,
  source: string,
  stored: { readonly path: string; readonly sha256: string; readonly size: number },
  rewrittenPath: string,
  options: RegistrationOptions,
  rewrite?: RewriteOptions,
): ValidationTarget {
  let written: { model: Uint8Array; file: Promise<{ path: string; sha256: string; size: number }> } | undefined;
  const write = (model: Uint8Array) => {
    if (written?.model !== model) {
      const file = (async () => {
        await rm(rewrittenPath, { force: true });
        return { path: rewrittenPath, ...(await writeWithWeights(source, model, rewrittenPath)) };
      })();
      written = { model, file };
    }
    return written.file;
  };
  return {
    ...(rewrite === undefined ? {} : { rewrite }),
    file: { ...stored, write },
    open: async (model) => openFile(model === skeleton ? stored.path : (await write(model)).path, options),
  };
}

/** Unpacks, checks, lays out and validates an archive. Throws `ModelRejectedError` with the reason. */
async function prepareArchive(
  archive: string,
  root: string,
  key: string,
  options: RegistrationOptions,
  validate: Validate,
) {
  const unpacked = path.join(root, 'unpacked');
  const layout = path.join(root, 'version');
  await mkdir(unpacked);
  await mkdir(layout);
  const contents = await unpackModelArchive(archive, unpacked, { maxUnpackedBytes: options.maxModelBytes });
  // The archive's bytes are on disk twice now; the unpacked copy is all that is needed from here on.
  await rm(archive, { force: true });
  // The .onnx is read as a skeleton, as a single upload is: weights stored inside it never enter memory either.
  const skeleton = await readModelSkeleton(contents.model.file, options.maxGraphBytes);
  const references = externalDataReferences(readModelFile(skeleton));
  const sizes = new Map([...contents.others].map(([name, entry]) => [name, entry.size]));
  const used = checkExternalData(references, contents.model.name, sizes);
  const referenced = new Set(used.values());
  const extra = [...contents.others.keys()].filter((name) => !referenced.has(name));
  if (extra.length > 0) {
    throw new ModelRejectedError(
      `the archive holds files no initializer of "${contents.model.name}" references ` +
        `(${extra
          .slice(0, 5)
          .map((n) => `"${n}"`)
          .join(', ')}${extra.length > 5 ? ', ...' : ''}); ` +
        'zip only the .onnx file and its external-data files',
    );
  }
  const dataFiles: { location: string; path: string; size: number; sha256: string }[] = [];
  for (const [location, name] of used) {
    const entry = contents.others.get(name);
    if (entry === undefined) continue;
    const target = path.join(layout, ...location.split('/'));
    await mkdir(path.dirname(target), { recursive: true });
    await rename(entry.file, target);
    dataFiles.push({ location, path: target, size: entry.size, sha256: await sha256Of(target) });
  }
  // onnxruntime finds the data files beside the model file, as serving lays them out: the unchanged .onnx is
  // linked there, a rewritten one written there.
  const modelPath = path.join(layout, 'model.onnx');
  await link(contents.model.file, modelPath);
  const stored = { path: modelPath, sha256: await sha256Of(modelPath), size: contents.model.size };
  const target = fileTarget(skeleton, contents.model.file, stored, modelPath, options, { externalData: true });
  const validated = await validate(skeleton, key, options, target);
  return { validated, dataFiles };
}

/**
 * The session from a file. onnxruntime prefixes its reasons with "Load model from <path> failed:" when it reads a
 * path; the scratch path means nothing to the user, so the reason reads as it does for bytes.
 */
async function openFile(file: string, options: RegistrationOptions) {
  try {
    return await options.sessionFactory.createFromFile(file, options.sessionOptions);
  } catch (error) {
    if (!(error instanceof ModelRejectedError)) throw error;
    const message = error.message.replace(`Load model from ${file} failed:`, '');
    throw new ModelRejectedError(message, { cause: error.cause ?? error });
  }
}

/** sha256 (hex) of a file, streamed. */
async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
