/**
 * The pure core of batch jobs: derived keys (one per input, stable, never outside the output prefix), the location
 * rule, the stored binary request's header length, JSON Lines, batching, bounded concurrency and the job record's
 * counts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkBatchLocations,
  finishedRecord,
  inputKind,
  itemKeys,
  jsonLines,
  jsonObjectLength,
  mapBounded,
  parseS3Uri,
  planBatches,
  type BatchJobSpec,
} from '../../functions/core/batch/index.js';
import { BadRequestError } from '../../functions/core/errors.js';

const encoder = new TextEncoder();

describe('item keys', () => {
  it('derive the result and failure keys from the input key alone', () => {
    expect(itemKeys('batch/in/a/b.json', 'batch/in/', 'batch/out/')).toEqual({
      result: 'batch/out/a/b.json.result.json',
      failure: 'batch/out/a/b.json.failure.json',
    });
    expect(itemKeys('batch/in/x.JSONL', 'batch/in/', 'batch/o/').result).toBe('batch/o/x.JSONL.result.jsonl');
    expect(() => itemKeys('batch/other/x.json', 'batch/in/', 'batch/out/')).toThrow(/not under the job's input prefix/);
  });

  it('are distinct for distinct inputs, and always under the output prefix', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.stringMatching(/^[a-z0-9/._-]{1,20}$/), { minLength: 2, maxLength: 20 }),
        (names) => {
          const keys = names.map((n) => itemKeys(`batch/in/${n}`, 'batch/in/', 'batch/out/'));
          const all = keys.flatMap((k) => [k.result, k.failure]);
          expect(new Set(all).size).toBe(all.length);
          for (const key of all) expect(key.startsWith('batch/out/')).toBe(true);
        },
      ),
    );
  });

  it('read the input kind from the extension', () => {
    expect(
      ['a.json', 'a.jsonl', 'a.ndjson', 'a.bin', 'a.JPG', 'a.png', 'a.webp', 'a.csv', 'a', '.json'].map(inputKind),
    ).toEqual(['json', 'jsonl', 'jsonl', 'binary', 'image', 'image', 'image', undefined, undefined, undefined]);
  });
});

describe('locations', () => {
  const at = (uri: string, what: 'input' | 'output' = 'input') => parseS3Uri(uri, what);
  it('accept two disjoint folders of the model bucket under batch/', () => {
    expect(() =>
      checkBatchLocations('models', at('s3://models/batch/in/'), at('s3://models/batch/out/')),
    ).not.toThrow();
  });
  it.each([
    ['s3://models/uploads/x/', 's3://models/batch/out/', /not a folder under batch\//],
    ['s3://models/batch/', 's3://models/batch/out/', /not a folder under batch\//],
    ['s3://models/batch/in', 's3://models/batch/out/', /does not end in "\/"/],
    ['s3://other/batch/in/', 's3://models/batch/out/', /not in the model bucket "models"/],
    ['s3://models/batch/in/', 's3://models/batch/in/deeper/', /overlap/],
    ['s3://models/batch/_jobs/', 's3://models/batch/out/', /under batch\/_jobs\//],
    ['s3://models/batch/../models/', 's3://models/batch/out/', /empty or "\.\." segment/],
    ['s3://models/batch//x/', 's3://models/batch/out/', /empty or "\.\." segment/],
  ])('refuse %s -> %s with a 400 naming the rule', (input, output, why) => {
    let error: unknown;
    try {
      checkBatchLocations('models', at(input), at(output, 'output'));
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(BadRequestError);
    expect((error as Error).message).toMatch(why);
    expect((error as Error).message).toContain('input and output must be s3://<model bucket>/batch/<folder>/');
  });
  it('refuse what is not an S3 URI', () => {
    expect(() => parseS3Uri('batch/in/', 'input')).toThrow(/input must be an S3 URI/);
    expect(() => parseS3Uri(42, 'output')).toThrow(/output must be an S3 URI/);
  });
});

describe('a stored binary request', () => {
  it("has its header's length found by reading the JSON object it starts with", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), fc.uint8Array({ maxLength: 64 }), (header, tail) => {
        const text = encoder.encode(JSON.stringify(header));
        const body = new Uint8Array([...text, ...tail]);
        expect(jsonObjectLength(body)).toBe(text.byteLength);
      }),
    );
  });
  it('has none when it does not start with a complete object', () => {
    for (const text of ['', '[1]', '{"a": 1', '  x{}', '{"a": "}"'])
      expect(jsonObjectLength(encoder.encode(text))).toBeUndefined();
    expect(jsonObjectLength(encoder.encode(' \n{"a": "\\"}"}rest'))).toBe(' \n{"a": "\\"}"}'.length);
  });
});

it('splits JSON Lines, CRLF or LF, skipping blank lines but counting them', () => {
  const lines = jsonLines(encoder.encode('{"a":1}\r\n\n  \n{"b":2}\n{"c":3}'));
  expect(lines.map((l) => [l.line, new TextDecoder().decode(l.bytes)])).toEqual([
    [1, '{"a":1}'],
    [4, '{"b":2}'],
    [5, '{"c":3}'],
  ]);
});

it('batches keys in listing order, at most `size` each', () => {
  expect(planBatches(['a', 'b', 'c', 'd', 'e'], 2)).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
  expect(planBatches([], 32)).toEqual([]);
  expect(() => planBatches(['a'], 0)).toThrow(/positive integer/);
});

it('runs at most `concurrency` tasks at once, keeps the order, and fails once all started tasks settled', async () => {
  let inFlight = 0;
  let most = 0;
  const results = await mapBounded([5, 1, 4, 2, 3, 0], 2, async (ms, i) => {
    inFlight++;
    most = Math.max(most, inFlight);
    await new Promise((resolve) => setTimeout(resolve, ms));
    inFlight--;
    return i * 10;
  });
  expect(results).toEqual([0, 10, 20, 30, 40, 50]);
  expect(most).toBe(2);
  let settled = 0;
  await expect(
    mapBounded([1, 2, 3], 3, async (n) => {
      await new Promise((resolve) => setTimeout(resolve, n));
      settled++;
      if (n === 1) throw new Error('first');
    }),
  ).rejects.toThrow('first');
  expect(settled).toBe(3);
});

it('counts the job record from the stored outcomes: results, failures, pending; folder markers are no items', () => {
  const spec: BatchJobSpec = {
    jobId: 'j',
    model: 'm',
    version: '2',
    input: { bucket: 'models', prefix: 'batch/in/' },
    output: { bucket: 'models', prefix: 'batch/out/' },
    startedAt: '2026-12-06T00:00:00.000Z',
  };
  const record = finishedRecord(
    spec,
    'local',
    ['batch/in/', 'batch/in/a.json', 'batch/in/b.png', 'batch/in/c.jsonl', 'batch/in/d.json'],
    ['batch/out/a.json.result.json', 'batch/out/b.png.failure.json', 'batch/out/c.jsonl.result.jsonl'],
    Date.parse(spec.startedAt) + 2000,
  );
  expect(record).toMatchObject({
    state: 'SUCCEEDED',
    durationMs: 2000,
    counts: { inputs: 4, results: 2, failures: 1, pending: 1 },
    failedKeys: ['batch/in/b.png'],
    failedKeysTruncated: false,
    itemsPerSecond: 2,
  });
});
