import { describe, expect, it } from 'vitest';
import { onnxruntimeSessionFactory } from '../../functions/adapters/onnxruntime-session.js';
import { buildIdentityModel } from '../../tools/onnx/index.js';
import type { ModelSession } from '../../functions/core/session.js';
import { SessionCache } from '../../functions/core/session-cache.js';

const options = { intraOpNumThreads: 1, graphOptimizationLevel: 'all' } as const;
const model = buildIdentityModel('FP32');
const input = [{ name: 'input', datatype: 'FP32', shape: [2], data: new Float32Array([1, 2]) }] as const;

/** Real onnxruntime sessions, counted, with their releases recorded; `releases(n)` resolves once n happened. */
function countingLoader() {
  const loads: string[] = [];
  const released: string[] = [];
  const waiting: { count: number; resolve: () => void }[] = [];
  const releases = (count: number): Promise<void> =>
    new Promise((resolve) => (released.length >= count ? resolve() : waiting.push({ count, resolve })));
  const load = async (m: string, v: string): Promise<ModelSession> => {
    loads.push(`${m}@${v}`);
    const session = await onnxruntimeSessionFactory.create(model, options);
    return {
      inputs: session.inputs,
      outputs: session.outputs,
      run: (inputs, names) => session.run(inputs, names),
      release: async () => {
        released.push(`${m}@${v}`);
        for (const waiter of waiting) if (released.length >= waiter.count) waiter.resolve();
        await session.release();
      },
    };
  };
  return { loads, released, releases, load };
}

describe('SessionCache', () => {
  it('creates one session for 20 concurrent first requests', async () => {
    const { loads, load } = countingLoader();
    const cache = new SessionCache(load);

    const outputs = await Promise.all(
      Array.from({ length: 20 }, () => cache.use('m', '1', (s) => s.run(input, [s.outputs[0]!.name]))),
    );

    expect(loads).toEqual(['m@1']);
    expect(outputs.every((o) => Array.from(o[0]!.data as Float32Array).join() === '1,2')).toBe(true);
  });

  it('does not cache a failed load: the next call loads again', async () => {
    let fail = true;
    const { loads, load } = countingLoader();
    const cache = new SessionCache(async (m, v) => {
      if (fail) {
        loads.push('failed');
        throw new Error('storage down');
      }
      return load(m, v);
    });

    await expect(cache.ensure('m', '1')).rejects.toThrow('storage down');
    fail = false;
    const second = await cache.ensure('m', '1');

    expect(second).toEqual({ loaded: true });
    expect(loads).toEqual(['failed', 'm@1']);
    expect(await cache.isLoaded('m', '1')).toBe(true);
  });

  it('releases the least recently used version beyond the budget, only after its in-flight request ends', async () => {
    const { released, releases, load } = countingLoader();
    const cache = new SessionCache(load, { maxVersionsPerModel: 1 });
    let finishOld!: () => void;
    let oldRunning!: () => void;
    const running = new Promise<void>((resolve) => (oldRunning = resolve));
    const oldRequest = cache.use('m', '1', () => {
      oldRunning();
      return new Promise<void>((resolve) => (finishOld = resolve));
    });
    await running;

    await cache.ensure('m', '2');
    const releasedWhileInFlight = [...released];
    finishOld();
    await oldRequest;
    // The release starts as the old request ends; a missing one leaves this waiting until the test times out.
    await releases(1);

    expect(releasedWhileInFlight).toEqual([]);
    expect(released).toEqual(['m@1']);
    expect(cache.cachedVersions('m')).toEqual(['2']);
    expect(cache.cachedVersions('other')).toEqual([]);
  });

  it('keeps many models within a byte budget: least recently used first, in-flight ones after their request', async () => {
    // Prepare: a budget of 250 bytes and models of 100 bytes each.
    const { released, load } = countingLoader();
    const cache = new SessionCache(load, { maxLoadedBytes: 250 });
    await cache.ensure('a', '1', 100);
    await cache.ensure('b', '1', 100);
    let finishB!: () => void;
    const bRequest = cache.use('b', '1', () => new Promise<void>((resolve) => (finishB = resolve)), 100);
    await cache.use('a', '1', async () => undefined, 100); // a is now more recent than b

    // Act: a third model goes over the budget while b still has a request running.
    await cache.ensure('c', '1', 100);
    const releasedWhileInFlight = [...released];
    finishB();
    await bRequest;
    await new Promise((resolve) => setTimeout(resolve, 10));

    // Assess: b (least recently used) left the cache at once but was released only after its request.
    expect(cache.cachedModels().sort()).toEqual(['a', 'c']);
    expect(releasedWhileInFlight).toEqual([]);
    expect(released).toEqual(['b@1']);
    // One model alone over the budget still serves.
    const tight = new SessionCache(load, { maxLoadedBytes: 10 });
    const outputs = await tight.use('big', '1', (session) => session.run(input, [session.outputs[0]!.name]), 100);
    expect(Array.from(outputs[0]!.data as Float32Array)).toEqual([1, 2]);
  });
});
