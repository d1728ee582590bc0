/**
 * By hand (not part of `npm run bench`, to keep its time budget): registration's peak memory with the repository on
 * S3, so that the multipart write of the version is measured too. An embedded S3 server runs in this process; the
 * upload `<file>` is put into it as `uploads/big/a.onnx` and registered by `large-child.ts register` in a fresh
 * process (`LARGE_CHILD_S3`), which prints `growth <bytes> size <bytes>`.
 *
 *     npx tsx bench/register-s3.ts <model.onnx>
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createS3Client } from '../functions/adapters/s3-client.js';
import { S3BlobStore } from '../functions/adapters/s3-blob-store.js';
import { startEmbeddedS3 } from '../functions/local/s3-server.js';
import { runTsxChild } from './child.js';

const [file] = process.argv.slice(2);
if (file === undefined) throw new Error('usage: register-s3 <model.onnx>');
const data = mkdtempSync(join(tmpdir(), 'onnx-serverless-register-s3-'));
const work = mkdtempSync(join(tmpdir(), 'onnx-serverless-register-s3-work-'));
const server = await startEmbeddedS3({ port: 0, dataDir: data, silent: true });
const client = createS3Client({ endpoint: server.endpoint, credentials: server.credentials, region: server.region });
try {
  await new S3BlobStore(client, server.bucket).putFile('uploads/big/a.onnx', file);
  const { endpoint, bucket, region, credentials } = server;
  process.env['LARGE_CHILD_S3'] = JSON.stringify({ endpoint, bucket, region, credentials });
  const child = fileURLToPath(new URL('./large-child.ts', import.meta.url));
  console.log((await runTsxChild(child, ['register', work, 'uploads/big/a.onnx'], 'register on S3')).trim());
} finally {
  client.destroy();
  await server.close();
  rmSync(data, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
}
