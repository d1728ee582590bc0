/**
 * Where a batch job may read and write: S3 URIs parsed and checked against one rule, so that the route, the CLI,
 * the local engine and the deployed function refuse the same locations with the same message.
 *
 * The rule: input and output are prefixes (ending in `/`) of the model bucket under {@link BATCH_PREFIX}, not under
 * {@link BATCH_JOBS_PREFIX} (the job records), and neither contains the other (a job must never read its own
 * results as inputs). The grants (`infra/function-grants.ts`) give the batch function exactly `batch/`.
 */
import { BadRequestError } from '../errors.js';

/** The only prefix of the model bucket a batch job reads inputs from and writes results to. */
export const BATCH_PREFIX = 'batch/';
/** Where job records live (`batch/_jobs/<model>/<job-id>.json`); never an input or an output. */
export const BATCH_JOBS_PREFIX = `${BATCH_PREFIX}_jobs/`;

/** A parsed `s3://<bucket>/<prefix>/`. */
export interface S3Location {
  readonly bucket: string;
  /** The key prefix, ending in `/`. */
  readonly prefix: string;
}

/** The rule, as every refusal states it. */
export const BATCH_LOCATION_RULE =
  `input and output must be s3://<model bucket>/${BATCH_PREFIX}<folder>/ prefixes (ending in "/"), outside ` +
  `${BATCH_JOBS_PREFIX}, and neither inside the other`;

/**
 * Parses `uri` as `s3://<bucket>/<prefix>/`.
 * @throws BadRequestError naming the rule for anything else.
 */
export function parseS3Uri(uri: unknown, what: 'input' | 'output'): S3Location {
  const match = typeof uri === 'string' ? /^s3:\/\/([a-z0-9][a-z0-9.-]{1,62})\/(.*)$/.exec(uri) : null;
  if (match === null) {
    throw new BadRequestError(
      `${what} must be an S3 URI such as s3://models/${BATCH_PREFIX}in/; ${BATCH_LOCATION_RULE}`,
    );
  }
  return { bucket: match[1] as string, prefix: match[2] as string };
}

/**
 * Checks a job's input and output against the rule for the model bucket `bucket`.
 * @throws BadRequestError naming the rule and what broke it.
 */
export function checkBatchLocations(bucket: string, input: S3Location, output: S3Location): void {
  for (const [what, location] of [
    ['input', input],
    ['output', output],
  ] as const) {
    const refuse = (why: string) => {
      throw new BadRequestError(`${what} s3://${location.bucket}/${location.prefix} ${why}: ${BATCH_LOCATION_RULE}`);
    };
    if (location.bucket !== bucket) refuse(`is not in the model bucket "${bucket}"`);
    if (!location.prefix.startsWith(BATCH_PREFIX) || location.prefix.length <= BATCH_PREFIX.length) {
      refuse(`is not a folder under ${BATCH_PREFIX}`);
    }
    if (!location.prefix.endsWith('/')) refuse('does not end in "/"');
    if (location.prefix.startsWith(BATCH_JOBS_PREFIX)) refuse(`is under ${BATCH_JOBS_PREFIX}`);
    if (
      location.prefix.split('/').some((segment, i, all) => segment === '..' || (segment === '' && i < all.length - 1))
    ) {
      refuse('has an empty or ".." segment');
    }
  }
  if (input.prefix.startsWith(output.prefix) || output.prefix.startsWith(input.prefix)) {
    throw new BadRequestError(
      `input s3://${input.bucket}/${input.prefix} and output s3://${output.bucket}/${output.prefix} overlap: ` +
        BATCH_LOCATION_RULE,
    );
  }
}

/** The key of a job's record. */
export function jobRecordKey(model: string, jobId: string): string {
  return `${BATCH_JOBS_PREFIX}${model}/${jobId}.json`;
}

/** Job ids: what Step Functions accepts as an execution name, and safe in a key. */
export const JOB_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$/;
