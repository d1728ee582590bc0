/**
 * The conformance run: every case of the shared corpus goes through the product as a user's model would. One
 * local stack (embedded S3, the `register` handler on its object-created events, the API gateway) serves them all:
 * the runner uploads each model (and its sample request) with the S3 client, waits for the registration's outcome,
 * sends the case's inputs over HTTP, and compares the answers with the case's oracle.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import * as ort from 'onnxruntime-node';
import { createS3Client } from '../functions/adapters/s3-client.js';
import { encodeInferenceRequest } from '../functions/core/codec/index.js';
import { repositoryKeys } from '../functions/core/model-repository.js';
import type { RegistrationOutcome } from '../functions/core/registration.js';
import type { ModelMetadata } from '../functions/core/types.js';
import { startLocal, type LocalStack } from '../functions/local/local-runtime.js';
import { HttpStatusError, InferenceClient } from './client.js';
import { discoverCases, type Category, type CorpusCase } from './corpus.js';
import { runDirectly, withZipMapInputsAsOutputs } from './direct.js';
import { allCloseProblems } from './compare.js';
import { planCase, type CasePlan, type ZipMapCheck } from './plans.js';
import { observe, type Observed } from './tensors.js';

/** What became of one case. */
export type CaseResultKind = 'served_and_matching' | 'refused_at_registration' | 'mismatch' | 'other_failure';

/** One case's line of the report. */
export interface CaseResult {
  readonly category: Category;
  readonly name: string;
  readonly result: CaseResultKind;
  readonly detail: string;
}

/** `conformance/results.json`. */
export interface ConformanceReport {
  readonly total: number;
  readonly served_and_matching: number;
  readonly refused_at_registration: number;
  readonly mismatch: number;
  readonly other_failure: number;
  readonly cases: readonly CaseResult[];
}

/** Settings of {@link runConformance}. */
export interface ConformanceOptions {
  /** The corpus folder (holding `sklearn/`, `onnx-backend/`, ...). */
  readonly corpusDir: string;
  /** Only these folders. @default all */
  readonly categories?: readonly Category[];
  /** Only the cases this accepts. @default every case */
  readonly filter?: (testCase: CorpusCase) => boolean;
  /** Cases in flight at once (upload, registration, requests). @default 3 */
  readonly concurrency?: number;
  /** Called as each case finishes. */
  readonly onResult?: (result: CaseResult) => void;
  /** Longest wait for one registration, in ms. @default 120_000 */
  readonly registrationTimeoutMs?: number;
}

const MODEL_FILE = 'model.onnx';
const SAMPLE_FILE = `${MODEL_FILE}.json`;

