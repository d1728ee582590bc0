/**
 * The front door `npm start` emulates (`FRONT=rest|http|url`, `FRONT_AUTH=api-key|iam|jwt|none`): which front's
 * limits and event format the local gateway applies (see `FRONT_PROFILES`), and how it authenticates callers as that
 * front would: an API key in `x-api-key` (REST), SigV4 with the printed owner key pair (IAM: `execute-api` for the
 * REST and HTTP APIs, `lambda` for function URLs; verified by the embedded S3 server's own verifier), or a bearer JWT
 * signed by a local issuer key (HTTP API; RS256, as HTTP API JWT authorizers require). Refusals carry a reason:
 * 403 for a missing or wrong key or signature, 401 for a JWT, as the deployed fronts answer.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { generateKeyPair, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import type { SigningCredentials } from '../adapters/aws-signing.js';
import { ENV } from '../core/contract.js';
import {
  FRONT_PROFILES,
  resolveFrontAuth,
  type ApiFront,
  type FrontAuthorization,
  type FrontProfile,
} from '../core/fronts.js';
import { SignatureError, verifySigV4 } from './s3-sigv4.js';

/** What to emulate; everything optional. */
export interface LocalFrontOptions {
  /** @default 'rest' */
  readonly api?: ApiFront;
  /**
   * How callers authenticate. Locally the default is `none`, so `npm start` stays open on loopback as before; set
   * the deployed front's authentication to rehearse it.
   * @default 'none'
   */
  readonly authorization?: FrontAuthorization;
  /** The key `x-api-key` must carry with `api-key`. @default a random key, printed at start */
  readonly apiKey?: string;
  /** The `iss` the local JWTs carry and the gateway requires. @default {@link LOCAL_JWT_ISSUER} */
  readonly jwtIssuer?: string;
  /** The `aud` the gateway requires. @default {@link LOCAL_JWT_AUDIENCE} */
  readonly jwtAudience?: string;
}

/** The local issuer's `iss` unless `FRONT_JWT_ISSUER` says otherwise. */
export const LOCAL_JWT_ISSUER = 'https://local-issuer.onnx-serverless.invalid';
/** The audience local JWTs are for unless `FRONT_JWT_AUDIENCE` says otherwise. */
export const LOCAL_JWT_AUDIENCE = 'onnx-serverless';

/** Who a request was authenticated as, for the event's request context. */
export type FrontIdentity =
  | { readonly kind: 'none' }
  | { readonly kind: 'api-key'; readonly apiKey: string }
  | { readonly kind: 'iam'; readonly accessKeyId: string }
  | { readonly kind: 'jwt'; readonly claims: JWTPayload; readonly scopes: readonly string[] };

