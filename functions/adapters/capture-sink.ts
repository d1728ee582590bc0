/**
 * The buffering side of data capture: records wait in memory and are written in batches, one JSON Lines object per
 * model, version and hour, never one PUT per request. The handler decides when (`flushIfDue` at the end of an
 * invocation, `flush` on a warmer, on shutdown and on SIGTERM); this class only keeps the bounds: a buffer of at most
 * {@link CAPTURE_LIMITS}`.maxBufferBytes` (beyond it a record is dropped and counted), and a failed write costs
 * its records (counted and logged), never a request.
 */
import { randomUUID } from 'node:crypto';
import {
  buildCaptureRecord,
  buildCustomRecord,
  CAPTURE_LIMITS,
  captureFileKey,
  captureFolder,
  capturedByteLength,
  isSampled,
  type CapturedExchange,
  type CapturePolicy,
  type CaptureRecord,
  type CaptureSink,
  type CaptureStore,
  type CustomCaptureRecord,
} from '../core/capture.js';

/** What capture reports: the handler turns these into metrics and log lines. */
export interface CaptureTelemetry {
  /** A batch file was written. */
  readonly written?: (event: { key: string; records: number; bytes: number }) => void;
  /** Records were dropped: the buffer was full, or a record alone exceeds it. */
  readonly dropped?: (event: { model: string; records: number; reason: string }) => void;
  /** A batch could not be written; its records are lost (the requests were answered all the same). */
  readonly failed?: (event: { key: string; records: number; error: unknown }) => void;
}

/** Settings of {@link BufferedCaptureSink}. */
export interface BufferedCaptureSinkOptions {
  readonly store: CaptureStore;
  readonly policy: CapturePolicy;
  readonly telemetry?: CaptureTelemetry;
  /** @default Date.now */
  readonly now?: () => number;
  /** Uniform in [0, 1): the sampling draw. @default Math.random */
  readonly random?: () => number;
  /** @default {@link CAPTURE_LIMITS} */
  readonly limits?: { readonly maxBatchBytes: number; readonly maxBufferBytes: number };
}

/** What one {@link BufferedCaptureSink.flush} did. */
export interface FlushResult {
  readonly files: number;
  readonly records: number;
  readonly failedRecords: number;
}

/**
 * A buffered record, built when its batch is written: the request that is only sampled pays for a closure, not for
 * base64 and JSON of megabytes (the bodies are held as they are, 3/4 the size of their base64).
 */
interface Pending {
  readonly model: string;
  readonly folder: string;
  readonly build: () => CaptureRecord;
}

const JSON_LINES = 'application/jsonlines';

/** Bytes of a record besides its bodies: field names, content types, event id and time. */
const RECORD_OVERHEAD_BYTES = 512;

/** A {@link CaptureSink} that buffers and writes batches; see the module comment. */
export class BufferedCaptureSink implements CaptureSink {
  private buffer: Pending[] = [];
  private bytes = 0;
  private oldest: number | undefined;
  private flushing: Promise<FlushResult> | undefined;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly limits: { readonly maxBatchBytes: number; readonly maxBufferBytes: number };
  private readonly encoder = new TextEncoder();

  public constructor(private readonly options: BufferedCaptureSinkOptions) {
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.limits = options.limits ?? CAPTURE_LIMITS;
  }

  /** Whether this sink captures anything at all (a 0% policy never builds a record). */
  public get enabled(): boolean {
    return this.options.policy.samplingPercent > 0;
  }

  /** Records waiting to be written. */
  public get pending(): number {
    return this.buffer.length;
  }

