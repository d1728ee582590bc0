/**
 * Guarded rollouts end to end through `startLocal()`: real uploads over the S3 protocol, real registrations, real
 * onnxruntime, real HTTP requests, and the local rollout controller's timer (every 100 ms here) under its own role,
 * judging the figures the local infer functions keep.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../functions/cli/cli.js';
import { buildPartlyFailingLinearModel } from '../../tools/onnx/index.js';
import { type FlowStack, type HttpAnswer, linearModel, outputData, startFlowStack } from './fixture.js';

let flow: FlowStack;

beforeAll(async () => {
  flow = await startFlowStack({ ROLLOUT_INTERVAL_SECONDS: '0.1' });
});
afterAll(async () => {
  await flow?.close();
});

/** The sidecar of an upload that declares only a rollout policy. */
function policySidecar(rollout: Record<string, unknown>): unknown {
  return { rollout };
}

/** Rows whose first feature is `i % 10`: a candidate built with a table of 8 fails on 20 % of them. */
function row(i: number): number[] {
  return [i % 10, 1, 1, 1];
}

/** Waits (woken every 20 ms) until `done` holds; fails after `timeoutMs` with `what`. */
async function until(what: string, done: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function versionOf(answer: HttpAnswer): string | undefined {
  return (answer.body as { model_version?: string }).model_version;
}

describe('rollout policy at registration', () => {
  it('makes a new version under a canary policy the candidate, with latest kept on the stable version', async () => {
    // Prepare
    await flow.uploadAndWait('canary-start', 'v1.onnx', linearModel(1));

    // Act
    const outcome = await flow.uploadAndWait(
      'canary-start',
      'v2.onnx',
      linearModel(2),
      policySidecar({ strategy: 'canary', percent: 30, bakingSeconds: 3600 }),
    );
    const manifest = await flow.manifest('canary-start');
    const metadata = await flow.request('GET', '/v2/models/canary-start');

    // Assess
    expect(outcome).toMatchObject({ kind: 'registered', version: '2' });
    expect(manifest?.latest).toBe('1');
    expect(manifest?.rollout).toMatchObject({ stable: '1', candidate: '2', weight: 30, state: 'baking', step: 1 });
    expect(metadata.body).toMatchObject({
      parameters: { rollout: { candidate: '2', policy: { strategy: 'canary', percent: 30, bakingSeconds: 3600 } } },
    });
  });

  it.each([
    [{ strategy: 'canary', percent: 60 }, 'rollout.percent: Number must be less than or equal to 50'],
    [{ strategy: 'blue-green' }, 'unknown strategy "blue-green"'],
    [{ strategy: 'canary', maxAbsDiff: 0.1 }, 'maxAbsDiff cannot be evaluated for strategy "canary"'],
    [{ strategy: 'linear', stepPercent: 5 }, 'rollout.stepPercent: Number must be greater than or equal to 10'],
    [{ strategy: 'shadow', minLabelAgreement: 0.9 }, 'minLabelAgreement cannot be evaluated: the model has no label'],
  ])('refuses the upload with a bad policy %j, saying why, and keeps serving', async (rollout, reason) => {
    // Prepare
    const model = `bad-policy-${rollout.strategy}-${Object.keys(rollout).length}-${reason.length}`;
    await flow.uploadAndWait(model, 'v1.onnx', linearModel(1));

    // Act
    const outcome = await flow.uploadAndWait(model, 'v2.onnx', linearModel(3), policySidecar(rollout));
    const answer = await flow.infer(model, [[1, 1, 1, 1]]);

    // Assess
    expect(outcome.kind).toBe('rejected');
    expect((outcome as { reason: string }).reason).toContain(reason);
    expect([answer.status, versionOf(answer)]).toEqual([200, '1']);
    expect((await flow.manifest(model))?.rollout).toBeUndefined();
  });
});

describe('routing during a rollout', () => {
  it('splits unpinned requests by weight, says which version answered, and never redirects pinned ones', async () => {
    // Prepare: a canary at 50 % that bakes for an hour (the controller leaves it alone meanwhile).
    await flow.uploadAndWait('split', 'v1.onnx', linearModel(1));
    await flow.uploadAndWait(
      'split',
      'v2.onnx',
      linearModel(2),
      policySidecar({ strategy: 'canary', percent: 50, bakingSeconds: 3600 }),
    );
    await flow.stack.runtime.repository.setPointer('split', '1', 'stable');

    // Act
    const unpinned = await Promise.all(Array.from({ length: 60 }, () => flow.infer('split', [[1, 1, 1, 1]])));
    const pinned1 = await Promise.all(Array.from({ length: 20 }, () => flow.infer('split', [[1, 1, 1, 1]], '1')));
    const pinned2 = await Promise.all(Array.from({ length: 20 }, () => flow.infer('split', [[1, 1, 1, 1]], '2')));
    const labelled = await Promise.all(Array.from({ length: 20 }, () => flow.infer('split', [[1, 1, 1, 1]], 'stable')));

    // Assess: both versions answered unpinned requests (P(all 60 on one side) = 2^-59), each with its own output,
    // its model_version and the matching headers; pinned versions and labels always answered themselves.
    const byVersion = new Map<string, number>();
    for (const answer of unpinned) {
      const version = versionOf(answer) ?? '';
      byVersion.set(version, (byVersion.get(version) ?? 0) + 1);
      expect(answer.headers.get('x-model-version')).toBe(version);
      expect(answer.headers.get('x-rollout-role')).toBe(version === '2' ? 'candidate' : 'stable');
      expect(outputData(answer)).toEqual([version === '2' ? 8 : 4]);
    }
    expect([...byVersion.keys()].sort()).toEqual(['1', '2']);
    expect(pinned1.map(versionOf)).toEqual(Array(20).fill('1'));
    expect(pinned2.map(versionOf)).toEqual(Array(20).fill('2'));
    expect(labelled.map(versionOf)).toEqual(Array(20).fill('1'));
    expect(pinned1.every((a) => a.headers.get('x-rollout-role') === null)).toBe(true);
  });
});

describe('the local rollout controller', () => {
  it('rolls back a candidate that fails on 20% of inputs within one interval, records why and notifies', async () => {
    // Prepare
    await flow.uploadAndWait('failing', 'v1.onnx', linearModel(1));
    await flow.uploadAndWait(
      'failing',
      'v2.onnx',
      buildPartlyFailingLinearModel(1, 8),
      policySidecar({ strategy: 'canary', percent: 50, bakingSeconds: 3600 }),
    );

    // Act: 100 requests, 20 of which the candidate cannot answer (first feature 8 or 9).
    const answers: HttpAnswer[] = [];
    for (let i = 0; i < 100; i += 1) answers.push(await flow.infer('failing', [row(i)]));
    const runsAfterTraffic = flow.stack.rollouts.runs();
    await until('the rollback', async () => (await flow.manifest('failing'))?.rollout?.state === 'rolled-back');
    const after = await Promise.all(Array.from({ length: 20 }, (_, i) => flow.infer('failing', [row(i)])));

    // Assess
    const manifest = await flow.manifest('failing');
    expect(manifest?.latest).toBe('1');
    expect(manifest?.rollout).toMatchObject({ state: 'rolled-back', weight: 0, candidate: '2', stable: '1' });
    expect(manifest?.rollout?.reason).toMatch(
      /^rolled back: candidate 2 failed \d+ of \d+ inferences .* maxErrorRate 5%$/,
    );
    const notice = flow.stack.rollouts.notices.find((n) => n.model === 'failing');
    expect(notice).toMatchObject({ outcome: 'rolled-back', candidate: '2', reason: manifest?.rollout?.reason });
    expect(notice!.run).toBeLessThanOrEqual(runsAfterTraffic + 1);
    // The candidate's failures were its own: stable answered every row, the candidate only those under 8.
    for (const [i, answer] of answers.entries()) {
      if (versionOf(answer) === '1' || i % 10 < 8) expect(answer.status).toBe(200);
      else expect(answer.status).toBe(400);
    }
    expect(after.map((a) => [a.status, versionOf(a)])).toEqual(Array(20).fill([200, '1']));
  });

  it('promotes a healthy linear candidate after its steps, then serves it to every unpinned request', async () => {
    // Prepare
    await flow.uploadAndWait('healthy', 'v1.onnx', linearModel(1));

    // Act: steps of 25 % without waiting between them; traffic flows throughout.
    await flow.uploadAndWait(
      'healthy',
      'v2.onnx',
      linearModel(1, 0.5),
      policySidecar({ strategy: 'linear', stepPercent: 25, intervalSeconds: 0 }),
    );
    let i = 0;
    await until('the promotion', async () => {
      await flow.infer('healthy', [row(i++)]);
      return (await flow.manifest('healthy'))?.rollout?.state === 'promoted';
    });
    const after = await Promise.all(Array.from({ length: 20 }, () => flow.infer('healthy', [[1, 1, 1, 1]])));

    // Assess
    const manifest = await flow.manifest('healthy');
    expect(manifest?.latest).toBe('2');
    expect(manifest?.rollout).toMatchObject({ state: 'promoted', weight: 100, step: 3 });
    const steps = flow.stack.rollouts.notices.filter((n) => n.model === 'healthy');
    expect(steps.map((n) => [n.outcome, n.weight])).toEqual([
      ['advanced', 50],
      ['advanced', 75],
      ['promoted', 100],
    ]);
    expect(after.map((a) => [versionOf(a), outputData(a)[0]])).toEqual(Array(20).fill(['2', 4.5]));
  });
});

describe('shadow rollouts', () => {
  /** Sends `count` unpinned requests one after the other (each copy runs after its answer), until `done`. */
  async function traffic(model: string, done: () => Promise<boolean>): Promise<HttpAnswer[]> {
    const answers: HttpAnswer[] = [];
    await until(`the end of ${model}'s shadow rollout`, async () => {
      answers.push(await flow.infer(model, [row(answers.length)]));
      return done();
    });
    return answers;
  }

  it('never promotes a candidate whose outputs drift beyond maxAbsDiff, and the client only sees stable', async () => {
    // Prepare: the candidate answers 1.5x what stable does.
    await flow.uploadAndWait('drift', 'v1.onnx', linearModel(1));
    await flow.uploadAndWait(
      'drift',
      'v2.onnx',
      linearModel(1.5),
      policySidecar({ strategy: 'shadow', samplingPercent: 100, bakingSeconds: 0, maxAbsDiff: 0.01, minRequests: 5 }),
    );

    // Act
    const answers = await traffic('drift', async () => (await flow.manifest('drift'))?.rollout?.state !== 'baking');

    // Assess
    const manifest = await flow.manifest('drift');
    expect(manifest?.latest).toBe('1');
    expect(manifest?.rollout?.state).toBe('rolled-back');
    expect(manifest?.rollout?.reason).toMatch(
      /outputs differ from stable 1's by up to [\d.]+ \(absolute\), over maxAbsDiff 0.01/,
    );
    expect(flow.stack.rollouts.notices.filter((n) => n.model === 'drift').map((n) => n.outcome)).toEqual([
      'rolled-back',
    ]);
    // Stable answered each request, during the shadow (role "stable") and after its rollback (no rollout running).
    expect(answers[0]?.headers.get('x-rollout-role')).toBe('stable');
    for (const [i, answer] of answers.entries()) {
      expect([answer.status, versionOf(answer)]).toEqual([200, '1']);
      expect(['stable', null]).toContain(answer.headers.get('x-rollout-role'));
      expect(outputData(answer)).toEqual([(i % 10) + 3]);
    }
  });

  it('keeps every client answer when the shadow candidate fails, and rolls it back on its error rate', async () => {
    // Prepare: the candidate fails on 20 % of the rows that stable answers.
    await flow.uploadAndWait('shadow-fails', 'v1.onnx', linearModel(1));
    await flow.uploadAndWait(
      'shadow-fails',
      'v2.onnx',
      buildPartlyFailingLinearModel(1, 8),
      policySidecar({ strategy: 'shadow', samplingPercent: 100, bakingSeconds: 3600 }),
    );

    // Act
    const answers = await traffic(
      'shadow-fails',
      async () => (await flow.manifest('shadow-fails'))?.rollout?.state === 'rolled-back',
    );

    // Assess
    expect(answers.map((a) => [a.status, versionOf(a)])).toEqual(answers.map(() => [200, '1']));
    expect(answers.map((a) => outputData(a)[0])).toEqual(answers.map((_, i) => (i % 10) + 3));
    expect((await flow.manifest('shadow-fails'))?.rollout?.reason).toMatch(/^rolled back: candidate 2 failed/);
  });

  it('promotes a shadow candidate whose outputs stay within the guard once it has been compared enough', async () => {
    // Prepare: a candidate within 1e-3 of stable.
    await flow.uploadAndWait('faithful', 'v1.onnx', linearModel(1));
    await flow.uploadAndWait(
      'faithful',
      'v2.onnx',
      linearModel(1, 0.0001),
      policySidecar({ strategy: 'shadow', samplingPercent: 100, bakingSeconds: 0, maxAbsDiff: 0.001, minRequests: 5 }),
    );

    // Act
    await traffic('faithful', async () => (await flow.manifest('faithful'))?.rollout?.state !== 'baking');

    // Assess
    const manifest = await flow.manifest('faithful');
    expect([manifest?.rollout?.state, manifest?.latest]).toEqual(['promoted', '2']);
    expect(manifest?.rollout?.reason).toMatch(/^promoted: \d+ shadow comparisons within the guards$/);
  });
});

describe('npm run models -- rollout', () => {
  async function cli(...argv: string[]): Promise<{ code: number; out: string[] }> {
    const out: string[] = [];
    const code = await runCli(argv, { out: (line) => out.push(line), env: {}, store: flow.store });
    return { code, out };
  }

  it('sets the policy, shows the rollout, pauses, resumes, rolls back, starts again and promotes', async () => {
    // Prepare
    await flow.uploadAndWait('by-hand', 'v1.onnx', linearModel(1));
    const policy = await cli(
      'rollout',
      'by-hand',
      'policy',
      '--policy',
      '{"strategy":"canary","percent":20,"bakingSeconds":3600}',
    );
    await flow.uploadAndWait('by-hand', 'v2.onnx', linearModel(2));

    // Act
    const status = await cli('rollout', 'by-hand', 'status');
    const paused = await cli('rollout', 'by-hand', 'pause', '--json');
    const again = await cli('rollout', 'by-hand', 'start', '2');
    const resumed = await cli('rollout', 'by-hand', 'resume', '--json');
    const rolledBack = await cli('rollout', 'by-hand', 'rollback', '--json');
    const startedAgain = await cli('rollout', 'by-hand', 'start', '2', '--json');
    const promoted = await cli('rollout', 'by-hand', 'promote', '--json');
    const badPolicy = await cli('rollout', 'by-hand', 'policy', '--policy', '{"strategy":"canary","percent":70}');

    // Assess
    expect(policy.code).toBe(0);
    expect(status.out.join('\n')).toContain('rollout: baking; stable 1 80%, candidate 2 20% to candidate; step 1');
    expect(JSON.parse(paused.out[0] ?? '{}').rollout).toMatchObject({ paused: true, state: 'baking' });
    expect(again.code).toBe(1);
    expect(JSON.parse(resumed.out[0] ?? '{}').rollout).toMatchObject({ paused: false });
    expect(JSON.parse(rolledBack.out[0] ?? '{}')).toMatchObject({
      latest: '1',
      rollout: { state: 'rolled-back', reason: 'rolled back by an operator (CLI)' },
    });
    expect(JSON.parse(startedAgain.out[0] ?? '{}')).toMatchObject({
      latest: '1',
      rollout: { state: 'baking', candidate: '2', weight: 20 },
    });
    expect(JSON.parse(promoted.out[0] ?? '{}')).toMatchObject({ latest: '2', rollout: { state: 'promoted' } });
    expect(badPolicy.code).toBe(2);
    expect((await flow.infer('by-hand', [[1, 1, 1, 1]])).body).toMatchObject({ model_version: '2' });
  });
});

describe('grants', () => {
  it('ran the controller and the infer functions within their deployed grants', () => {
    // Assess: the rollout role (function-grants.ts) sufficed for every read and conditional write above.
    expect(flow.stack.rollouts.runs()).toBeGreaterThan(0);
    expect(flow.denials).toEqual([]);
  });
});
