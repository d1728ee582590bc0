/**
 * `npm start`'s stack releases everything on close(): a one-shot command (interop, conformance, a user's script)
 * ends by itself once it has closed the stack, without `process.exit`. A leaked handle (a ref'd worker port, a
 * socket, a child pipe) keeps the process alive; the probe then names it.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

describe('local stack close()', () => {
  it('leaves nothing that keeps the process alive', async () => {
    // Act: run the probe; a process that has not ended well after close() is stopped and counts as a leak.
    const child = spawn(path.join('node_modules', '.bin', 'tsx'), ['test/support/local-stack-probe.ts'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    let closedAt: NodeJS.Timeout | undefined;
    const outcome = await new Promise<{ code: number | null; leaked: boolean }>((resolve) => {
      let leaked = false;
      child.stdout.on('data', () => {
        // A hang detector, not a timing assertion: generous, and armed only once the stack said it closed.
        if (closedAt === undefined && stdout.includes('closed')) {
          closedAt = setTimeout(() => {
            leaked = true;
            child.kill('SIGKILL');
          }, 30_000);
        }
      });
      child.on('exit', (code) => resolve({ code, leaked }));
    });
    clearTimeout(closedAt);

    // Assess
    expect(stdout).toContain('infer 200');
    expect(outcome.leaked, `the process did not end after close(); ${stderr.match(/still alive: .*/)?.[0]}`).toBe(
      false,
    );
    expect(outcome.code).toBe(0);
  }, 180_000);
});
