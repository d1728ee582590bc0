/**
 * Data capture: a sampled share of a model's requests and answers, as SageMaker Data Capture records (JSON Lines),
 * so that every tool built for SageMaker Model Monitor reads them. This module is the pure part: the policy, the
 * record, the object key, the sampling decision. The buffering and the writes live in an adapter
 * (`functions/adapters/capture-sink.ts`); the HTTP layer hands each answered inference to a {@link CaptureSink}.
 */
import { z } from 'zod';
import { concatBytes } from './codec/message.js';
import { MEDIA_TYPES, parseMediaType, requestForm } from './codec/wire.js';

/**
 * Prefix of every capture file in the model bucket: `capture/<model>/<version>/yyyy/mm/dd/hh/<file>.jsonl` (listed
 * with the repository's other prefixes in `REPOSITORY_PREFIXES`).
 */
export const CAPTURE_PREFIX = 'capture/';

/**
 * Bounds that are not per model: a batch is written once it holds `maxBatchBytes` of records (whatever its age or
 * count); the buffer of one instance holds at most `maxBufferBytes`, and a record that would not fit is dropped
 * and counted (`CaptureDropped`) rather than let capture grow the function's memory without bound.
 */
export const CAPTURE_LIMITS = { maxBatchBytes: 4 * 1024 * 1024, maxBufferBytes: 16 * 1024 * 1024 } as const;

/** The capture policy of a catalog entry (`capture` in `models/<name>.json`). */
export const capturePolicySchema = z
  .object({
    /**
     * Percent of requests captured, 0 to 100 (SageMaker's `InitialSamplingPercentage`). Unset: the deployment's
     * default (`-c captureSamplingPercent=`, itself 0 by default: capture is opt-in, as on SageMaker).
     */
    samplingPercent: z
      .number()
      .min(0, 'samplingPercent is a percent of requests: 0 to 100')
      .max(100, 'samplingPercent is a percent of requests: 0 to 100')
      .optional(),
    /** A batch is written at the end of the first invocation that finds it this old (seconds). */
    flushIntervalSeconds: z.number().int().min(1).max(3600).default(60),
    /** A batch is written at the end of the invocation that brings it to this many records. */
    maxBatchRecords: z.number().int().min(1).max(100_000).default(1000),
  })
  .strict();

/** A capture policy as written in a catalog entry. */
export type CapturePolicyInput = z.input<typeof capturePolicySchema>;

/** A capture policy with every default applied. */
export interface CapturePolicy {
  readonly samplingPercent: number;
  readonly flushIntervalSeconds: number;
  readonly maxBatchRecords: number;
}

/** No capture: the policy of a function without one. */
export const NO_CAPTURE: CapturePolicy = { samplingPercent: 0, flushIntervalSeconds: 60, maxBatchRecords: 1000 };

/**
 * The policy that applies: the entry's own, its `samplingPercent` falling back to the deployment's default.
 * @throws Error naming the field when `policy` is not a valid capture policy.
 * @example resolveCapturePolicy({ maxBatchRecords: 10 }, 5) // { samplingPercent: 5, flushIntervalSeconds: 60, maxBatchRecords: 10 }
 */
export function resolveCapturePolicy(policy: unknown, defaultSamplingPercent = 0): CapturePolicy {
  const parsed = capturePolicySchema.safeParse(policy ?? {});
  if (!parsed.success) {
    throw new Error(parsed.error.issues.map((i) => `capture.${i.path.join('.')}: ${i.message}`).join('; '));
  }
  return { ...parsed.data, samplingPercent: parsed.data.samplingPercent ?? defaultSamplingPercent };
}

/**
 * The `DATA_CAPTURE` value of an infer function: the resolved policy as JSON, or `undefined` when it captures
 * nothing (the variable is then left unset).
 * @example captureEnvironment(entry.capture, 10) // '{"samplingPercent":10,"flushIntervalSeconds":60,"maxBatchRecords":1000}'
 */
export function captureEnvironment(policy: unknown, defaultSamplingPercent = 0): string | undefined {
  const resolved = resolveCapturePolicy(policy, defaultSamplingPercent);
  return resolved.samplingPercent > 0 ? JSON.stringify(resolved) : undefined;
}

