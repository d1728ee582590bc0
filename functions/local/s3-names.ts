/**
 * The names the embedded S3 server accepts, checked in one place for every place a name comes from: the request
 * path, the `x-amz-copy-source` header and the keys of a DeleteObjects body.
 *
 * - Bucket names follow S3's rules for new buckets (3 to 63 characters of `a-z 0-9 . -`...), so a bucket name can
 *   never name a folder other than its own (`models%2Fx` is not a bucket name).
 * - Keys are opaque strings of at most 1,024 UTF-8 bytes, as in S3; the store maps them to files losslessly, so
 *   `a//b`, `/a/b` and `a/b` are three keys.
 * - A key with a `.` or `..` segment is refused, although S3 stores it: SDKs, the CLI and HTTP libraries resolve
 *   such segments in the request URL (`a/../b` is sent as `b`), so the object written would not be the one named,
 *   and no client of this product needs them.
 * @see https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html
 * @see https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html
 */
import { S3Error } from './s3-error.js';

/** S3's longest key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;

/** Prefixes and suffixes S3 reserves in bucket names. */
const RESERVED_BUCKET_PREFIXES = ['xn--', 'sthree-', 'amzn-s3-demo-'] as const;
const RESERVED_BUCKET_SUFFIXES = ['-s3alias', '--ol-s3', '.mrap', '--x-s3', '--table-s3'] as const;

/** Whether `name` is a bucket name S3 would create. */
export function isValidBucketName(name: string): boolean {
  return (
    /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) &&
    !name.includes('..') &&
    !/^\d{1,3}(\.\d{1,3}){3}$/.test(name) &&
    !RESERVED_BUCKET_PREFIXES.some((prefix) => name.startsWith(prefix)) &&
    !RESERVED_BUCKET_SUFFIXES.some((suffix) => name.endsWith(suffix))
  );
}

/** Throws S3's 400 InvalidBucketName unless `name` is a valid bucket name. */
export function checkBucketName(name: string): void {
  if (!isValidBucketName(name)) {
    throw new S3Error('InvalidBucketName', 'The specified bucket is not valid.', { BucketName: name });
  }
}

/**
 * Throws unless `key` is a key this server stores: S3's 400 KeyTooLongError over {@link MAX_KEY_BYTES}, 400
 * InvalidArgument for a `.` or `..` segment (see the module comment).
 */
export function checkKey(key: string): void {
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > MAX_KEY_BYTES) {
    throw new S3Error('KeyTooLongError', `Your key is too long: ${bytes} bytes, S3 allows ${MAX_KEY_BYTES}.`, {
      Size: bytes,
      MaxSizeAllowed: MAX_KEY_BYTES,
    });
  }
  if (key.split('/').some((segment) => segment === '.' || segment === '..')) {
    throw new S3Error(
      'InvalidArgument',
      'Keys with "." or ".." segments are refused: clients resolve them in URLs, so the object would not be the one named. Rename the key.',
      { ArgumentName: 'key', ArgumentValue: key.slice(0, 200) },
    );
  }
}

/**
 * The bucket and key of an `x-amz-copy-source` header (`[/]<bucket>/<key>[?versionId=…]`, URL-encoded), both
 * checked as a request path's are. S3's 400 InvalidArgument when it does not name a bucket and a key.
 */
export function parseCopySource(header: string): { bucket: string; key: string } {
  let decoded: string | undefined;
  try {
    decoded = decodeURIComponent(header.split('?')[0] ?? '').replace(/^\//, '');
  } catch {
    decoded = undefined;
  }
  const slash = decoded?.indexOf('/') ?? -1;
  if (decoded === undefined || slash <= 0 || slash === decoded.length - 1) {
    throw new S3Error('InvalidArgument', 'Copy Source must mention the source bucket and key: sourcebucket/sourcekey', {
      ArgumentName: 'x-amz-copy-source',
      ArgumentValue: header.slice(0, 200),
    });
  }
  const source = { bucket: decoded.slice(0, slash), key: decoded.slice(slash + 1) };
  checkBucketName(source.bucket);
  checkKey(source.key);
  return source;
}

/**
 * A strictly decimal integer from a query parameter or XML text (`1e3`, `0x10`, ` 7` and `+7` are not), or
 * `undefined`.
 */
export function parseDecimalInteger(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{1,15}$/.test(text)) return undefined;
  return Number(text);
}
