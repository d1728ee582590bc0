/**
 * Whether a front streams answers, in one place: the infer functions' `RESPONSE_STREAMING`, the REST integrations'
 * `responseTransferMode` (with it, CDK's LambdaIntegration calls `InvokeWithResponseStream`, the
 * `2021-11-15/.../response-streaming-invocations` URI) and a function URL's `invokeMode` all follow from
 * {@link frontStreams}, so the handler never streams where the front buffers, nor the reverse.
 */
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { ENV } from './constants.js';

export { frontStreams } from '../functions/core/fronts.js';

/** The environment an infer function gets where its front streams (nothing where it buffers: the default). */
export function streamingEnvironment(streams: boolean): Record<string, string> {
  return streams ? { [ENV.responseStreaming]: 'true' } : {};
}

/**
 * The REST integration options of a front that does or does not stream: `STREAM` where it streams; nothing where it
 * buffers, so that a stack without streaming keeps the template it had (BUFFERED is API Gateway's default).
 */
export function restIntegrationOptions(streams: boolean): Pick<apigw.LambdaIntegrationOptions, 'responseTransferMode'> {
  return streams ? { responseTransferMode: apigw.ResponseTransferMode.STREAM } : {};
}

/** A function URL's invoke mode for a front that does or does not stream. */
export function functionUrlInvokeMode(streams: boolean): lambda.InvokeMode {
  return streams ? lambda.InvokeMode.RESPONSE_STREAM : lambda.InvokeMode.BUFFERED;
}