/** Throws unless `percent` is a sampling percent (0 to 100), naming `where` (the option that gave it). */
export function checkSamplingPercent(where: string, percent: number): void {
  if (!Number.isFinite(percent) || percent < 0 || percent > 100) {
    throw new Error(`${where}: the capture sampling percent must be a number from 0 to 100, got ${percent}`);
  }
}

/** True when this request is captured: `draw` is uniform in [0, 1) (`Math.random()` in the adapter). */
export function isSampled(policy: CapturePolicy, draw: number): boolean {
  return draw * 100 < policy.samplingPercent;
}

/** SageMaker's encodings: text JSON, or BASE64 for anything that is not (the binary extension, images). */
export type CaptureEncoding = 'JSON' | 'BASE64';

/** One side of an exchange, as SageMaker Data Capture records it. */
export interface CaptureData {
  readonly observedContentType: string;
  readonly mode: 'INPUT' | 'OUTPUT';
  readonly data: string;
  readonly encoding: CaptureEncoding;
}

/** One line of a capture file: SageMaker Data Capture's record, `eventVersion` "0". */
export interface CaptureRecord {
  readonly captureData: { readonly endpointInput?: CaptureData; readonly endpointOutput?: CaptureData };
  readonly eventMetadata: {
    readonly eventId: string;
    /** The V2 request's `id`, when it has one (SageMaker's `InferenceId`, which joins records to ground truth). */
    readonly inferenceId?: string;
    readonly inferenceTime: string;
    /** What a generic record ({@link CaptureSink.record}) adds, such as a shadow comparison's figures. */
    readonly customAttributes?: Readonly<Record<string, string | number | boolean>>;
  };
  readonly eventVersion: '0';
}

/** A body as the HTTP layer saw it. */
export interface CapturedBody {
  /** The bytes, or a streamed answer's pieces (joined only when the record is built, for a sampled exchange). */
  readonly body: Uint8Array | readonly Uint8Array[];
  /** The `Content-Type` header, if any. */
  readonly contentType?: string;
  /** The `Inference-Header-Content-Length` header, if any (the binary tensor extension). */
  readonly inferenceHeaderContentLength?: string;
}

/** One answered inference, as the HTTP layer hands it over. */
export interface CapturedExchange {
  readonly model: string;
  readonly version: string;
  readonly request: CapturedBody;
  readonly response: CapturedBody;
  /** The V2 request's `id`. */
  readonly inferenceId?: string;
  /**
   * `eventMetadata.customAttributes` of the record: a shadow copy's comparison with the answer the client got
   * (`shadow_of`, `max_abs_diff`, ...; docs/rollouts.md, "Shadow").
   */
  readonly customAttributes?: Readonly<Record<string, string | number | boolean>>;
}

/** Where captured exchanges go: the HTTP layer calls {@link capture}; a shadow comparison calls {@link record}. */
export interface CaptureSink {
  /** False when the policy samples nothing: a caller can skip building what it would hand over. */
  readonly enabled: boolean;
  /** Captures one answered inference if the policy samples it. Never throws, never waits for storage. */
  capture(exchange: CapturedExchange): void;
  /**
   * Adds a record of any content under `model`/`version` (always, no sampling: the caller decided), e.g. a shadow
   * comparison with `customAttributes` holding its figures. Never throws.
   */
  record(model: string, version: string, record: CustomCaptureRecord): void;
}

/** What a caller gives {@link CaptureSink.record}: the sides it has, and attributes of its own. */
export interface CustomCaptureRecord {
  readonly captureData: CaptureRecord['captureData'];
  readonly inferenceId?: string;
  readonly customAttributes?: Readonly<Record<string, string | number | boolean>>;
}

/**
 * Where capture batches are written: one unconditional PUT of a whole file (the S3 reader's `writeObject` deployed,
 * `BlobStore.put` on a folder).
 */
