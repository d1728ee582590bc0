/**
 * Failures the embedded server never produces (it serialises conditional writes, so it never answers 409), injected
 * by a loopback HTTP server that answers every request with one canned S3 error.
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { S3ServiceException } from '@aws-sdk/client-s3';
import { S3BlobStore } from '../../functions/adapters/s3-blob-store.js';
import { createS3Client } from '../../functions/adapters/s3-client.js';
import { PreconditionFailedError } from '../../functions/core/errors.js';

let server: Server | undefined;

async function storeAnswering(status: number, code: string): Promise<S3BlobStore> {
  server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      response.writeHead(status, { 'content-type': 'application/xml' });
      response.end(
        `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>injected</Message></Error>`,
      );
    });
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const client = createS3Client({
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    maxAttempts: 1,
  });
  return new S3BlobStore(client, 'models');
}

afterEach(async () => {
  await new Promise((resolve) => (server === undefined ? resolve(undefined) : server.close(resolve)));
  server = undefined;
});

describe('S3BlobStore error mapping', () => {
  it('turns 409 ConditionalRequestConflict on a conditional write into PreconditionFailedError', async () => {
    // Prepare
    const store = await storeAnswering(409, 'ConditionalRequestConflict');

    // Act
    const write = store.put('models/m/manifest.json', new Uint8Array([1]), { ifMatch: '"abc"' });

    // Assess
    await expect(write).rejects.toBeInstanceOf(PreconditionFailedError);
    await expect(write).rejects.toThrow(/changed or disappeared since it was read/);
  });

  it('lets a server error propagate as it is', async () => {
    // Prepare
    const store = await storeAnswering(500, 'InternalError');

    // Act
    const write = store.put('models/m/manifest.json', new Uint8Array([1]), { ifNoneMatch: '*' });

    // Assess
    await expect(write).rejects.toBeInstanceOf(S3ServiceException);
    await expect(write).rejects.not.toBeInstanceOf(PreconditionFailedError);
    await expect(write).rejects.toMatchObject({ name: 'InternalError' });
  });

  it('lets AccessDenied on a read propagate instead of answering undefined', async () => {
    // Prepare
    const store = await storeAnswering(403, 'AccessDenied');

    // Act
    const read = store.get('models/m/manifest.json');

    // Assess
    // As the core's configuration error (a 500, never a retryable 503), with S3's own error as its cause.
    await expect(read).rejects.toMatchObject({ name: 'StorageAccessDeniedError', cause: { name: 'AccessDenied' } });
  });
});
