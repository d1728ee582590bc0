/**
 * Registration under `npm start` is isolated as deployed, through the wiring users run (`startLocal()`): an upload
 * whose onnxruntime dies by a signal is refused with the signal named while the stack lives on, the next start on
 * the same data does not run it again, and an upload that never ends is refused at the registration deadline while
 * another model keeps answering. Handing the serving factory (one worker thread, in this process) to registration
 * fails every one of these.
 *
 * The crash of the first test is injected in the isolated child only (`ISOLATED_SESSION_FAULT`), so that it holds
 * whatever registration rewrites: the real one (`INT32_MIN / -1` in a smoke inference, SIGFPE) stops crashing once
 * integer Div and Mod are guarded; it has a test of its own that accepts either a refusal naming SIGFPE or a version.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENV } from '../../functions/core/contract.js';
import { SAMPLE_SUFFIX, type RegistrationOutcome } from '../../functions/core/registration.js';
import { startLocal, type LocalStack } from '../../functions/local/local-runtime.js';
import type { RegisterResult } from '../../functions/transport/register-handler.js';
import { ModelBuilder, buildLoopModel, buildScaledLinearModel } from '../../tools/onnx/index.js';
import { linearBody } from './fixture.js';

const DEADLINE_SECONDS = 4;
const CRASH_KEY = 'uploads/linear/crash.onnx';

let dataDir: string;
const open = new Set<LocalStack>();

/** A local stack over `dataDir`, with a way to await the outcome of one upload's registration. */
async function start(): Promise<{ stack: LocalStack; outcomeOf: (key: string) => Promise<RegistrationOutcome> }> {
  const seen = new Map<string, RegistrationOutcome>();
  const waiting = new Map<string, (outcome: RegistrationOutcome) => void>();
  const onRegistered = ({ outcomes, reconciled = [] }: RegisterResult): void => {
    for (const outcome of [...outcomes, ...reconciled]) {
      seen.set(outcome.key, outcome);
      waiting.get(outcome.key)?.(outcome);
    }
  };
  const stack = await startLocal({
    port: 0,
    s3Port: 0,
    dataDir,
    silent: true,
    env: { ...process.env, [ENV.registrationTimeoutSeconds]: String(DEADLINE_SECONDS) },
    onRegistered,
  });
  open.add(stack);
  const outcomeOf = (key: string) =>
    new Promise<RegistrationOutcome>((resolve) => {
      const known = seen.get(key);
      if (known === undefined) waiting.set(key, resolve);
      else resolve(known);
    });
  return { stack, outcomeOf };
}

async function close(stack: LocalStack): Promise<void> {
  open.delete(stack);
  await stack.close();
}

