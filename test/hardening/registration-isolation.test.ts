/**
 * Registration's smoke test runs in a child process under a deadline and a memory cap: an upload that would spin
 * forever (a `Loop` of 2^62 iterations) or allocate without bound is refused with the reason, the process that
 * serves keeps answering meanwhile, and the version that served before keeps serving.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { pendingUploads } from '../../functions/core/registration.js';
import { buildLoopModel } from '../../tools/onnx/index.js';
import { amplifierModel, linearBody, linearModel, startHardened, type HardenedStack } from './fixture.js';

const JSON_TYPE = { 'content-type': 'application/json' };
const DEADLINE_SECONDS = 4;
const MEMORY_MB = 600;

let stack: HardenedStack;

beforeAll(async () => {
  stack = await startHardened({
    REGISTRATION_TIMEOUT_SECONDS: String(DEADLINE_SECONDS),
    REGISTRATION_MEMORY_MB: String(MEMORY_MB),
  });
  const outcome = await stack.register('linear', 'v1.onnx', linearModel(2, 1));
  expect(outcome.kind, JSON.stringify(outcome)).toBe('registered');
});
afterAll(() => stack?.close());

/** `y = Loop(2^62, true, x)` whose body doubles x: a graph whose smoke inference never ends. */
function endlessLoopModel(): Uint8Array {
  return buildLoopModel({ trips: 2n ** 62n, body: 'Add' });
}

async function linearServes(route = 'linear'): Promise<{ status: number; version: string }> {
  const answer = await stack.send({
    method: 'POST',
    path: `/v2/models/${route}/infer`,
    headers: JSON_TYPE,
    body: linearBody([[1, 2, 3, 4]]),
  });
  return {
    status: answer.status,
    version: String((JSON.parse(answer.text) as { model_version?: string }).model_version),
  };
}

it('refuses an upload whose smoke inference never ends, while the gateway keeps answering', async () => {
  let registered = false;
  const registration = stack.register('linear', 'endless.onnx', endlessLoopModel()).finally(() => {
    registered = true;
  });
  // Before the deadline: the event loop is free, so the gateway answers (onnxruntime spins in the child).
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const during = await linearServes();
  const duringWasBeforeOutcome = !registered;
  const outcome = await registration;

  expect(during).toEqual({ status: 200, version: '1' });
  expect(duringWasBeforeOutcome).toBe(true);
  expect(outcome).toMatchObject({ kind: 'rejected', model: 'linear' });
  // Running, normally; on a machine loaded enough to spend the deadline starting the child, loading.
  expect(outcome.kind === 'rejected' && outcome.reason).toMatch(
    new RegExp(
      `onnxruntime did not finish (running|loading) the model within ${DEADLINE_SECONDS} s \\(the registration deadline\\)`,
    ),
  );
  expect(await linearServes()).toEqual({ status: 200, version: '1' });
  const index = await stack.send({ method: 'POST', path: '/v2/repository/index' });
  expect(index.text).toContain('uploads/linear/endless.onnx was rejected');
});

it('refuses an upload whose smoke inference needs more memory than the cap', async () => {
  // 800 MB of FP32 asked for by the sample: over the 600 MB cap of the child, far under the machine's memory. A
  // stack of its own, with a deadline no loaded machine reaches first.
  const sample = { inputs: [{ name: 'shape', datatype: 'INT64', shape: [2], data: [20_000, 10_000] }] };
  const roomy = await startHardened({ REGISTRATION_TIMEOUT_SECONDS: '120', REGISTRATION_MEMORY_MB: String(MEMORY_MB) });

  const outcome = await roomy.register('hungry', 'hungry.onnx', amplifierModel(1), sample).finally(() => roomy.close());

  expect(outcome).toMatchObject({ kind: 'rejected', model: 'hungry' });
  expect(outcome.kind === 'rejected' && outcome.reason).toMatch(
    new RegExp(`onnxruntime used more than ${MEMORY_MB} MB while running the model \\(the registration memory cap\\)`),
  );
  expect(await linearServes()).toEqual({ status: 200, version: '1' });
});

it('still registers a sound upload through the child process, with its metadata', async () => {
  const outcome = await stack.register('linear', 'v2.onnx', linearModel(3, 0));
  const answer = await linearServes('linear/versions/2');

  expect(outcome).toMatchObject({ kind: 'registered', version: '2' });
  expect(answer).toEqual({ status: 200, version: '2' });
});

it('registers an upload whose event was lost on the next event of its model', async () => {
  // As after a crash or a restart mid-registration: the object is there, its event will never come again.
  await stack.runtime.store.put('uploads/linear/lost.onnx', linearModel(5, 0));
  const before = await pendingUploads(stack.runtime, 'linear');

  const outcome = await stack.register('linear', 'v3.onnx', linearModel(7, 0));
  const manifest = (await stack.runtime.repository.readManifest('linear'))?.manifest;

  expect(before).toEqual(['uploads/linear/lost.onnx']);
  // The lost upload first, then the event's own: its outcome is the last thing the handler writes.
  expect(manifest?.versions.map((v) => [v.version, v.sourceKey])).toContainEqual(['3', 'uploads/linear/lost.onnx']);
  expect(outcome).toMatchObject({ kind: 'registered', version: '4' });
  expect(await pendingUploads(stack.runtime, 'linear')).toEqual([]);
  // Rejected uploads have their outcome too: none of the earlier ones is pending.
  expect(await pendingUploads(stack.runtime)).toEqual([]);
});
