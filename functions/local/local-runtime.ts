/**
 * The whole product on a laptop: the embedded S3-compatible server (whose object-created events drive the same
 * `register` handler as on AWS), the same `infer` and `control` handlers behind a local API Gateway, and the
 * example models seeded through `uploads/` exactly as a user would upload them.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { S3Event } from 'aws-lambda';
import { loadCatalog, resolveSeedPath } from '../adapters/catalog-files.js';
import { createS3Client } from '../adapters/s3-client.js';
import { S3BlobStore } from '../adapters/s3-blob-store.js';
import { ENV } from '../core/contract.js';
import { isRegistrationUpload, UPLOADS_PREFIX } from '../core/model-repository.js';
import { readConfig } from '../wiring/config.js';
import { SAMPLE_SUFFIX } from '../core/registration.js';
import { createRegisterHandler, type RegisterResult } from '../transport/register-handler.js';
import { createControlHandler, createInferHandler } from '../transport/http-handlers.js';
import { createObservability } from '../wiring/observability.js';
import { createRuntime, type Runtime } from '../wiring/runtime.js';
import { startGateway } from './gateway.js';
import { startEmbeddedS3, type EmbeddedS3 } from './s3-server.js';

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
}

/** A running local stack. */
export interface LocalStack {
  readonly gatewayUrl: string;
  readonly s3: EmbeddedS3;
  readonly runtime: Runtime;
  /** Names of the seeded catalog models. */
  readonly seeded: readonly string[];
  /** Resolves when every registration started so far has finished (tests, seeding). */
  readonly settled: () => Promise<void>;
  /** Outcomes of every registration so far, in order of completion. */
  readonly registrations: readonly RegisterResult[];
  close(): Promise<void>;
}


/** Starts the local stack. */
export async function startLocal(options: LocalOptions = {}): Promise<LocalStack> {
  const pending = new Set<Promise<unknown>>();
  const registrations: RegisterResult[] = [];
  let register: ((event: S3Event) => Promise<RegisterResult>) | undefined;

  const s3 = await startEmbeddedS3({
    port: options.s3Port ?? 9000,
    dataDir: options.dataDir ?? '.data',
    // The request log of the S3 server is noise next to the handlers' own logs.
    silent: true,
    // The same filter as the bucket notifications that infra creates (one per suffix of UPLOAD_SUFFIXES).
    eventFilter: { prefix: UPLOADS_PREFIX },
    onObjectCreated: (event) => {
      if (register === undefined) return;
      if (!event.Records.some((record) => isRegistrationUpload(decodeURIComponent(record.s3.object.key.replace(/\+/g, ' '))))) return;
      const done = register(event)
        .then((result) => {
          registrations.push(result);
        })
        .catch(() => undefined)
        .finally(() => pending.delete(done));
      pending.add(done);
      return done;
    },
  });

  const config = readConfig({ ...(options.env ?? process.env), [ENV.modelBucket]: s3.bucket, [ENV.s3Endpoint]: s3.endpoint, [ENV.modelDir]: '' });
  const observability = createObservability('local', false);
  if (options.silent === true) observability.logger.setLogLevel('SILENT');
  const store = new S3BlobStore(
    createS3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: s3.credentials }),
    s3.bucket,
  );
  const runtime = createRuntime(config, { store, telemetry: observability.telemetry });
  // Deployed, each model's function gets its catalog entry's limits; locally one process serves every model.
  const catalog = options.catalogDir === undefined ? [] : loadCatalog(options.catalogDir);
  const catalogLimits = new Map(catalog.map((entry) => [entry.name, entry.limits]));
  register = createRegisterHandler(runtime, observability);
  const gateway = await startGateway({
    port: options.port ?? 8080,
    infer: createInferHandler(runtime, observability, {
      limitsFor: (model) => catalogLimits.get(model) ?? config.limits,
    }),
    control: createControlHandler(runtime, observability),
    maxBodyBytes: config.limits.maxBodyBytes,
  });

  const settled = async () => {
    while (pending.size > 0) await Promise.allSettled([...pending]);
  };

  const seeded: string[] = [];
  if (options.catalogDir !== undefined) {
    for (const entry of catalog) {
      const seedPath = resolveSeedPath(entry, options.catalogDir);
      if (seedPath === undefined) continue;
      const key = `${UPLOADS_PREFIX}${entry.name}/${path.basename(seedPath)}`;
      // As at deploy time: the sample (if any) first, then the model, whose object-created event registers it;
      // the same bytes again are a no-op.
      if (existsSync(`${seedPath}${SAMPLE_SUFFIX}`)) {
        await store.put(`${key}${SAMPLE_SUFFIX}`, new Uint8Array(await readFile(`${seedPath}${SAMPLE_SUFFIX}`)));
      }
      await store.put(key, new Uint8Array(await readFile(seedPath)));
      seeded.push(entry.name);
    }
    await settled();
  }

  return {
    gatewayUrl: gateway.url,
    s3,
    runtime,
    seeded,
    settled,
    registrations,
    close: async () => {
      await gateway.close();
      await settled();
      await s3.close();
    },
  };
}