/** One inference on `model` (a linear model): its status, the version that answered, and how long it took. */
async function inferLinear(
  stack: LocalStack,
  model = 'linear',
): Promise<{ status: number; version: string; ms: number }> {
  const started = performance.now();
  const response = await fetch(`${stack.gatewayUrl}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: linearBody([[1, 2, 3, 4]]),
  });
  const body = (await response.json()) as { model_version?: string };
  return { status: response.status, version: String(body.model_version), ms: performance.now() - started };
}

async function repositoryIndex(stack: LocalStack): Promise<Array<{ name: string; version: string; reason?: string }>> {
  const response = await fetch(`${stack.gatewayUrl}/v2/repository/index`, { method: 'POST' });
  return (await response.json()) as Array<{ name: string; version: string; reason?: string }>;
}

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'local-isolation-'));
});
afterAll(async () => {
  delete process.env[ENV.isolatedSessionFault];
  for (const stack of open) await stack.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe('registration under startLocal()', () => {
  it('refuses an upload whose onnxruntime dies by a signal, names the signal, and keeps serving', async () => {
    // Prepare: a version that serves, then every isolated child crashes as onnxruntime does on INT32_MIN / -1.
    const { stack, outcomeOf } = await start();
    await stack.runtime.store.put('uploads/linear/v1.onnx', buildScaledLinearModel(2, 1));
    expect(await outcomeOf('uploads/linear/v1.onnx')).toMatchObject({ kind: 'registered', version: '1' });
    process.env[ENV.isolatedSessionFault] = 'SIGFPE:run';

    // Act
    let outcome: RegistrationOutcome;
    try {
      await stack.runtime.store.put(CRASH_KEY, buildScaledLinearModel(9, 0));
      outcome = await outcomeOf(CRASH_KEY);
    } finally {
      delete process.env[ENV.isolatedSessionFault];
    }

    // Assess: a recorded refusal naming the signal; this process (the whole stack) is alive and serves version 1.
    expect(outcome).toMatchObject({ kind: 'rejected', model: 'linear' });
    expect(outcome.kind === 'rejected' && outcome.reason).toMatch(
      /the model crashed onnxruntime \(SIGFPE\) while running the model/,
    );
    expect(await inferLinear(stack)).toMatchObject({ status: 200, version: '1' });
    const refused = (await repositoryIndex(stack)).find((row) => row.version === '' && row.name === 'linear');
    expect(refused?.reason).toMatch(/crash\.onnx was rejected.*SIGFPE/);
    await close(stack);
  });

  it('starts again on the same data without running the refused upload again', async () => {
    // Act: a second start on the same folder, with no fault: were the refused upload run again, it would register.
    const { stack } = await start();
    await stack.settled();

    // Assess: nothing reconciled, still one refusal and one version; the stack serves.
    const touched = stack.registrations.flatMap(({ outcomes, reconciled = [] }) => [...outcomes, ...reconciled]);
    expect(touched.map((outcome) => outcome.key)).not.toContain(CRASH_KEY);
    const rejections = await stack.runtime.repository.listRejections('linear');
    expect(rejections.map((rejection) => rejection.sourceKey)).toEqual([CRASH_KEY]);
    const manifest = await stack.runtime.repository.readManifest('linear');
    expect(manifest?.manifest.versions.map((version) => version.version)).toEqual(['1']);
    expect(await inferLinear(stack)).toMatchObject({ status: 200, version: '1' });
    await close(stack);
  });

  it('survives a model whose smoke inference computes INT32_MIN / -1, a real SIGFPE in onnxruntime', async () => {
    // Prepare: y = Div(x, -1) over INT32, with a sample request whose x is INT32_MIN (onnxruntime checks zero
    // divisors, not this overflow). Once registration guards integer Div, the upload registers instead.
    const { stack, outcomeOf } = await start();
    const key = 'uploads/overflow/div.onnx';
    const model = new ModelBuilder({ graphName: 'overflow' })
      .input('x', 'INT32', [1])
      .initializer('minus_one', { datatype: 'INT32', dims: [1], data: new Int32Array([-1]) })
      .node('Div', ['x', 'minus_one'], ['y'])
      .output('y', 'INT32', [1])
      .toBytes();
    const sample = { inputs: [{ name: 'x', datatype: 'INT32', shape: [1], data: [-(2 ** 31)] }] };

    // Act
    await stack.runtime.store.put(`${key}${SAMPLE_SUFFIX}`, new TextEncoder().encode(JSON.stringify(sample)));
    await stack.runtime.store.put(key, model);
    const outcome = await outcomeOf(key);

    // Assess: a recorded outcome, never a dead stack.
    expect(outcome.kind === 'rejected' ? outcome.reason : outcome.kind).toMatch(
      /^registered$|the model crashed onnxruntime \(SIGFPE\) while running the model/,
    );
    expect(await inferLinear(stack)).toMatchObject({ status: 200, version: '1' });
    await close(stack);
  });

  it('refuses an endless upload at the registration deadline while another model keeps answering', async () => {
    // Prepare: a small model of its own, loaded (its cold start is not what is measured).
    const { stack, outcomeOf } = await start();
    await stack.runtime.store.put('uploads/small/v1.onnx', buildScaledLinearModel(1, 0));
    expect(await outcomeOf('uploads/small/v1.onnx')).toMatchObject({ kind: 'registered', version: '1' });
    expect(await inferLinear(stack, 'small')).toMatchObject({ status: 200, version: '1' });

    // Act: the Loop of 2^62 iterations registers while four clients keep calling the small model.
    const endlessKey = 'uploads/endless/loop.onnx';
    await stack.runtime.store.put(endlessKey, buildLoopModel({ trips: 2n ** 62n, body: 'Add' }));
    let done = false;
    const refusal = outcomeOf(endlessKey).finally(() => {
      done = true;
    });
    const answers: Array<{ status: number; version: string; ms: number }> = [];
    const client = async () => {
      while (!done) answers.push(await inferLinear(stack, 'small'));
    };
    await Promise.all([client(), client(), client(), client()]);
    const outcome = await refusal;

    // Assess: refused by the deadline; every concurrent request answered by version 1, p99 under 1 s.
    expect(outcome).toMatchObject({ kind: 'rejected', model: 'endless' });
    expect(outcome.kind === 'rejected' && outcome.reason).toMatch(
      new RegExp(
        `onnxruntime did not finish (running|loading) the model within ${DEADLINE_SECONDS} s \\(the registration deadline\\)`,
      ),
    );
    expect(answers.length).toBeGreaterThan(20);
    expect(answers.filter((answer) => answer.status !== 200 || answer.version !== '1')).toEqual([]);
    const latencies = answers.map((answer) => answer.ms).sort((a, b) => a - b);
    const p99 = latencies[Math.ceil(latencies.length * 0.99) - 1] ?? Number.POSITIVE_INFINITY;
    expect(p99, `p99 of ${answers.length} requests (median ${latencies[latencies.length >> 1]} ms)`).toBeLessThan(1000);
    await close(stack);
  });
});
