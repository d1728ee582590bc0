/**
 * The whole product on a laptop: the embedded S3-compatible server (whose object-created events drive the same
 * `register` handler as on AWS), the same `infer` and `control` handlers behind a local API Gateway, and the
 * example models seeded through `uploads/` exactly as a user would upload them.
 *
 * Local equals deployed, permissions included: each function talks to the embedded S3 server with its own key
 * pair, and the server evaluates every request against the policy that function's role is deployed with
 * (`infra/function-grants.ts`): one infer function (and role) per model, `control`, `register`. A missing grant
 * fails here as it would on AWS, with a 403 AccessDenied logged by the server (role, action, resource).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { S3Event } from 'aws-lambda';
import { loadCatalog, resolveSeedPath } from '../adapters/catalog-files.js';
import { createS3Client } from '../adapters/s3-client.js';
import { S3BlobStore } from '../adapters/s3-blob-store.js';
import { S3Reader } from '../adapters/s3-reader.js';
import { ENV } from '../core/contract.js';
import type { BufferedCaptureSink } from '../adapters/capture-sink.js';
import { resolveCapturePolicy } from '../core/capture.js';
import {
  catalogPreprocessJson,
  isValidModelName,
  SHARED_FUNCTION_DEFAULTS,
  sessionBudgetMbFor,
} from '../core/catalog.js';
import { isRegistrationUpload, UPLOADS_PREFIX } from '../core/model-repository.js';
import { catalogRolloutJson } from '../core/rollout.js';
import { FigureLog, type RolloutNotice } from '../core/rollout-controller.js';
import { createRolloutHandler } from '../transport/rollout-handler.js';
import type { ServingTelemetry } from '../core/model-service.js';
import {
  BATCH_FUNCTION_ACCESS,
  BATCH_STATE_MACHINE_ACCESS,
  bucketArn,
  bucketStatements,
  CONTROL_ACCESS,
  inferAccess,
  REGISTER_ACCESS,
  ROLLOUT_ACCESS,
  SHARED_INFER_ACCESS,
} from '../../infra/function-grants.js';
import type { BucketAccess } from '../../infra/function-grants.js';
import type { AccessDenial, RolePolicy } from './s3-access.js';
import { readConfig } from '../wiring/config.js';
import { SAMPLE_SUFFIX, reconcileUploads } from '../core/registration.js';
import { createRegisterHandler, registrationOptions, type RegisterResult } from '../transport/register-handler.js';
import {
  createControlHandler,
  createInferHandler,
  createStreamingInferHandler,
  type InferHandler,
  type StreamingInferHandler,
} from '../transport/http-handlers.js';
import type { ApiGatewayEvent } from '../transport/http.js';
import type { CatalogEntry, Limits } from '../core/catalog.js';
import type { WarmerEvent } from '../core/warmer.js';
import { httpResponseStreamFrom, isStreamingHandler, streamifyResponse } from './lambda-response-stream.js';
import { createObservability } from '../wiring/observability.js';
import { createRuntime, servingSessionFactory, type Runtime } from '../wiring/runtime.js';
import { S3AsyncStore } from '../adapters/s3-async-store.js';
import type { AsyncJobsOptions } from '../transport/api.js';
import { localAsyncInvoker, type AsyncInvocationRecord, type LocalAsyncInvoker } from './async-invocation.js';
import { frontStreams } from '../core/fronts.js';
import { createLocalFront, type LocalFront, type LocalFrontOptions } from './front.js';
import { createBatchHandler } from '../transport/batch-handler.js';
import { createLocalBatchEngine, type LocalBatchEngine } from './batch-engine.js';
import { startGateway } from './gateway.js';
import { startEmbeddedS3, type EmbeddedS3 } from './s3-server.js';

/** How often the local stack writes capture batches that are due (`flushIntervalSeconds` old, or full). */
const CAPTURE_TIMER_MS = 1000;

