/**
 * The deployed rollout controller's AWS calls, against a loopback HTTP server standing in for CloudWatch and SNS
 * (AWS boundaries without a local server): what is sent (protocol headers, signature scope, the metric queries, the
 * published notice) and how the answers become the controller's figures.
 */
import { describe, expect, it } from 'vitest';
import { awsStandIn } from './aws-stand-in.js';
import { createCloudWatchFigures, createSnsNotifier } from '../../functions/adapters/rollout-aws.js';
import { startRollout } from '../../functions/core/rollout.js';

const credentials = () => ({ accessKeyId: 'AKID', secretAccessKey: 'secret' });

const canary = startRollout(
  { strategy: 'canary', percent: 10, bakingSeconds: 300, maxErrorRate: 0.05, minRequests: 10 },
  '1',
  '2',
  '2026-12-06T04:00:00.000Z',
);

describe('createCloudWatchFigures', () => {
  it("queries both services' per-version metrics since the rollout started and adds them up", async () => {
    // Prepare: the model's own function served 40 stable / 10 candidate requests, the shared one 5 stable.
    const values: Record<string, number> = {
      sreq_0: 40,
      sreq_1: 5,
      serr_0: 1,
      sp99_0: 12,
      sp99_1: 30,
      creq_0: 10,
      cerr_0: 3,
      cp99_0: 20,
    };
    const cloudwatch = await awsStandIn(200, (body) =>
      JSON.stringify({
        MetricDataResults: (JSON.parse(body) as { MetricDataQueries: { Id: string }[] }).MetricDataQueries.map((q) => ({
          Id: q.Id,
          StatusCode: 'Complete',
          Values: q.Id in values ? [values[q.Id]] : [],
        })),
      }),
    );
    const figures = createCloudWatchFigures({ region: 'eu-west-1', credentials, endpoint: cloudwatch.endpoint });

    // Act
    const result = await figures.figures('iris', canary, Date.parse('2026-12-06T04:07:30Z'));

    // Assess
    expect(result).toEqual({
      stable: { requests: 45, errors: 1, p99Ms: 30 },
      candidate: { requests: 10, errors: 3, p99Ms: 20 },
    });
    const [call] = cloudwatch.received;
    expect(call?.headers['x-amz-target']).toBe('GraniteServiceVersion20100801.GetMetricData');
    expect(call?.headers['content-type']).toBe('application/x-amz-json-1.0');
    expect(String(call?.headers.authorization)).toContain('/eu-west-1/monitoring/aws4_request');
    const sent = JSON.parse(call?.body ?? '{}');
    expect([sent.StartTime, sent.EndTime]).toEqual([
      Date.parse('2026-12-06T04:00:00Z') / 1000,
      Date.parse('2026-12-06T04:09:00Z') / 1000,
    ]);
    expect(sent.MetricDataQueries).toContainEqual({
      Id: 'cp99_1',
      ReturnData: true,
      MetricStat: {
        Metric: {
          Namespace: 'OnnxServerless',
          MetricName: 'VersionLatency',
          Dimensions: [
            { Name: 'model', Value: 'iris' },
            { Name: 'service', Value: 'infer' },
            { Name: 'version', Value: '2' },
          ],
        },
        Period: 540,
        Stat: 'p99',
      },
    });
  });

  it('says what CloudWatch answered when it refuses', async () => {
    // Prepare
    const cloudwatch = await awsStandIn(400, () => '{"__type":"AccessDeniedException","message":"no"}');
    const figures = createCloudWatchFigures({ region: 'eu-west-1', credentials, endpoint: cloudwatch.endpoint });

    // Act & Assess
    await expect(figures.figures('iris', canary, Date.now())).rejects.toThrow(
      'CloudWatch GetMetricData refused (HTTP 400): {"__type":"AccessDeniedException"',
    );
  });
});

describe('createSnsNotifier', () => {
  it('publishes the notice to the topic, signed for sns', async () => {
    // Prepare
    const sns = await awsStandIn(200, () => '<PublishResponse/>');
    const publish = createSnsNotifier('arn:aws:sns:eu-west-1:123456789012:alarms', {
      region: 'eu-west-1',
      credentials,
      endpoint: sns.endpoint,
    });
    const notice = {
      model: 'iris',
      outcome: 'rolled-back' as const,
      stable: '1',
      candidate: '2',
      weight: 0,
      reason: 'rolled back: candidate 2 failed 3 of 10 inferences (30%), over maxErrorRate 5%',
      at: '2026-12-06T04:07:30.000Z',
    };

    // Act
    await publish(notice);

    // Assess
    const form = new URLSearchParams(sns.received[0]?.body);
    expect(Object.fromEntries(form)).toEqual({
      Action: 'Publish',
      Version: '2010-03-31',
      TopicArn: 'arn:aws:sns:eu-west-1:123456789012:alarms',
      Subject: 'onnx-serverless: iris rollout rolled-back (candidate 2)',
      Message: JSON.stringify(notice, null, 2),
    });
    expect(String(sns.received[0]?.headers.authorization)).toContain('/eu-west-1/sns/aws4_request');
  });

  it('rejects when SNS refuses, so that the handler logs it', async () => {
    // Prepare
    const sns = await awsStandIn(
      403,
      () => '<ErrorResponse><Error><Code>AuthorizationError</Code></Error></ErrorResponse>',
    );
    const publish = createSnsNotifier('arn:aws:sns:eu-west-1:123456789012:alarms', {
      region: 'eu-west-1',
      credentials,
      endpoint: sns.endpoint,
    });

    // Act & Assess
    await expect(
      publish({ model: 'm', outcome: 'rolled-back', stable: '1', candidate: '2', weight: 0, reason: 'r', at: 'now' }),
    ).rejects.toThrow('SNS Publish refused (HTTP 403)');
  });
});
