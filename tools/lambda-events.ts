/**
 * Lambda events as AWS sends them, for tests that call handlers directly: API Gateway REST (payload 1.0) and S3
 * ObjectCreated notifications.
 */
import type { APIGatewayProxyEvent, S3Event } from 'aws-lambda';
import { objectCreatedEvent } from '../functions/local/s3-event.js';

/** What varies between the REST API events of the tests. */
export interface RestEventParts {
  readonly method?: string;
  readonly path: string;
  /** `null` as a misconfigured integration might send. */
  readonly headers?: Record<string, string> | null;
  /** A binary body is sent base64-encoded, as API Gateway does with the binary media type `*\/*`. */
  readonly body?: Uint8Array | string | null;
  /** Overrides the flag (a string body sent as-is, claiming base64, and so on). */
  readonly isBase64Encoded?: boolean;
  readonly requestId?: string;
  readonly stage?: string;
}

/** An API Gateway REST API proxy event. */
export function restApiEvent(parts: RestEventParts): APIGatewayProxyEvent {
  const method = parts.method ?? 'POST';
  const binary = parts.body instanceof Uint8Array;
  const body = parts.body instanceof Uint8Array ? Buffer.from(parts.body).toString('base64') : (parts.body ?? null);
  return {
    resource: '/{proxy+}',
    path: parts.path,
    httpMethod: method,
    headers: parts.headers === undefined ? {} : (parts.headers as APIGatewayProxyEvent['headers']),
    multiValueHeaders: {},
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    body,
    isBase64Encoded: parts.isBase64Encoded ?? binary,
    requestContext: {
      requestId: parts.requestId ?? 'test-request',
      stage: parts.stage ?? 'prod',
      httpMethod: method,
      path: `/${parts.stage ?? 'prod'}${parts.path}`,
    } as APIGatewayProxyEvent['requestContext'],
  };
}

/**
 * An S3 ObjectCreated notification with one record per key, each record built by the embedded S3 server's own
 * {@link objectCreatedEvent}, so keys are encoded exactly as S3 encodes them (spaces as `+`).
 */
export function s3Event(keys: readonly string[]): S3Event {
  return {
    Records: keys.flatMap(
      (key, i) =>
        objectCreatedEvent({
          eventName: 'ObjectCreated:Put',
          region: 'us-east-1',
          bucket: 'models',
          key,
          size: 1,
          eTag: 'e',
          sequencer: String(i + 1),
          sourceIp: '127.0.0.1',
        }).Records,
    ),
  };
}
