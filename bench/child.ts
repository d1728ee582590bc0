/**
 * Runs a TypeScript measurement script in a fresh Node process (so its memory and timings are its own) and hands
 * back what it printed.
 */
import { spawn } from 'node:child_process';

/**
 * Runs `script` with tsx and resolves with its standard output; rejects naming `label`, the exit code and the last
 * lines of its standard error when it fails. `env` adds to this process's environment.
 */
export function runTsxChild(
  script: string,
  args: readonly string[],
  label: string,
  env: Readonly<Record<string, string>> = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err = (err + chunk.toString()).slice(-4000)));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`${label} failed (${code}): ${err.trim()}`));
      else resolve(out);
    });
  });
}

/** The number printed after `key ` in a child's output; throws when there is none. */
export function printedNumber(out: string, key: string, label: string): number {
  const value = Number(new RegExp(`${key} (\\S+)`).exec(out)?.[1]);
  if (!Number.isFinite(value)) throw new Error(`${label} printed no ${key}: ${out.trim().slice(-400)}`);
  return value;
}
