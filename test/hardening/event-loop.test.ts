/**
 * Time the event loop spends blocked is not storage's slowness: a cold load started just before a long synchronous
 * stretch (a session created on the loop, a large response encoded) gets the storage answer that was waiting, not
 * a false 503 "storage did not answer". With `ONNXRUNTIME_THREAD=worker`, a long inference does not stall the
 * gateway: onnxruntime-node blocks the thread that calls it, so it runs on a worker thread (`process`, `npm start`'s
 * default, is tested in test/e2e/inference-isolation.test.ts).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildLoopModel } from '../../tools/onnx/index.js';
import { linearModel, startHardened, type HardenedStack } from './fixture.js';

const TIMEOUT_MS = 200;
let stack: HardenedStack;

beforeAll(async () => {
  stack = await startHardened({ STORAGE_TIMEOUT_SECONDS: String(TIMEOUT_MS / 1000) });
  const outcome = await stack.register('linear', 'linear.onnx', linearModel(2, 1));
  expect(outcome.kind).toBe('registered');
});
afterAll(() => stack?.close());

function blockEventLoop(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // Busy: as onnxruntime creating a session on the main thread would be.
  }
}

it('answers from storage after the loop was blocked past the storage deadline', async () => {
  const resolving = stack.runtime.service.resolve('linear');
  blockEventLoop(3 * TIMEOUT_MS);

  const resolved = await resolving;

  expect(resolved).toMatchObject({ model: 'linear', version: '1' });
  expect(resolved.metadata.inputs.map((i) => i.name)).toEqual(['x']);
});

it('still refuses storage that does not answer while the loop is free', async () => {
  const stalled = new Promise<never>(() => undefined);
  const original = stack.store.get.bind(stack.store);
  stack.store.get = () => stalled;
  try {
    await expect(stack.runtime.service.resolve('linear', '1', { refresh: true })).rejects.toThrow(
      /model storage did not answer within 0.2 s/,
    );
  } finally {
    stack.store.get = original;
  }
});

/** `y = Loop(trips, true, x)` with an identity body: the request chooses how long the inference takes. */
function spinModel(): Uint8Array {
  return buildLoopModel({ trips: 'input', body: 'Identity' });
}

it('answers other requests while a long inference runs on the worker thread', async () => {
  const threaded = await startHardened({ ONNXRUNTIME_THREAD: 'worker' });
  try {
    expect((await threaded.register('spin', 'spin.onnx', spinModel())).kind).toBe('registered');
    const spin = (trips: number) =>
      threaded.send({
        method: 'POST',
        path: '/v2/models/spin/infer',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          inputs: [
            { name: 'trips', datatype: 'INT64', shape: [], data: [trips] },
            { name: 'x', datatype: 'FP32', shape: [1], data: [7] },
          ],
        }),
      });
    expect((await spin(1)).status).toBe(200); // loads the session

    let longDone = false;
    // 30,000 iterations of a Loop: about 20 µs each in onnxruntime 1.30, far longer than a loopback request.
    const long = spin(30_000).finally(() => {
      longDone = true;
    });
    const answeredDuring: boolean[] = [];
    while (!longDone && answeredDuring.length < 50) {
      const live = await threaded.send({ method: 'GET', path: '/v2/health/live' });
      answeredDuring.push(live.status === 200 && !longDone);
    }
    const answer = await long;

    expect(answer.status, answer.text).toBe(200);
    expect(JSON.parse(answer.text)).toMatchObject({ outputs: [{ name: 'y', data: [7] }] });
    expect(answeredDuring[0]).toBe(true);
  } finally {
    await threaded.close();
  }
});
