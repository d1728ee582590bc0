/**
 * Who may do what on the embedded S3 server: the bucket owner (the printed key pair: the CLI, `aws s3 cp`) may do
 * anything, as an owner's credentials may on AWS; each function (a role) has its own key pair and may do exactly
 * what its deployed role's policy allows, evaluated by `iam-policy.ts` from the statements the stack deploys
 * (`infra/function-grants.ts`). Requests from web browsers are refused outright.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { PolicyStatementJson } from '../../infra/function-grants.js';
import { evaluatePolicy, type AccessRequest } from './iam-policy.js';
import { parseCopySource } from './s3-names.js';

/** A function's identity on the embedded server: a role name and its policy statements. */
export interface RolePolicy {
  /** e.g. `infer-iris`, `register`; shown in denial logs. */
  readonly role: string;
  readonly statements: readonly PolicyStatementJson[];
}

/** A key pair. */
export interface Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

/**
 * The bucket owner's key pair: full access, as an owner's credentials have on AWS. Fixed and printed (the values
 * s3rver used, so existing `aws configure` profiles keep working); not a secret, the server listens on loopback.
 */
export const OWNER_CREDENTIALS: Credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/** What a denial log line carries. */
export interface AccessDenial {
  readonly role: string;
  readonly action: string;
  readonly resource: string;
  readonly context: Readonly<Record<string, string>>;
  /** `explicit-deny` when a Deny statement matched, else no Allow did. */
  readonly reason: 'explicit-deny' | 'implicit-deny';
}

type Principal =
  | { readonly kind: 'owner'; readonly secret: string }
  | { readonly kind: 'role'; readonly secret: string; readonly policy: RolePolicy };

/** The key pairs the server accepts and the policy of each. */
export class AccessControl {
  private readonly principals = new Map<string, Principal>();
  private readonly roleCredentials = new Map<string, Credentials>();

  public constructor(owner: Credentials) {
    this.principals.set(owner.accessKeyId, { kind: 'owner', secret: owner.secretAccessKey });
  }

  /** Adds a role and returns its new key pair, random per server start: it exists only inside this process. */
  public addRole(policy: RolePolicy): Credentials {
    if (this.roleCredentials.has(policy.role)) throw new Error(`role "${policy.role}" is defined twice`);
    const credentials = {
      accessKeyId: `ROLE${randomBytes(8).toString('hex').toUpperCase()}`,
      secretAccessKey: randomBytes(30).toString('base64'),
    };
    this.principals.set(credentials.accessKeyId, { kind: 'role', secret: credentials.secretAccessKey, policy });
    this.roleCredentials.set(policy.role, credentials);
    return credentials;
  }

  /** Whether `role` has been added. */
  public hasRole(role: string): boolean {
    return this.roleCredentials.has(role);
  }

  /** The secret of a known access key id. */
  public secretFor(accessKeyId: string): string | undefined {
    return this.principals.get(accessKeyId)?.secret;
  }

  /** The key pair a function of `role` signs with. */
  public credentialsFor(role: string): Credentials {
    const credentials = this.roleCredentials.get(role);
    if (credentials === undefined) throw new Error(`the embedded S3 server has no role "${role}"`);
    return credentials;
  }

  /** The first of `requests` the signer of `accessKeyId` may not make, or `undefined` when all are allowed. */
  public check(accessKeyId: string, requests: readonly AccessRequest[]): AccessDenial | undefined {
    const principal = this.principals.get(accessKeyId);
    if (principal === undefined) throw new Error(`unknown access key id ${accessKeyId}`);
    if (principal.kind === 'owner') return undefined;
    for (const request of requests) {
      const decision = evaluatePolicy(principal.policy.statements, request);
      if (decision.effect !== 'allow') {
        return {
          role: principal.policy.role,
          action: request.action,
          resource: request.resource,
          context: request.context ?? {},
          reason: decision.effect,
        };
      }
    }
    return undefined;
  }
}

/** One line for a denial: action, resource, role and why. */
export function describeDenial(denial: AccessDenial): string {
  const context = Object.entries(denial.context)
    .map(([key, value]) => ` with ${key}=${JSON.stringify(value)}`)
    .join('');
  const why = denial.reason === 'explicit-deny' ? 'an explicit Deny matches' : 'no statement of its policy allows it';
  return `AccessDenied: role ${denial.role} may not ${denial.action} on ${denial.resource}${context} (${why})`;
}

/**
 * True for requests a web browser sends: they carry `Origin` (every cross-origin and every POST request) or the
 * `Sec-Fetch-*` headers (every request of current browsers), or are CORS preflights, or are HTML form posts.
 * S3 clients (SDKs, CLIs) send none of these, so refusing them costs nothing and closes the door to any web page
 * that targets 127.0.0.1.
 */
export function isBrowserRequest(method: string, headers: IncomingHttpHeaders): boolean {
  const contentType = String(headers['content-type'] ?? '').toLowerCase();
  return (
    method === 'OPTIONS' ||
    headers['origin'] !== undefined ||
    Object.keys(headers).some((name) => name.startsWith('sec-fetch-')) ||
    (method === 'POST' &&
      (contentType.startsWith('multipart/form-data') || contentType.startsWith('application/x-www-form-urlencoded')))
  );
}

