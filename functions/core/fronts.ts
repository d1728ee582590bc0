/**
 * The three front doors a deployment can put before the functions (`-c api=rest|http|url`), as plain data: what each
 * one's callers can authenticate with, the limits it imposes and the Lambda event format it sends. The CDK app
 * validates a deployment's choice against this table, and the local gateway of `npm start` emulates the chosen
 * front from the same table, so that what the deployed front refuses, `npm start` refuses too.
 *
 * Sources: API Gateway's REST and HTTP API quota pages, Lambda's quotas and function-URL pages.
 */
import { PLATFORM_LIMITS } from './platform-limits.js';

/** The front doors: an API Gateway REST API, an API Gateway HTTP API, or Lambda function URLs. */
export const API_FRONTS = ['rest', 'http', 'url'] as const;
/** A front door. */
export type ApiFront = (typeof API_FRONTS)[number];

/**
 * How callers authenticate: an API key with a usage plan (`x-api-key`), SigV4 (IAM), a JWT from an OpenID Connect
 * issuer (`Authorization: Bearer`), or not at all (`none`, only on explicit request).
 */
export const FRONT_AUTHORIZATIONS = ['api-key', 'iam', 'jwt', 'none'] as const;
/** A way callers authenticate. */
export type FrontAuthorization = (typeof FRONT_AUTHORIZATIONS)[number];

/** The Lambda event a front sends: API Gateway REST's 1.0 proxy event, or the 2.0 format. */
export type EventFormat = '1.0' | '2.0';

/** What a front is and imposes. */
export interface FrontProfile {
  /** Its name in prose. */
  readonly title: string;
  /** The payload format of the events its functions receive. */
  readonly eventFormat: EventFormat;
  /** Authentications it offers, the first being its default; `none` is allowed only when asked for. */
  readonly authorizations: readonly FrontAuthorization[];
  /** The largest request body it passes on (a larger one is a 413 before the function runs). */
  readonly maxRequestBodyBytes: number;
  /** How long it waits for the function's answer by default (then a 504 or, for a function URL, the function's timeout). */
  readonly timeoutSeconds: number;
  /**
   * Which bodies reach the function base64-encoded: `all` (REST with the binary media type `*\/*`), or `binary`
   * (every content type but text, JSON, XML and JavaScript, and every compressed body).
   */
  readonly base64Bodies: 'all' | 'binary';
}

/** Each front's profile. */
export const FRONT_PROFILES: Readonly<Record<ApiFront, FrontProfile>> = {
  rest: {
    title: 'API Gateway REST API',
    eventFormat: '1.0',
    authorizations: ['api-key', 'iam', 'none'],
    maxRequestBodyBytes: PLATFORM_LIMITS.apiGatewayMaxBodyBytes,
    // 29 s by default; a Regional REST API may raise it with a quota request (not emulated).
    timeoutSeconds: PLATFORM_LIMITS.apiGatewayTimeoutSeconds,
    base64Bodies: 'all',
  },
  http: {
    title: 'API Gateway HTTP API',
    eventFormat: '2.0',
    authorizations: ['iam', 'jwt', 'none'],
    maxRequestBodyBytes: PLATFORM_LIMITS.apiGatewayMaxBodyBytes,
    timeoutSeconds: 30,
    base64Bodies: 'binary',
  },
  url: {
    title: 'Lambda function URL',
    eventFormat: '2.0',
    authorizations: ['iam', 'none'],
    // A function URL has no gateway limit of its own: in BUFFERED mode the request is Lambda's 6 MB invoke payload.
    maxRequestBodyBytes: PLATFORM_LIMITS.lambdaRequestPayloadBytes,
    timeoutSeconds: 900,
    base64Bodies: 'binary',
  },
};

/** Why a front refuses an authentication, for the refusal's message. */
const NOT_OFFERED: Readonly<Record<ApiFront, Partial<Record<FrontAuthorization, string>>>> = {
  rest: {
    jwt: 'JWT authorizers belong to HTTP APIs: use -c api=http with jwtIssuer and jwtAudience',
  },
  http: {
    'api-key': 'HTTP APIs have no API keys or usage plans: use iam or jwt, or -c api=rest for API keys',
  },
  url: {
    'api-key': 'function URLs have no API keys: use iam, or -c api=rest for API keys',
    jwt: 'function URLs authenticate with IAM (SigV4) only: use -c api=http for JWT',
  },
};

/** A front and how its callers authenticate, checked by {@link resolveFrontAuth}. */
export interface FrontChoice {
  readonly api: ApiFront;
  readonly authorization: FrontAuthorization;
}

/** Thrown for a front and authentication that cannot go together; the message says what to change. */
export class FrontChoiceError extends Error {
  public constructor(message: string) {
    super(message);
    this.name = 'FrontChoiceError';
  }
}

/**
 * The front's authentication: the one asked for, or the front's default. Throws {@link FrontChoiceError} naming
 * what to change for a combination the front cannot serve.
 */
export function resolveFrontAuth(api: string, authorization?: string): FrontChoice {
  if (!(API_FRONTS as readonly string[]).includes(api)) {
    throw new FrontChoiceError(`api "${api}" is not a front: use ${API_FRONTS.join(', ')}`);
  }
  const front = api as ApiFront;
  const profile = FRONT_PROFILES[front];
  const chosen = authorization ?? profile.authorizations[0];
  if (!(FRONT_AUTHORIZATIONS as readonly string[]).includes(chosen ?? '')) {
    throw new FrontChoiceError(
      `authorization "${authorization}" is not known: use ${profile.authorizations.join(', ')} with api=${front}`,
    );
  }
  const auth = chosen as FrontAuthorization;
  if (!profile.authorizations.includes(auth)) {
    throw new FrontChoiceError(
      `api=${front} cannot use authorization=${auth}: ${NOT_OFFERED[front][auth] ?? 'not offered'}`,
    );
  }
  return { api: front, authorization: auth };
}

/**
 * True when `front` streams answers under the `-c streaming` setting (`RESPONSE_STREAMING` locally): a function URL
 * streams unless told not to (`RESPONSE_STREAM` costs nothing more and lifts the 6 MB limit to 200 MB); a REST API
 * only when asked, since streaming turns off its response caching and content encoding; an HTTP API cannot stream.
 * One decision for the CDK app and `npm start`.
 * @throws FrontChoiceError for `streaming: true` on an HTTP API, naming the fronts that can
 */
export function frontStreams(front: ApiFront, streaming?: boolean): boolean {
  if (front === 'http') {
    if (streaming === true) {
      throw new FrontChoiceError(
        '-c streaming=true (RESPONSE_STREAMING=true locally): HTTP APIs cannot stream answers; use -c api=url or ' +
          '-c api=rest with it',
      );
    }
    return false;
  }
  return streaming ?? front === 'url';
}

/** Content types whose bodies HTTP APIs and function URLs pass as text (unless compressed); all else is base64. */
const TEXT_CONTENT_TYPE = /^\s*(text\/[^;]*|application\/([\w.+-]*\+)?(json|xml|javascript))\s*(;|$)/i;

/** Whether `front` sends this body base64-encoded to the function. */
export function isBase64Body(front: ApiFront, contentType?: string, contentEncoding?: string): boolean {
  if (FRONT_PROFILES[front].base64Bodies === 'all') return true;
  if (contentEncoding !== undefined && contentEncoding !== '' && contentEncoding !== 'identity') return true;
  return !TEXT_CONTENT_TYPE.test(contentType ?? '');
}
