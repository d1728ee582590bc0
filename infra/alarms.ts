/**
 * Alarms shared by the service's functions, built one way so that every alarm notifies the same action.
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { acknowledge } from './nag.js';
import type { ServiceFunction } from './service-function.js';

/** Props of {@link AlarmTopic}: an e-mail address, or an existing topic's ARN. */
export interface AlarmTopicProps {
  /** Subscribed to a new topic (the address must confirm the subscription AWS sends it). */
  readonly email?: string;
  /** An existing SNS topic (say, wired to chat or paging) used as is. */
  readonly topicArn?: string;
}

/** Where every alarm of the service notifies: a new topic with an e-mail subscription, or an existing topic. */
export class AlarmTopic extends Construct {
  /** The topic alarms publish to. */
  public readonly topic: sns.ITopic;
  /** The alarm action to give every alarm. */
  public readonly action: cloudwatch.IAlarmAction;

  constructor(scope: Construct, id: string, props: AlarmTopicProps) {
    super(scope, id);
    if ((props.email === undefined) === (props.topicArn === undefined)) {
      throw new Error(
        `${this.node.path}: give exactly one of email (-c alarmEmail=...) or topicArn (-c alarmTopicArn=...)`,
      );
    }
    if (props.email !== undefined && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(props.email)) {
      throw new Error(`${this.node.path}: alarmEmail "${props.email}" is not an e-mail address`);
    }
    if (
      props.topicArn !== undefined &&
      !/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]+$/.test(props.topicArn)
    ) {
      throw new Error(
        `${this.node.path}: alarmTopicArn "${props.topicArn}" is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)`,
      );
    }
    if (props.topicArn !== undefined) {
      this.topic = sns.Topic.fromTopicArn(this, 'Topic', props.topicArn);
    } else {
      const topic = new sns.Topic(this, 'Topic', { displayName: 'onnx-serverless alarms', enforceSSL: true });
      topic.addSubscription(new subscriptions.EmailSubscription(props.email as string));
      acknowledge(
        topic,
        ['SNS2'],
        'Alarm notifications carry no model or request data; CloudWatch cannot publish to a topic encrypted with the ' +
          'AWS-managed SNS key, and a customer key would cost more than the alarms. Bring a topic with -c alarmTopicArn.',
      );
      this.topic = topic;
    }
    this.action = new actions.SnsAction(this.topic);
  }
}

/** An alarm on any error of a shared function in five minutes, as a child of the function's construct. */
export function functionErrorsAlarm(fn: ServiceFunction, action?: cloudwatch.IAlarmAction): cloudwatch.Alarm {
  const alarm = new cloudwatch.Alarm(fn, 'ErrorsAlarm', {
    alarmDescription: `${fn.node.id.toLowerCase()}: function errors`,
    metric: fn.function.metricErrors({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM }),
    threshold: 1,
    evaluationPeriods: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  });
  if (action !== undefined) alarm.addAlarmAction(action);
  return alarm;
}
