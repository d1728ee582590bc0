/**
 * The local stack in a process of its own, for the batch resume test (`batch-resume.test.ts`): `startLocal()` on
 * the data folder given as the first argument, on ephemeral loopback ports; prints one JSON line with the gateway
 * URL and the embedded S3 server's endpoint, bucket, region and owner credentials, then serves until killed.
 */
import { startLocal } from '../../functions/local/local-runtime.js';

const dataDir = process.argv[2];
if (dataDir === undefined) throw new Error('usage: batch-child.ts <data folder>');
const stack = await startLocal({ port: 0, s3Port: 0, dataDir, silent: true });
const { endpoint, bucket, region, credentials } = stack.s3;
process.stdout.write(`${JSON.stringify({ gatewayUrl: stack.gatewayUrl, endpoint, bucket, region, credentials })}\n`);
