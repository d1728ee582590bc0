/**
 * The deployed rollout controller as it ships: the bundled `rollout` function of a synthesized stack (with an alarm
 * topic), run in a fresh process with its layer, against the embedded S3 enforcing the S3 statements its template
 * role holds, and loopback stand-ins for CloudWatch and SNS (AWS APIs without a local server). One scheduled run
 * rolls back a canary whose CloudWatch figures trip its error guard, records why, and publishes it to the topic.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { S3BlobStore } from '../../functions/adapters/s3-blob-store.js';
import { parseCatalogEntry } from '../../functions/core/catalog.js';
import { ModelRepository } from '../../functions/core/model-repository.js';
import { startRollout } from '../../functions/core/rollout.js';
import { CAN_RUN_LINUX_X64_NODE } from '../../tools/node-binaries.js';
import { startArtifactRig, type ArtifactRig } from './artifact-fixture.js';
import { removeTempDirs, synthesize } from './fixture.js';

const TOPIC = 'arn:aws:sns:us-east-1:123456789012:pager';

let rig: ArtifactRig;
let standIn: Server;
const received: { target: string | undefined; body: string }[] = [];

beforeAll(async () => {
  const synth = synthesize(
    {
      models: [parseCatalogEntry('iris', { architecture: 'x86_64', warmer: false })],
      sharedArchitecture: 'x86_64',
      alarmTopicArn: TOPIC,
    },
    { bundling: true, id: 'RolloutArtifact' },
  );
  rig = await startArtifactRig(synth);
  // CloudWatch (JSON protocol, by its target header) and SNS (query protocol) on one loopback server: the candidate
  // answered 20 requests, 6 of them failed; the stable version 100 without failure.
  const values: Record<string, number> = { sreq_0: 100, serr_0: 0, creq_0: 20, cerr_0: 6 };
  standIn = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      const target = request.headers['x-amz-target'] as string | undefined;
      received.push({ target, body });
      if (target === undefined) {
        response.writeHead(200, { 'content-type': 'text/xml' });
        response.end('<PublishResponse><PublishResult><MessageId>1</MessageId></PublishResult></PublishResponse>');
        return;
      }
      const queries = (JSON.parse(body) as { MetricDataQueries: { Id: string }[] }).MetricDataQueries;
      response.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
      response.end(
        JSON.stringify({
          MetricDataResults: queries.map((q) => ({ Id: q.Id, Values: q.Id in values ? [values[q.Id]] : [] })),
        }),
      );
    });
  });
  await new Promise<void>((resolve) => standIn.listen(0, '127.0.0.1', resolve));
}, 360_000);

afterAll(async () => {
  await rig?.stop();
  await new Promise((resolve) => (standIn === undefined ? resolve(undefined) : standIn.close(resolve)));
  removeTempDirs();
});

it.runIf(CAN_RUN_LINUX_X64_NODE)(
  'rolls back a canary its CloudWatch figures condemn, records why in the manifest and publishes it',
  async () => {
    // Prepare: a model with two versions and a canary of 2 running, written as the bucket's owner.
    const store = new S3BlobStore(rig.s3.client, rig.s3.server.bucket);
    const repository = new ModelRepository(store);
    const started = new Date(Date.now() - 120_000).toISOString();
    const row = (version: string) => ({
      version,
      state: 'READY' as const,
      sha256: version.repeat(64),
      size: 1,
      sourceKey: `uploads/iris/v${version}.onnx`,
      createdAt: started,
    });
    const policy = {
      strategy: 'canary' as const,
      percent: 10,
      bakingSeconds: 3600,
      maxErrorRate: 0.05,
      minRequests: 10,
    };
    await store.put(
      'models/iris/manifest.json',
      new TextEncoder().encode(
        JSON.stringify({
          name: 'iris',
          latest: '1',
          versions: [row('1'), row('2')],
          labels: {},
          rollout: startRollout(policy, '1', '2', started),
        }),
      ),
    );
    const { port } = standIn.address() as AddressInfo;
    const endpoint = `http://127.0.0.1:${port}`;

    // Act: one scheduled invocation.
    const logs: string[] = [];
    const run = await rig.invoke(rig.idOf(rig.synth.stack.rolloutFunction.function), [{ source: 'aws.events' }], {
      logs,
      awsEndpoints: { AWS_ENDPOINT_URL_CLOUDWATCH: endpoint, AWS_ENDPOINT_URL_SNS: endpoint },
    });

    // Assess
    const manifest = (await repository.readManifest('iris'))?.manifest;
    const reason = 'rolled back: candidate 2 failed 6 of 20 inferences (30%), over maxErrorRate 5%';
    expect(manifest?.rollout).toMatchObject({ state: 'rolled-back', reason });
    expect(manifest?.latest).toBe('1');
    expect(run.results).toEqual([
      { notices: [expect.objectContaining({ model: 'iris', outcome: 'rolled-back', reason })] },
    ]);
    const published = received
      .filter((r) => r.target === undefined)
      .map((r) => Object.fromEntries(new URLSearchParams(r.body)));
    expect(published).toEqual([
      expect.objectContaining({
        Action: 'Publish',
        TopicArn: TOPIC,
        Subject: 'onnx-serverless: iris rollout rolled-back (candidate 2)',
      }),
    ]);
    expect(logs.some((line) => line.includes('"rollout rolled back"'))).toBe(true);
    expect(rig.describeDenials()).toEqual([]);
  },
  240_000,
);
