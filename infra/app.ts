/**
 * The CDK app (`cdk.json` runs it with tsx). Synthesizes offline: no context lookups, and the account and region
 * are optional (`CDK_DEFAULT_ACCOUNT`/`CDK_DEFAULT_REGION`, set by the CLI when credentials are configured).
 *
 * Context (`cdk synth -c key=value`): `stackName` (default `OnnxServerless`), `authorization` (`api-key`, the
 * default, or `iam`), `runtime` (`nodejs24.x`, the default, or `nodejs22.x`), `alarmEmail` or `alarmTopicArn`
 * (where every alarm notifies), `subnetIds` and `securityGroupIds` (comma-separated; the network of Managed
 * Instances, else the stack creates a small VPC), `powertoolsTracer` and
 * `sourceMapStackTraces` (`true`; both off by default).
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { DEFAULT_MODELS_DIR, loadCatalog } from './catalog-loader.js';
import type { NodeRuntime } from './lambda-runtime.js';
import { OnnxServerlessStack, type ApiAuthorization } from './onnx-serverless-stack.js';

const app = new App();
/** A comma-separated context value as a list. */
const list = (key: string): string[] | undefined => {
  const value = app.node.tryGetContext(key) as unknown;
  return value === undefined
    ? undefined
    : String(value)
        .split(',')
        .map((v) => v.trim())
        .filter((v) => v !== '');
};
const account = process.env['CDK_DEFAULT_ACCOUNT'];
const region = process.env['CDK_DEFAULT_REGION'];
new OnnxServerlessStack(app, String(app.node.tryGetContext('stackName') ?? 'OnnxServerless'), {
  ...(account === undefined && region === undefined ? {} : { env: { account, region } }),
  // The catalog is read here, once: the stack and its constructs take parsed entries.
  models: loadCatalog(DEFAULT_MODELS_DIR),
  modelsDir: DEFAULT_MODELS_DIR,
  authorization: (app.node.tryGetContext('authorization') ?? 'api-key') as ApiAuthorization,
  ...(app.node.tryGetContext('runtime') === undefined
    ? {}
    : { runtime: String(app.node.tryGetContext('runtime')) as NodeRuntime }),
  ...(app.node.tryGetContext('alarmEmail') === undefined
    ? {}
    : { alarmEmail: String(app.node.tryGetContext('alarmEmail')) }),
  ...(app.node.tryGetContext('alarmTopicArn') === undefined
    ? {}
    : { alarmTopicArn: String(app.node.tryGetContext('alarmTopicArn')) }),
  powertoolsTracer: String(app.node.tryGetContext('powertoolsTracer')) === 'true',
  sourceMapStackTraces: String(app.node.tryGetContext('sourceMapStackTraces')) === 'true',
  description: 'onnx-serverless: ONNX models as KServe V2 inference endpoints on AWS Lambda',
  ...(list('subnetIds') === undefined ? {} : { managedInstancesSubnetIds: list('subnetIds') }),
  ...(list('securityGroupIds') === undefined ? {} : { managedInstancesSecurityGroupIds: list('securityGroupIds') }),
});
// Every synth (and so every deploy) is checked against the AWS Solutions rules; unacknowledged errors fail it.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
