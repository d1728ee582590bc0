/**
 * Data capture of a shadow rollout (issue 24: "requests and answers (and shadow comparisons)"), through
 * `startLocal()`: the shared infer function captures 100% (`DATA_CAPTURE`, the deployment-wide default), a shadow
 * candidate answers copies of the clients' requests, and each copy lands in the candidate's capture folder as a
 * SageMaker Data Capture record: the same input, the candidate's own answer, and how it compared with the stable
 * version's answer in `eventMetadata.customAttributes`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FlowStack, type HttpAnswer, linearModel, outputData, startFlowStack } from './fixture.js';

let flow: FlowStack;

beforeAll(async () => {
  flow = await startFlowStack({
    // Batches of 4: written as soon as 4 records wait (the local timer checks every second).
    DATA_CAPTURE: JSON.stringify({ samplingPercent: 100, maxBatchRecords: 4, flushIntervalSeconds: 3600 }),
    ROLLOUT_INTERVAL_SECONDS: '3600',
  });
});
afterAll(async () => {
  await flow?.close();
});

interface CapturedRecord {
  captureData: { endpointInput: { data: string; encoding: string }; endpointOutput: { data: string } };
  eventMetadata: { inferenceId?: string; customAttributes?: Record<string, unknown> };
}

/** The records of every capture file under `prefix`. */
async function records(prefix: string): Promise<CapturedRecord[]> {
  const keys = await flow.store.list(prefix);
  const files = await Promise.all(keys.map(async (key) => (await flow.store.get(key))?.body));
  return files
    .flatMap((body) => new TextDecoder().decode(body).split('\n'))
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as CapturedRecord);
}

describe('a shadow rollout with data capture', () => {
  it("captures each copy under the candidate's version with its answer and the comparison", async () => {
    // Prepare: stable answers sum(x) (linearModel(1)), the candidate 1.5 times that; the shadow bakes for an
    // hour, so every request is copied and none is judged.
    await flow.uploadAndWait('shadowed', 'v1.onnx', linearModel(1));
    await flow.uploadAndWait('shadowed', 'v2.onnx', linearModel(1.5), {
      rollout: { strategy: 'shadow', samplingPercent: 100, bakingSeconds: 3600, maxAbsDiff: 0.01 },
    });

    // Act: requests one after the other, with ids, until 4 copies are captured (one copy runs at a time, after its
    // answer: copies that find the last one still running are skipped, as while the candidate's session loads).
    const answers: HttpAnswer[] = [];
    let copies: CapturedRecord[] = [];
    const deadline = Date.now() + 30_000;
    while (copies.length < 4 && Date.now() < deadline) {
      const i = answers.length;
      const body = { id: `req-${i}`, inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], data: [i, 1, 1, 1] }] };
      answers.push(await flow.request('POST', '/v2/models/shadowed/infer', body));
      await new Promise((resolve) => setTimeout(resolve, 50));
      if (i % 4 === 3) copies = await records('capture/shadowed/2/');
    }
    const stable = await records('capture/shadowed/1/');

    // Assess: the clients only ever saw stable's answers, captured under version 1 without attributes.
    expect(answers.map((a) => [a.status, outputData(a)[0]])).toEqual(answers.map((_, i) => [200, i + 3]));
    expect(stable.length).toBeGreaterThanOrEqual(4);
    for (const record of stable) expect(record.eventMetadata.customAttributes).toBeUndefined();
    // The copies: the same request, the candidate's answer (1.5x), and the comparison with stable's.
    expect(copies.length).toBeGreaterThanOrEqual(4);
    for (const copy of copies) {
      const request = JSON.parse(copy.captureData.endpointInput.data) as { id: string; inputs: [{ data: number[] }] };
      const i = request.inputs[0].data[0] ?? -1;
      expect(copy.eventMetadata.inferenceId).toBe(`req-${i}`);
      const answer = JSON.parse(copy.captureData.endpointOutput.data) as {
        model_version: string;
        outputs: [{ data: number[] }];
      };
      expect(answer.model_version).toBe('2');
      expect(answer.outputs[0].data[0]).toBeCloseTo((i + 3) * 1.5, 4);
      expect(copy.eventMetadata.customAttributes).toEqual({
        shadow_of: '1',
        max_abs_diff: expect.closeTo((i + 3) * 0.5, 4),
        max_rel_diff: expect.closeTo(0.5, 4),
      });
    }
  }, 60_000);
});
