/**
 * S3's error responses: a code, a message and the HTTP status S3 answers it with, rendered as the XML body every S3
 * client parses (`<Error><Code>…</Code><Message>…</Message>…</Error>`). The SDKs turn `Code` into the exception's
 * name, so the codes are S3's own, spelled exactly.
 * @see https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html
 */
import { xmlDocument } from './s3-xml.js';

/** The HTTP status of each S3 error code this server answers with. */
const STATUS_OF_CODE = {
  AccessDenied: 403,
  AuthorizationHeaderMalformed: 400,
  BadDigest: 400,
  BucketNotEmpty: 409,
  EntityTooSmall: 400,
  IncompleteBody: 400,
  InternalError: 500,
  InvalidAccessKeyId: 403,
  InvalidArgument: 400,
  InvalidBucketName: 400,
  InvalidDigest: 400,
  InvalidPart: 400,
  InvalidPartOrder: 400,
  InvalidRange: 416,
  InvalidRequest: 400,
  InvalidURI: 400,
  KeyTooLongError: 400,
  MalformedXML: 400,
  MethodNotAllowed: 405,
  NoSuchBucket: 404,
  NoSuchKey: 404,
  NoSuchUpload: 404,
  NotImplemented: 501,
  PreconditionFailed: 412,
  RequestTimeTooSkewed: 403,
  SignatureDoesNotMatch: 403,
  XAmzContentSHA256Mismatch: 400,
} as const;

/** An S3 error code this server answers with. */
export type S3ErrorCode = keyof typeof STATUS_OF_CODE;

/**
 * An S3 error: thrown anywhere while serving a request, answered as S3's XML error with {@link S3Error.status}.
 *
 * @example
 * ```ts
 * throw new S3Error('NoSuchKey', 'The specified key does not exist.', { Key: key });
 * ```
 */
export class S3Error extends Error {
  /** The HTTP status S3 answers this code with. */
  public readonly status: number;

  public constructor(
    public readonly code: S3ErrorCode,
    message: string,
    /** Extra elements of the error body (`Key`, `Condition`, `ArgumentName`...), as S3 adds them. */
    public readonly detail: Readonly<Record<string, string | number>> = {},
  ) {
    super(message);
    this.name = 'S3Error';
    this.status = STATUS_OF_CODE[code];
  }

  /** The XML body of this error for the request identified by `requestId`. */
  public toXml(requestId: string): string {
    return xmlDocument('Error', [
      ['Code', this.code],
      ['Message', this.message],
      ...Object.entries(this.detail),
      ['RequestId', requestId],
    ]);
  }
}
