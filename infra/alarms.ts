/**
 * Alarms shared by the service's functions, built one way so that every alarm notifies the same action.
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type { ServiceFunction } from './service-function.js';

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
