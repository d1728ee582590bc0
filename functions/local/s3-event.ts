/**
 * S3 event notifications as Amazon S3 sends them to Lambda, built by the embedded server so that the local
 * `register` handler receives exactly what the deployed one does.
 * @see https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html
 */
import { randomBytes } from 'node:crypto';
import type { S3Event, S3EventRecord } from 'aws-lambda';

/** The object-created event types S3 emits, by the API call that created the object. */
export type ObjectCreatedEventName =
  | 'ObjectCreated:Put'
  | 'ObjectCreated:Post'
  | 'ObjectCreated:Copy'
  | 'ObjectCreated:CompleteMultipartUpload';

/** What the server knows about a newly created object. */
export interface CreatedObject {
  readonly eventName: ObjectCreatedEventName;
  readonly region: string;
  readonly bucket: string;
  /** The key as stored (not encoded). */
  readonly key: string;
  readonly size: number;
  /** The etag without quotes, as S3 puts it in events. */
  readonly eTag: string;
  readonly sequencer: string;
  readonly sourceIp: string;
}

/**
 * Encodes a key the way S3 does in event notifications: form-URL encoding (a space becomes `+`), with `/` kept.
 * Consumers decode it with `decodeURIComponent(key.replace(/\+/g, ' '))`.
 *
 * @example
 * ```ts
 * encodeEventKey('uploads/my model/v 1.onnx'); // 'uploads/my+model/v+1.onnx'
 * ```
 */
export function encodeEventKey(key: string): string {
  return key
    .split('/')
    .map((segment) =>
      encodeURIComponent(segment)
        .replace(/%20/g, '+')
        // Java's URLEncoder, which S3 follows, also escapes these; encodeURIComponent leaves them.
        .replace(/[!'()~]/g, (character) => `%${character.charCodeAt(0).toString(16).toUpperCase()}`),
    )
    .join('/');
}

/** Issues S3-style sequencers: hexadecimal, increasing within one server, comparable after left-padding. */
export class Sequencer {
  private last = 0n;

  /** The next sequencer value, greater than every one issued before by this instance. */
  public next(): string {
    const now = BigInt(Date.now()) * 1_000_000n;
    this.last = now > this.last ? now : this.last + 1n;
    return this.last.toString(16).toUpperCase().padStart(16, '0');
  }
}

/** A one-record S3 notification for a created object. */
export function objectCreatedEvent(created: CreatedObject): S3Event {
  const record: S3EventRecord = {
    eventVersion: '2.1',
    eventSource: 'aws:s3',
    awsRegion: created.region,
    eventTime: new Date().toISOString(),
    eventName: created.eventName,
    userIdentity: { principalId: 'AWS:LOCAL' },
    requestParameters: { sourceIPAddress: created.sourceIp },
    responseElements: {
      'x-amz-request-id': randomBytes(8).toString('hex').toUpperCase(),
      'x-amz-id-2': randomBytes(32).toString('base64'),
    },
    s3: {
      s3SchemaVersion: '1.0',
      configurationId: 'embedded-s3-object-created',
      bucket: {
        name: created.bucket,
        ownerIdentity: { principalId: 'LOCAL' },
        arn: `arn:aws:s3:::${created.bucket}`,
      },
      object: {
        key: encodeEventKey(created.key),
        size: created.size,
        eTag: created.eTag,
        sequencer: created.sequencer,
      },
    },
  };
  return { Records: [record] };
}
