/**
 * The capture buffer's own guarantees, over a real folder store: when a batch is due (records, age), one file per
 * model, version and hour, bounded memory (a record that does not fit is dropped and counted), a failing store
 * (fault-injected) costs only its records and a report, concurrent flushes share one write, and generic records
 * (a shadow comparison) carry their attributes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../functions/adapters/fs-blob-store.js';
import { BufferedCaptureSink, type CaptureTelemetry } from '../../functions/adapters/capture-sink.js';
import { resolveCapturePolicy, type CapturedExchange, type CaptureStore } from '../../functions/core/capture.js';
import { readConfig } from '../../functions/wiring/config.js';
import { captureStoreOf } from '../../functions/wiring/runtime.js';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function folderStore(): FsBlobStore {
  const dir = mkdtempSync(join(tmpdir(), 'onnx-serverless-capture-sink-'));
  dirs.push(dir);
  return new FsBlobStore(dir);
}

const text = (value: string) => new TextEncoder().encode(value);
const exchange = (model = 'm', version = '1', n = 0): CapturedExchange => ({
  model,
  version,
  request: { body: text(`{"inputs":[{"name":"x","datatype":"INT32","shape":[1],"data":[${n}]}]}`) },
  response: { body: text(`{"outputs":[${n}]}`), contentType: 'application/json' },
});

/** Reports, as counts, with each failure's key. */
function recorder() {
  const seen = { written: 0, dropped: 0, failed: 0, failedKeys: [] as string[], reasons: [] as string[] };
  const telemetry: CaptureTelemetry = {
    written: ({ records }) => {
      seen.written += records;
    },
    dropped: ({ records, reason }) => {
      seen.dropped += records;
      seen.reasons.push(reason);
    },
    failed: ({ key, records }) => {
      seen.failed += records;
      seen.failedKeys.push(key);
    },
  };
  return { seen, telemetry };
}

async function lines(store: FsBlobStore, prefix: string) {
  const keys = await store.list(prefix);
  const files = await Promise.all(keys.map(async (key) => new TextDecoder().decode((await store.get(key))?.body)));
  return { keys, records: files.flatMap((f) => f.trim().split('\n')).map((line) => JSON.parse(line)) };
}

describe('BufferedCaptureSink', () => {
  it('is due at maxBatchRecords, or at flushIntervalSeconds of age, and writes one file per model/version/hour', async () => {
    let now = Date.UTC(2026, 11, 6, 4, 59, 59);
    const store = folderStore();
    const sink = new BufferedCaptureSink({
      store: captureStoreOf(store),
      policy: resolveCapturePolicy({ samplingPercent: 100, maxBatchRecords: 3, flushIntervalSeconds: 10 }),
      now: () => now,
    });
    sink.capture(exchange('m', '1', 1));
    sink.capture(exchange('m', '2', 2));
    expect(sink.isDue()).toBe(false);
    now += 1000; // 05:00:00: a new hour folder
    sink.capture(exchange('m', '1', 3));
    expect(sink.isDue()).toBe(true);
    expect(await sink.flushIfDue()).toEqual({ files: 3, records: 3, failedRecords: 0 });
    const { keys } = await lines(store, 'capture/');
    expect(keys.map((k) => k.split('/').slice(0, 7).join('/')).sort()).toEqual([
      'capture/m/1/2026/12/06/04',
      'capture/m/1/2026/12/06/05',
      'capture/m/2/2026/12/06/04',
    ]);

    sink.capture(exchange('m', '1', 4));
    now += 9_999;
    expect(sink.isDue()).toBe(false);
    now += 1;
    expect(sink.isDue()).toBe(true);
    expect(sink.pending).toBe(1);
  });

  it('samples: 0% builds nothing, 100% everything, 30% what the draws say', async () => {
    const draws = [0.1, 0.29, 0.3, 0.9];
    const sink = new BufferedCaptureSink({
      store: captureStoreOf(folderStore()),
      policy: resolveCapturePolicy({ samplingPercent: 30 }),
      random: () => draws.shift() ?? 1,
    });
    for (let i = 0; i < 4; i++) sink.capture(exchange());
    expect(sink.pending).toBe(2);
    const off = new BufferedCaptureSink({ store: captureStoreOf(folderStore()), policy: resolveCapturePolicy({}) });
    off.capture(exchange());
    expect([off.enabled, off.pending]).toEqual([false, 0]);
  });

  it('drops and counts what does not fit the buffer, and takes records again once it is written', async () => {
    const { seen, telemetry } = recorder();
    const store = folderStore();
    const sink = new BufferedCaptureSink({
      store: captureStoreOf(store),
      policy: resolveCapturePolicy({ samplingPercent: 100 }),
      telemetry,
      limits: { maxBatchBytes: 100, maxBufferBytes: 1000 },
    });
    for (let i = 0; i < 10; i++) sink.capture(exchange('m', '1', i));
    const kept = sink.pending;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(10);
    expect(seen.dropped).toBe(10 - kept);
    expect(seen.reasons[0]).toMatch(/the capture buffer is full \(1000 bytes\)/);
    expect(sink.isDue()).toBe(true); // over maxBatchBytes
    await sink.flush();
    sink.capture(exchange('m', '1', 99));
    expect(sink.pending).toBe(1);
    expect((await lines(store, 'capture/')).records).toHaveLength(kept);
  });

  it('reports a failing store (its records lost), never rejects, and writes the next batch', async () => {
    const { seen, telemetry } = recorder();
    const store = folderStore();
    const real = captureStoreOf(store);
    let failing = true;
    // Fault injection: S3 answering 503 to the first write.
    const flaky: CaptureStore = {
      writeObject: (key, body, type) =>
        failing ? Promise.reject(new Error('503 SlowDown')) : real.writeObject(key, body, type),
    };
    const sink = new BufferedCaptureSink({
      store: flaky,
      policy: resolveCapturePolicy({ samplingPercent: 100 }),
      telemetry,
    });
    sink.capture(exchange('a'));
    sink.capture(exchange('b'));
    expect(await sink.flush()).toEqual({ files: 2, records: 2, failedRecords: 2 });
    expect(seen.failed).toBe(2);
    expect(seen.failedKeys.every((k) => /^capture\/[ab]\/1\/\d{4}\/\d{2}\/\d{2}\/\d{2}\/.+\.jsonl$/.test(k))).toBe(
      true,
    );
    failing = false;
    sink.capture(exchange('a', '1', 7));
    expect(await sink.flush()).toEqual({ files: 1, records: 1, failedRecords: 0 });
    expect(seen.written).toBe(1);
    expect((await lines(store, 'capture/')).records).toHaveLength(1);
  });

  it('shares one write between concurrent flushes; a record added meanwhile waits for the next', async () => {
    const store = folderStore();
    const real = captureStoreOf(store);
    let writes = 0;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    // Fault injection: a slow store (the write holds until released).
    const slow: CaptureStore = {
      writeObject: async (key, body, type) => {
        writes++;
        await gate;
        await real.writeObject(key, body, type);
      },
    };
    const sink = new BufferedCaptureSink({ store: slow, policy: resolveCapturePolicy({ samplingPercent: 100 }) });
    sink.capture(exchange());
    const first = sink.flush();
    const second = sink.flush();
    sink.capture(exchange('m', '1', 2));
    release();
    expect(await first).toEqual(await second);
    expect(writes).toBe(1);
    expect(sink.pending).toBe(1);
  });

  it('adds generic records (a shadow comparison) with their attributes, without sampling', async () => {
    const store = folderStore();
    const sink = new BufferedCaptureSink({ store: captureStoreOf(store), policy: resolveCapturePolicy({}) });
    sink.record('m', '2', {
      captureData: {
        endpointOutput: {
          observedContentType: 'application/json',
          mode: 'OUTPUT',
          data: '{"y":[1]}',
          encoding: 'JSON',
        },
      },
      inferenceId: 'r-1',
      customAttributes: { kind: 'shadow', stableVersion: '1', maxAbsDiff: 0.25 },
    });
    await sink.flush();
    const { keys, records } = await lines(store, 'capture/m/2/');
    expect(keys).toHaveLength(1);
    expect(records[0]).toMatchObject({
      captureData: { endpointOutput: { data: '{"y":[1]}', encoding: 'JSON', mode: 'OUTPUT' } },
      eventMetadata: { inferenceId: 'r-1', customAttributes: { kind: 'shadow', stableVersion: '1', maxAbsDiff: 0.25 } },
      eventVersion: '0',
    });
  });
});

