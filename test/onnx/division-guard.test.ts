/**
 * The integer division guard (`division-guard.ts`), with real onnxruntime: the guarded model gives exactly what the
 * original gives on every input the original survives (random values, edges, broadcasting), and the wrapped value
 * where the original would stop the process (`MIN / -1`). The unguarded model is never run on `MIN / -1` here: it
 * raises SIGFPE and would take the test worker with it.
 */
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { rewriteForServing } from '../../functions/core/onnx/rewrites.js';
import type { Datatype } from '../../functions/core/types.js';
import { attr, ModelBuilder } from '../../tools/onnx/index.js';
import { createPrng } from '../../tools/onnx/prng.js';

type IntType = 'INT32' | 'INT64';
const ORT_TYPE = { INT32: 'int32', INT64: 'int64' } as const;
const MIN = { INT32: -(2n ** 31n), INT64: -(2n ** 63n) } as const;
const MAX = { INT32: 2n ** 31n - 1n, INT64: 2n ** 63n - 1n } as const;

/** `y = op(a, d)` with `a` `[N, 3]` and `d` of `dDims` (broadcast), in the default domain at `opset`. */
function divisionModel(op: 'Div' | 'Mod', type: IntType, dDims: (number | string)[], fmod?: number, opset = 13) {
  return new ModelBuilder({ opsets: { '': opset } })
    .input('a', type, ['N', 3])
    .input('d', type, dDims)
    .node(op, ['a', 'd'], ['y'], fmod === undefined ? {} : { fmod: attr.int(fmod) })
    .output('y', type, ['N', 3])
    .toBytes();
}

function tensor(type: IntType, values: readonly bigint[], dims: readonly number[]): ort.Tensor {
  const data = type === 'INT64' ? BigInt64Array.from(values) : Int32Array.from(values, Number);
  return new ort.Tensor(ORT_TYPE[type], data, dims);
}

