/**
 * Registration's store: it writes versions, manifests and rejections, so it uses the AWS SDK's S3 client (conditional
 * writes, multipart), which the serving functions leave out of their bundles (`runtime.ts`, `servingStoreFromConfig`).
 */
import { FsBlobStore } from '../adapters/fs-blob-store.js';
import { createS3Client } from '../adapters/s3-client.js';
import { S3BlobStore } from '../adapters/s3-blob-store.js';
import type { BlobStore } from '../core/blob-store.js';
import type { RuntimeConfig } from './config.js';
import { bucketOf } from './runtime.js';

/** The store the configuration names, writable: a folder (`MODEL_DIR`) or an S3 bucket (`MODEL_BUCKET`, `S3_ENDPOINT`). */
export function writableStoreFromConfig(config: RuntimeConfig): BlobStore {
  const bucket = bucketOf(config);
  if (bucket === undefined) return new FsBlobStore(config.modelDir ?? '');
  return new S3BlobStore(createS3Client({ endpoint: config.s3Endpoint }), bucket);
}