describe('capture records', () => {
  it('records a body that is not UTF-8, and an image, as BASE64 with the observed type', async () => {
    const store = folderStore();
    const sink = new BufferedCaptureSink({
      store: captureStoreOf(store),
      policy: resolveCapturePolicy({ samplingPercent: 100 }),
    });
    const invalid = new Uint8Array([0x7b, 0xff, 0x7d]);
    const jpeg = new Uint8Array([0xff, 0xd8, 0xff, 0xe0]);
    sink.capture({ ...exchange(), request: { body: invalid, contentType: 'application/json' } });
    sink.capture({ ...exchange(), request: { body: jpeg, contentType: 'image/jpeg' } });
    await sink.flush();
    const { records } = await lines(store, 'capture/');
    expect(records.map((r) => r.captureData.endpointInput)).toEqual([
      {
        observedContentType: 'application/json',
        mode: 'INPUT',
        data: Buffer.from(invalid).toString('base64'),
        encoding: 'BASE64',
      },
      {
        observedContentType: 'image/jpeg',
        mode: 'INPUT',
        data: Buffer.from(jpeg).toString('base64'),
        encoding: 'BASE64',
      },
    ]);
  });

  it('refuses bad policies with the field at fault, in a catalog entry and in DATA_CAPTURE', () => {
    expect(() => resolveCapturePolicy({ samplingPercent: -1 })).toThrow(
      /capture\.samplingPercent: samplingPercent is a percent of requests: 0 to 100/,
    );
    expect(() => resolveCapturePolicy({ maxBatchRecords: 0 })).toThrow(/capture\.maxBatchRecords/);
    expect(() => readConfig({ DATA_CAPTURE: '{"samplingPercent": 200}' })).toThrow(
      /DATA_CAPTURE is invalid: capture\.samplingPercent: samplingPercent is a percent of requests: 0 to 100/,
    );
    expect(() => readConfig({ DATA_CAPTURE: 'yes' })).toThrow(/DATA_CAPTURE is invalid/);
    expect(readConfig({}).capture.samplingPercent).toBe(0);
    expect(resolveCapturePolicy({ flushIntervalSeconds: 5 }, 20)).toEqual({
      samplingPercent: 20,
      flushIntervalSeconds: 5,
      maxBatchRecords: 1000,
    });
  });
});