async function run(model: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<bigint[]> {
  const session = await ort.InferenceSession.create(model);
  try {
    const { y } = await session.run(feeds);
    return Array.from(y?.data as Iterable<number | bigint>, (v) => BigInt(v));
  } finally {
    await session.release();
  }
}

/** Random values of `type`, a quarter of them edges (MIN, MAX, -1, 1, 0, MIN + 1, MAX - 1). */
function values(type: IntType, count: number, seed: number, nonZero: boolean): bigint[] {
  const random = createPrng(seed);
  const edges = [MIN[type], MAX[type], -1n, 1n, 0n, MIN[type] + 1n, MAX[type] - 1n, 2n, -2n];
  const span = MAX[type] - MIN[type] + 1n;
  const out: bigint[] = [];
  while (out.length < count) {
    const r = random();
    let value: bigint;
    if (r < 0.25) value = edges[Math.floor(random() * edges.length)] ?? 0n;
    else if (r < 0.5) value = BigInt(Math.floor(random() * 200) - 100);
    else value = MIN[type] + (BigInt(Math.floor(random() * 2 ** 52)) * span) / 2n ** 52n;
    if (nonZero && value === 0n) continue;
    out.push(value);
  }
  return out;
}

describe('guardIntegerDivision through rewriteForServing', () => {
  for (const type of ['INT32', 'INT64'] as const) {
    for (const [op, fmod] of [
      ['Div', undefined],
      ['Mod', 0],
      ['Mod', 1],
    ] as const) {
      const label = `${op}${fmod === undefined ? '' : ` fmod=${fmod}`} ${type}`;

      it(`${label}: the same answers as the original on 3,000 random and edge inputs, broadcast or not`, async () => {
        for (const dims of [['N', 3], [3], []] as (number | string)[][]) {
          // Prepare
          const original = divisionModel(op, type, dims, fmod);
          const { model, rewrites } = rewriteForServing(original);
          const rows = 1000;
          const a = values(type, rows * 3, 7, false);
          const dCount = dims.length === 2 ? rows * 3 : dims.length === 1 ? 3 : 1;
          // MIN / -1 is left out of what the original runs on: it stops the process.
          const d = values(type, dCount, 11, true).map((v, i) =>
            v === -1n &&
            (dCount === 1 ? a.includes(MIN[type]) : a.some((x, j) => x === MIN[type] && j % dCount === i % dCount))
              ? 3n
              : v,
          );
          const dShape = dims.length === 2 ? [rows, 3] : dims.length === 1 ? [3] : [];
          const feeds = () => ({ a: tensor(type, a, [rows, 3]), d: tensor(type, d, dShape) });

          // Act
          const expected = await run(original, feeds());
          const actual = await run(model, feeds());

          // Assess
          expect(rewrites.map((r) => r.kind)).toEqual(['guard-integer-division']);
          expect(rewrites[0]?.detail).toContain(`1 ${op}(${type.toLowerCase()})`);
          expect(actual).toEqual(expected);
        }
      });

      it(`${label}: MIN / -1 gives the wrapped value and the process lives`, async () => {
        // Prepare
        const { model } = rewriteForServing(divisionModel(op, type, [3], fmod));
        const a = [MIN[type], MIN[type], 7n, MAX[type], -8n, MIN[type]];
        const d = [-1n, -1n, -1n];

        // Act
        const y = await run(model, { a: tensor(type, a, [2, 3]), d: tensor(type, d, [3]) });

        // Assess: MIN / -1 wraps to MIN (two's complement), x / -1 is -x, and any x mod -1 is 0.
        expect(y).toEqual(
          op === 'Div' ? [MIN[type], MIN[type], -7n, -MAX[type], 8n, MIN[type]] : [0n, 0n, 0n, 0n, 0n, 0n],
        );
      });
    }
  }

  it('guards y = Div(a, b - 1), whose divisor is typed only through the graph, and leaves floats alone', async () => {
    // Prepare: the divisor is an intermediate value with no value_info; a float Div beside it.
    const original = new ModelBuilder({ opsets: { '': 13 } })
      .input('a', 'INT32', [1])
      .input('b', 'INT32', [1])
      .input('f', 'FP32', [1])
      .node('Constant', [], ['one'], {
        value: attr.tensor({ datatype: 'INT32', dims: [], data: new Int32Array([1]) }),
      })
      .node('Sub', ['b', 'one'], ['d'])
      .node('Div', ['a', 'd'], ['y'])
      .node('Div', ['f', 'f'], ['g'])
      .output('y', 'INT32', [1])
      .output('g', 'FP32', [1])
      .toBytes();

    // Act
    const { model, rewrites } = rewriteForServing(original);
    const session = await ort.InferenceSession.create(model);
    const answer = await session.run({
      a: tensor('INT32', [MIN.INT32], [1]),
      b: tensor('INT32', [0n], [1]),
      f: new ort.Tensor('float32', Float32Array.from([2]), [1]),
    });
    await session.release();

    // Assess
    expect(rewrites[0]?.detail).toMatch(/^1 Div\(int32\) guarded/);
    expect(Array.from(answer['y']?.data as Int32Array)).toEqual([-(2 ** 31)]);
    expect(Array.from(answer['g']?.data as Float32Array)).toEqual([1]);
  });

  it('leaves int8 and int16 as they are: onnxruntime promotes them before dividing, so MIN / -1 wraps', async () => {
    for (const [type, min] of [
      ['INT8', -128],
      ['INT16', -32768],
    ] as const) {
      // Prepare
      const model = new ModelBuilder({ opsets: { '': 14 } })
        .input('a', type as Datatype, [1])
        .input('d', type as Datatype, [1])
        .node('Div', ['a', 'd'], ['y'])
        .output('y', type as Datatype, [1])
        .toBytes();
      const Data = type === 'INT8' ? Int8Array : Int16Array;
      const ortType = type === 'INT8' ? 'int8' : 'int16';

      // Act
      const { model: served, rewrites } = rewriteForServing(model);
      const session = await ort.InferenceSession.create(served);
      const { y } = await session.run({
        a: new ort.Tensor(ortType, Data.from([min]), [1]),
        d: new ort.Tensor(ortType, Data.from([-1]), [1]),
      });
      await session.release();

      // Assess
      expect(served).toBe(model);
      expect(rewrites).toEqual([]);
      expect(Array.from(y?.data as Int8Array)).toEqual([min]);
    }
  });
});
