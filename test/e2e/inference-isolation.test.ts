/**
 * Every inference has a deadline, and a native crash costs one request, under `npm start` (`startLocal()`, with its
 * default supervised onnxruntime processes): a `Loop` whose trip count is an input, asked for 10^12 iterations,
 * gets a 504 at its model's `timeoutMs` while another model keeps answering; a process that dies by a signal during
 * a run is that request's 502, the stack lives, and the next request is answered by a fresh process. Unknown model
 * names leave no per-name state in the gateway.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startLocal, type LocalStack } from '../../functions/local/local-runtime.js';
import { buildDivisionByBMinusOneModel, buildLoopModel } from '../../tools/onnx/index.js';

const SPIN_TIMEOUT_MS = 1500;
const INT32_MIN = -(2 ** 31);

let stack: LocalStack;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'inference-isolation-'));
  const catalog = path.join(dir, 'catalog');
  await mkdir(catalog);
  await writeFile(path.join(catalog, 'spin.onnx'), buildLoopModel({ trips: 'input', body: 'Identity' }));
  await writeFile(
    path.join(catalog, 'spin.json'),
    JSON.stringify({ seed: 'spin.onnx', limits: { timeoutMs: SPIN_TIMEOUT_MS } }),
  );
  await copyFile(path.join('models', 'linear.onnx'), path.join(catalog, 'linear.onnx'));
  await writeFile(path.join(catalog, 'linear.json'), JSON.stringify({ seed: 'linear.onnx' }));
  stack = await startLocal({ port: 0, s3Port: 0, dataDir: path.join(dir, 'data'), catalogDir: catalog, silent: true });
  // A model without a catalog entry: the shared function serves it.
  await stack.runtime.store.put('uploads/divider/divider.onnx', buildDivisionByBMinusOneModel());
  await stack.settled();
});
afterAll(async () => {
  await stack?.close();
  await rm(dir, { recursive: true, force: true });
});

interface Answer {
  readonly status: number;
  readonly body: { error?: string; outputs?: { data: number[] }[] };
}

async function infer(model: string, inputs: unknown[]): Promise<Answer> {
  const response = await fetch(`${stack.gatewayUrl}/v2/models/${model}/infer`, {
    method: 'POST',
    body: JSON.stringify({ inputs }),
    headers: { 'content-type': 'application/json' },
  });
  return { status: response.status, body: (await response.json()) as Answer['body'] };
}

const spin = (trips: number) =>
  infer('spin', [
    { name: 'trips', datatype: 'INT64', shape: [], data: [trips] },
    { name: 'x', datatype: 'FP32', shape: [1], data: [7] },
  ]);
const linear = () => infer('linear', [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }]);
const divide = (a: number, b: number) =>
  infer('divider', [
    { name: 'a', datatype: 'INT32', shape: [1], data: [a] },
    { name: 'b', datatype: 'INT32', shape: [1], data: [b] },
  ]);

/** Latencies (ms) of `linear` requests sent one after the other until `until` settles. */
async function linearLatenciesDuring(until: Promise<unknown>): Promise<number[]> {
  let done = false;
  void until.finally(() => {
    done = true;
  });
  const latencies: number[] = [];
  while (!done) {
    const started = performance.now();
    const answer = await linear();
    latencies.push(performance.now() - started);
    expect(answer.status).toBe(200);
  }
  return latencies;
}

function p99(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)] ?? Number.NaN;
}

/** Pids of this process's onnxruntime serving children (Linux `/proc`). */
function servingChildren(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (ppid === process.pid && cmdline.includes('InferenceSession')) pids.push(Number(entry));
    } catch {
      // The process ended meanwhile.
    }
  }
  return pids;
}

/** CPU ticks a process has used so far. */
function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

