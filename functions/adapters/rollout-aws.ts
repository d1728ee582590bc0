/**
 * The deployed rollout controller's two AWS boundaries, as signed HTTPS requests (the pattern of `lambda-invoker.ts`:
 * no SDK client for a couple of calls): CloudWatch `GetMetricData` (AWS JSON 1.0 protocol) reads back the per-version
 * EMF figures of the infer functions, and SNS `Publish` (query protocol) tells the stack's alarm topic about a
 * rollback.
 */
import { METRICS_NAMESPACE } from '../core/contract.js';
import type { FigureSource, RolloutNotice } from '../core/rollout-controller.js';
import {
  VERSION_METRICS,
  type RolloutFigures,
  type RolloutState,
  type ShadowFigures,
  type VersionFigures,
} from '../core/rollout.js';
import { createAwsPoster, type AwsPoster } from './aws-request.js';
import type { CredentialsSource } from './aws-signing.js';

/** Where and as whom the calls go. */
export interface AwsEndpointOptions {
  readonly region: string;
  readonly credentials: () => CredentialsSource;
  /** The service endpoint, for tests. @default `https://<service>.<region>.amazonaws.com` */
  readonly endpoint?: string;
}

/** Posts to the root of `service`'s endpoint in `options.region` (or `options.endpoint`), where both APIs live. */
function posterFor(
  service: 'monitoring' | 'sns',
  options: AwsEndpointOptions,
): (headers: Record<string, string>, body: string) => ReturnType<AwsPoster> {
  const endpoint = options.endpoint ?? `https://${service}.${options.region}.amazonaws.com`;
  const post = createAwsPoster(service, endpoint, options.region, options.credentials);
  const path = new URL(endpoint).pathname || '/';
  return (headers, body) => post(path, headers, body);
}

/** One metric a query reads, and how. */
interface MetricQuery {
  readonly id: string;
  readonly metric: string;
  readonly stat: 'Sum' | 'SampleCount' | 'Maximum' | 'p99';
  readonly version: string;
  readonly service: string;
}

/**
 * The figures of a rollout from CloudWatch: the EMF metrics of `VERSION_METRICS` since the rollout started, for the
 * two services that can serve a model (its own function, named after it, and the shared `infer`): counts add up,
 * p99 and differences take the larger (a model is served by one of them at a time).
 */
export function createCloudWatchFigures(options: AwsEndpointOptions): FigureSource {
  const post = posterFor('monitoring', options);
  return {
    figures: async (model: string, rollout: RolloutState, now: number): Promise<RolloutFigures> => {
      const services = [model, 'infer'];
      const queries: MetricQuery[] = [];
      const add = (name: string, metric: string, stat: MetricQuery['stat'], version: string): void => {
        for (const [i, service] of services.entries()) {
          queries.push({ id: `${name}_${i}`, metric, stat, version, service });
        }
      };
      for (const [role, version] of [
        ['s', rollout.stable],
        ['c', rollout.candidate],
      ] as const) {
        add(`${role}req`, VERSION_METRICS.requests, 'Sum', version);
        add(`${role}err`, VERSION_METRICS.errors, 'Sum', version);
        add(`${role}p99`, VERSION_METRICS.latency, 'p99', version);
      }
      if (rollout.policy.strategy === 'shadow') {
        add('shn', VERSION_METRICS.shadowErrors, 'SampleCount', rollout.candidate);
        add('shf', VERSION_METRICS.shadowErrors, 'Sum', rollout.candidate);
        add('sha', VERSION_METRICS.shadowAbsDiff, 'Maximum', rollout.candidate);
        add('shr', VERSION_METRICS.shadowRelDiff, 'Maximum', rollout.candidate);
        add('sln', VERSION_METRICS.shadowLabelAgreement, 'SampleCount', rollout.candidate);
        add('sls', VERSION_METRICS.shadowLabelAgreement, 'Sum', rollout.candidate);
      }
      const start = Math.floor(Date.parse(rollout.started) / 60_000) * 60;
      const end = Math.ceil(now / 60_000) * 60 + 60;
      // One period over the whole window (a multiple of 60 s): one value per query.
      const period = Math.max(60, end - start);
      const body = JSON.stringify({
        StartTime: start,
        EndTime: end,
        ScanBy: 'TimestampDescending',
        MetricDataQueries: queries.map((q) => ({
          Id: q.id,
          ReturnData: true,
          MetricStat: {
            Metric: {
              Namespace: METRICS_NAMESPACE,
              MetricName: q.metric,
              Dimensions: [
                { Name: 'model', Value: model },
                { Name: 'service', Value: q.service },
                { Name: 'version', Value: q.version },
              ],
            },
            Period: period,
            Stat: q.stat,
          },
        })),
      });
      const answer = await post(
        {
          'content-type': 'application/x-amz-json-1.0',
          'x-amz-target': 'GraniteServiceVersion20100801.GetMetricData',
        },
        body,
      );
      if (answer.status !== 200) {
        throw new Error(`CloudWatch GetMetricData refused (HTTP ${answer.status}): ${answer.text.slice(0, 300)}`);
      }
      const results = (JSON.parse(answer.text) as { MetricDataResults?: { Id?: string; Values?: number[] }[] })
        .MetricDataResults;
      const values = new Map((results ?? []).map((r) => [r.Id ?? '', r.Values ?? []]));
      // A metric with no data point in the window comes back without a value: it counts 0.
      const sum = (name: string) => services.reduce((total, _, i) => total + (values.get(`${name}_${i}`)?.[0] ?? 0), 0);
      const max = (name: string): number | undefined => {
        const found = services.flatMap((_, i) => values.get(`${name}_${i}`)?.slice(0, 1) ?? []);
        return found.length === 0 ? undefined : Math.max(...found);
      };
      const version = (role: 's' | 'c'): VersionFigures => {
        const p99 = max(`${role}p99`);
        return { requests: sum(`${role}req`), errors: sum(`${role}err`), ...(p99 === undefined ? {} : { p99Ms: p99 }) };
      };
      const copies = sum('shn');
      const failed = sum('shf');
      const shadow: ShadowFigures | undefined =
        rollout.policy.strategy !== 'shadow' || copies === 0
          ? undefined
          : {
              compared: copies - failed,
              failed,
              maxAbsDiff: max('sha') ?? 0,
              maxRelDiff: max('shr') ?? 0,
              labelsCompared: sum('sln'),
              labelsAgreed: sum('sls'),
            };
      return { stable: version('s'), candidate: version('c'), ...(shadow === undefined ? {} : { shadow }) };
    },
  };
}

/**
 * Publishes a rollout notice to an SNS topic (the stack's alarm topic): subject and a JSON message with the
 * model, the versions and the reason. Rejects when SNS refuses it.
 */
export function createSnsNotifier(
  topicArn: string,
  options: AwsEndpointOptions,
): (notice: RolloutNotice) => Promise<void> {
  const post = posterFor('sns', options);
  return async (notice) => {
    const subject = `onnx-serverless: ${notice.model} rollout ${notice.outcome} (candidate ${notice.candidate})`;
    const form = new URLSearchParams({
      Action: 'Publish',
      Version: '2010-03-31',
      TopicArn: topicArn,
      // SNS subjects are at most 100 printable ASCII characters.
      Subject: subject.replace(/[^\x20-\x7e]/g, '?').slice(0, 100),
      Message: JSON.stringify(notice, null, 2),
    });
    const answer = await post({ 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }, form.toString());
    if (answer.status !== 200) {
      throw new Error(`SNS Publish refused (HTTP ${answer.status}): ${answer.text.slice(0, 300)}`);
    }
  };
}
