/**
 * Data capture's cost on the warm path: the deployed `infer` handler capturing 100% of requests (records built and
 * buffered, a batch written to the embedded S3 server every `maxBatchRecords`) against the same handler with
 * capture off, timed in alternating blocks in the same process. The median is the request that only buffers; the
 * mean includes the batches written (awaited at the end of the invocation that fills one), amortized.
 */
import type { BlobStore } from '../functions/core/blob-store.js';
import { ENV } from '../functions/core/contract.js';
import { binaryRequest, inferEvent, jsonRequest, modelInputs } from './inputs.js';
import { median, timeAlternating } from './stats.js';
import { answerOnce, deployedHandler, quietly } from './warm.js';

/** What {@link measureCapture} reports (under `capture.` in the results). */
export interface CaptureResults {
  /** p50 of the image model's binary request, capturing 100% over capture off. */
  readonly overhead_ratio: number;
  /** The same with means: the batch writes amortized over the requests. */
  readonly mean_overhead_ratio: number;
  /** p50 of the tiny model's JSON request, capturing over not (its run is microseconds: the fixed cost shows). */
  readonly overhead_ratio_small_json: number;
  /**
   * Median time of the image requests that wrote a batch (awaited before their answer): at most `batch_records`
   * records, fewer when they reach 4 MiB first (an image request's record is about 0.8 MB of base64).
   */
  readonly batch_write_ms: number;
  readonly batch_records: number;
  /** The same request when it only buffers its record (no batch written), for comparison. */
  readonly buffered_request_ms: number;
  /** p50 of the capturing requests that wrote no batch over capture off: the cost of building a record. */
  readonly buffered_overhead_ratio: number;
}

const mean = (values: readonly number[]) => values.reduce((sum, v) => sum + v, 0) / values.length;

/** Batches of this many records: a written batch lands in every timed block. */
const BATCH_RECORDS = 50;

/**
 * `model` (an image model: binary request) and `small` (JSON) are registered in `store`, which must be writable
 * (the owner's store of the local stack: capture writes under `capture/`). `env` is the function's environment.
 */
export async function measureCapture(options: {
  readonly store: BlobStore;
  readonly env: Readonly<Record<string, string>>;
  readonly model: string;
  readonly small: string;
}): Promise<CaptureResults> {
  return quietly(async () => {
    const on = {
      ...options.env,
      [ENV.dataCapture]: JSON.stringify({ samplingPercent: 100, maxBatchRecords: BATCH_RECORDS }),
    };
    const pair = async (model: string, request: typeof binaryRequest) => {
      const off = deployedHandler(options.store, model, options.env);
      const capturing = deployedHandler(options.store, model, on);
      const target = await off.runtime.service.resolve(model);
      const event = inferEvent(model, request(modelInputs(target.metadata.inputs)));
      await answerOnce(off.handler, event, target.metadata.outputs.length);
      await answerOnce(capturing.handler, event, target.metadata.outputs.length);
      return { off, capturing, event };
    };
    const image = await pair(options.model, binaryRequest);
    let batchTimes: number[] = [];
    const bufferedTimes: number[] = [];
    const imageSamples = await timeAlternating(
      {
        off: () => image.off.handler(image.event),
        on: async () => {
          const before = image.capturing.runtime.capture.pending;
          const started = performance.now();
          await image.capturing.handler(image.event);
          // The buffer emptied: this request wrote the batch.
          const took = performance.now() - started;
          if (image.capturing.runtime.capture.pending < before) batchTimes.push(took);
          else bufferedTimes.push(took);
        },
      },
      { warmup: 3, blocks: 8, perBlock: BATCH_RECORDS / 2 },
    );
    const small = await pair(options.small, jsonRequest);
    const smallSamples = await timeAlternating(
      { off: () => small.off.handler(small.event), on: () => small.capturing.handler(small.event) },
      { warmup: 300, blocks: 40, perBlock: 50 },
    );
    batchTimes = batchTimes.length === 0 ? [NaN] : batchTimes;
    return {
      overhead_ratio: median(imageSamples.on) / median(imageSamples.off),
      mean_overhead_ratio: mean(imageSamples.on) / mean(imageSamples.off),
      overhead_ratio_small_json: median(smallSamples.on) / median(smallSamples.off),
      batch_write_ms: median(batchTimes),
      buffered_request_ms: median(bufferedTimes),
      buffered_overhead_ratio: median(bufferedTimes) / median(imageSamples.off),
      batch_records: BATCH_RECORDS,
    };
  });
}