/** Settings of {@link startLocal}. */
export interface LocalOptions {
  /** Gateway port; 0 for an ephemeral one. @default 8080 */
  readonly port?: number;
  /** Embedded S3 port; 0 for an ephemeral one. @default 9000 */
  readonly s3Port?: number;
  /** Where the embedded S3 server keeps its data. @default '.data' */
  readonly dataDir?: string;
  /** Folder of the catalog whose seed models are uploaded at start; `undefined` seeds nothing. */
  readonly catalogDir?: string;
  /** Environment for the handlers' configuration (limits, TTL...). @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** Quiet logs (tests). */
  readonly silent?: boolean;
  /**
   * Receives every request the embedded S3 server refused under a function's policy.
   * @default a line on stderr: `embedded S3: AccessDenied: role <role> may not <action> on <resource>...`
   */
  readonly onAccessDenied?: (denial: AccessDenial) => void;
  /**
   * Replaces a function's grants (tests narrow one on purpose to see the denial it causes). Keys: `register`,
   * `control`, `infer-<model>`.
   * @default the deployed grants
   */
  readonly accessOverrides?: Readonly<Record<string, BucketAccess>>;
  /**
   * The clock of serving (manifest TTL) and of the rollout controller (baking times, steps); tests pass time with it
   * instead of sleeping. @default Date.now
   */
  readonly now?: () => number;
  /**
   * The front the gateway emulates: its event format, limits and authentication (docs/fronts.md). `npm start`
   * reads it from `FRONT`, `FRONT_AUTH` and friends.
   * @default the REST API without authentication
   */
  readonly front?: LocalFrontOptions;
  /** Called as each registration finishes, after it is added to `registrations` (tests wait on it, not on timers). */
  readonly onRegistered?: (result: RegisterResult) => void;
  /**
   * The on-success destination of async jobs (deployed: EventBridge's default bus), with the record Lambda sends.
   * @default a log line
   */
  readonly onAsyncSuccess?: (record: AsyncInvocationRecord) => void;
}

/** A running local stack. */
export interface LocalStack {
  readonly gatewayUrl: string;
  /** The emulated front: its key, SigV4 service or JWT issuer, for clients to authenticate with. */
  readonly front: LocalFront;
  readonly s3: EmbeddedS3;
  /**
   * A runtime with the owner's credentials (full access, as the user's own): for seeding, tests and the start-up
   * listing. The functions do not use it; each has its own runtime and role.
   */
  readonly runtime: Runtime;
  /** Names of the seeded catalog models. */
  readonly seeded: readonly string[];
  /** Resolves when every registration started so far has finished (tests, seeding). */
  readonly settled: () => Promise<void>;
  /** Outcomes of every registration so far, in order of completion. */
  readonly registrations: readonly RegisterResult[];
  /** Resolves when every async invocation started so far, destinations included, has finished. */
  readonly asyncSettled: () => Promise<void>;
  /** Catalog models whose own infer function has started (first called), as deployed; other models have none. */
  readonly startedFunctions: () => readonly string[];
  /** The local rollout controller (docs/rollouts.md): its figures, its runs, and what it notified. */
  readonly rollouts: LocalRollouts;
  /** The local batch engine (what the deployed state machine does): jobs started by the batch routes and the CLI. */
  readonly batch: LocalBatchEngine;
  close(): Promise<void>;
}

/**
 * `npm start`'s rollout controller: a timer every `ROLLOUT_INTERVAL_SECONDS` that judges running rollouts on the
 * figures the local infer functions keep, as the deployed scheduled function judges them on CloudWatch's.
 */
export interface LocalRollouts {
  /** Per-version figures of every inference served by this stack (and shadow comparisons). */
  readonly figures: FigureLog;
  /**
   * The local notification sink, where the deployed controller publishes to the alarm topic: every promotion and
   * rollback (and step), with the controller run that decided it (1 for the first), also logged.
   */
  readonly notices: readonly (RolloutNotice & { readonly run: number })[];
  /** Controller runs started so far. */
  readonly runs: () => number;
}

/** The infer functions of {@link perModelInfer}, as API Gateway routes to them. */
interface InferRoutes<H> {
  /** Models with a catalog entry: each has its own function. */
  readonly catalog: ReadonlySet<string>;
  /** Creates a catalog model's function (on first use). */
  readonly own: (model: string) => H;
  /** The shared function: every other model. */
  readonly shared: H;
  /** Paths with no valid model name, which API Gateway would route to no model's function. */
  readonly unrouted: H;
}

/**
 * Routes `/v2/models/<name>...` as API Gateway does: a catalog model to its own infer function (created on first
 * use, listed in `started`), any other model to the shared one, with nothing kept per name (a client can send any
 * number of names). A path with no valid model name goes to `unrouted`, whose role may read nothing: the routes
 * answer it without storage. Buffered and streaming handlers alike: the event is the first argument of both, and
 * the router is marked streaming when they are.
 */
