/**
 * The `register` handler as a factory over a {@link Runtime}: the entry file `register.ts` builds it from the
 * environment at init; tests and the local runtime build it with their own. (The HTTP-facing handlers are in
 * `http-handlers.ts`; keeping registration apart keeps the ONNX protobuf schema out of their bundles.)
 */
import type { S3Event } from 'aws-lambda';
import {
  reconcileUploads,
  registerUpload,
  uploadModel,
  type RegistrationOptions,
  type RegistrationOutcome,
} from '../core/registration.js';
import { isValidModelName } from '../core/catalog.js';
import type { Observability } from '../wiring/observability.js';
import type { Runtime } from '../wiring/runtime.js';

/** The `register` handler's answer: one outcome per record, then those of the pending uploads it reconciled. */
export interface RegisterResult {
  readonly outcomes: readonly RegistrationOutcome[];
  /** Earlier uploads of the same models that had no outcome yet (their event was lost), registered now. */
  readonly reconciled?: readonly RegistrationOutcome[];
}

/** Registration's dependencies and settings from the runtime. */
export function registrationOptions(runtime: Runtime): RegistrationOptions {
  return {
    store: runtime.store,
    repository: runtime.repository,
    sessionFactory: runtime.registrationSessionFactory,
    sessionOptions: runtime.config.sessionOptions,
    maxModelBytes: runtime.config.maxModelBytes,
    maxGraphBytes: runtime.config.maxGraphBytes,
    limits: runtime.config.limits,
    catalogPreprocess: runtime.config.catalogPreprocess,
    catalogRollout: runtime.config.catalogRollout,
    ...(runtime.config.faultKillAfterStep === undefined
      ? {}
      : { afterStep: killAfter(runtime.config.faultKillAfterStep) }),
  };
}

/**
 * The crash tests' fault (`FAULT_KILL_AFTER_REGISTRATION_STEP`): the process dies at `step` as under `kill -9`, with
 * no chance to clean up, so that the next start or event must finish what it left.
 */
function killAfter(step: string): (reached: string) => void {
  return (reached) => {
    if (reached === step) process.kill(process.pid, 'SIGKILL');
  };
}

/** The S3 object key of a notification record, decoded as S3 encodes it (`+` for spaces, then percent-encoding). */
export function decodeS3Key(key: string): string {
  return decodeURIComponent(key.replace(/\+/g, ' '));
}

/**
 * The `register` handler: every record is registered or refused on its own; if storage failed for any record
 * the invocation fails after the others are done, so that S3's retry delivers it again (registration is
 * idempotent: a file already registered is a duplicate, not a new version).
 */
export function createRegisterHandler(runtime: Runtime, observability: Observability) {
  // Uploads whose events this process is handling now: never reconciled by another event meanwhile (two
  // concurrent uploads would otherwise each register the other's, and both events end as duplicates).
  const inFlight = new Set<string>();
  return async (event: S3Event): Promise<RegisterResult> => {
    observability.takeColdStart();
    const keys = (event.Records ?? []).map((record) => decodeS3Key(record.s3.object.key));
    for (const key of keys) inFlight.add(key);
    const outcomes: RegistrationOutcome[] = [];
    const failures: unknown[] = [];
    const reconciled: RegistrationOutcome[] = [];
    try {
      // The event of a model is also the moment to finish what a crash, timeout or restart left of its earlier
      // uploads: each gets its version or its rejection (deployed, no other process would). Done first, so that the
      // event's own outcome is the last thing written and the handler returns right after it.
      const models = new Set(keys.map(uploadModel).filter((m): m is string => m !== undefined && isValidModelName(m)));
      for (const model of models) {
        const result = await reconcileUploads(registrationOptions(runtime), model, inFlight).catch((error: unknown) => {
          observability.logger.error('could not list pending uploads; the next event of the model retries', {
            model,
            error: error as Error,
          });
          return { outcomes: [], failures: [] };
        });
        reconciled.push(...result.outcomes);
        for (const outcome of result.outcomes) observability.logger.info('pending upload reconciled', { ...outcome });
        for (const { key, error } of result.failures) {
          observability.logger.error('pending upload still pending; the next event of its model retries it', {
            key,
            error: error as Error,
          });
        }
      }
      for (const key of keys) {
        try {
          const outcome = await registerUpload(key, registrationOptions(runtime));
          outcomes.push(outcome);
          observability.logger.info('upload processed', { ...outcome });
          observability.metrics.addMetric(`Upload_${outcome.kind}`, 'Count', 1);
        } catch (error) {
          failures.push(error);
          observability.logger.error('registration failed; the event will be retried', { key, error: error as Error });
        }
      }
    } finally {
      for (const key of keys) inFlight.delete(key);
      observability.flush();
    }
    if (failures.length > 0) {
      throw new Error(`${failures.length} of ${event.Records?.length ?? 0} uploads could not be processed`, {
        cause: failures[0],
      });
    }
    return { outcomes, ...(reconciled.length === 0 ? {} : { reconciled }) };
  };
}
