/**
 * The commands of the `models` CLI, over a {@link ModelRepository}: upload (and wait for the registration's
 * outcome), list, promote (and roll back), rejections. They print through `out` and return an exit code; they know
 * nothing of argv or of how the store was opened.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { BlobStore } from '../core/blob-store.js';
import { isValidModelName, MODEL_NAME_PATTERN } from '../core/catalog.js';
import { NotFoundError } from '../core/errors.js';
import {
  ARCHIVE_SUFFIX,
  type ModelRepository,
  UPLOAD_SUFFIX,
  UPLOAD_SUFFIXES,
  UPLOADS_PREFIX,
} from '../core/model-repository.js';
import { SAMPLE_SUFFIX } from '../core/registration.js';
import type { Manifest, Rejection } from '../core/types.js';
import { CommandFailedError, EXIT_CODES, UsageError } from './errors.js';

/** What every command works with. */
export interface CommandContext {
  readonly store: BlobStore;
  readonly repository: ModelRepository;
  /** Writes one line of output. */
  readonly out: (line: string) => void;
  /** Writes one line of diagnostics (warnings). */
  readonly err: (line: string) => void;
  /** Print JSON instead of text. */
  readonly json: boolean;
  /** `s3://models at http://127.0.0.1:9000`, for messages. */
  readonly where: string;
  /** @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
  /** @default Date.now */
  readonly now?: () => number;
}

/** Seconds `upload --wait` waits by default: registration smoke-tests the model, large ones take a while. */
export const DEFAULT_WAIT_SECONDS = 120;
/** How often `upload --wait` looks at the manifest and `rejected/`. */
export const WAIT_POLL_MS = 500;
/** Label names: not a number, so that `/versions/<label>` can never shadow a version. */
const LABEL_PATTERN = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;

/** Refuses (usage error) a model name that cannot be a model's. */
export function checkModelName(model: string): void {
  if (!isValidModelName(model)) {
    throw new UsageError(
      `"${model}" is not an allowed model name: use 1 to 128 letters, digits, "_", "." or "-", starting with a ` +
        `letter or digit, without ".." (${MODEL_NAME_PATTERN.source})`,
    );
  }
}

function unreadable(file: string, what: string, error: unknown): UsageError {
  const code = (error as NodeJS.ErrnoException).code;
  const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (code ?? 'unreadable');
  return new UsageError(`cannot read the ${what} "${file}": ${why}`, { cause: error });
}

async function readLocalFile(file: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(file));
  } catch (error) {
    throw unreadable(file, what, error);
  }
}

/** Size and sha256 of a local file, streamed: a model of any size is never one buffer (it is uploaded streamed). */
async function hashLocalFile(file: string, what: string): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  try {
    for await (const chunk of createReadStream(file)) {
      hash.update(chunk as Buffer);
      size += (chunk as Buffer).byteLength;
    }
  } catch (error) {
    throw unreadable(file, what, error);
  }
  return { size, sha256: hash.digest('hex') };
}

/** Options of {@link uploadCommand}. */
export interface UploadOptions {
  readonly file: string;
  readonly model: string;
  /** A V2 request (with optional `expected_outputs` and `decimal`) for the smoke test. */
  readonly sample?: string;
  readonly wait: boolean;
  /** @default {@link DEFAULT_WAIT_SECONDS} */
  readonly timeoutSeconds?: number;
}

/** What `upload --json` prints. */
export interface UploadReport {
  readonly key: string;
  readonly sha256: string;
  readonly size: number;
  /** `uploaded` without `--wait`; `identical` when a version already has these bytes (nothing is uploaded). */
  readonly outcome: 'uploaded' | 'identical' | 'registered' | 'rejected' | 'timed-out';
  readonly version?: string;
  readonly latest?: string;
  readonly reason?: string;
}

/**
 * Uploads `uploads/<model>/<file>.onnx` or `.zip` (its sample first, as `<file>.onnx.json`) and, with `wait`, polls the
 * manifest and `rejected/<model>/` until registration has added a version with the file's sha256 or refused it.
 */
