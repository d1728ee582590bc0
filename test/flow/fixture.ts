/**
 * The whole local product on ephemeral loopback ports, in a fresh temporary folder, for end-to-end tests: uploads
 * go through the real S3 protocol to the embedded server, whose events drive the real `register` handler, and
 * inferences are real HTTP requests to the local gateway. Reusable by any test that needs a running stack.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { S3BlobStore } from '../../functions/adapters/s3-blob-store.js';
import { createS3Client } from '../../functions/adapters/s3-client.js';
import type { Manifest, Rejection } from '../../functions/core/types.js';
import type { RegistrationOutcome } from '../../functions/core/registration.js';
import { startLocal, type LocalStack } from '../../functions/local/local-runtime.js';
import type { AccessDenial } from '../../functions/local/s3-access.js';
import { linearRequest } from '../support/requests.js';

/** An HTTP answer, body parsed as JSON when it is JSON. */
export interface HttpAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: unknown;
}

/** A running stack and helpers to upload, wait and infer. */
export interface FlowStack {
  readonly stack: LocalStack;
  readonly gatewayUrl: string;
  /** An SDK client on the embedded server, with its credentials. */
  readonly client: S3Client;
  /** The bucket through the S3 protocol (what the CLI and the handlers use too). */
  readonly store: S3BlobStore;
  readonly dataDir: string;
  /** Requests the embedded S3 refused to a function under its deployed grants (none, when the grants suffice). */
  readonly denials: readonly AccessDenial[];
  /** Outcomes registered so far for `key`, in order of completion. */
  outcomesFor(key: string): RegistrationOutcome[];
  /** Waits until `key` has more than `seen` outcomes and returns the next one; fails after `timeoutMs`. */
  waitForOutcome(key: string, seen: number, timeoutMs?: number): Promise<RegistrationOutcome>;
  /** Puts `body` under `uploads/<model>/<file>` (a sample first, as `<file>.json`) and waits for its outcome. */
  uploadAndWait(model: string, file: string, body: Uint8Array, sample?: unknown): Promise<RegistrationOutcome>;
  /** Any request to the gateway. */
  request(method: string, path: string, body?: unknown): Promise<HttpAnswer>;
  /** Infers `x` (rows of 4 features) on `model` (at `version`, else latest) with a model from {@link linearModel}. */
  infer(model: string, x: readonly (readonly number[])[], version?: string): Promise<HttpAnswer>;
  manifest(model: string): Promise<Manifest | undefined>;
  rejections(model: string): Promise<Rejection[]>;
  close(): Promise<void>;
}

/** Default bound of {@link FlowStack.waitForOutcome}: registration of a small model takes milliseconds. */
export const OUTCOME_TIMEOUT_MS = 20_000;

export { buildScaledLinearModel as linearModel } from '../../tools/onnx/index.js';

export { linearRequest } from '../support/requests.js';

/** The `y` column of a V2 JSON answer. */
export function outputData(answer: HttpAnswer): number[] {
  const body = answer.body as { outputs?: { data?: number[] }[] };
  return body.outputs?.[0]?.data ?? [];
}

/**
 * Starts the stack. `env` reaches the handlers' configuration; the manifest TTL defaults to 1 ms here so that a
 * test sees a new `latest` on its next request (the TTL itself is the model service's concern). With `dataDir`, the
 * stack starts on that folder's data (a restart) and leaves it in place when it closes; else on a new temporary one,
 * removed on close.
 */
export async function startFlowStack(
  env: Record<string, string> = {},
  options: { readonly dataDir?: string } = {},
): Promise<FlowStack> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'onnx-serverless-flow-')));
  /** Waiters for a registration outcome; each returns true once it is done. */
  const registered = new Set<() => boolean>();
  const denials: AccessDenial[] = [];
  const stack = await startLocal({
    onAccessDenied: (denial) => denials.push(denial),
    port: 0,
    s3Port: 0,
    dataDir,
    silent: true,
    env: { ...process.env, MANIFEST_TTL_SECONDS: '0.001', ...env },
    onRegistered: () => {
      for (const check of [...registered]) check();
    },
  });
  const client = createS3Client({
    endpoint: stack.s3.endpoint,
    region: stack.s3.region,
    credentials: stack.s3.credentials,
  });
  const store = new S3BlobStore(client, stack.s3.bucket);

  const outcomesFor = (key: string): RegistrationOutcome[] =>
    stack.registrations.flatMap((r) => r.outcomes).filter((o) => o.key === key);

  // Woken by each finished registration (no polling); the timer only bounds a wait for one that never comes.
  const waitForOutcome = (key: string, seen: number, timeoutMs = OUTCOME_TIMEOUT_MS): Promise<RegistrationOutcome> =>
    new Promise((resolve, reject) => {
      const check = (): boolean => {
        const outcome = outcomesFor(key)[seen];
        if (outcome === undefined) return false;
        clearTimeout(timer);
        registered.delete(check);
        resolve(outcome);
        return true;
      };
      const timer = setTimeout(() => {
        registered.delete(check);
        reject(new Error(`no registration outcome #${seen + 1} for ${key} within ${timeoutMs} ms`));
      }, timeoutMs);
      if (!check()) registered.add(check);
    });

  const request = async (method: string, path: string, body?: unknown): Promise<HttpAnswer> => {
    const response = await fetch(`${stack.gatewayUrl}${path}`, {
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
    const text = await response.text();
    const isJson = (response.headers.get('content-type') ?? '').startsWith('application/json');
    return { status: response.status, headers: response.headers, body: isJson ? JSON.parse(text) : text };
  };

  return {
    stack,
    gatewayUrl: stack.gatewayUrl,
    client,
    store,
    dataDir,
    denials,
    outcomesFor,
    waitForOutcome,
    uploadAndWait: async (model, file, body, sample) => {
      const key = `uploads/${model}/${file}`;
      const seen = outcomesFor(key).length;
      if (sample !== undefined) await store.put(`${key}.json`, new TextEncoder().encode(JSON.stringify(sample)));
      await store.put(key, body);
      return waitForOutcome(key, seen);
    },
    request,
    infer: (model, x, version) =>
      request(
        'POST',
        `/v2/models/${model}${version === undefined ? '' : `/versions/${version}`}/infer`,
        linearRequest(x),
      ),
    manifest: async (model) => (await stack.runtime.repository.readManifest(model))?.manifest,
    rejections: (model) => stack.runtime.repository.listRejections(model),
    close: async () => {
      client.destroy();
      await stack.close();
      if (options.dataDir === undefined) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
