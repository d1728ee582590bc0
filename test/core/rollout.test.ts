/**
 * The rollout state machine and its guards, pure: the decisions the controller writes, for each strategy, at the
 * boundaries the policy sets (steps, waits, minimum requests, pausing), and the output comparison of shadows.
 */
import { describe, expect, it } from 'vitest';
import {
  compareOutputs,
  decideRollout,
  parseRolloutPolicy,
  routeUnpinned,
  startRollout,
  type RolloutFigures,
  type RolloutPolicy,
} from '../../functions/core/rollout.js';

const T0 = Date.parse('2026-12-06T04:00:00Z');
const at = (seconds: number) => T0 + seconds * 1000;

function policy(json: Record<string, unknown>): RolloutPolicy {
  const parsed = parseRolloutPolicy(json);
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.value;
}

const quiet: RolloutFigures = { stable: { requests: 0, errors: 0 }, candidate: { requests: 0, errors: 0 } };

describe('decideRollout', () => {
  it('steps a linear rollout by stepPercent after each interval, then promotes at 100 %', () => {
    // Prepare
    let rollout = startRollout(
      policy({ strategy: 'linear', stepPercent: 30, intervalSeconds: 60 }),
      '1',
      '2',
      new Date(T0).toISOString(),
    );

    // Act: every 60 s
    const seen: [string | undefined, number][] = [];
    for (let minute = 1; minute <= 4; minute += 1) {
      const early = decideRollout(rollout, quiet, at(minute * 60 - 1));
      expect(early.next).toBeUndefined();
      const decision = decideRollout(rollout, quiet, at(minute * 60));
      seen.push([decision.outcome, decision.next?.weight ?? rollout.weight]);
      rollout = decision.next ?? rollout;
    }

    // Assess: 30 → 60 → 90 → promoted (120 would pass 100).
    expect(seen).toEqual([
      ['advanced', 60],
      ['advanced', 90],
      ['promoted', 100],
      [undefined, 100],
    ]);
    expect(rollout.state).toBe('promoted');
  });

  it('rolls back over maxErrorRate even while paused, and never advances a paused rollout', () => {
    // Prepare
    const canary = startRollout(
      policy({ strategy: 'canary', percent: 10, bakingSeconds: 0 }),
      '1',
      '2',
      new Date(T0).toISOString(),
    );
    const paused = { ...canary, paused: true };
    const failing: RolloutFigures = { ...quiet, candidate: { requests: 20, errors: 2 } };

    // Act
    const held = decideRollout(paused, quiet, at(3600));
    const tripped = decideRollout(paused, failing, at(1));
    const atLimit = decideRollout(canary, { ...quiet, candidate: { requests: 20, errors: 1 } }, at(1));

    // Assess: 2 of 20 is 10 % > 5 %; 1 of 20 is 5 %, not over the limit, so baking 0 s promotes.
    expect(held).toEqual({});
    expect(tripped.outcome).toBe('rolled-back');
    expect(tripped.next?.reason).toBe('rolled back: candidate 2 failed 2 of 20 inferences (10%), over maxErrorRate 5%');
    expect(atLimit.outcome).toBe('promoted');
  });

  it('judges the p99 ratio only with minRequests candidate requests', () => {
    // Prepare
    const canary = startRollout(
      policy({ strategy: 'canary', bakingSeconds: 3600, maxLatencyP99Ratio: 1.5, minRequests: 50 }),
      '1',
      '2',
      new Date(T0).toISOString(),
    );
    const slow = (requests: number): RolloutFigures => ({
      stable: { requests: 500, errors: 0, p99Ms: 10 },
      candidate: { requests, errors: 0, p99Ms: 20 },
    });

    // Act & Assess
    expect(decideRollout(canary, slow(49), at(60))).toEqual({});
    expect(decideRollout(canary, slow(50), at(60)).next?.reason).toBe(
      "rolled back: candidate 2 p99 latency 20 ms is 2x stable 1's 10 ms, over maxLatencyP99Ratio 1.5",
    );
  });

  it('promotes a shadow only once enough copies were compared, and rolls it back on label disagreement', () => {
    // Prepare
    const shadow = startRollout(
      policy({ strategy: 'shadow', bakingSeconds: 0, minRequests: 10, minLabelAgreement: 0.9 }),
      '1',
      '2',
      new Date(T0).toISOString(),
    );
    const copies = (compared: number, agreed: number): RolloutFigures => ({
      ...quiet,
      shadow: { compared, failed: 0, maxAbsDiff: 0, maxRelDiff: 0, labelsCompared: compared, labelsAgreed: agreed },
    });

    // Act & Assess
    expect(decideRollout(shadow, copies(9, 9), at(60))).toEqual({});
    expect(decideRollout(shadow, copies(10, 10), at(60)).outcome).toBe('promoted');
    expect(decideRollout(shadow, copies(10, 8), at(60)).next?.reason).toBe(
      "rolled back: candidate 2's labels agree with stable 1's on 80% of 10 requests, under minLabelAgreement 90%",
    );
  });
});

describe('routeUnpinned', () => {
  it('sends draws under the weight to the candidate, and nothing once the rollout ended or latest moved', () => {
    // Prepare
    const canary = startRollout(policy({ strategy: 'canary', percent: 25 }), '1', '2', new Date(T0).toISOString());

    // Act & Assess
    expect(routeUnpinned('1', canary, 0.2499)).toEqual({ version: '2', role: 'candidate' });
    expect(routeUnpinned('1', canary, 0.25)).toEqual({ version: '1', role: 'stable' });
    expect(routeUnpinned('1', { ...canary, state: 'rolled-back' }, 0)).toEqual({ version: '1' });
    expect(routeUnpinned('3', canary, 0)).toEqual({ version: '3' });
  });
});

describe('compareOutputs', () => {
  it('measures numeric differences, label agreement, and a changed contract as infinite', () => {
    // Prepare
    const stable = [
      { name: 'y', datatype: 'FP32', shape: [2], data: new Float32Array([1, -4]) },
      { name: 'label', datatype: 'INT64', shape: [2], data: new BigInt64Array([3n, 5n]) },
    ];

    // Act
    const close = compareOutputs(stable, [
      { name: 'y', datatype: 'FP32', shape: [2], data: new Float32Array([1.5, -4]) },
      { name: 'label', datatype: 'INT64', shape: [2], data: new BigInt64Array([3n, 5n]) },
    ]);
    const relabelled = compareOutputs(stable, [
      { name: 'y', datatype: 'FP32', shape: [2], data: new Float32Array([1, -4]) },
      { name: 'label', datatype: 'INT64', shape: [2], data: new BigInt64Array([3n, 6n]) },
    ]);
    const reshaped = compareOutputs(stable, [
      { name: 'y', datatype: 'FP32', shape: [1, 2], data: new Float32Array([1, -4]) },
    ]);

    // Assess
    expect(close).toEqual({ absDiff: 0.5, relDiff: 0.5, labelsAgree: true });
    expect(relabelled).toEqual({ absDiff: 0, relDiff: 0, labelsAgree: false });
    expect(reshaped).toEqual({ absDiff: Infinity, relDiff: Infinity, labelsAgree: false });
  });
});
