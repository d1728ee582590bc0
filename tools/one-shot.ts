/**
 * The ending of a one-shot command (`npm run interop`, `npm run conformance`): its exit code is set, not forced, so
 * the process ends by itself once everything is closed (a hang is a leak to fix, not to hide); a failure prints its
 * message, not a stack trace.
 * @example
 * runOneShot(main); // main(): Promise<number>, the exit code
 */
export function runOneShot(main: () => Promise<number>): void {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      console.error(error instanceof Error ? error.message : String(error));
      process.exitCode = 1;
    },
  );
}