function perModelInfer<H extends (event: ApiGatewayEvent | WarmerEvent, ...rest: never[]) => Promise<unknown>>(
  routes: InferRoutes<H>,
  started: Map<string, H>,
): H {
  const route = (event: ApiGatewayEvent | WarmerEvent): H => {
    const path = 'rawPath' in event ? event.rawPath : 'path' in event ? event.path : undefined;
    const segment = /^\/v2\/models\/([^/]+)/.exec(path ?? '')?.[1];
    const model = segment === undefined ? undefined : safeDecode(segment);
    if (model === undefined || !isValidModelName(model)) return routes.unrouted;
    if (!routes.catalog.has(model)) return routes.shared;
    let handler = started.get(model);
    if (handler === undefined) {
      handler = routes.own(model);
      started.set(model, handler);
    }
    return handler;
  };
  const router = ((event: ApiGatewayEvent | WarmerEvent, ...rest: never[]) => route(event)(event, ...rest)) as H;
  return isStreamingHandler(routes.shared) ? streamifyResponse(router) : router;
}

function safeDecode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

/**
 * One line for a port that is taken, naming the variable that moves it (`PORT` or `S3_PORT`), for `npm start` to
 * print instead of a stack trace; `undefined` for any other failure.
 */
export function busyPortMessage(error: unknown, ports: { port: number; s3Port: number }): string | undefined {
  const failure = error as { code?: string; port?: number } | undefined;
  if (failure?.code !== 'EADDRINUSE') return undefined;
  const [name, value] = failure.port === ports.s3Port ? [ENV.s3Port, ports.s3Port] : [ENV.port, ports.port];
  return `npm start: port ${value} is already in use (${name}); stop what listens there, or run ${name}=${value + 1} npm start`;
}

