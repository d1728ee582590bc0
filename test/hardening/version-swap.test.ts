/**
 * A version swap under load, on `npm start`'s stack (embedded S3, its object-created events, the local gateway):
 * waves of 256 concurrent requests run while version 2 is uploaded and registered, and until the service has
 * swapped to it. No answer may fail, every answer must name version 1 or 2 and carry that version's numbers, and
 * once the manifest TTL has passed every answer names version 2. Loopback only, bounded in requests and time.
 * The serving clock is the test's: the TTL passes when the test says so (once version 2 is registered), not by
 * sleeping, and the registration is awaited through the stack's own notification.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelBuilder } from '../../tools/onnx/index.js';
import { startLocal, type LocalStack } from '../../functions/local/local-runtime.js';
import { ManualClock } from '../support/clock.js';
import { sendRaw } from './fixture.js';

/** Requests in flight at once in each wave. */
const CONCURRENCY = 256;
/** Bounds of the load phase: it ends sooner, once version 2 answers. */
// MAX_WAVES counts the waves after version 2 is registered.
const MAX_WAVES = 40;
const MAX_LOAD_MS = 90_000;
const TTL_SECONDS = 1;

/** `y = x + version`: the answer itself says which version computed it. */
function versionModel(version: number): Uint8Array {
  return new ModelBuilder({ graphName: `version_${version}` })
    .input('x', 'FP32', ['N'])
    .initializer('v', { datatype: 'FP32', dims: [1], data: new Float32Array([version]) })
    .node('Add', ['x', 'v'], ['y'])
    .output('y', 'FP32', ['N'])
    .toBytes();
}

const X = 10;
const BODY = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1], data: [X] }] });

interface Outcome {
  readonly status: number;
  readonly version?: string;
  readonly y?: number;
  readonly startedAt: number;
  readonly endedAt: number;
}

let stack: LocalStack;
let dataDir: string;
const clock = new ManualClock();
/** Resolvers waiting for a number of finished registrations. */
const waiting: { count: number; resolve: () => void }[] = [];
const registrationsDone = (count: number): Promise<void> =>
  new Promise((resolve) => (stack.registrations.length >= count ? resolve() : waiting.push({ count, resolve })));
let agent: http.Agent;
let port: number;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'swap-'));
  stack = await startLocal({
    port: 0,
    s3Port: 0,
    dataDir,
    silent: true,
    env: { MANIFEST_TTL_SECONDS: String(TTL_SECONDS) },
    now: clock.now,
    onRegistered: () => {
      for (const waiter of waiting) if (stack.registrations.length >= waiter.count) waiter.resolve();
    },
  });
  port = Number(new URL(stack.gatewayUrl).port);
  agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  await stack.runtime.store.put('uploads/swap/v1.onnx', versionModel(1));
  await stack.settled();
  expect(stack.registrations.flatMap((r) => r.outcomes).map((o) => o.kind)).toEqual(['registered']);
});
afterAll(async () => {
  agent?.destroy();
  await stack?.close();
  await rm(dataDir, { recursive: true, force: true });
});

async function one(): Promise<Outcome> {
  const startedAt = performance.now();
  const answer = await sendRaw(
    port,
    { method: 'POST', path: '/v2/models/swap/infer', headers: { 'content-type': 'application/json' }, body: BODY },
    agent,
  );
  const endedAt = performance.now();
  if (answer.status !== 200) return { status: answer.status, startedAt, endedAt };
  const body = JSON.parse(answer.text) as { model_version: string; outputs: { data: number[] }[] };
  return { status: answer.status, version: body.model_version, y: body.outputs[0]?.data[0], startedAt, endedAt };
}

const wave = () => Promise.all(Array.from({ length: CONCURRENCY }, one));

describe('version swap under load', () => {
  it('answers every request during the swap with version 1 or 2, and only version 2 after the TTL', async () => {
    // Prepare: version 1 is loaded and serving.
    expect((await one()).version).toBe('1');
    const outcomes: Outcome[] = [];

    // Act: upload version 2, then load the gateway until version 2 answers.
    const registrationStarted = performance.now();
    await stack.runtime.store.put('uploads/swap/v2.onnx', versionModel(2));
    let registrationEnded: number | undefined;
    // Delivery of the object-created event is asynchronous: wait for its outcome rather than for pending work. Once
    // version 2 is registered, the manifest TTL passes on the serving clock, so the next requests read the manifest.
    const registered = registrationsDone(2).then(() => {
      registrationEnded = performance.now();
      clock.advance(TTL_SECONDS * 1000);
    });
    const loadStarted = performance.now();
    // Waves go on for as long as the registration takes (a loaded machine makes it slow), then at most MAX_WAVES more
    // until version 2 answers: a cap on waves alone could end the load before version 2 exists.
    for (let wavesAfter = 0; wavesAfter < MAX_WAVES && performance.now() - loadStarted < MAX_LOAD_MS; ) {
      outcomes.push(...(await wave()));
      if (registrationEnded === undefined) continue;
      wavesAfter++;
      if (outcomes.some((o) => o.version === '2')) break;
    }
    await registered;
    clock.advance(TTL_SECONDS * 1000);
    const after = await wave();

    // Assess.
    expect(stack.registrations.flatMap((r) => r.outcomes).map((o) => o.kind)).toEqual(['registered', 'registered']);
    const during = outcomes.filter((o) => o.startedAt < registrationEnded! && o.endedAt > registrationStarted);
    const failed = [...outcomes, ...after].filter((o) => o.status !== 200);
    const versions = new Set(outcomes.map((o) => o.version));

    expect(during.length, 'requests in flight while version 2 registered').toBeGreaterThanOrEqual(200);
    expect(failed, 'non-2xx answers').toEqual([]);
    expect([...versions].sort()).toEqual(['1', '2']);
    for (const o of [...outcomes, ...after]) expect(o.y, `version ${o.version}`).toBe(X + Number(o.version));
    expect(after.map((o) => o.version)).toEqual(Array(CONCURRENCY).fill('2'));
    if (process.env.HARDENING_FIGURES === '1') {
      const total = outcomes.length + after.length;
      const v1 = [...outcomes, ...after].filter((o) => o.version === '1').length;
      console.info(
        `version swap: ${total} requests (${outcomes.length} under swap, ${during.length} while v2 registered, ` +
          `${after.length} after the TTL), ${failed.length} non-2xx, ${v1} answered by v1, ${total - v1} by v2`,
      );
    }
  }, 180_000);
});