export interface CaptureStore {
  writeObject(key: string, body: Uint8Array, contentType: string): Promise<void>;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A JSON-encoded side when the body is V2 JSON in valid UTF-8, else BASE64 with a self-describing content type. */
export function captureData(side: CapturedBody, mode: CaptureData['mode']): CaptureData {
  const body = side.body instanceof Uint8Array ? side.body : concatBytes(side.body);
  const media = parseMediaType(side.contentType);
  let form: ReturnType<typeof requestForm> | undefined;
  try {
    form = requestForm(side.contentType, side.inferenceHeaderContentLength, body.byteLength);
  } catch {
    // A malformed binary header never reaches capture (the request was answered), but a record must not throw.
    form = undefined;
  }
  const image = media.type.startsWith('image/');
  if (form?.kind === 'json' && !image) {
    try {
      return {
        observedContentType: side.contentType ?? MEDIA_TYPES.json,
        mode,
        data: utf8.decode(body),
        encoding: 'JSON',
      };
    } catch {
      // Not UTF-8: recorded as bytes below.
    }
  }
  // The binary extension's header length travels in the content type (SageMaker's own spelling of the extension),
  // so that a record alone says where the JSON header ends.
  const observedContentType =
    form?.kind === 'binary'
      ? `${MEDIA_TYPES.sagemakerBinary};json-header-size=${form.headerLength}`
      : (side.contentType ?? MEDIA_TYPES.octetStream);
  // A view, not a copy: the body may be megabytes.
  const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  return { observedContentType, mode, data: bytes.toString('base64'), encoding: 'BASE64' };
}

/**
 * The record of one answered inference.
 * @example buildCaptureRecord(exchange, { eventId: randomUUID(), inferenceTime: new Date() })
 */
export function buildCaptureRecord(
  exchange: CapturedExchange,
  event: { readonly eventId: string; readonly inferenceTime: Date },
): CaptureRecord {
  return {
    captureData: {
      endpointInput: captureData(exchange.request, 'INPUT'),
      endpointOutput: captureData(exchange.response, 'OUTPUT'),
    },
    eventMetadata: {
      eventId: event.eventId,
      ...(exchange.inferenceId === undefined ? {} : { inferenceId: exchange.inferenceId }),
      inferenceTime: isoSeconds(event.inferenceTime),
      ...(exchange.customAttributes === undefined ? {} : { customAttributes: exchange.customAttributes }),
    },
    eventVersion: '0',
  };
}

/** The record of a {@link CustomCaptureRecord}. */
export function buildCustomRecord(
  record: CustomCaptureRecord,
  event: { readonly eventId: string; readonly inferenceTime: Date },
): CaptureRecord {
  return {
    captureData: record.captureData,
    eventMetadata: {
      eventId: event.eventId,
      ...(record.inferenceId === undefined ? {} : { inferenceId: record.inferenceId }),
      inferenceTime: isoSeconds(event.inferenceTime),
      ...(record.customAttributes === undefined ? {} : { customAttributes: record.customAttributes }),
    },
    eventVersion: '0',
  };
}

/** `2026-12-06T04:38:46Z`: SageMaker writes inference times to the second. */
function isoSeconds(time: Date): string {
  return `${time.toISOString().slice(0, 19)}Z`;
}

/**
 * The hour folder of a capture file, `capture/<model>/<version>/yyyy/mm/dd/hh/` (UTC), as SageMaker lays out its
 * files (`<endpoint>/<variant>/yyyy/mm/dd/hh/`).
 */
/** Bytes of a captured body, without joining its pieces. */
export function capturedByteLength(body: CapturedBody['body']): number {
  return body instanceof Uint8Array ? body.byteLength : body.reduce((sum, part) => sum + part.byteLength, 0);
}

export function captureFolder(model: string, version: string, time: Date): string {
  const iso = time.toISOString();
  return `${CAPTURE_PREFIX}${model}/${version}/${iso.slice(0, 4)}/${iso.slice(5, 7)}/${iso.slice(8, 10)}/${iso.slice(11, 13)}/`;
}

/** The key of one batch file: its hour folder, then `<mm>-<ss>-<mmm>-<id>.jsonl` of the write (SageMaker's shape). */
export function captureFileKey(folder: string, written: Date, id: string): string {
  const iso = written.toISOString();
  return `${folder}${iso.slice(14, 16)}-${iso.slice(17, 19)}-${iso.slice(20, 23)}-${id}.jsonl`;
}