/** A request the front refuses: the status and reason it answers with. */
export interface FrontRefusal {
  readonly statusCode: 401 | 403;
  readonly message: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** The local issuer of {@link LocalFront.jwt}. */
export interface LocalJwtIssuer {
  readonly issuer: string;
  readonly audience: string;
  /**
   * A token signed by the local issuer key. Tests override claims to get refused tokens: another `iss` or `aud`,
   * an `exp` in the past.
   */
  issueToken(claims?: JWTPayload, expiresInSeconds?: number): Promise<string>;
}

/** The emulated front. */
export interface LocalFront {
  readonly api: ApiFront;
  readonly authorization: FrontAuthorization;
  readonly profile: FrontProfile;
  /** With `api-key`: the key callers send as `x-api-key`. */
  readonly apiKey?: string;
  /** With `jwt`: the local issuer. */
  readonly jwt?: LocalJwtIssuer;
  /** With `iam`: the SigV4 service callers sign for (`execute-api` or `lambda`) and the region. */
  readonly sigV4?: { readonly service: string; readonly region: string };
  /** Authenticates a request whose whole body is `body`. */
  authenticate(request: IncomingMessage, body: Buffer): Promise<FrontIdentity | FrontRefusal>;
}

/** True for a refusal. */
export function isRefusal(result: FrontIdentity | FrontRefusal): result is FrontRefusal {
  return 'statusCode' in result;
}

/**
 * The front `npm start` emulates, from `FRONT`, `FRONT_AUTH`, `FRONT_API_KEY`, `FRONT_JWT_ISSUER` and
 * `FRONT_JWT_AUDIENCE`. Throws `FrontChoiceError` for a combination the front cannot serve.
 */
export function frontOptionsFromEnv(env: NodeJS.ProcessEnv): LocalFrontOptions {
  const api = env[ENV.front] ?? 'rest';
  const auth = env[ENV.frontAuth] ?? 'none';
  const { api: front, authorization } = resolveFrontAuth(api, auth);
  return {
    api: front,
    authorization,
    ...(env[ENV.frontApiKey] === undefined ? {} : { apiKey: env[ENV.frontApiKey] }),
    ...(env[ENV.frontJwtIssuer] === undefined ? {} : { jwtIssuer: env[ENV.frontJwtIssuer] }),
    ...(env[ENV.frontJwtAudience] === undefined ? {} : { jwtAudience: env[ENV.frontJwtAudience] }),
  };
}

/**
 * Builds the emulated front; `credentials` (the owner's key pair, printed by `npm start`) and `region` are what
 * SigV4 requests are checked against.
 */
export async function createLocalFront(
  options: LocalFrontOptions,
  credentials: SigningCredentials,
  region: string,
): Promise<LocalFront> {
  const { api, authorization } = resolveFrontAuth(options.api ?? 'rest', options.authorization ?? 'none');
  const profile = FRONT_PROFILES[api];
  const base = { api, authorization, profile };
  switch (authorization) {
    case 'none':
      return { ...base, authenticate: async () => ({ kind: 'none' }) };
    case 'api-key': {
      const apiKey = options.apiKey ?? randomBytes(20).toString('base64url');
      return { ...base, apiKey, authenticate: async (request) => checkApiKey(request, apiKey) };
    }
    case 'iam': {
      const service = api === 'url' ? 'lambda' : 'execute-api';
      return {
        ...base,
        sigV4: { service, region },
        authenticate: async (request, body) => checkSigV4(request, body, service, credentials),
      };
    }
    case 'jwt': {
      const issuer = await createIssuer(
        options.jwtIssuer ?? LOCAL_JWT_ISSUER,
        options.jwtAudience ?? LOCAL_JWT_AUDIENCE,
      );
      return { ...base, jwt: issuer, authenticate: (request) => issuer.check(request) };
    }
  }
}

function checkApiKey(request: IncomingMessage, apiKey: string): FrontIdentity | FrontRefusal {
  const sent = request.headers['x-api-key'];
  if (sent === apiKey) return { kind: 'api-key', apiKey };
  return {
    statusCode: 403,
    message:
      sent === undefined
        ? 'Forbidden: this front requires an API key: send it in the x-api-key header (npm start prints it)'
        : 'Forbidden: the x-api-key header is not a key of this API (npm start prints the key)',
  };
}

function checkSigV4(
  request: IncomingMessage,
  body: Buffer,
  service: string,
  credentials: SigningCredentials,
): FrontIdentity | FrontRefusal {
  try {
    const verified = verifySigV4(
      request,
      (id) => (id === credentials.accessKeyId ? credentials.secretAccessKey : undefined),
      Date.now(),
      { service, bodySha256: createHash('sha256').update(body).digest('hex') },
    );
    return { kind: 'iam', accessKeyId: verified.accessKeyId };
  } catch (error) {
    if (!(error instanceof SignatureError)) throw error;
    return {
      statusCode: 403,
      message:
        `Forbidden: ${error.message} This front requires SigV4 (service ${service}) with the key pair npm start ` +
        'prints.',
    };
  }
}

/** A local issuer, and the check an HTTP API JWT authorizer makes (issuer, audience, expiry, signature). */
async function createIssuer(
  issuer: string,
  audience: string,
): Promise<LocalJwtIssuer & { check(request: IncomingMessage): Promise<FrontIdentity | FrontRefusal> }> {
  // RS256: HTTP API JWT authorizers accept RSA keys only.
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const refuse = (reason: string): FrontRefusal => ({
    statusCode: 401,
    message: `Unauthorized: ${reason}`,
    headers: { 'www-authenticate': `Bearer error="invalid_token", error_description="${reason.replace(/"/g, "'")}"` },
  });
  return {
    issuer,
    audience,
    issueToken: (claims = {}, expiresInSeconds = 3600) =>
      new SignJWT({ scope: 'inference', ...claims })
        .setProtectedHeader({ alg: 'RS256', kid: 'local' })
        .setIssuer(typeof claims.iss === 'string' ? claims.iss : issuer)
        .setAudience(claims.aud ?? audience)
        .setIssuedAt()
        .setExpirationTime(
          typeof claims.exp === 'number' ? claims.exp : Math.floor(Date.now() / 1000) + expiresInSeconds,
        )
        .sign(privateKey),
    check: async (request) => {
      const header = request.headers.authorization;
      const token = /^Bearer\s+(\S+)$/i.exec(header ?? '')?.[1];
      if (token === undefined) {
        return refuse('this front requires a JWT: send Authorization: Bearer <token> (npm start prints one)');
      }
      try {
        const { payload } = await jwtVerify(token, publicKey, { issuer, audience, algorithms: ['RS256'] });
        const scope = typeof payload['scope'] === 'string' ? payload['scope'] : '';
        return { kind: 'jwt', claims: payload, scopes: scope.split(' ').filter((s) => s !== '') };
      } catch (error) {
        return refuse(`the JWT was refused: ${jwtReason(error, issuer, audience)}`);
      }
    },
  };
}

/** jose's failure, said as what to fix. */
function jwtReason(error: unknown, issuer: string, audience: string): string {
  const { code, claim } = error as { code?: string; claim?: string };
  if (code === 'ERR_JWT_EXPIRED') return 'it has expired (exp is in the past): get a new token';
  if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' && claim === 'iss') return `its issuer (iss) is not ${issuer}`;
  if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' && claim === 'aud') return `its audience (aud) is not ${audience}`;
  if (code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') return "its signature is not the issuer's";
  return `it is not a valid RS256 JWT of ${issuer} (${(error as Error).message})`;
}
