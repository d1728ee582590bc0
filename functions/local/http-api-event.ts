/**
 * The payload format 2.0 event that an API Gateway HTTP API and a Lambda function URL send, built from a local
 * request as AWS documents it: `rawPath` and `rawQueryString` as sent, repeated headers and query parameters joined
 * with commas, `Cookie` headers moved to `cookies`, `requestContext.http`, the authorizer's identity, and the body
 * base64-encoded only when it is not text (or is compressed). Only what AWS sends is set; absent parts are left out.
 * @see https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
 * @see https://docs.aws.amazon.com/lambda/latest/dg/urls-invocation.html
 */
import type http from 'node:http';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { isBase64Body, type ApiFront } from '../core/fronts.js';
import { CONTROL_ROUTES, modelRoutes, type RouteSpec } from '../../infra/front-routes.js';
import type { FrontIdentity } from './front.js';

/** The routes an HTTP API matches a request against (a catalog model's literal routes select the same handler). */
const HTTP_API_ROUTES: readonly RouteSpec[] = [...CONTROL_ROUTES, ...modelRoutes('{model}')];

/** Local stand-ins for the ids AWS puts in the request context. */
const LOCAL_IDS = { accountId: '000000000000', apiId: 'local' } as const;

/** The `$default` route key and stage, or the matched HTTP API route with its decoded path parameters. */
function matchRoute(
  front: ApiFront,
  method: string,
  path: string,
): { routeKey: string; pathParameters?: Record<string, string> } {
  if (front === 'url') return { routeKey: '$default' };
  const segments = path.split('/');
  for (const route of HTTP_API_ROUTES) {
    if (route.method !== method) continue;
    const pattern = route.path.split('/');
    if (pattern.length !== segments.length) continue;
    const parameters: Record<string, string> = {};
    const matched = pattern.every((part, i) => {
      const segment = segments[i] ?? '';
      const name = /^\{(\w+)\}$/.exec(part)?.[1];
      if (name === undefined) return part === segment;
      if (segment === '') return false;
      parameters[name] = safeDecode(segment);
      return true;
    });
    if (matched) {
      return {
        routeKey: `${route.method} ${route.path}`,
        ...(Object.keys(parameters).length > 0 ? { pathParameters: parameters } : {}),
      };
    }
  }
  return { routeKey: '$default' };
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** `12/Mar/2020:19:03:58 +0000`, the request context's `time`. */
function clfTime(epochMs: number): string {
  const d = new Date(epochMs);
  const month = d.toLocaleString('en-US', { month: 'short', timeZone: 'UTC' });
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(d.getUTCDate())}/${month}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
}

/** The authorizer part of the request context for the identity the front authenticated. */
function authorizerOf(identity: FrontIdentity): Record<string, unknown> | undefined {
  switch (identity.kind) {
    case 'jwt':
      return { jwt: { claims: identity.claims, scopes: identity.scopes.length > 0 ? [...identity.scopes] : null } };
    case 'iam':
      return {
        iam: {
          accessKey: identity.accessKeyId,
          accountId: LOCAL_IDS.accountId,
          callerId: identity.accessKeyId,
          cognitoIdentity: null,
          principalOrgId: null,
          userArn: `arn:aws:iam::${LOCAL_IDS.accountId}:user/local-owner`,
          userId: identity.accessKeyId,
        },
      };
    default:
      return undefined;
  }
}

/** Builds the 2.0 event `front` (`http` or `url`) sends for this request. */
export function toHttpApiEvent(
  request: http.IncomingMessage,
  body: Buffer,
  requestId: string,
  front: ApiFront,
  identity: FrontIdentity,
): APIGatewayProxyEventV2 {
  const target = request.url ?? '/';
  const question = target.indexOf('?');
  const rawPath = question < 0 ? target : target.slice(0, question);
  const rawQueryString = question < 0 ? '' : target.slice(question + 1).replace(/#.*$/, '');
  const headers: Record<string, string> = {};
  const cookies: string[] = [];
  for (let i = 0; i + 1 < request.rawHeaders.length; i += 2) {
    const name = (request.rawHeaders[i] ?? '').toLowerCase();
    const value = request.rawHeaders[i + 1] ?? '';
    if (name === 'cookie') {
      cookies.push(
        ...value
          .split(';')
          .map((c) => c.trim())
          .filter((c) => c !== ''),
      );
      continue;
    }
    headers[name] = headers[name] === undefined ? value : `${headers[name]},${value}`;
  }
  const query: Record<string, string> = {};
  for (const [name, value] of new URLSearchParams(rawQueryString)) {
    query[name] = query[name] === undefined ? value : `${query[name]},${value}`;
  }
  const method = (request.method ?? 'GET').toUpperCase();
  const { routeKey, pathParameters } = matchRoute(front, method, rawPath);
  const host = headers['host'] ?? 'localhost';
  const now = Date.now();
  const base64 = isBase64Body(front, headers['content-type'], headers['content-encoding']);
  const authorizer = authorizerOf(identity);
  const event = {
    version: '2.0',
    routeKey,
    rawPath,
    rawQueryString,
    ...(cookies.length > 0 ? { cookies } : {}),
    headers,
    ...(Object.keys(query).length > 0 ? { queryStringParameters: query } : {}),
    requestContext: {
      accountId: identity.kind === 'iam' ? LOCAL_IDS.accountId : 'anonymous',
      apiId: LOCAL_IDS.apiId,
      ...(authorizer === undefined ? {} : { authorizer }),
      domainName: host,
      domainPrefix: host.split('.')[0] ?? host,
      http: {
        method,
        path: rawPath,
        protocol: `HTTP/${request.httpVersion}`,
        sourceIp: request.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId,
      routeKey,
      stage: '$default',
      time: clfTime(now),
      timeEpoch: now,
    },
    ...(body.length > 0 ? { body: base64 ? body.toString('base64') : body.toString('utf8') } : {}),
    ...(pathParameters === undefined ? {} : { pathParameters }),
    isBase64Encoded: body.length > 0 && base64,
  };
  return event as APIGatewayProxyEventV2;
}
