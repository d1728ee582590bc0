/**
 * Time the event loop spends blocked is not storage's slowness: a cold load started just before a long synchronous
 * stretch (a session created on the loop, a large response encoded) gets the storage answer that was waiting, not
 * a false 503 "storage did not answer".
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
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
    await expect(stack.runtime.service.resolve('linear', '1', { refresh: true })).rejects.toThrow(/model storage did not answer within 0.2 s/);
  } finally {
    stack.store.get = original;
  }
});
