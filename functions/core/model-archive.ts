/**
 * Unpacks a model archive (`uploads/<model>/<name>.zip`: one `.onnx` file and its external-data files) from a
 * local file, with the zip-bomb guards yauzl leaves to its caller: a cap on entries, on each entry's declared size
 * and on their total, and a count of the bytes actually inflated (yauzl also checks each entry's actual size
 * against its declared one). Entries are written under numbered names, never under their own, so that no name in
 * an archive can reach outside the destination folder.
 */
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import yauzl from 'yauzl';
import { ModelRejectedError } from './errors.js';
import { UPLOAD_SUFFIX } from './model-repository.js';

/** Limits of one archive. */
export interface ArchiveLimits {
  /** Largest sum of the entries' uncompressed sizes (MAX_MODEL_BYTES: what the version may weigh unpacked). */
  readonly maxUnpackedBytes: number;
  /** Most entries (files and folders). @default 1000 */
  readonly maxEntries?: number;
}

/** One regular file of the archive, unpacked. */
export interface UnpackedEntry {
  /** Path inside the archive (`/`-separated). */
  readonly name: string;
  readonly size: number;
  /** Where it was written. */
  readonly file: string;
}

/** What an archive held. */
export interface UnpackedArchive {
  /** The one `.onnx` file. */
  readonly model: UnpackedEntry;
  /** Every other regular file, by its path inside the archive. */
  readonly others: ReadonlyMap<string, UnpackedEntry>;
}

const DEFAULT_MAX_ENTRIES = 1000;
/** Unix file-type bits of `externalFileAttributes >>> 16`. */
const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const S_IFREG = 0o100000;
/** Folders macOS's Finder adds to archives (resource forks, `._model.onnx`): never part of a model. */
const IGNORED_PREFIXES = ['__MACOSX/'];

/**
 * Unpacks `archive` into `destination` (an existing, empty folder). Throws {@link ModelRejectedError} with the reason
 * when the archive is not a zip, holds a symlink, other than exactly one `.onnx` file, too many entries, or more
 * bytes than allowed (declared or inflated).
 */
export async function unpackModelArchive(
  archive: string,
  destination: string,
  limits: ArchiveLimits,
): Promise<UnpackedArchive> {
  let zip: yauzl.ZipFile;
  try {
    zip = await openZip(archive);
  } catch (error) {
    throw new ModelRejectedError(`the upload is not a readable zip archive: ${messageOf(error)}`, { cause: error });
  }
  try {
    const maxEntries = limits.maxEntries ?? DEFAULT_MAX_ENTRIES;
    if (zip.entryCount > maxEntries) {
      throw new ModelRejectedError(`the archive has ${zip.entryCount} entries; at most ${maxEntries} are accepted`);
    }
    const files: UnpackedEntry[] = [];
    let declaredTotal = 0;
    let inflatedTotal = 0;
    for (let entry = await nextEntry(zip); entry !== undefined; entry = await nextEntry(zip)) {
      const name = entry.fileName;
      if (name.endsWith('/') || IGNORED_PREFIXES.some((p) => name.startsWith(p))) continue;
      const type = (entry.externalFileAttributes >>> 16) & S_IFMT;
      if (type === S_IFLNK) {
        throw new ModelRejectedError(
          `the archive entry "${name}" is a symbolic link; put the file itself in the archive`,
        );
      }
      if (type !== 0 && type !== S_IFREG) {
        throw new ModelRejectedError(`the archive entry "${name}" is not a regular file`);
      }
      declaredTotal += entry.uncompressedSize;
      if (declaredTotal > limits.maxUnpackedBytes) {
        throw new ModelRejectedError(
          `the archive's files add up to more than ${limits.maxUnpackedBytes} bytes unpacked (MAX_MODEL_BYTES)`,
        );
      }
      const file = path.join(destination, `entry-${files.length}`);
      let inflated = 0;
      const count = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          inflated += chunk.length;
          inflatedTotal += chunk.length;
          // yauzl stops at the declared size too; this also holds when an archive lies about it in both headers.
          if (inflated > entry.uncompressedSize || inflatedTotal > limits.maxUnpackedBytes) {
            done(bomb(name));
            return;
          }
          done(null, chunk);
        },
      });
      try {
        await pipeline(await openEntry(zip, entry), count, createWriteStream(file));
      } catch (error) {
        if (error instanceof ModelRejectedError) throw error;
        // yauzl's own check of the declared size (validateEntrySizes) says "too many bytes in the stream".
        if (/too many bytes|not enough bytes/.test(messageOf(error))) throw bomb(name, error);
        throw new ModelRejectedError(`the archive entry "${name}" cannot be unpacked: ${messageOf(error)}`, {
          cause: error,
        });
      }
      files.push({ name, size: inflated, file });
    }
    const models = files.filter((f) => f.name.toLowerCase().endsWith(UPLOAD_SUFFIX));
    if (models.length !== 1) {
      throw new ModelRejectedError(
        `the archive holds ${models.length === 0 ? 'no' : models.length} .onnx files` +
          (models.length > 1
            ? ` (${models
                .map((m) => `"${m.name}"`)
                .slice(0, 5)
                .join(', ')})`
            : '') +
          '; it must hold exactly one, with the external-data files its weights reference',
      );
    }
    const [model] = models as [UnpackedEntry];
    return { model, others: new Map(files.filter((f) => f !== model).map((f) => [f.name, f])) };
  } finally {
    zip.close();
  }
}

function openZip(file: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    // strictFileNames: a backslash in a name is refused rather than silently turned into a folder separator.
    yauzl.open(
      file,
      { lazyEntries: true, autoClose: false, validateEntrySizes: true, strictFileNames: true },
      (error, zip) => (error ? reject(error) : resolve(zip)),
    );
  });
}

function nextEntry(zip: yauzl.ZipFile): Promise<yauzl.Entry | undefined> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      zip.off('entry', onEntry);
      zip.off('end', onEnd);
      zip.off('error', onError);
    };
    const onEntry = (entry: yauzl.Entry) => {
      cleanup();
      resolve(entry);
    };
    const onEnd = () => {
      cleanup();
      resolve(undefined);
    };
    const onError = (error: Error) => {
      cleanup();
      reject(new ModelRejectedError(`the upload is not a valid zip archive: ${messageOf(error)}`, { cause: error }));
    };
    zip.on('entry', onEntry);
    zip.on('end', onEnd);
    zip.on('error', onError);
    zip.readEntry();
  });
}

function openEntry(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<NodeJS.ReadableStream> {
  return new Promise((resolve, reject) => {
    zip.openReadStream(entry, (error, stream) => (error ? reject(error) : resolve(stream)));
  });
}

function bomb(name: string, cause?: unknown): ModelRejectedError {
  return new ModelRejectedError(
    `the archive entry "${name}" inflates to more bytes than it declares (a zip bomb, or a corrupt archive); make the ` +
      "archive again with zip or Python's zipfile",
    cause === undefined ? undefined : { cause },
  );
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
