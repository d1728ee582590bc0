/**
 * Where an inference's deadline comes from: a catalog entry's `limits.timeoutMs` (default: its function timeout less
 * 2 s, carried to the function in `MODEL_LIMITS`), else `INFERENCE_TIMEOUT_MS` (the shared function), else 27 s.
 */
import { describe, expect, it } from 'vitest';
import { defaultInferenceTimeoutMs, parseCatalogEntry } from '../../functions/core/catalog.js';
import { readConfig } from '../../functions/wiring/config.js';

describe('a catalog entry', () => {
  it('defaults timeoutMs to its function timeout less a margin', () => {
    expect(parseCatalogEntry('a', {}).limits.timeoutMs).toBe(27_000);
    expect(parseCatalogEntry('a', { timeoutSeconds: 10 }).limits.timeoutMs).toBe(8_000);
    expect(parseCatalogEntry('a', { timeoutSeconds: 1 }).limits.timeoutMs).toBe(500);
    expect(defaultInferenceTimeoutMs(60)).toBe(58_000);
  });

  it('keeps a timeoutMs below its function timeout, and refuses one that the timeout would cut', () => {
    expect(parseCatalogEntry('a', { timeoutSeconds: 10, limits: { timeoutMs: 9_999 } }).limits.timeoutMs).toBe(9_999);
    expect(() => parseCatalogEntry('a', { timeoutSeconds: 10, limits: { timeoutMs: 10_000 } })).toThrow(
      /models\/a\.json is invalid: limits\.timeoutMs \(10000\) must be below the function's timeoutSeconds \(10 s\)/,
    );
  });
});

describe("a function's environment", () => {
  it('takes timeoutMs from MODEL_LIMITS first, then INFERENCE_TIMEOUT_MS, then 27 s', () => {
    expect(readConfig({}).limits.timeoutMs).toBe(27_000);
    expect(readConfig({ INFERENCE_TIMEOUT_MS: '5000' }).limits.timeoutMs).toBe(5_000);
    expect(
      readConfig({ INFERENCE_TIMEOUT_MS: '5000', MODEL_LIMITS: JSON.stringify({ timeoutMs: 700 }) }).limits.timeoutMs,
    ).toBe(700);
    expect(() => readConfig({ INFERENCE_TIMEOUT_MS: 'soon' })).toThrow(
      /INFERENCE_TIMEOUT_MS must be a positive number/,
    );
  });
});
