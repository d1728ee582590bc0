/**
 * A bound on how long `npm start` takes to stop. `process.exit()` alone is not one: before the process ends, Node
 * joins every worker thread, and a worker stuck inside onnxruntime (an inference that never ends) never lets itself
 * be joined, so the ports close and the process stays. A small watchdog process, started when the stop begins,
 * kills this one if it is still there at the bound, and ends by itself as soon as this one is gone.
 */
import { spawn } from 'node:child_process';

// Plain JavaScript for `node -e` (no file to ship): polls the watched process, kills it at the bound (a time).
const WATCHDOG_SOURCE = `
const pid = Number(process.argv[1]);
const until = Number(process.argv[2]);
setInterval(() => {
  try {
    process.kill(pid, 0);
  } catch {
    process.exit(0);
  }
  if (Date.now() >= until) {
    try { process.kill(pid, 'SIGKILL'); } catch {}
    process.exit(0);
  }
}, 100);
`;

/**
 * Makes sure this process has ended `boundMs` from now: past it, a watchdog process kills it (SIGKILL: whatever is
 * stuck is not asked again). Call it as the stop begins, then exit as usual; the watchdog ends with this process.
 * @example
 * endWithin(8_000);
 * await stack.close();
 * process.exit(0);
 */
export function endWithin(boundMs: number): void {
  // The bound as a time: the watchdog's own start-up (slow on a loaded machine) must not extend it.
  const until = String(Date.now() + boundMs);
  const watchdog = spawn(process.execPath, ['-e', WATCHDOG_SOURCE, String(process.pid), until], {
    stdio: 'ignore',
    // Its own process group: a Ctrl-C that reaches the whole group must not stop the watchdog with the rest.
    detached: true,
  });
  watchdog.unref();
}
