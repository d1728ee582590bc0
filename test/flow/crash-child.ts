/**
 * The local stack in a process of its own, for the crash tests (test/flow/crash-restart.test.ts): starts
 * `startLocal()` on the data folder given as the first argument, on ephemeral loopback ports, and prints one JSON line
 * with the embedded S3 server's endpoint, bucket, region and owner credentials. Its environment reaches the handlers,
 * so `FAULT_KILL_AFTER_REGISTRATION_STEP` makes register kill this process at that step (as `kill -9` would).
 */
import { startLocal } from '../../functions/local/local-runtime.js';

const dataDir = process.argv[2];
if (dataDir === undefined) throw new Error('usage: crash-child.ts <data folder>');
const stack = await startLocal({ port: 0, s3Port: 0, dataDir, silent: true });
const { endpoint, bucket, region, credentials } = stack.s3;
process.stdout.write(`${JSON.stringify({ endpoint, bucket, region, credentials })}\n`);
