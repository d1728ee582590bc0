/**
 * Entry of `npm run models -- <command>`: runs {@link runCli} on the process's argv and environment and exits with
 * its code. Everything else lives in `cli.ts`, so that tests can run the CLI in-process.
 */
import { runCli } from './cli.js';

process.exitCode = await runCli(process.argv.slice(2), {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
});
