/**
 * Lambda entry point `rollout`: the guarded-rollout controller (docs/rollouts.md), called every minute by an
 * EventBridge rule. It judges each running rollout on the infer functions' per-version EMF metrics read back from
 * CloudWatch, writes its decision into the model's manifest (conditional write), and publishes rollbacks to the
 * stack's alarm topic (`ALARM_TOPIC_ARN`, when the stack has one).
 */
import { createCloudWatchFigures, createSnsNotifier } from '../adapters/rollout-aws.js';
import { createRolloutHandler } from '../transport/rollout-handler.js';
import { bootstrap } from '../wiring/bootstrap.js';
import { credentialsFromEnvironment } from '../wiring/config.js';
import { writableStoreFromConfig } from '../wiring/writable-store.js';

// It rewrites manifests (conditionally): the writable store, as register's.
const { config, runtime, observability } = await bootstrap('rollout', { store: writableStoreFromConfig });
const aws = { region: config.region, credentials: () => credentialsFromEnvironment() };
const { cloudwatch, sns } = config.serviceEndpoints;
const topic = config.alarmTopicArn;
const notify =
  topic === undefined
    ? undefined
    : createSnsNotifier(topic, { ...aws, ...(sns === undefined ? {} : { endpoint: sns }) });

/** The handler Lambda calls (the scheduled event's content is not read). */
export const handler = createRolloutHandler(runtime.repository, observability, {
  figures: createCloudWatchFigures({ ...aws, ...(cloudwatch === undefined ? {} : { endpoint: cloudwatch }) }),
  ...(notify === undefined
    ? {}
    : { publish: (notice) => (notice.outcome === 'rolled-back' ? notify(notice) : undefined) }),
});