export async function uploadCommand(ctx: CommandContext, options: UploadOptions): Promise<number> {
  checkModelName(options.model);
  const name = path.basename(options.file);
  if (!UPLOAD_SUFFIXES.some((suffix) => name.endsWith(suffix) && name !== suffix)) {
    throw new UsageError(
      `"${name}" does not end in ${UPLOAD_SUFFIXES.join(' or ')}: only ${UPLOADS_PREFIX}<model>/<file>${UPLOAD_SUFFIX} ` +
        `(or ${ARCHIVE_SUFFIX}, a model with its external-data files) objects start a registration (the bucket ` +
        'notification filters on the suffix); rename the file',
    );
  }
  const { size, sha256 } = await hashLocalFile(options.file, 'model file');
  const sample = options.sample === undefined ? undefined : await readLocalFile(options.sample, 'sample');
  if (sample !== undefined) {
    try {
      JSON.parse(new TextDecoder().decode(sample));
    } catch (error) {
      throw new UsageError(`the sample "${options.sample}" is not JSON: ${(error as Error).message}`, { cause: error });
    }
  }
  const key = `${UPLOADS_PREFIX}${options.model}/${name}`;
  const report = (fields: Pick<UploadReport, 'outcome'> & Partial<UploadReport>): void => {
    if (ctx.json) ctx.out(JSON.stringify({ key, sha256, size, ...fields }));
  };

  const before = (await ctx.repository.readManifest(options.model))?.manifest;
  const identical = before?.versions.find((v) => v.sha256 === sha256);
  if (identical !== undefined) {
    report({ outcome: 'identical', version: identical.version, latest: before?.latest });
    if (!ctx.json) {
      ctx.out(
        `${options.model}: version ${identical.version} already has these bytes (sha256 ${sha256.slice(0, 12)}); nothing uploaded`,
      );
    }
    return EXIT_CODES.ok;
  }

  const knownRejections = new Set(options.wait ? await ctx.repository.listRejectionKeys(options.model) : []);
  const sampleKey = `${key}${SAMPLE_SUFFIX}`;
  if (sample !== undefined) {
    await ctx.store.put(sampleKey, sample);
  } else if ((await ctx.store.get(sampleKey)) !== undefined) {
    ctx.err(
      `note: ${sampleKey} from an earlier upload will be used as the smoke-test sample; pass --sample to replace it`,
    );
  }
  await ctx.store.putFile(key, options.file);
  if (!ctx.json) {
    ctx.out(`uploaded ${key} (${size} bytes, sha256 ${sha256.slice(0, 12)}) to ${ctx.where}`);
  }
  if (!options.wait) {
    report({ outcome: 'uploaded' });
    return EXIT_CODES.ok;
  }

  const now = ctx.now ?? Date.now;
  const sleep = ctx.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const timeoutSeconds = options.timeoutSeconds ?? DEFAULT_WAIT_SECONDS;
  const deadline = now() + timeoutSeconds * 1000;
  for (;;) {
    const manifest = (await ctx.repository.readManifest(options.model))?.manifest;
    const row = manifest?.versions.find((v) => v.sha256 === sha256);
    if (manifest !== undefined && row !== undefined) {
      report({ outcome: 'registered', version: row.version, latest: manifest.latest });
      if (!ctx.json) ctx.out(`registered: ${options.model} version ${row.version} (latest: ${manifest.latest})`);
      return EXIT_CODES.ok;
    }
    const rejection = await newRejectionOf(ctx.repository, options.model, key, sha256, knownRejections);
    if (rejection !== undefined) {
      report({ outcome: 'rejected', reason: rejection.reason });
      if (!ctx.json) {
        ctx.out(`refused: ${rejection.reason}`);
        ctx.out(
          `${options.model} still serves ${manifest === undefined ? 'nothing yet' : `version ${manifest.latest}`}`,
        );
      }
      return EXIT_CODES.failed;
    }
    if (now() >= deadline) {
      report({ outcome: 'timed-out' });
      ctx.err(
        `no registration outcome for ${key} after ${timeoutSeconds} s: is the register function subscribed to the ` +
          `bucket's ${UPLOADS_PREFIX} events (locally: is \`npm start\` running on this endpoint)? Check again with ` +
          `\`npm run models -- list ${options.model}\` and \`npm run models -- rejections ${options.model}\``,
      );
      return EXIT_CODES.timedOut;
    }
    await sleep(WAIT_POLL_MS);
  }
}

