/**
 * Exit codes and errors of the `models` CLI. Every failure ends as one line on stderr and one of these codes,
 * never a stack trace.
 */

/** Exit codes, as scripts and CI jobs can test them. */
export const EXIT_CODES = {
  /** The command did what was asked (an identical upload included: nothing new to do). */
  ok: 0,
  /** The upload was refused, or the command failed (unknown model or version, S3 error). */
  failed: 1,
  /** The command line is wrong (unknown option, missing argument, bad model name, unreadable file). */
  usage: 2,
  /** `upload --wait` saw no outcome before `--timeout`. */
  timedOut: 3,
} as const;

/** A wrong command line; the usage is printed after the message. */
export class UsageError extends Error {
  public readonly exitCode = EXIT_CODES.usage;

  public constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'UsageError';
  }
}

/** A command that could not do its job for a reason the user can act on (the message says which). */
export class CommandFailedError extends Error {
  public readonly exitCode = EXIT_CODES.failed;

  public constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CommandFailedError';
  }
}
