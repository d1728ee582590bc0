/**
 * Entry of `npm run models -- <command>`: runs {@link runCli} on the process's argv and environment and exits with
 * its code. Everything else lives in `cli.ts`, so that tests can run the CLI in-process.
 */
import { ENV } from '../core/contract.js';
import { runCli } from './cli.js';

// The SDK's "2027 releases need Node 22" notice is about the SDK's future, not this run: Node 20 works locally.
process.env[ENV.sdkNodeVersionWarningDisabled] ??= 'true';

process.exitCode = await runCli(process.argv.slice(2), {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
});
