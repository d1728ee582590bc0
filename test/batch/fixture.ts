/**
 * The inputs of the batch tests: 1,000 objects of every kind a job meets (valid V2 JSON requests, images, JSON Lines,
 * and malformed JSON, wrong shapes, bytes that are not an image, empty objects), for an identity model over a
 * `[1, 3, 8, 8]` image input with declared preprocessing, so that every valid answer is checkable.
 */
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import sharp from 'sharp';
import type { BlobStore } from '../../functions/core/blob-store.js';
import { mapBounded } from '../../functions/core/batch/index.js';
import { encodeInferenceRequest } from '../../functions/core/codec/index.js';
import { buildIdentityModel } from '../../tools/onnx/index.js';

/** The model the jobs run: identity over FP32 `[1, 3, 8, 8]`, images preprocessed to 8 x 8. */
export const BATCH_MODEL = {
  name: 'pic',
  bytes: () => buildIdentityModel('FP32', [1, 3, 8, 8]),
  sample: { preprocess: { images: { input: { size: [8, 8], resize: 'stretch' } } } },
} as const;

export const INPUT_PREFIX = 'batch/in/';
export const OUTPUT_PREFIX = 'batch/out/';

/** What each input is, and so which record it must end as. */
export type InputCase =
  | 'json'
  | 'binary'
  | 'image'
  | 'jsonl'
  | 'malformed'
  | 'wrong-shape'
  | 'not-image'
  | 'empty'
  | 'empty-object';

/** One input object. */
export interface BatchInput {
  readonly key: string;
  readonly body: Uint8Array;
  readonly kind: InputCase;
  /** The headers a client would send with its body to the infer route. */
  readonly headers: Readonly<Record<string, string>>;
}

/** How many of each: 1,000 in all; the first three kinds are valid. */
export const INPUT_COUNTS: Readonly<Record<InputCase, number>> = {
  json: 580,
  binary: 20,
  image: 100,
  jsonl: 20,
  malformed: 80,
  'wrong-shape': 80,
  'not-image': 60,
  empty: 30,
  'empty-object': 30,
};

/** True for the kinds that end as a result. */
export const isValidCase = (kind: InputCase) =>
  kind === 'json' || kind === 'binary' || kind === 'image' || kind === 'jsonl';

const encoder = new TextEncoder();

function request(seed: number, shape: readonly number[] = [1, 3, 8, 8]): string {
  const count = shape.reduce((a, b) => a * b, 1);
  const data = Array.from({ length: count }, (_, i) => ((seed * 31 + i * 7) % 997) / 10);
  return JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape, data }] });
}

/** The 1,000 inputs, in a fixed order and with fixed contents. */
export async function buildInputs(): Promise<BatchInput[]> {
  const inputs: BatchInput[] = [];
  const add = (
    kind: InputCase,
    name: string,
    body: Uint8Array | string,
    headers: Record<string, string> = { 'content-type': 'application/json' },
  ) =>
    inputs.push({
      key: `${INPUT_PREFIX}${name}`,
      body: typeof body === 'string' ? encoder.encode(body) : body,
      kind,
      headers: { ...headers, accept: 'application/json' },
    });
  for (let i = 0; i < INPUT_COUNTS.json; i++) add('json', `json/${String(i).padStart(4, '0')}.json`, request(i));
  for (let i = 0; i < INPUT_COUNTS.binary; i++) {
    const data = Float32Array.from({ length: 192 }, (_, n) => ((i * 17 + n * 3) % 101) / 7);
    const { body, headers } = encodeInferenceRequest([{ name: 'input', datatype: 'FP32', shape: [1, 3, 8, 8], data }], {
      binary: true,
    });
    add('binary', `binary/${String(i).padStart(4, '0')}.bin`, body, { ...headers });
  }
  for (let i = 0; i < INPUT_COUNTS.image; i++) {
    const png = await sharp({
      create: { width: 8, height: 8, channels: 3, background: { r: i % 256, g: (i * 7) % 256, b: (i * 13) % 256 } },
    })
      .png()
      .toBuffer();
    add('image', `images/${String(i).padStart(4, '0')}.png`, new Uint8Array(png), { 'content-type': 'image/png' });
  }
  for (let i = 0; i < INPUT_COUNTS.jsonl; i++) {
    add('jsonl', `lines/${String(i).padStart(4, '0')}.jsonl`, `${request(5000 + i)}\n${request(6000 + i)}\n`);
  }
  for (let i = 0; i < INPUT_COUNTS.malformed; i++) add('malformed', `bad/malformed-${i}.json`, `{"inputs": [${i}`);
  for (let i = 0; i < INPUT_COUNTS['wrong-shape']; i++)
    add('wrong-shape', `bad/shape-${i}.json`, request(i, [1, 3, 4, 4]));
  for (let i = 0; i < INPUT_COUNTS['not-image']; i++)
    add('not-image', `bad/not-image-${i}.png`, `not a png ${i}`, { 'content-type': 'image/png' });
  for (let i = 0; i < INPUT_COUNTS.empty; i++) add('empty', `bad/empty-${i}.json`, '');
  for (let i = 0; i < INPUT_COUNTS['empty-object']; i++) add('empty-object', `bad/empty-object-${i}.json`, '{}');
  return inputs;
}

/** Uploads the inputs, a few at a time. */
export async function uploadInputs(store: BlobStore, inputs: readonly BatchInput[]): Promise<void> {
  await mapBounded(inputs, 16, (input) => store.put(input.key, input.body));
}

/** The result and failure keys of an input (as a user reads docs/batch.md: the input's path below the output). */
export function expectedKeys(input: BatchInput): { result: string; failure: string } {
  const base = `${OUTPUT_PREFIX}${input.key.slice(INPUT_PREFIX.length)}`;
  return {
    result: `${base}${input.kind === 'jsonl' ? '.result.jsonl' : '.result.json'}`,
    failure: `${base}.failure.json`,
  };
}

/** Every object under `prefix` of `bucket`, with its etag (what "changes nothing" compares). */
export async function listing(client: S3Client, bucket: string, prefix: string): Promise<Map<string, string>> {
  const objects = new Map<string, string>();
  let token: string | undefined;
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const o of page.Contents ?? []) objects.set(o.Key ?? '', o.ETag ?? '');
    token = page.NextContinuationToken;
  } while (token !== undefined);
  return objects;
}