/** A rejection recorded since `known` was listed, for this upload key and these bytes. */
async function newRejectionOf(
  repository: ModelRepository,
  model: string,
  key: string,
  sha256: string,
  known: Set<string>,
): Promise<Rejection | undefined> {
  for (const rejectionKey of await repository.listRejectionKeys(model)) {
    if (known.has(rejectionKey)) continue;
    known.add(rejectionKey);
    const rejection = await repository.readRejection(rejectionKey);
    // Refusals before the file was hashed (empty, over the size limit) carry no sha256.
    if (rejection?.sourceKey === key && (rejection.sha256 === undefined || rejection.sha256 === sha256))
      return rejection;
  }
  return undefined;
}

function labelsOf(manifest: Manifest, version: string): string[] {
  const names = Object.entries(manifest.labels)
    .filter(([, v]) => v === version)
    .map(([label]) => label);
  return manifest.latest === version ? ['latest', ...names] : names;
}

/** Columns padded to their widest cell. */
function table(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows)
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  return rows.map((row) =>
    row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  '),
  );
}

async function requireManifest(repository: ModelRepository, model: string, where: string): Promise<Manifest> {
  const manifest = (await repository.readManifest(model))?.manifest;
  if (manifest === undefined) {
    const known = await repository.listModels();
    throw new CommandFailedError(
      `unknown model "${model}" in ${where}; models: ${known.join(', ') || 'none yet (upload one)'}`,
    );
  }
  return manifest;
}

/** `list`: every model with its latest version and labels; `list <m>`: one model's versions. */
export async function listCommand(ctx: CommandContext, model?: string): Promise<number> {
  if (model !== undefined) {
    checkModelName(model);
    const manifest = await requireManifest(ctx.repository, model, ctx.where);
    const rejected = (await ctx.repository.listRejectionKeys(model)).length;
    if (ctx.json) {
      ctx.out(JSON.stringify({ ...manifest, rejections: rejected }));
      return EXIT_CODES.ok;
    }
    const labels = Object.entries(manifest.labels).map(([label, v]) => `${label}=${v}`);
    ctx.out(`${model}: latest ${manifest.latest}${labels.length > 0 ? `; labels ${labels.join(', ')}` : ''}`);
    const rows = manifest.versions.map((v) => [
      v.version,
      v.state,
      labelsOf(manifest, v.version).join(',') || '-',
      v.createdAt,
      String(v.size),
      v.sha256.slice(0, 12),
      v.sourceKey + (v.reason === undefined ? '' : ` (${v.reason})`),
    ]);
    for (const line of table([['VERSION', 'STATE', 'POINTERS', 'CREATED', 'BYTES', 'SHA256', 'SOURCE'], ...rows]))
      ctx.out(line);
    if (rejected > 0) ctx.out(`${rejected} refused upload(s): npm run models -- rejections ${model}`);
    return EXIT_CODES.ok;
  }

  const models = await ctx.repository.listModels();
  const manifests: Manifest[] = [];
  for (const name of models) {
    const manifest = (await ctx.repository.readManifest(name))?.manifest;
    if (manifest !== undefined) manifests.push(manifest);
  }
  // Models whose every upload was refused have no manifest, but the user still wants to see them.
  const refusedOnly = new Map<string, number>();
  for (const key of await ctx.repository.listRejectionKeys()) {
    const name = key.split('/')[1] ?? '';
    if (!models.includes(name)) refusedOnly.set(name, (refusedOnly.get(name) ?? 0) + 1);
  }
  if (ctx.json) {
    ctx.out(JSON.stringify({ models: manifests, refusedOnly: Object.fromEntries(refusedOnly) }));
    return EXIT_CODES.ok;
  }
  if (manifests.length === 0 && refusedOnly.size === 0) {
    ctx.out(`no models in ${ctx.where} yet: npm run models -- upload <file.onnx|file.zip> --model <name>`);
    return EXIT_CODES.ok;
  }
  const rows = manifests.map((m) => [
    m.name,
    m.latest,
    m.versions.map((v) => (v.state === 'READY' ? v.version : `${v.version}(${v.state})`)).join(','),
    Object.entries(m.labels)
      .map(([label, v]) => `${label}=${v}`)
      .join(',') || '-',
  ]);
  for (const [name, count] of refusedOnly) rows.push([name, '-', '-', `${count} refused upload(s), no version`]);
  for (const line of table([['MODEL', 'LATEST', 'VERSIONS', 'LABELS'], ...rows])) ctx.out(line);
  return EXIT_CODES.ok;
}

