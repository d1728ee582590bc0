/**
 * Children that run onnxruntime (registration's isolated sessions, `npm start`'s supervised serving sessions) end
 * with this process, however it exits: a child spinning inside onnxruntime never runs its own 'disconnect' handler,
 * and would spin on as an orphan after a bounded shutdown abandons its work.
 */
import type { ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';

/** Children alive now, killed when this process exits. */
const children = new Set<ChildProcess>();
let killsOnExit = false;

/** Kills `child` (SIGKILL) when this process exits, unless it has ended before. */
export function killOnExit(child: ChildProcess): void {
  if (!killsOnExit) {
    process.on('exit', () => {
      for (const alive of children) alive.kill('SIGKILL');
    });
    killsOnExit = true;
  }
  children.add(child);
  child.once('exit', () => children.delete(child));
  child.once('error', () => children.delete(child));
}

/** Where a child finds onnxruntime-node: the parent's own resolution (`NODE_PATH` covers Lambda layers). */
export function onnxruntimePath(): string {
  try {
    return createRequire(import.meta.url).resolve('onnxruntime-node');
  } catch {
    return 'onnxruntime-node';
  }
}