/** What the server knows of a request when it checks access. */
export interface S3RequestShape {
  readonly method: string;
  readonly bucket: string;
  /** Undefined for bucket-level requests. */
  readonly key: string | undefined;
  /** Query parameter names and values (SDK `x-id` and presigned `X-Amz-*` included; they are ignored). */
  readonly query: Readonly<Record<string, string | string[] | undefined>>;
  readonly headers: IncomingHttpHeaders;
}

/**
 * The IAM requests an S3 API call makes, as S3 authorizes them: e.g. a GET of an object is `s3:GetObject` on the
 * object's ARN, a listing is `s3:ListBucket` on the bucket with the `s3:prefix` condition key (present, possibly
 * empty, whenever the request carries a `prefix` parameter), a copy is `s3:GetObject` on the source and
 * `s3:PutObject` on the target. Calls outside what the product uses map to actions no function is granted.
 * @see https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html
 */
export function iamRequestsOf(request: S3RequestShape): AccessRequest[] {
  const bucketArn = `arn:aws:s3:::${request.bucket}`;
  const names = subresourcesOf(request.query);
  const has = (name: string): boolean => names.includes(name);
  if (request.key === undefined) {
    const prefix = request.query['prefix'];
    switch (request.method) {
      case 'GET':
      case 'HEAD':
        if (names.length === 0 || (names.every((n) => LISTING_PARAMETERS.has(n)) && request.method === 'GET')) {
          return [
            {
              action: 's3:ListBucket',
              resource: bucketArn,
              context: typeof prefix === 'string' ? { 's3:prefix': prefix } : {},
            },
          ];
        }
        if (has('uploads')) return [{ action: 's3:ListBucketMultipartUploads', resource: bucketArn }];
        if (has('location')) return [{ action: 's3:GetBucketLocation', resource: bucketArn }];
        if (has('versions')) return [{ action: 's3:ListBucketVersions', resource: bucketArn }];
        return [{ action: `s3:GetBucket${capitalize(names[0] ?? '')}`, resource: bucketArn }];
      case 'PUT':
        return [
          {
            action: names.length === 0 ? 's3:CreateBucket' : `s3:PutBucket${capitalize(names[0] ?? '')}`,
            resource: bucketArn,
          },
        ];
      case 'DELETE':
        return [
          {
            action: names.length === 0 ? 's3:DeleteBucket' : `s3:DeleteBucket${capitalize(names[0] ?? '')}`,
            resource: bucketArn,
          },
        ];
      case 'POST':
        // DeleteObjects (`?delete`) names its keys in the body; checked against the bucket-wide object wildcard so
        // that only a role allowed to delete everything may use it.
        if (has('delete')) return [{ action: 's3:DeleteObject', resource: `${bucketArn}/*` }];
        return [{ action: 's3:PostObject', resource: bucketArn }];
      default:
        return [{ action: `s3:${request.method}Bucket`, resource: bucketArn }];
    }
  }
  const objectArn = `${bucketArn}/${request.key}`;
  switch (request.method) {
    case 'GET':
    case 'HEAD':
      if (has('uploadId')) return [{ action: 's3:ListMultipartUploadParts', resource: objectArn }];
      if (has('tagging')) return [{ action: 's3:GetObjectTagging', resource: objectArn }];
      if (has('acl')) return [{ action: 's3:GetObjectAcl', resource: objectArn }];
      return [{ action: 's3:GetObject', resource: objectArn }];
    case 'PUT': {
      if (has('tagging')) return [{ action: 's3:PutObjectTagging', resource: objectArn }];
      if (has('acl')) return [{ action: 's3:PutObjectAcl', resource: objectArn }];
      const requests: AccessRequest[] = [{ action: 's3:PutObject', resource: objectArn }];
      const copySource = request.headers['x-amz-copy-source'];
      if (typeof copySource === 'string') {
        const source = parseCopySource(copySource);
        requests.unshift({ action: 's3:GetObject', resource: `arn:aws:s3:::${source.bucket}/${source.key}` });
      }
      return requests;
    }
    case 'POST':
      // CreateMultipartUpload (`?uploads`) and CompleteMultipartUpload (`?uploadId`) are both s3:PutObject.
      if (has('uploads') || has('uploadId')) return [{ action: 's3:PutObject', resource: objectArn }];
      return [{ action: 's3:PostObject', resource: objectArn }];
    case 'DELETE':
      if (has('uploadId')) return [{ action: 's3:AbortMultipartUpload', resource: objectArn }];
      if (has('tagging')) return [{ action: 's3:DeleteObjectTagging', resource: objectArn }];
      return [{ action: 's3:DeleteObject', resource: objectArn }];
    default:
      return [{ action: `s3:${request.method}Object`, resource: objectArn }];
  }
}

/**
 * The query parameters that select an S3 operation (`uploadId`, `tagging`, `list-type`...): all but the SDK's
 * `x-id` and the presigned `X-Amz-*` ones.
 */
export function subresourcesOf(query: Readonly<Record<string, unknown>>): string[] {
  return Object.keys(query).filter((name) => name !== 'x-id' && !name.toLowerCase().startsWith('x-amz-'));
}

/** Parameters of ListObjects (v1 and v2); a bucket GET with only these is a listing. */
export const LISTING_PARAMETERS: ReadonlySet<string> = new Set([
  'list-type',
  'prefix',
  'delimiter',
  'max-keys',
  'start-after',
  'continuation-token',
  'fetch-owner',
  'encoding-type',
  'marker',
]);

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
