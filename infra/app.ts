/**
 * The CDK app (`cdk.json` runs it with tsx). Synthesizes offline: no context lookups, and the account and region
 * are optional (`CDK_DEFAULT_ACCOUNT`/`CDK_DEFAULT_REGION`, set by the CLI when credentials are configured).
 *
 * Context (`cdk synth -c key=value`): the options of `CONTEXT_OPTIONS` in `service-app.ts` (the README's table).
 * Every synth fails on CloudFormation validation findings and on unacknowledged cdk-nag AwsSolutions errors.
 */
import { addServiceStack, createServiceApp } from './service-app.js';

addServiceStack(createServiceApp());
