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
});