/** Options of {@link promoteCommand}. */
export interface PromoteOptions {
  readonly model: string;
  readonly version: string;
  /** Move this label (e.g. `stable`) instead of `latest`. */
  readonly label?: string;
}

/** `promote <m> <version> [--label <name>]`: points `latest` (rollback, roll forward) or a label at a version. */
export async function promoteCommand(ctx: CommandContext, options: PromoteOptions): Promise<number> {
  checkModelName(options.model);
  if (options.label !== undefined && (!LABEL_PATTERN.test(options.label) || options.label === 'latest')) {
    throw new UsageError(
      `"${options.label}" is not an allowed label: use a letter then up to 63 letters, digits, "_", "." or "-" ` +
        '(not "latest": promote without --label moves latest)',
    );
  }
  const previous = await requireManifest(ctx.repository, options.model, ctx.where);
  let manifest: Manifest;
  try {
    manifest = await ctx.repository.setPointer(options.model, options.version, options.label);
  } catch (error) {
    if (!(error instanceof NotFoundError)) throw error;
    const ready = previous.versions.filter((v) => v.state === 'READY').map((v) => v.version);
    throw new CommandFailedError(`${error.message}; READY versions: ${ready.join(', ') || 'none'}`, { cause: error });
  }
  const pointer = options.label ?? 'latest';
  const was = options.label === undefined ? previous.latest : previous.labels[options.label];
  if (ctx.json) {
    ctx.out(
      JSON.stringify({ model: options.model, pointer, version: options.version, previous: was ?? null, manifest }),
    );
  } else {
    ctx.out(`${options.model}: ${pointer} -> version ${options.version} (was ${was ?? 'unset'})`);
    ctx.out('endpoints pick it up within MANIFEST_TTL_SECONDS (15 s by default)');
  }
  return EXIT_CODES.ok;
}

/** `rejections [<m>]`: refused uploads and why, oldest first. */
export async function rejectionsCommand(ctx: CommandContext, model?: string): Promise<number> {
  if (model !== undefined) checkModelName(model);
  const rejections = await ctx.repository.listRejections(model);
  if (ctx.json) {
    ctx.out(JSON.stringify(rejections));
    return EXIT_CODES.ok;
  }
  if (rejections.length === 0) {
    ctx.out(`no refused uploads${model === undefined ? '' : ` of ${model}`} in ${ctx.where}`);
    return EXIT_CODES.ok;
  }
  for (const r of rejections) {
    ctx.out(`${r.rejectedAt}  ${r.sourceKey}${r.sha256 === undefined ? '' : `  sha256 ${r.sha256.slice(0, 12)}`}`);
    ctx.out(`  ${r.reason}`);
  }
  return EXIT_CODES.ok;
}