it('answers 504 at the deadline of an endless inference while another model keeps answering', async () => {
  expect((await spin(1)).status).toBe(200);
  expect((await linear()).status).toBe(200);

  const started = performance.now();
  const endless = spin(1e12);
  const latencies = await linearLatenciesDuring(endless);
  const answer = await endless;
  const tookMs = performance.now() - started;

  expect(answer.status).toBe(504);
  expect(answer.body.error).toMatch(/model "spin" version 1 did not finish the inference within 1\.5 s .*timeoutMs/);
  expect(tookMs).toBeGreaterThanOrEqual(SPIN_TIMEOUT_MS);
  expect(tookMs).toBeLessThan(10_000);
  expect(latencies.length).toBeGreaterThan(5);
  expect(p99(latencies)).toBeLessThan(1000);
  const next = await spin(3);
  expect(next.status).toBe(200);
  expect(next.body.outputs?.[0]?.data).toEqual([7]);
});

it('answers an INT32_MIN / -1 request from the guarded model without losing the stack', async () => {
  expect((await divide(6, 0)).body.outputs?.[0]?.data).toEqual([-6]);

  // Registration guards integer Div (guard-integer-division): the overflow wraps, as two's complement defines it,
  // instead of raising SIGFPE in onnxruntime.
  const overflow = await divide(INT32_MIN, 0);

  expect(overflow.status).toBe(200);
  expect(overflow.body.outputs?.[0]?.data).toEqual([INT32_MIN]);
  expect((await linear()).status).toBe(200);
  expect((await divide(6, 0)).body.outputs?.[0]?.data).toEqual([-6]);
});

it('answers 502 naming the signal when the serving process dies mid-run, then serves again', async () => {
  // Fault injection: the one thing mocked is the crash itself, a signal sent to the process running the request.
  expect((await spin(1)).status).toBe(200);
  const before = new Map(servingChildren().map((pid) => [pid, cpuTicks(pid)]));
  const running = spin(1e12);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const busiest = [...before.keys()]
    .filter((pid) => servingChildren().includes(pid))
    .sort((a, b) => cpuTicks(b) - (before.get(b) ?? 0) - (cpuTicks(a) - (before.get(a) ?? 0)))[0];
  expect(busiest).toBeDefined();
  process.kill(busiest!, 'SIGSEGV');

  const answer = await running;

  expect(answer.status).toBe(502);
  expect(answer.body.error).toMatch(/onnxruntime's process died \(SIGSEGV\) while running the model on this request/);
  expect((await linear()).status).toBe(200);
  expect((await spin(2)).status).toBe(200);
});

it("bounds the shared function's loaded models by the deployed session budget", async () => {
  // 752 MB (a quarter of the shared function's 3,008 MB), each supervised session counted as its process (80 MB):
  // at most 9 shared sessions stay loaded. The catalog models (spin, linear) have functions of their own.
  const names = Array.from({ length: 12 }, (_, i) => `budget-${i}`);
  for (const name of names) await stack.runtime.store.put(`uploads/${name}/m.onnx`, readFileSync('models/linear.onnx'));
  await stack.settled();

  for (const name of names) {
    const answer = await infer(name, [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }]);
    expect(answer.status).toBe(200);
  }
  const deadline = performance.now() + 5000;
  while (servingChildren().length > 11 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));

  expect(servingChildren().length).toBeLessThanOrEqual(11);
  expect((await infer(names[0]!, [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }])).status).toBe(
    200,
  );
});

it('keeps no state for unknown model names', async () => {
  const startedBefore = [...stack.startedFunctions()];

  const answers = await Promise.all(
    Array.from({ length: 30 }, (_, i) => fetch(`${stack.gatewayUrl}/v2/models/unknown-${i}/ready`)),
  );

  await Promise.all(answers.map((a) => a.text()));

  expect(answers.map((a) => a.status)).toEqual(new Array(30).fill(404));
  expect(stack.startedFunctions()).toEqual(startedBefore);
  expect(stack.startedFunctions()).toEqual(expect.arrayContaining(['spin', 'linear']));
});