/** Runs the corpus through a fresh local stack and reports every case, in corpus order. */
export async function runConformance(options: ConformanceOptions): Promise<ConformanceReport> {
  // onnxruntime logs every model it refuses or fails to run; each such failure ends up in its case's detail.
  ort.env.logLevel = 'fatal';
  const cases = discoverCases(options.corpusDir, options.categories).filter(options.filter ?? (() => true));
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'conformance-'));
  const stack = await startLocal({ port: 0, s3Port: 0, dataDir, silent: true });
  const s3 = createS3Client({
    endpoint: stack.s3.endpoint,
    region: stack.s3.region,
    forcePathStyle: true,
    credentials: stack.s3.credentials,
  });
  const context: RunContext = {
    stack,
    s3,
    bucket: stack.s3.bucket,
    client: new InferenceClient(stack.gatewayUrl),
    registrationTimeoutMs: options.registrationTimeoutMs ?? 120_000,
  };
  try {
    const results = await inPool(cases, options.concurrency ?? 3, async (testCase) => {
      const result = await runCase(testCase, context).catch(
        (error: unknown): CaseResult => ({
          ...caseId(testCase),
          result: 'other_failure',
          detail: `runner error: ${messageOf(error)}`,
        }),
      );
      options.onResult?.(result);
      return result;
    });
    return summarize(await confirmRefusalsListed(cases, results, context));
  } finally {
    s3.destroy();
    await stack.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** Counts the results. */
export function summarize(cases: readonly CaseResult[]): ConformanceReport {
  const count = (kind: CaseResultKind) => cases.filter((c) => c.result === kind).length;
  return {
    total: cases.length,
    served_and_matching: count('served_and_matching'),
    refused_at_registration: count('refused_at_registration'),
    mismatch: count('mismatch'),
    other_failure: count('other_failure'),
    cases,
  };
}

interface RunContext {
  readonly stack: LocalStack;
  readonly s3: S3Client;
  readonly bucket: string;
  readonly client: InferenceClient;
  readonly registrationTimeoutMs: number;
}

function caseId(testCase: CorpusCase): Pick<CaseResult, 'category' | 'name'> {
  return { category: testCase.category, name: testCase.name };
}

async function runCase(testCase: CorpusCase, context: RunContext): Promise<CaseResult> {
  const id = caseId(testCase);
  let plan: CasePlan;
  try {
    plan = await planCase(testCase);
  } catch (error) {
    return { ...id, result: 'other_failure', detail: `cannot read the case: ${messageOf(error)}` };
  }
  const model = testCase.modelName;
  const key = `uploads/${model}/${MODEL_FILE}`;
  if (plan.sample !== undefined) {
    // The sample goes first: registration reads it when the model's upload event arrives.
    await put(context, `uploads/${model}/${SAMPLE_FILE}`, encodeInferenceRequest(plan.sample).body);
  }
  await put(context, key, plan.model);
  const outcome = await outcomeOf(key, context);
  if (outcome === undefined) {
    return {
      ...id,
      result: 'other_failure',
      detail: `no registration outcome for ${key} within ${context.registrationTimeoutMs} ms`,
    };
  }
  switch (outcome.kind) {
    case 'registered':
      return { ...id, ...(await serve(model, outcome.version, plan, context)) };
    case 'rejected':
      return { ...id, ...(await refused(outcome.reason, plan)) };
    default:
      return { ...id, result: 'other_failure', detail: `registration outcome "${outcome.kind}" for a new upload` };
  }
}

/** Sends the plan's requests and compares the answers with the oracle. */
async function serve(
  model: string,
  version: string,
  plan: CasePlan,
  context: RunContext,
): Promise<Omit<CaseResult, 'category' | 'name'>> {
  const answers: Observed[][] = [];
  try {
    for (const inputs of plan.requests) {
      const response = await context.client.infer(model, inputs, { binary: plan.binary, binaryOutput: plan.binary });
      const byName = new Map(response.outputs.map((o) => [o.name, o]));
      answers.push(
        plan.outputNames.map((name) => {
          const output = byName.get(name);
          if (output === undefined) throw new Error(`the response has no output "${name}"`);
          return observe(output);
        }),
      );
    }
  } catch (error) {
    if (error instanceof HttpStatusError && error.status >= 400 && error.status < 500) {
      return {
        result: 'mismatch',
        detail: `served, but the case's request ${answers.length + 1} was refused: ${error.message}`,
      };
    }
    return { result: 'other_failure', detail: `request ${answers.length + 1} failed: ${messageOf(error)}` };
  }
  const problems = plan.check(answers);
  if (plan.bytesInBothForms) problems.push(...(await otherFormProblems(model, plan, answers[0] ?? [], context)));
  if (plan.zipMap !== undefined) problems.push(...(await zipMapProblems(model, plan, plan.zipMap, context)));
  const rewrites = await rewritesOf(model, version, context);
  const how = [
    plan.how,
    rewrites.length > 0 ? `rewrites: ${rewrites.join(', ')}` : '',
    plan.zipMap ? 'zipmap rows checked' : '',
    plan.bytesInBothForms ? 'BYTES in JSON and binary' : '',
  ]
    .filter((s) => s !== '')
    .join('; ');
  if (problems.length === 0) return { result: 'served_and_matching', detail: how };
  return { result: 'mismatch', detail: `${await directVerdict(plan, answers)}: ${problems.join('; ')} (${how})` };
}

/** What a mismatching case's detail starts with when onnxruntime itself computes what the server returned. */
export const ONNXRUNTIME_AGREES =
  'the server returns what onnxruntime-node computes directly on the uploaded model, which differs from the oracle';

/**
 * Tells a mismatch of the model file from one of the server: runs onnxruntime-node directly (ZipMap outputs read
 * as their input tensors) on every request and compares its outputs with the served ones.
 */
async function directVerdict(plan: CasePlan, answers: readonly (readonly Observed[])[]): Promise<string> {
  const model = withZipMapInputsAsOutputs(plan.model);
  for (const [index, inputs] of plan.requests.entries()) {
    const direct = await runDirectly(model, inputs);
    if (!direct.ok) return `onnxruntime-node called directly fails to ${direct.stage} the model (${direct.error})`;
    const served = answers[index] ?? [];
    const differences = allCloseProblems(
      direct.outputs.map(observe),
      served,
      { rtol: 1e-5, atol: 1e-6 },
      plan.outputNames,
    );
    if (differences.length > 0)
      return `the server's answers differ from onnxruntime-node's own (${differences.join('; ')})`;
  }
  return ONNXRUNTIME_AGREES;
}

/** The first request again in the other wire form (JSON or binary): the answer must be the same, element for element. */
async function otherFormProblems(
  model: string,
  plan: CasePlan,
  first: readonly Observed[],
  context: RunContext,
): Promise<string[]> {
  const binary = !plan.binary;
  const response = await context.client.infer(model, plan.requests[0] ?? [], { binary, binaryOutput: binary });
  const again = plan.outputNames
    .map((name) => response.outputs.find((o) => o.name === name))
    .map((o) => (o === undefined ? undefined : observe(o)));
  const form = binary ? 'binary' : 'JSON';
  return again.flatMap((output, i) => {
    const expected = first[i];
    if (output === undefined || expected === undefined) return [`${form} form: output ${i} missing`];
    const same =
      output.datatype === expected.datatype &&
      output.values.length === expected.values.length &&
      output.values.every((v, j) => Object.is(v, expected.values[j]));
    return same ? [] : [`${form} form: output ${i} differs from the other form's answer`];
  });
}

/** The `zipmap: true` parameter must add `{label: probability}` rows equal to scikit-learn's probabilities. */
async function zipMapProblems(
  model: string,
  plan: CasePlan,
  check: ZipMapCheck,
  context: RunContext,
): Promise<string[]> {
  const response = await context.client.infer(model, plan.requests[0] ?? [], { parameters: { zipmap: true } });
  const rows = response.outputParameters?.[check.output]?.zipmap;
  if (!Array.isArray(rows)) return [`zipmap: the response has no parameters.zipmap rows for "${check.output}"`];
  if (rows.length !== check.expectedRows.length)
    return [`zipmap: ${rows.length} rows, expected ${check.expectedRows.length}`];
  const problems: string[] = [];
  check.expectedRows.forEach((expected, r) => {
    const row = rows[r] as Record<string, unknown>;
    const keys = Object.keys(row);
    if (keys.length !== check.labels.length || !check.labels.every((label) => keys.includes(String(label)))) {
      problems.push(
        `zipmap row ${r}: labels ${JSON.stringify(keys)}, expected ${JSON.stringify(check.labels.map(String))}`,
      );
      return;
    }
    check.labels.forEach((label, column) => {
      const got = row[String(label)];
      const want = expected[column] ?? NaN;
      if (typeof got !== 'number' || Math.abs(got - want) > check.tolerance) {
        problems.push(`zipmap row ${r} label ${String(label)}: ${String(got)}, expected ${want}`);
      }
    });
  });
  return problems;
}

/**
 * A refusal is right only for a model that onnxruntime itself cannot load or run on the case's inputs. A model
 * that onnxruntime-node runs directly, or that fails only for its non-tensor (ZipMap) output, must be served.
 */
async function refused(reason: string, plan: CasePlan): Promise<Omit<CaseResult, 'category' | 'name'>> {
  const direct = await runDirectly(plan.model, plan.requests[0] ?? []);
  if (direct.ok) {
    return {
      result: 'other_failure',
      detail: `refused at registration (${reason}), yet onnxruntime-node runs it directly`,
    };
  }
  if (direct.error.includes('Non tensor type')) {
    return {
      result: 'other_failure',
      detail: `refused at registration (${reason}); a non-tensor output must be rewritten, not refused`,
    };
  }
  return { result: 'refused_at_registration', detail: reason };
}

/**
 * Every refusal must be recorded under `rejected/<model>/` and listed by the repository index, while every served
 * model stays READY: the refusals disturbed nothing else.
 */
async function confirmRefusalsListed(
  cases: readonly CorpusCase[],
  results: readonly CaseResult[],
  context: RunContext,
): Promise<CaseResult[]> {
  const index = await context.client.repositoryIndex();
  return Promise.all(
    results.map(async (result, i) => {
      const model = cases[i]?.modelName ?? '';
      const rows = index.filter((row) => row.name === model);
      if (result.result === 'refused_at_registration') {
        const listed = await context.s3.send(
          new ListObjectsV2Command({ Bucket: context.bucket, Prefix: repositoryKeys.rejectionsPrefix(model) }),
        );
        const inIndex = rows.some(
          (row) => row.version === '' && row.state === 'UNAVAILABLE' && row.reason.includes(result.detail),
        );
        if ((listed.KeyCount ?? 0) === 0 || !inIndex) {
          return {
            ...result,
            result: 'other_failure',
            detail: `refused (${result.detail}), but the refusal is missing under rejected/ or from the repository index`,
          };
        }
      } else if (
        result.result === 'served_and_matching' &&
        !rows.some((row) => row.version === '1' && row.state === 'READY')
      ) {
        return {
          ...result,
          result: 'other_failure',
          detail: 'served, but the repository index does not list version 1 as READY afterwards',
        };
      }
      return result;
    }),
  );
}

async function put(context: RunContext, key: string, body: Uint8Array): Promise<void> {
  await context.s3.send(new PutObjectCommand({ Bucket: context.bucket, Key: key, Body: body }));
}

/** Waits for the registration of `key` (the S3 server delivers its event concurrently, as Lambda would). */
async function outcomeOf(key: string, context: RunContext): Promise<RegistrationOutcome | undefined> {
  const deadline = Date.now() + context.registrationTimeoutMs;
  for (;;) {
    for (const registration of context.stack.registrations) {
      const outcome = registration.outcomes.find((o) => o.key === key);
      if (outcome !== undefined) return outcome;
    }
    if (Date.now() > deadline) return undefined;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The kinds of rewrites registration applied, from the version's `metadata.json`. */
async function rewritesOf(model: string, version: string, context: RunContext): Promise<string[]> {
  const object = await context.s3.send(
    new GetObjectCommand({ Bucket: context.bucket, Key: repositoryKeys.metadata(model, version) }),
  );
  const metadata = JSON.parse((await object.Body?.transformToString()) ?? '{}') as Partial<ModelMetadata>;
  return [...new Set((metadata.rewrites ?? []).map((r) => r.kind))];
}

/** Maps `items` with at most `limit` calls in flight; results keep the items' order. */
async function inPool<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next;
      next += 1;
      results[index] = await fn(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

function messageOf(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).replace(/\s+/g, ' ').trim();
}
