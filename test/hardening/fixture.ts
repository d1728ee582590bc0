/**
 * The deployed request path in miniature, on loopback: the real `infer`, `control` and `register` handlers over a
 * runtime built from an environment (as each Lambda builds its own from `MODEL_LIMITS`, `MANIFEST_TTL_SECONDS`...),
 * behind the local API Gateway. The store records every key the serving core touches, and the runtime's telemetry
 * counts every session load, so tests can prove that nothing reached outside `models/<name>/` and that no hostile
 * request cost a cached session.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { FsBlobStore } from '../../functions/adapters/fs-blob-store.js';
import type {
  BlobStore,
  DownloadedObject,
  DownloadOptions,
  PutCondition,
  StoredObject,
} from '../../functions/core/blob-store.js';
import { ModelBuilder, attr } from '../../tools/onnx/index.js';
import type { RegistrationOutcome } from '../../functions/core/registration.js';
import { readConfig } from '../../functions/wiring/config.js';
import { createRegisterHandler } from '../../functions/transport/register-handler.js';
import {
  createControlHandler,
  createInferHandler,
  type InferHandler,
} from '../../functions/transport/http-handlers.js';
import { createObservability } from '../../functions/wiring/observability.js';
import { createRuntime, type Runtime } from '../../functions/wiring/runtime.js';
import { startGateway } from '../../functions/local/gateway.js';
import { s3Event } from '../../tools/lambda-events.js';
import { linearRequest } from '../support/requests.js';

/** A `BlobStore` that remembers every key it was asked for, in order. */
export class RecordingStore implements BlobStore {
  public readonly keys: string[] = [];

  public constructor(private readonly inner: BlobStore) {}

  public get(key: string): Promise<StoredObject | undefined> {
    this.keys.push(key);
    return this.inner.get(key);
  }

  public download(key: string, file: string, options: DownloadOptions): Promise<DownloadedObject | undefined> {
    this.keys.push(key);
    return this.inner.download(key, file, options);
  }

  public put(key: string, body: Uint8Array, condition?: PutCondition): Promise<{ etag: string }> {
    this.keys.push(key);
    return this.inner.put(key, body, condition);
  }

  public putFile(key: string, file: string, condition?: PutCondition): Promise<{ etag: string }> {
    this.keys.push(key);
    return this.inner.putFile(key, file, condition);
  }

  public list(prefix: string): Promise<string[]> {
    this.keys.push(prefix);
    return this.inner.list(prefix);
  }

  public delete(key: string): Promise<void> {
    this.keys.push(key);
    return this.inner.delete(key);
  }
}

/** An HTTP answer with its body as text. */
export interface Answer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly text: string;
  readonly bytes: Buffer;
}

/** One request as sent; `path` goes on the wire exactly as given (no dot-segment removal, unlike `fetch`). */
export interface RawRequest {
  readonly method: string;
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Uint8Array | string;
}

/** A running miniature of the deployed path. */
export interface HardenedStack {
  readonly url: string;
  readonly port: number;
  readonly runtime: Runtime;
  readonly store: RecordingStore;
  /** The same `infer` handler the gateway calls, for tests that build API Gateway events themselves. */
  readonly infer: InferHandler;
  /** Every session load so far, in order. */
  readonly loads: { readonly model: string; readonly version: string }[];
  /** Uploads `bytes` as `uploads/<model>/<file>` (a sample first, when given) and registers it. */
  register(model: string, file: string, bytes: Uint8Array, sample?: unknown): Promise<RegistrationOutcome>;
  /** Delivers the S3 ObjectCreated event of `key` to `register`, whether or not such an object exists. */
  notify(key: string): Promise<RegistrationOutcome>;
  /** Sends a request over a fresh connection to the gateway. */
  send(request: RawRequest): Promise<Answer>;
  close(): Promise<void>;
}

