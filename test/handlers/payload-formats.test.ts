import type {
  APIGatewayProxyEvent,
  APIGatewayProxyEventV2,
  APIGatewayProxyResult,
  APIGatewayProxyStructuredResultV2,
  LambdaFunctionURLEvent,
} from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import {
  fromApiGatewayEvent,
  payloadFormatOf,
  toApiGatewayResult,
  type ApiGatewayResult,
} from '../../functions/transport/http.js';

// Both answer shapes must be what API Gateway and function URLs accept: checked by the compiler.
const asRest = (result: ApiGatewayResult): APIGatewayProxyResult => result;
const asV2 = (result: ApiGatewayResult): APIGatewayProxyStructuredResultV2 => result;

const body = Buffer.from([0, 1, 2, 250, 255]);

/** One request as API Gateway REST (payload 1.0) delivers it. */
const rest: APIGatewayProxyEvent = {
  resource: '/v2/models/{m}/infer',
  path: '/v2/models/my%20model/infer',
  httpMethod: 'POST',
  // Payload 1.0 keeps the last value of a repeated header here, all of them in multiValueHeaders.
  headers: { 'Content-Type': 'application/octet-stream', 'X-Trace': 'b', Cookie: 'a=1; b=2' },
  multiValueHeaders: { 'Content-Type': ['application/octet-stream'], 'X-Trace': ['a', 'b'], Cookie: ['a=1; b=2'] },
  queryStringParameters: { tag: 'y', q: 'a b' },
  multiValueQueryStringParameters: { tag: ['x', 'y'], q: ['a b'] },
  pathParameters: { m: 'my model' },
  stageVariables: null,
  body: body.toString('base64'),
  isBase64Encoded: true,
  requestContext: { requestId: 'r-1', stage: 'prod' } as APIGatewayProxyEvent['requestContext'],
};

/** The same request as an HTTP API or a function URL (payload 2.0) delivers it. */
const v2: APIGatewayProxyEventV2 = {
  version: '2.0',
  routeKey: '$default',
  rawPath: '/v2/models/my%20model/infer',
  rawQueryString: 'tag=x&tag=y&q=a%20b',
  cookies: ['a=1', 'b=2'],
  // Payload 2.0 joins a repeated header with commas and leaves cookies out of the headers.
  headers: { 'content-type': 'application/octet-stream', 'x-trace': 'a,b' },
  queryStringParameters: { tag: 'x,y', q: 'a b' },
  body: body.toString('base64'),
  isBase64Encoded: true,
  requestContext: {
    requestId: 'r-1',
    // Decoded: a client's %2F would read as a path separator here, which is why the handlers read rawPath.
    http: { method: 'POST', path: '/v2/models/my model/infer', protocol: 'HTTP/1.1', sourceIp: '', userAgent: '' },
  } as APIGatewayProxyEventV2['requestContext'],
};

describe('payload formats 1.0 and 2.0', () => {
  it('normalise to the same request: method, raw path, query, headers, cookies and base64 body', () => {
    const fromRest = fromApiGatewayEvent(rest, 'fallback');
    const fromV2 = fromApiGatewayEvent(v2, 'fallback');

    expect(fromV2).toEqual(fromRest);
    expect(fromRest).toEqual({
      method: 'POST',
      path: '/v2/models/my%20model/infer',
      query: [
        ['tag', 'x'],
        ['tag', 'y'],
        ['q', 'a b'],
      ],
      headers: { 'content-type': 'application/octet-stream', 'x-trace': 'a,b', cookie: 'a=1; b=2' },
      body: new Uint8Array(body),
      requestId: 'r-1',
    });
  });

  it('reads a function URL event (the same type) and a plain-text body', () => {
    const url: LambdaFunctionURLEvent = {
      ...v2,
      rawQueryString: '',
      cookies: undefined,
      body: '{"inputs":[]}',
      isBase64Encoded: false,
    };

    const request = fromApiGatewayEvent(url, 'fallback');

    expect(payloadFormatOf(url)).toBe('2.0');
    expect(payloadFormatOf(rest)).toBe('1.0');
    expect(new TextDecoder().decode(request.body)).toBe('{"inputs":[]}');
    expect(request.query).toEqual([]);
    expect(request.headers['cookie']).toBeUndefined();
  });

  it('answers each format in its own shape: cookies in multiValueHeaders for 1.0, in cookies for 2.0', () => {
    const response = {
      statusCode: 200,
      headers: { 'content-type': 'application/octet-stream' },
      cookies: ['s=1; Secure', 't=2'],
      body: new Uint8Array(body),
    };

    const one = asRest(toApiGatewayResult(response, '1.0'));
    const two = asV2(toApiGatewayResult(response, '2.0'));

    expect(one).toEqual({
      statusCode: 200,
      headers: { 'content-type': 'application/octet-stream' },
      multiValueHeaders: { 'set-cookie': ['s=1; Secure', 't=2'] },
      body: body.toString('base64'),
      isBase64Encoded: true,
    });
    expect(two).toEqual({
      statusCode: 200,
      headers: { 'content-type': 'application/octet-stream' },
      cookies: ['s=1; Secure', 't=2'],
      body: body.toString('base64'),
      isBase64Encoded: true,
    });
    expect(toApiGatewayResult({ ...response, cookies: [] }, '2.0')).not.toHaveProperty('multiValueHeaders');
  });
});
