/**
 * SigV4 signing for the two AWS calls the serving functions make without the AWS SDK's clients (S3 reads, the
 * warmers' Lambda self-invocation): the SDK's own signer, `@smithy/signature-v4`, with SHA-256 from node:crypto.
 */
import { createHash, createHmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';

/** A key pair, and the session token of a role's temporary credentials. */
export interface SigningCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

function bytesOf(data: ArrayBuffer | ArrayBufferView): Uint8Array {
  return ArrayBuffer.isView(data)
    ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    : new Uint8Array(data);
}

/** SHA-256 and HMAC-SHA-256 in the shape the signer expects, on node:crypto (no JavaScript hash to load). */
class NodeSha256 {
  private readonly hash;
  public constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash =
      secret === undefined
        ? createHash('sha256')
        : createHmac('sha256', typeof secret === 'string' ? secret : bytesOf(secret));
  }
  public update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(typeof data === 'string' ? data : bytesOf(data));
  }
  public digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.hash.digest()));
  }
}

/**
 * A SigV4 signer for `service` in `region`. S3 signs the path as sent (each segment escaped once); the other services
 * escape it once more in the canonical request, as the signer does by default.
 */
export function createSigner(service: 's3' | 'lambda', region: string, credentials: SigningCredentials): SignatureV4 {
  return new SignatureV4({
    service,
    region,
    credentials: { ...credentials },
    sha256: NodeSha256,
    uriEscapePath: service !== 's3',
    applyChecksum: false,
  });
}

/** RFC 3986 escaping, as SigV4 canonicalises (encodeURIComponent leaves `!'()*` as they are). */
export function escapeUri(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