/** Sends one request to `port` on 127.0.0.1, on a connection of `agent` (by default a fresh one). */
export function sendRaw(port: number, request: RawRequest, agent: http.Agent | false = false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const body = request.body === undefined ? undefined : Buffer.from(request.body);
    const outgoing = http.request(
      {
        host: '127.0.0.1',
        port,
        method: request.method,
        path: request.path,
        agent,
        headers: { ...(body === undefined ? {} : { 'content-length': String(body.byteLength) }), ...request.headers },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const bytes = Buffer.concat(chunks);
          resolve({ status: response.statusCode ?? 0, headers: response.headers, text: bytes.toString('utf8'), bytes });
        });
        response.on('error', reject);
      },
    );
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

/**
 * Starts the stack over a fresh temporary folder. `env` is the function's environment (e.g. `MODEL_LIMITS`);
 * the gateway keeps API Gateway's own 10 MB body limit, as deployed, so per-model limits are the handler's.
 */
export async function startHardened(env: Readonly<Record<string, string>> = {}): Promise<HardenedStack> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'hardening-'));
  const store = new RecordingStore(new FsBlobStore(dir));
  const loads: { model: string; version: string }[] = [];
  const runtime = createRuntime(readConfig({ MODEL_DIR: dir, ...env }), {
    store,
    telemetry: { modelLoaded: ({ model, version }) => loads.push({ model, version }) },
  });
  const observability = createObservability('hardening', false);
  observability.logger.setLogLevel('SILENT');
  const infer = createInferHandler(runtime, observability);
  const registerHandler = createRegisterHandler(runtime, observability);
  const gateway = await startGateway({ port: 0, infer, control: createControlHandler(runtime, observability) });
  const port = Number(new URL(gateway.url).port);
  const notify = async (key: string): Promise<RegistrationOutcome> => {
    const { outcomes } = await registerHandler(s3Event([key]));
    const [outcome] = outcomes;
    if (outcome === undefined) throw new Error(`no registration outcome for ${key}`);
    return outcome;
  };
  return {
    url: gateway.url,
    port,
    runtime,
    store,
    infer,
    loads,
    register: async (model, file, bytes, sample) => {
      const key = `uploads/${model}/${file}`;
      if (sample !== undefined)
        await runtime.store.put(`${key}.json`, new TextEncoder().encode(JSON.stringify(sample)));
      await runtime.store.put(key, bytes);
      return notify(key);
    },
    notify,
    send: (request) => sendRaw(port, request),
    close: async () => {
      await gateway.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export { buildScaledLinearModel as linearModel } from '../../tools/onnx/index.js';

/** `y = a + b` over FP32 vectors of independent lengths: unequal lengths fail inside onnxruntime (broadcasting). */
export function addModel(): Uint8Array {
  return new ModelBuilder({ graphName: 'add' })
    .input('a', 'FP32', ['N'])
    .input('b', 'FP32', ['M'])
    .node('Add', ['a', 'b'], ['y'])
    .output('y', 'FP32', ['K'])
    .toBytes();
}

/**
 * `y = ConstantOfShape(shape)` filled with `value`: an INT64 `shape` `[2]` in, an FP32 `[rows, columns]` out; a
 * tiny request asks for as large a response as it likes.
 */
export function amplifierModel(value: number): Uint8Array {
  return new ModelBuilder({ graphName: 'amplifier' })
    .input('shape', 'INT64', [2])
    .node('ConstantOfShape', ['shape'], ['y'], {
      value: attr.tensor({ datatype: 'FP32', dims: [1], data: new Float32Array([value]) }),
    })
    .output('y', 'FP32', ['R', 'C'])
    .toBytes();
}

/** `output = Identity(input)` of `datatype`, input `['N']`. */
export { buildIdentityModel as identityModel } from '../../tools/onnx/index.js';

/** A V2 JSON request body for {@link linearModel}. */
export function linearBody(rows: readonly (readonly number[])[], extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ ...extra, ...linearRequest(rows) });
}

export { showsInternals } from '../support/internals.js';
