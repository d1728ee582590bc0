/**
 * The items of a batch job: which inputs a listing holds, how each becomes the same request a client would send to
 * the infer route, and the keys its outcome is written to. Keys are derived from the input key alone, so that a
 * retried or resumed item overwrites (or skips), never duplicates.
 */
import { BATCH_JOBS_PREFIX } from './locations.js';

/** How an input object is read, chosen by its file extension. */
export type InputKind = 'json' | 'jsonl' | 'binary' | 'image';

/** Extensions of each {@link InputKind} (lower case); an image's gives its media type. */
export const INPUT_EXTENSIONS = {
  json: ['.json'],
  jsonl: ['.jsonl', '.ndjson'],
  binary: ['.bin'],
  image: { '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.png': 'image/png', '.webp': 'image/webp' },
} as const;

/** Suffix of an item's result, beside its derived key (`.jsonl` inputs get `.result.jsonl`: one line per line). */
export const RESULT_SUFFIX = '.result.json';
/** Suffix of a JSON Lines item's result. */
export const LINES_RESULT_SUFFIX = '.result.jsonl';
/** Suffix of an item's failure record. */
export const FAILURE_SUFFIX = '.failure.json';

/** The kind of the input at `key`, or `undefined` for an extension no kind takes. */
export function inputKind(key: string): InputKind | undefined {
  const extension = extensionOf(key);
  if ((INPUT_EXTENSIONS.json as readonly string[]).includes(extension)) return 'json';
  if ((INPUT_EXTENSIONS.jsonl as readonly string[]).includes(extension)) return 'jsonl';
  if ((INPUT_EXTENSIONS.binary as readonly string[]).includes(extension)) return 'binary';
  if (extension in INPUT_EXTENSIONS.image) return 'image';
  return undefined;
}

function extensionOf(key: string): string {
  const name = key.slice(key.lastIndexOf('/') + 1);
  const dot = name.lastIndexOf('.');
  return dot <= 0 ? '' : name.slice(dot).toLowerCase();
}

/** Why an input of no known kind is refused (its failure record says it). */
export function unsupportedKindReason(key: string): string {
  const images = Object.keys(INPUT_EXTENSIONS.image).join(', ');
  return (
    `"${key.slice(key.lastIndexOf('/') + 1)}" has no input extension this job reads: name V2 JSON requests .json, ` +
    `JSON Lines of V2 requests .jsonl, binary-extension requests .bin, images ${images}`
  );
}

/** Where one item's outcome goes. */
export interface ItemKeys {
  readonly result: string;
  readonly failure: string;
}

/**
 * The result and failure keys of the input `key` of a job reading `inputPrefix` and writing `outputPrefix`: the
 * input's path below the input prefix, below the output prefix, plus a suffix.
 * @throws Error when `key` is not under `inputPrefix` (a bug of the caller: listings only hold such keys).
 */
export function itemKeys(key: string, inputPrefix: string, outputPrefix: string): ItemKeys {
  if (!key.startsWith(inputPrefix) || key.length === inputPrefix.length) {
    throw new Error(`input key "${key}" is not under the job's input prefix "${inputPrefix}"`);
  }
  const base = `${outputPrefix}${key.slice(inputPrefix.length)}`;
  return {
    result: `${base}${inputKind(key) === 'jsonl' ? LINES_RESULT_SUFFIX : RESULT_SUFFIX}`,
    failure: `${base}${FAILURE_SUFFIX}`,
  };
}

/**
 * True for a listed key that is an item of the job: not a folder marker, not a job record. (S3 console "folders"
 * are zero-byte keys ending in `/`.)
 */
export function isItemKey(key: string): boolean {
  return !key.endsWith('/') && !key.startsWith(BATCH_JOBS_PREFIX);
}

/** Cuts `keys` into batches of at most `size`, in listing order (what Step Functions' `ItemBatcher` does). */
export function planBatches<T>(keys: readonly T[], size: number): T[][] {
  if (!Number.isInteger(size) || size < 1) throw new Error(`batch size must be a positive integer, got ${size}`);
  const batches: T[][] = [];
  for (let start = 0; start < keys.length; start += size) batches.push(keys.slice(start, start + size));
  return batches;
}

/** The request headers the infer route reads, for one item (see {@link itemRequest}). */
export interface ItemRequest {
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

/**
 * The request a client would send for one input object (or one line of a JSON Lines object): JSON, the binary
 * extension (its JSON header's length found by scanning), or an image body. Answers are always asked for in JSON,
 * so that a result is readable whatever the input was.
 * @returns the request, or the reason the bytes cannot be one (its failure record says it).
 */
export function itemRequest(kind: Exclude<InputKind, 'jsonl'>, key: string, body: Uint8Array): ItemRequest | string {
  const accept = 'application/json';
  if (kind === 'json') return { headers: { 'content-type': 'application/json', accept }, body };
  if (kind === 'image') {
    const mediaType = INPUT_EXTENSIONS.image[extensionOf(key) as keyof typeof INPUT_EXTENSIONS.image];
    return { headers: { 'content-type': mediaType, accept }, body };
  }
  const headerLength = jsonObjectLength(body);
  if (headerLength === undefined) {
    return 'a .bin input must start with the JSON header of a binary-extension request (a complete JSON object)';
  }
  return {
    headers: {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(headerLength),
      accept,
    },
    body,
  };
}

/**
 * The bytes of the JSON object that starts `bytes` (after optional whitespace), or `undefined` if there is none:
 * how long the header of a stored binary-extension request is, which S3 has no header to say.
 */
export function jsonObjectLength(bytes: Uint8Array): number | undefined {
  let i = 0;
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)) i++;
  if (bytes[i] !== 0x7b) return undefined;
  let depth = 0;
  let inString = false;
  for (; i < bytes.length; i++) {
    const byte = bytes[i];
    if (inString) {
      if (byte === 0x5c) i++;
      else if (byte === 0x22) inString = false;
    } else if (byte === 0x22) inString = true;
    else if (byte === 0x7b || byte === 0x5b) depth++;
    else if (byte === 0x7d || byte === 0x5d) {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return undefined;
}

/** The non-empty lines of a JSON Lines object, each with its 1-based line number. */
export function jsonLines(body: Uint8Array): { line: number; bytes: Uint8Array }[] {
  const lines: { line: number; bytes: Uint8Array }[] = [];
  let start = 0;
  let line = 1;
  for (let i = 0; i <= body.length; i++) {
    if (i === body.length || body[i] === 0x0a) {
      let end = i;
      if (end > start && body[end - 1] === 0x0d) end--;
      const bytes = body.subarray(start, end);
      if (bytes.some((b) => b !== 0x20 && b !== 0x09)) lines.push({ line, bytes });
      start = i + 1;
      line++;
    }
  }
  return lines;
}
