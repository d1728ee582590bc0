/**
 * Whether a front streams answers, in one place: the infer functions' `RESPONSE_STREAMING`, the REST integrations'
 * `responseTransferMode` (with it, CDK's LambdaIntegration calls `InvokeWithResponseStream`, the
 * `2021-11-15/.../response-streaming-invocations` URI) and a function URL's `invokeMode` all follow from
 * {@link frontStreams}, so the handler never streams where the front buffers, nor the reverse.
 */
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { ApiFront } from '../functions/core/fronts.js';
import { ENV } from './constants.js';

/**
 * True when `front` streams answers under the `-c streaming` setting: a function URL streams unless told not to
 * (`RESPONSE_STREAM` costs nothing more and lifts the 6 MB limit to 200 MB); a REST API only when asked, since
 * streaming turns off its response caching and content encoding; an HTTP API cannot stream.
 * @throws Error for `streaming: true` on an HTTP API, naming the fronts that can
 */
export function frontStreams(front: ApiFront, streaming?: boolean): boolean {
  if (front === 'http') {
    if (streaming === true) {
      throw new Error('-c streaming=true: HTTP APIs cannot stream answers; use -c api=url or -c api=rest with it');
    }
    return false;
  }
  return streaming ?? front === 'url';
}

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
