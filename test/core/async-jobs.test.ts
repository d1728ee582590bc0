/**
 * The key rule of async requests (docs/async.md), which no S3 call can widen: only the model bucket, only the
 * model's own `inputs/` (reads) and `outputs/` (writes), no segment that could name another key; and what counts as
 * an async request at all.
 */
import { describe, expect, it } from 'vitest';
import {
  failureReason,
  isAsyncRequest,
  parseAsyncLocation,
  parseAsyncRequest,
} from '../../functions/core/async-jobs.js';
import { BadRequestError } from '../../functions/core/errors.js';

const where = { bucket: 'models', model: 'iris' };
const body = (value: unknown): Uint8Array => Buffer.from(JSON.stringify(value));

describe('parseAsyncLocation', () => {
  it('accepts keys under the model’s own prefix, nested or not', () => {
    expect(parseAsyncLocation('s3://models/async/iris/inputs/a.json', 'input_location', where)).toEqual({
      bucket: 'models',
      key: 'async/iris/inputs/a.json',
    });
    expect(parseAsyncLocation('s3://models/async/iris/outputs/2026/01/b.bin', 'output_location', where).key).toBe(
      'async/iris/outputs/2026/01/b.bin',
    );
  });

  it.each([
    ['an input under outputs/', 's3://models/async/iris/outputs/a.json'],
    ['a job record', 's3://models/async/iris/jobs/x.json'],
    ['another model', 's3://models/async/iris2/inputs/a.json'],
    ['a prefix-sharing model name', 's3://models/async/iris.v2/inputs/a.json'],
    ['the repository', 's3://models/models/iris/manifest.json'],
    ['the prefix itself', 's3://models/async/iris/inputs/'],
    ['a parent segment', 's3://models/async/iris/inputs/../../other/inputs/a'],
    ['a current segment', 's3://models/async/iris/inputs/./a'],
    ['an empty segment', 's3://models/async/iris/inputs//a'],
    ['a control character', 's3://models/async/iris/inputs/a\nb'],
    ['no scheme', 'models/async/iris/inputs/a.json'],
    ['an https URL', 'https://models.s3.amazonaws.com/async/iris/inputs/a.json'],
  ])('refuses %s, naming the rule', (_, uri) => {
    const refuse = () => parseAsyncLocation(uri, 'input_location', where);
    expect(refuse).toThrow(BadRequestError);
    expect(refuse).toThrow('input_location must be an S3 URI in the model bucket under s3://models/async/iris/inputs/');
  });

  it('refuses another bucket, a missing location and an overlong one', () => {
    expect(() => parseAsyncLocation('s3://other/async/iris/inputs/a', 'input_location', where)).toThrow(
      'bucket "other" is not the model bucket',
    );
    expect(() => parseAsyncLocation(undefined, 'output_location', where)).toThrow(
      'output_location must be an S3 URI in the model bucket under s3://models/async/iris/outputs/',
    );
    expect(() =>
      parseAsyncLocation(`s3://models/async/iris/inputs/${'a'.repeat(1100)}`, 'input_location', where),
    ).toThrow('this one is too long');
  });
});

describe('what an async request is', () => {
  it('is a JSON object whose top-level parameters name input_location', () => {
    expect(isAsyncRequest(body({ parameters: { input_location: 's3://models/async/iris/inputs/a' } }))).toBe(true);
    expect(isAsyncRequest(body({ id: 'input_location', inputs: [] }))).toBe(false);
    expect(isAsyncRequest(body({ inputs: [{ parameters: { input_location: 'x' } }] }))).toBe(false);
    expect(isAsyncRequest(Buffer.from('{"parameters": {"input_location": '))).toBe(false);
  });

  it('carries no inputs and an optional string id', () => {
    const locations = {
      input_location: 's3://models/async/iris/inputs/a',
      output_location: 's3://models/async/iris/outputs/a',
    };
    expect(parseAsyncRequest(body({ id: 'r1', parameters: locations }), where)).toMatchObject({ requestId: 'r1' });
    expect(() => parseAsyncRequest(body({ inputs: [], parameters: locations }), where)).toThrow('remove "inputs"');
    expect(() => parseAsyncRequest(body({ id: 7, parameters: locations }), where)).toThrow('"id" must be a string');
  });
});

describe('failureReason', () => {
  const payload = { asyncInference: { model: 'iris', id: 'x' } };

  it('says how many attempts failed and why, or that the event aged out', () => {
    expect(
      failureReason({
        requestContext: { condition: 'RetriesExhausted', approximateInvokeCount: 3 },
        requestPayload: payload,
        responsePayload: { errorMessage: 'Task timed out after 29.00 seconds' },
      }),
    ).toBe('the job failed after 3 attempt(s): Task timed out after 29.00 seconds');
    expect(failureReason({ requestContext: { condition: 'EventAgeExceeded' }, requestPayload: payload })).toBe(
      'the job waited longer than the maximum event age before it could run',
    );
  });
});
