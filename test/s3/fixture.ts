/**
 * A real embedded S3 server on an ephemeral loopback port, in a fresh temporary folder, with an SDK client on it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import type { S3Event } from 'aws-lambda';
import { createS3Client } from '../../functions/adapters/s3-client.js';
import { startEmbeddedS3 } from '../../functions/local/s3-server.js';
import type { EmbeddedS3, EmbeddedS3Options } from '../../functions/local/s3-server.js';

/** A running server, its client, and the events it delivered. */
export interface S3Fixture {
  readonly server: EmbeddedS3;
  readonly client: S3Client;
  readonly dataDir: string;
  readonly events: S3Event[];
  /** Resolves with the first `count` events delivered (counting from the server's start). */
  waitForEvents(count: number): Promise<S3Event[]>;
  stop(): Promise<void>;
}

/** Starts a server in a new temporary folder; `options` may override everything but the port and folder. */
export async function startS3Fixture(options: Partial<EmbeddedS3Options> = {}): Promise<S3Fixture> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'onnx-serverless-s3-')));
  const events: S3Event[] = [];
  const waiters: { count: number; resolve: (events: S3Event[]) => void }[] = [];
  const server = await startEmbeddedS3({
    silent: true,
    ...options,
    port: 0,
    dataDir,
    onObjectCreated: async (event) => {
      events.push(event);
      for (const waiter of waiters.filter((candidate) => events.length >= candidate.count)) {
        waiter.resolve(events.slice(0, waiter.count));
      }
      await options.onObjectCreated?.(event);
    },
  });
  const client = createS3Client({ endpoint: server.endpoint, credentials: server.credentials, region: server.region });
  return {
    server,
    client,
    dataDir,
    events,
    waitForEvents: (count) =>
      events.length >= count
        ? Promise.resolve(events.slice(0, count))
        : new Promise((resolve) => waiters.push({ count, resolve })),
    stop: async () => {
      client.destroy();
      await server.close();
      if (options.dataDir === undefined) {
        await rm(dataDir, { recursive: true, force: true });
      }
    },
  };
}
