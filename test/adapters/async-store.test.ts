/**
 * Job records of async requests move only forward, on a real S3 protocol server (the embedded one): the first write
 * refuses to overwrite, every later one is conditional on the record read, so racing writers end with exactly one
 * outcome, and a late writer never moves a finished job back.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { S3AsyncStore } from '../../functions/adapters/s3-async-store.js';
import { advanceJob, type AsyncJob, createJob, readJob } from '../../functions/core/async-jobs.js';
import { PreconditionFailedError } from '../../functions/core/errors.js';
import { startS3Fixture, type S3Fixture } from '../s3/fixture.js';

let s3: S3Fixture;
let store: S3AsyncStore;

beforeAll(async () => {
  s3 = await startS3Fixture({ bucket: 'models' });
  store = new S3AsyncStore({
    bucket: s3.server.bucket,
    endpoint: s3.server.endpoint,
    region: s3.server.region,
    credentials: s3.server.credentials,
  });
});
afterAll(() => s3?.stop());

function job(id: string): AsyncJob {
  return {
    id,
    model: 'iris',
    version: '2',
    state: 'accepted',
    input_location: 's3://models/async/iris/inputs/a.json',
    output_location: 's3://models/async/iris/outputs/a.json',
    accepted_at: '2026-01-01T00:00:00.000Z',
    updated_at: '2026-01-01T00:00:00.000Z',
  };
}

const at = new Date('2026-01-01T00:01:00.000Z');

it('creates a job once: a second record under the same id is refused', async () => {
  const id = '11111111-1111-4111-8111-111111111111';
  await createJob(store, job(id));
  await expect(createJob(store, { ...job(id), version: '9' })).rejects.toBeInstanceOf(PreconditionFailedError);
  expect((await readJob(store, 'iris', id)).version).toBe('2');
});

it('moves accepted -> running -> succeeded, and never back nor sideways once finished', async () => {
  const id = '22222222-2222-4222-8222-222222222222';
  await createJob(store, job(id));

  expect((await advanceJob(store, 'iris', id, 'running', at))?.state).toBe('running');
  expect(await advanceJob(store, 'iris', id, 'running', at)).toBeUndefined();
  expect((await advanceJob(store, 'iris', id, 'succeeded', at))?.state).toBe('succeeded');
  expect(await advanceJob(store, 'iris', id, 'failed', at, 'late failure record')).toBeUndefined();
  expect(await advanceJob(store, 'iris', id, 'running', at)).toBeUndefined();

  const stored = await readJob(store, 'iris', id);
  expect(stored).toMatchObject({ state: 'succeeded', updated_at: at.toISOString() });
  expect(stored.error).toBeUndefined();
});

it('lets exactly one of racing writers finish a job', async () => {
  const id = '33333333-3333-4333-8333-333333333333';
  await createJob(store, job(id));
  await advanceJob(store, 'iris', id, 'running', at);

  const outcomes = await Promise.all(
    Array.from({ length: 8 }, (_, i) =>
      i % 2 === 0
        ? advanceJob(store, 'iris', id, 'succeeded', at)
        : advanceJob(store, 'iris', id, 'failed', at, `writer ${i}`),
    ),
  );

  const winners = outcomes.filter((outcome) => outcome !== undefined);
  expect(winners).toHaveLength(1);
  expect(await readJob(store, 'iris', id)).toEqual(winners[0]);
});

it('keeps an object’s content type and user metadata, and reads its size from a HEAD', async () => {
  await store.put(
    'async/iris/inputs/b.bin',
    new Uint8Array(1234),
    {},
    { contentType: 'application/octet-stream', metadata: { 'inference-header-content-length': '56' } },
  );
  expect(await store.head('async/iris/inputs/b.bin')).toMatchObject({
    size: 1234,
    contentType: 'application/octet-stream',
    metadata: { 'inference-header-content-length': '56' },
  });
  expect(await store.head('async/iris/inputs/none.bin')).toBeUndefined();
});
