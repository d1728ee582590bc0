/**
 * The props every construct that hosts one of the service functions takes: where models live, the onnxruntime layer
 * (whose architecture the function takes), and how the function runs, logs and alarms.
 */
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type { NodeRuntime } from './lambda-runtime.js';
import type { OnnxruntimeLayer } from './onnxruntime-layer.js';

/** Props shared by the register function's construct (Registrar) and the shared infer endpoint (SharedModelEndpoint). */
export interface HostedFunctionProps {
  /** The model repository; the function gets exactly its rights of `function-grants.ts` on it. */
  readonly bucket: s3.IBucket;
  /** The onnxruntime layer; the function runs on its architecture. */
  readonly layer: OnnxruntimeLayer;
  /** The Node.js runtime. @default 'nodejs24.x' */
  readonly runtime?: NodeRuntime;
  /**
   * Retention of the function's logs.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Where the function's alarms notify.
   * @default none: the alarms still show in CloudWatch
   */
  readonly alarmAction?: cloudwatch.IAlarmAction;
}