  public capture(exchange: CapturedExchange): void {
    if (!this.enabled || !isSampled(this.options.policy, this.random())) return;
    try {
      const time = new Date(this.now());
      const bodies = capturedByteLength(exchange.request.body) + capturedByteLength(exchange.response.body);
      this.add(
        exchange.model,
        captureFolder(exchange.model, exchange.version, time),
        () => buildCaptureRecord(exchange, { eventId: randomUUID(), inferenceTime: time }),
        // The record's size as written: bodies as base64 (JSON text is smaller), and the fields around them.
        Math.ceil(bodies / 3) * 4 + RECORD_OVERHEAD_BYTES,
      );
    } catch (error) {
      this.options.telemetry?.dropped?.({
        model: exchange.model,
        records: 1,
        reason: `unrecordable: ${String(error)}`,
      });
    }
  }

  public record(model: string, version: string, record: CustomCaptureRecord): void {
    try {
      const time = new Date(this.now());
      const built = buildCustomRecord(record, { eventId: randomUUID(), inferenceTime: time });
      this.add(model, captureFolder(model, version, time), () => built, JSON.stringify(built).length);
    } catch (error) {
      this.options.telemetry?.dropped?.({ model, records: 1, reason: `unrecordable: ${String(error)}` });
    }
  }

  /** True when the buffer should be written now: old enough, enough records, or enough bytes. */
  public isDue(): boolean {
    if (this.buffer.length === 0) return false;
    const { flushIntervalSeconds, maxBatchRecords } = this.options.policy;
    return (
      this.buffer.length >= maxBatchRecords ||
      this.bytes >= this.limits.maxBatchBytes ||
      this.now() - (this.oldest ?? this.now()) >= flushIntervalSeconds * 1000
    );
  }

  /** Writes the buffer if {@link isDue}; resolves when written (or failed: never rejects). */
  public async flushIfDue(): Promise<FlushResult | undefined> {
    return this.isDue() ? this.flush() : undefined;
  }

  /**
   * Writes every buffered record, one file per model, version and hour, the files in parallel. Never rejects: a
   * failed file is reported to `telemetry.failed` and its records are gone. Concurrent calls share one write, and a
   * record added meanwhile waits for the next flush.
   */
  public async flush(): Promise<FlushResult> {
    if (this.flushing !== undefined) return this.flushing;
    if (this.buffer.length === 0) return { files: 0, records: 0, failedRecords: 0 };
    const batch = this.buffer;
    this.buffer = [];
    this.bytes = 0;
    this.oldest = undefined;
    this.flushing = this.write(batch).finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  private add(model: string, folder: string, build: () => CaptureRecord, size: number): void {
    if (this.bytes + size > this.limits.maxBufferBytes) {
      this.options.telemetry?.dropped?.({
        model,
        records: 1,
        reason: `the capture buffer is full (${this.limits.maxBufferBytes} bytes); it is written at the end of this invocation`,
      });
      return;
    }
    this.buffer.push({ model, folder, build });
    this.bytes += size;
    this.oldest ??= this.now();
  }

  private async write(batch: readonly Pending[]): Promise<FlushResult> {
    const byFolder = new Map<string, string[]>();
    for (const { model, folder, build } of batch) {
      let line: string;
      try {
        line = `${JSON.stringify(build())}\n`;
      } catch (error) {
        this.options.telemetry?.dropped?.({ model, records: 1, reason: `unrecordable: ${String(error)}` });
        continue;
      }
      const lines = byFolder.get(folder);
      if (lines === undefined) byFolder.set(folder, [line]);
      else lines.push(line);
    }
    const written = new Date(this.now());
    const outcomes = await Promise.all(
      [...byFolder].map(async ([folder, lines]) => {
        const key = captureFileKey(folder, written, randomUUID());
        const body = this.encoder.encode(lines.join(''));
        try {
          await this.options.store.writeObject(key, body, JSON_LINES);
          this.options.telemetry?.written?.({ key, records: lines.length, bytes: body.byteLength });
          return 0;
        } catch (error) {
          this.options.telemetry?.failed?.({ key, records: lines.length, error });
          return lines.length;
        }
      }),
    );
    const failedRecords = outcomes.reduce((sum, n) => sum + n, 0);
    return { files: byFolder.size, records: batch.length, failedRecords };
  }
}
