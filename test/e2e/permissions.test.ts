/**
 * Local equals deployed, permissions included: the local stack runs every function with its deployed role's S3
 * policy. Every route and event works under it; a grant narrowed on purpose fails with the AccessDenied it
 * causes, answered as a 500 with the request id (a configuration error, not a 503 inviting retries); and two
 * racing deliveries of one upload leave no orphan files and skip no version number, without s3:DeleteObject.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3BlobStore } from '../../functions/adapters/s3-blob-store.js';
import { createS3Client } from '../../functions/adapters/s3-client.js';
import { readConfig } from '../../functions/wiring/config.js';
import { createObservability } from '../../functions/wiring/observability.js';
import { createRegisterHandler } from '../../functions/transport/register-handler.js';
import { createRuntime } from '../../functions/wiring/runtime.js';
import { startLocal, type LocalStack } from '../../functions/local/local-runtime.js';
import { describeDenial, type AccessDenial } from '../../functions/local/s3-access.js';
import { inferAccess } from '../../infra/function-grants.js';
import { linearModel, linearRequest } from '../flow/fixture.js';
import { s3Event } from '../../tools/lambda-events.js';

async function start(
  options: Parameters<typeof startLocal>[0] = {},
): Promise<{ stack: LocalStack; denials: AccessDenial[]; stop: () => Promise<void> }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'onnx-serverless-perms-'));
  const denials: AccessDenial[] = [];
  const stack = await startLocal({
    port: 0,
    s3Port: 0,
    dataDir,
    silent: true,
    onAccessDenied: (d) => denials.push(d),
    ...options,
  });
  return {
    stack,
    denials,
    stop: async () => {
      await stack.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

async function call(stack: LocalStack, method: string, path: string, body?: unknown) {
  const response = await fetch(`${stack.gatewayUrl}${path}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  return {
    status: response.status,
    headers: response.headers,
    body: (await response.json()) as Record<string, unknown>,
  };
}

describe('under the deployed grants', () => {
  let local: Awaited<ReturnType<typeof start>>;
  beforeAll(async () => {
    local = await start();
    await local.stack.runtime.store.put('uploads/linear/v1.onnx', linearModel(2, 1));
    await local.stack.runtime.store.put('uploads/linear/broken.onnx', new TextEncoder().encode('not a model'));
    await local.stack.settled();
  }, 60_000);
  afterAll(() => local.stop());

  it('serves metadata (with refused uploads), ready, infer and the control routes, and nothing is denied', async () => {
    const metadata = await call(local.stack, 'GET', '/v2/models/linear');
    const ready = await call(local.stack, 'GET', '/v2/models/linear/ready');
    const inferred = await call(local.stack, 'POST', '/v2/models/linear/infer', linearRequest([[1, 2, 3, 4]]));
    const health = await call(local.stack, 'GET', '/v2/health/ready');
    const index = await call(local.stack, 'POST', '/v2/repository/index');

    expect(metadata.status).toBe(200);
    expect(JSON.stringify(metadata.body)).toContain('broken.onnx');
    expect([ready.status, inferred.status, health.status, index.status]).toEqual([200, 200, 200, 200]);
    expect(local.stack.registrations.flatMap((r) => r.outcomes.map((o) => o.kind)).sort()).toEqual([
      'registered',
      'rejected',
    ]);
    expect(local.denials.map(describeDenial)).toEqual([]);
  });

  it('lets two racing deliveries of one upload make one version, leave no orphan and skip no number', async () => {
    const { stack } = local;
    const config = readConfig({ MODEL_BUCKET: stack.s3.bucket, S3_ENDPOINT: stack.s3.endpoint });
    const observability = createObservability('register-race', false);
    observability.logger.setLogLevel('SILENT');
    const asRegister = () =>
      createRegisterHandler(
        createRuntime(config, {
          store: new S3BlobStore(
            createS3Client({
              endpoint: stack.s3.endpoint,
              region: stack.s3.region,
              credentials: stack.s3.credentialsFor('register'),
            }),
            stack.s3.bucket,
          ),
        }),
        observability,
      );
    const owner = stack.runtime.store;
    await owner.put('uploads/race/m.onnx', linearModel(3, 0));
    await stack.settled(); // the stack's own delivery registers versions 1 and 2
    await owner.put('uploads/race/n.onnx', linearModel(4, 0));
    await stack.settled();
    // Version 3's upload is delivered four times at once: by the stack, and thrice more, each delivery in its own
    // "instance" signing as the register role.
    await owner.put('uploads/race/o.onnx', linearModel(5, 0));
    const event = s3Event(['uploads/race/o.onnx']);
    const results = await Promise.all([asRegister()(event), asRegister()(event), asRegister()(event)]);
    await stack.settled();
    await owner.put('uploads/race/p.onnx', linearModel(6, 0));
    await stack.settled();

    const kinds = results.flatMap((r) => r.outcomes.map((o) => o.kind));
    expect(kinds.filter((k) => k === 'registered').length).toBeLessThanOrEqual(1);
    const manifest = (await stack.runtime.repository.readManifest('race'))!.manifest;
    expect(manifest.versions.map((v) => v.version)).toEqual(['1', '2', '3', '4']);
    const files = (await owner.list('models/race/')).filter((key) => !/\/(claims|outcomes)\//.test(key));
    expect(files).toEqual([
      'models/race/1/metadata.json',
      'models/race/1/model.onnx',
      'models/race/2/metadata.json',
      'models/race/2/model.onnx',
      'models/race/3/metadata.json',
      'models/race/3/model.onnx',
      'models/race/4/metadata.json',
      'models/race/4/model.onnx',
      'models/race/manifest.json',
    ]);
    expect(local.denials.map(describeDenial)).toEqual([]);
  }, 60_000);
});

describe('with one grant narrowed on purpose', () => {
  let local: Awaited<ReturnType<typeof start>>;
  beforeAll(async () => {
    // The grant as it was before this fix: only models/linear/, not the rejected/linear/ the metadata route reads.
    const deployed = inferAccess('linear');
    // linear has a catalog entry, so it gets its own function and role (uncatalogued models use the shared one's).
    const catalogDir = await mkdtemp(join(tmpdir(), 'onnx-serverless-catalog-'));
    await writeFile(join(catalogDir, 'linear.json'), '{}');
    local = await start({
      catalogDir,
      accessOverrides: {
        'infer-linear': {
          objects: deployed.objects.map((grant) => ({
            ...grant,
            keyPatterns: grant.keyPatterns.filter((p) => p.startsWith('models/')),
          })),
          listPrefixes: deployed.listPrefixes.filter((p) => p.startsWith('models/')),
        },
      },
    });
    await local.stack.runtime.store.put('uploads/linear/v1.onnx', linearModel(2, 1));
    await local.stack.settled();
  }, 60_000);
  afterAll(() => local.stop());

  it('fails the model metadata route with a 500 naming the request id, and the server logs the denial', async () => {
    const metadata = await call(local.stack, 'GET', '/v2/models/linear');
    const inferred = await call(local.stack, 'POST', '/v2/models/linear/infer', linearRequest([[1, 2, 3, 4]]));

    expect(metadata.status).toBe(500);
    expect(metadata.headers.get('retry-after')).toBeNull();
    expect(metadata.body).toEqual({ error: expect.stringMatching(/^internal error; request id [0-9a-f-]{36}$/) });
    expect(inferred.status).toBe(200);
    expect(local.denials).toEqual([
      expect.objectContaining({
        role: 'infer-linear',
        action: 's3:ListBucket',
        resource: 'arn:aws:s3:::models',
        context: { 's3:prefix': 'rejected/linear/' },
      }),
    ]);
  });
});