/** Starts the local stack. */
export async function startLocal(options: LocalOptions = {}): Promise<LocalStack> {
  const pending = new Set<Promise<unknown>>();
  const registrations: RegisterResult[] = [];
  let register: ((event: S3Event) => Promise<RegisterResult>) | undefined;

  const bucket = 'models';
  const policy = (role: string, access: BucketAccess): RolePolicy => ({
    role,
    statements: bucketStatements(options.accessOverrides?.[role] ?? access, bucketArn(bucket)),
  });
  // A taken port rejects with the listen error (EADDRINUSE, with the port), which busyPortMessage explains.
  const s3 = await startEmbeddedS3({
    port: options.s3Port ?? 9000,
    dataDir: options.dataDir ?? '.data',
    bucket,
    roles: [
      policy('register', REGISTER_ACCESS),
      policy('rollout', ROLLOUT_ACCESS),
      policy('control', CONTROL_ACCESS),
      policy('infer-shared', SHARED_INFER_ACCESS),
      policy('batch', BATCH_FUNCTION_ACCESS),
      policy('batch-state-machine', BATCH_STATE_MACHINE_ACCESS),
      { role: 'infer-unrouted', statements: [] },
    ],
    ...(options.onAccessDenied === undefined ? {} : { onAccessDenied: options.onAccessDenied }),
    // The request log of the S3 server is noise next to the handlers' own logs.
    silent: true,
    // The same filter as the bucket notifications that infra creates (one per suffix of UPLOAD_SUFFIXES).
    eventFilter: { prefix: UPLOADS_PREFIX },
    onObjectCreated: (event) => {
      if (register === undefined) return;
      if (
        !event.Records.some((record) =>
          isRegistrationUpload(decodeURIComponent(record.s3.object.key.replace(/\+/g, ' '))),
        )
      )
        return;
      const done = register(event)
        .then((result) => {
          registrations.push(result);
          options.onRegistered?.(result);
        })
        .catch(() => undefined)
        .finally(() => pending.delete(done));
      pending.add(done);
      return done;
    },
  });

  // A refused catalog, configuration or front must not leave the S3 server holding its port.
  let catalog: CatalogEntry[];
  let config: ReturnType<typeof readConfig>;
  let streams: boolean;
  try {
    catalog = options.catalogDir === undefined ? [] : loadCatalog(options.catalogDir);
    // One process serves gateway, S3 and register: serving's onnxruntime works in supervised child processes unless
    // told otherwise.
    // As deployed, registration applies the catalog's image preprocessing (only register reads it).
    config = readConfig({
      [ENV.onnxruntimeThread]: 'process',
      ...(options.env ?? process.env),
      [ENV.catalogPreprocess]: catalogPreprocessJson(catalog) ?? '',
      [ENV.catalogRollout]: catalogRolloutJson(catalog) ?? '',
      [ENV.modelBucket]: s3.bucket,
      [ENV.s3Endpoint]: s3.endpoint,
      [ENV.modelDir]: '',
    });
    // As deployed: whether the front streams the infer functions' answers, decided as the CDK app decides it (a
    // function URL streams unless RESPONSE_STREAMING=false; REST only with RESPONSE_STREAMING=true; never HTTP).
    streams = frontStreams(options.front?.api ?? 'rest', config.responseStreaming);
  } catch (error) {
    await s3.close();
    throw error;
  }
  const observability = createObservability('local', false);
  if (options.silent === true) observability.logger.setLogLevel('SILENT');
  // What the deployed functions send CloudWatch as EMF, kept here for the local rollout controller.
  const figures = new FigureLog(options.now);
  const telemetry: ServingTelemetry = {
    ...observability.telemetry,
    served: (event) => {
      observability.telemetry.served?.(event);
      figures.recordServed(event);
    },
    shadowed: (event) => {
      observability.telemetry.shadowed?.(event);
      figures.recordShadow(event);
    },
  };
  // One serving factory for the whole process, shared by every function's runtime: supervised onnxruntime processes
  // by default (one per loaded session; a deadline or a native crash costs that session's process, never the stack).
  // Serving only: registration keeps the runtime's default, a child process per upload under the registration
  // deadline and memory cap, as deployed.
  const sharedServingFactory = config.onnxruntimeThread === 'main' ? undefined : servingSessionFactory(config);
  // As deployed, the shared function keeps loaded models within its session budget (SESSION_BUDGET_MB).
  const sharedConfig = {
    ...config,
    maxLoadedBytes: config.maxLoadedBytes ?? sessionBudgetMbFor(SHARED_FUNCTION_DEFAULTS.memoryMb) * 2 ** 20,
  };
  // As deployed: registration (and the seeding here) writes with the AWS SDK; the serving functions read with the
  // GET-only reader, each under its own key pair.
  // Every function's capture buffer: written on a timer (as deployed, a handler also writes a due batch at the end
  // of its invocation) and on close.
  const captureSinks: BufferedCaptureSink[] = [];
  const runtimeAs = (
    credentials: { accessKeyId: string; secretAccessKey: string },
    writes = false,
    functionConfig = config,
  ): Runtime => {
    const created = createRuntime(functionConfig, {
      store: writes
        ? new S3BlobStore(
            createS3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials }),
            s3.bucket,
          )
        : new S3Reader({ bucket: s3.bucket, endpoint: s3.endpoint, region: s3.region, credentials }),
      telemetry,
      captureTelemetry: observability.capture,
      now: options.now,
      ...(sharedServingFactory === undefined ? {} : { servingSessionFactory: sharedServingFactory }),
    });
    if (created.capture.enabled) captureSinks.push(created.capture);
    return created;
  };
  const captureTimer = setInterval(() => {
    for (const sink of captureSinks) void sink.flushIfDue();
  }, CAPTURE_TIMER_MS);
  captureTimer.unref();
  const runtime = runtimeAs(s3.credentials, true);
  // Deployed, each model's function gets its catalog entry's limits.
  const catalogLimits = new Map(catalog.map((entry) => [entry.name, entry.limits]));
  // Deployed, each model's function gets its entry's capture policy, the deployment's default percent filling in
  // (here: DATA_CAPTURE's, which the shared function uses as it is).
  const catalogCapture = new Map(
    catalog.map((entry) => [entry.name, resolveCapturePolicy(entry.capture, config.capture.samplingPercent)]),
  );
  register = createRegisterHandler(runtimeAs(s3.credentialsFor('register'), true), observability);
  // Not ready until the start-up seeds are uploaded and registered: a client that waits for /v2/health/ready and
  // then calls a seeded model must find it (the gateway listens before, so that it can answer 503 meanwhile).
  let starting: string | undefined = 'starting: the start-up models are still being registered; retry shortly';
  const notReadyReason = (): string | undefined => starting;
  // As deployed: a catalog model has its own function and role; every other model is served by the shared function
  // (one runtime, one multi-model session cache) with the shared role.
  const catalogNames = new Set(catalog.map((entry) => entry.name));
  // Batch jobs: the batch function with its own role (any model's versions, batch/ only), driven by the local engine
  // that stands for the state machine (listing with the state machine's role).
  const batchRuntime = runtimeAs(s3.credentialsFor('batch'), true, sharedConfig);
  const batch = createLocalBatchEngine({
    // As deployed, the batch function runs every model under the default request limits (docs/batch.md).
    handler: createBatchHandler(batchRuntime, { engine: 'local' }),
    lister: new S3BlobStore(
      createS3Client({
        endpoint: s3.endpoint,
        region: s3.region,
        forcePathStyle: true,
        credentials: s3.credentialsFor('batch-state-machine'),
      }),
      s3.bucket,
    ),
    records: batchRuntime.store,
    batchSize: config.batch.itemsPerChild,
    concurrency: config.batch.maxConcurrency,
    onFinished: (record) => observability.logger.info('batch job finished', { ...record }),
    onError: (job, error) =>
      observability.logger.error('batch job could not finish', { jobId: job.jobId, error: error as Error }),
  });
  // As deployed: a function's async jobs are `Event` invocations of that same function, under its own role.
  const asyncInvokers: LocalAsyncInvoker[] = [];
  const asyncJobsFor = (
    credentials: { accessKeyId: string; secretAccessKey: string },
    handler: () => InferHandler,
  ): AsyncJobsOptions => {
    const invoker = localAsyncInvoker({
      handler,
      onSuccess:
        options.onAsyncSuccess ??
        ((record) => observability.logger.info('async invocation succeeded', { result: record.responsePayload })),
      onDestinationError: (error) =>
        observability.logger.error('the on-failure destination failed', { error: error as Error }),
    });
    asyncInvokers.push(invoker);
    return {
      bucket: s3.bucket,
      store: new S3AsyncStore({ bucket: s3.bucket, endpoint: s3.endpoint, region: s3.region, credentials }),
      invoke: invoker.invoke,
    };
  };
  const asyncSettled = async () => {
    await Promise.all(asyncInvokers.map((invoker) => invoker.settled()));
  };
  // As deployed: a front that streams gets streaming infer functions (`streams`, above). Locally, async jobs run
  // through the function's buffered handler (deployed, an Event invocation of a streaming function runs the same code
  // and its streamed result is discarded).
  const inferFunction = (
    functionRuntime: Runtime,
    credentials: { accessKeyId: string; secretAccessKey: string } | undefined,
    options: { model?: string; limitsFor?: (model: string) => Limits },
  ): InferHandler | StreamingInferHandler => {
    const asyncJobs = credentials === undefined ? undefined : asyncJobsFor(credentials, () => buffered);
    const functionOptions = {
      ...options,
      notReadyReason,
      batch,
      ...(asyncJobs === undefined ? {} : { asyncJobs }),
    };
    const buffered: InferHandler = createInferHandler(functionRuntime, observability, functionOptions);
    return streams
      ? streamifyResponse(
          createStreamingInferHandler(functionRuntime, observability, {
            ...functionOptions,
            from: httpResponseStreamFrom,
          }),
        )
      : buffered;
  };
  const sharedCredentials = s3.credentialsFor('infer-shared');
  const shared = inferFunction(runtimeAs(sharedCredentials, false, sharedConfig), sharedCredentials, {
    limitsFor: () => config.limits,
  });
  const started = new Map<string, InferHandler | StreamingInferHandler>();
  let gateway: Awaited<ReturnType<typeof startGateway>>;
  let front: LocalFront;
  try {
    // IAM fronts accept the owner's key pair, the one npm start prints.
    front = await createLocalFront(options.front ?? {}, s3.credentials, s3.region);
    gateway = await startGateway({
      front,
      port: options.port ?? 8080,
      infer: perModelInfer(
        {
          catalog: catalogNames,
          own: (model) => {
            const role = `infer-${model}`;
            const credentials = s3.addRole(policy(role, inferAccess(model)));
            const capture = catalogCapture.get(model) ?? config.capture;
            return inferFunction(runtimeAs(credentials, false, { ...config, capture }), credentials, {
              model,
              limitsFor: () => catalogLimits.get(model) ?? config.limits,
            });
          },
          shared,
          unrouted: inferFunction(runtimeAs(s3.credentialsFor('infer-unrouted')), undefined, {}),
        },
        started,
      ),
      control: createControlHandler(runtimeAs(s3.credentialsFor('control')), observability, { notReadyReason }),
      maxBodyBytes: config.limits.maxBodyBytes,
      ...config.gateway,
    });
  } catch (error) {
    // A busy gateway port must not leave the S3 server holding its own port.
    clearInterval(captureTimer);
    await s3.close();
    throw error;
  }

  const settled = async () => {
    while (pending.size > 0) await Promise.allSettled([...pending]);
  };

  // The rollout controller, under its own role as deployed, through the deployed handler: figures from this stack's
  // infer functions instead of CloudWatch, every notice into the local sink instead of the alarm topic. One run at a
  // time (a slow run skips a tick).
  const notices: (RolloutNotice & { run: number })[] = [];
  let runs = 0;
  let running: Promise<void> | undefined;
  const controller = createRolloutHandler(runtimeAs(s3.credentialsFor('rollout'), true).repository, observability, {
    figures,
    publish: (notice) => {
      notices.push({ ...notice, run: runs });
    },
    ...(options.now === undefined ? {} : { now: options.now }),
  });
  const controllerTick = () => {
    if (running !== undefined) return;
    runs += 1;
    running = controller()
      .then(() => undefined)
      .catch((error: unknown) => observability.logger.error('rollout controller failed', { error: error as Error }))
      .finally(() => {
        running = undefined;
      });
  };
  const controllerTimer = setInterval(controllerTick, config.rolloutIntervalMs);
  controllerTimer.unref();

  // Uploads left without an outcome by the last run (stopped mid-registration, or its events lost): register them
  // now, as their events would have.
  const reconciliation = reconcileUploads(registrationOptions(runtime))
    .then(({ outcomes, failures }) => {
      if (outcomes.length > 0) registrations.push({ outcomes: [], reconciled: outcomes });
      for (const outcome of outcomes) observability.logger.info('pending upload reconciled', { ...outcome });
      for (const { key, error } of failures)
        observability.logger.error('pending upload still pending', { key, error: error as Error });
    })
    .catch((error: unknown) => observability.logger.error('could not list pending uploads', { error: error as Error }))
    .finally(() => pending.delete(reconciliation));
  pending.add(reconciliation);

  const seeded: string[] = [];
  if (options.catalogDir !== undefined) {
    for (const entry of catalog) {
      const seedPath = resolveSeedPath(entry, options.catalogDir);
      if (seedPath === undefined) continue;
      const key = `${UPLOADS_PREFIX}${entry.name}/${path.basename(seedPath)}`;
      // As at deploy time: the sample (if any) first, then the model, whose object-created event registers it;
      // the same bytes again are a no-op.
      if (existsSync(`${seedPath}${SAMPLE_SUFFIX}`)) {
        await runtime.store.put(
          `${key}${SAMPLE_SUFFIX}`,
          new Uint8Array(await readFile(`${seedPath}${SAMPLE_SUFFIX}`)),
        );
      }
      await runtime.store.put(key, new Uint8Array(await readFile(seedPath)));
      seeded.push(entry.name);
    }
    await settled();
  }
  starting = undefined;
  // Jobs the last run left RUNNING (the process was stopped or killed): resumed, their finished items skipped.
  const resumed = batch
    .resume()
    .then((ids) => {
      for (const jobId of ids) observability.logger.info('batch job resumed', { jobId });
    })
    .catch((error: unknown) => observability.logger.error('could not list batch jobs', { error: error as Error }))
    .finally(() => pending.delete(resumed));
  pending.add(resumed);

  return {
    gatewayUrl: gateway.url,
    front,
    s3,
    runtime,
    seeded,
    settled,
    registrations,
    startedFunctions: () => [...started.keys()],
    rollouts: { figures, notices, runs: () => runs },
    asyncSettled,
    batch,
    close: async () => {
      clearInterval(controllerTimer);
      await running;
      await gateway.close();
      await asyncSettled();
      await batch.stop();
      await settled();
      // Requests are answered and the gateway is closed: what capture still holds is written before S3 stops.
      clearInterval(captureTimer);
      await Promise.all(captureSinks.map((sink) => sink.flush()));
      await s3.close();
      sharedServingFactory?.close?.();
    },
  };
}
