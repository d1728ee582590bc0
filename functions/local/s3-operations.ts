/**
 * The S3 API operations of the embedded server, one function each, on a request already authenticated,
 * authorized and checked for unsafe names by `s3-server.ts`. Only what the product, the SDKs and `aws s3`
 * (cp, ls, rm, sync) call is implemented; the rest answers S3's 501 NotImplemented.
 * @see https://docs.aws.amazon.com/AmazonS3/latest/API/API_Operations_Amazon_Simple_Storage_Service.html
 */
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { LISTING_PARAMETERS, subresourcesOf } from './s3-access.js';
import { S3Error } from './s3-error.js';
import { encodeEventKey } from './s3-event.js';
import type { ObjectCreatedEventName } from './s3-event.js';
import { objectLockKey } from './s3-filesystem-store.js';
import type {
  ByteRange,
  CompletedPart,
  ConsistentFilesystemStore,
  ReadPlan,
  StoredObject,
} from './s3-filesystem-store.js';
import { storedHeadersOf } from './s3-filesystem-store.js';
import type { KeyedMutex } from './s3-keyed-mutex.js';
import { checkKey, parseCopySource, parseDecimalInteger } from './s3-names.js';
import { XmlSyntaxError, childNamed, parseXml, xmlDocument } from './s3-xml.js';
import type { XmlChild, XmlElement } from './s3-xml.js';

/** S3's limits on list pages and multi-object deletes. */
const MAX_KEYS = 1000;
/** S3's part numbers. */
const MAX_PART_NUMBER = 10_000;
/** The largest XML request body read (DeleteObjects of 1,000 keys of 1,024 bytes fits). */
const MAX_XML_BODY_BYTES = 2 * 1024 * 1024;

/** One request as the operations see it. */
export interface S3Call {
  readonly method: string;
  readonly bucket: string;
  /** Undefined for bucket-level requests. */
  readonly key: string | undefined;
  /** Query parameters, first value of each. */
  readonly query: Readonly<Record<string, string>>;
  readonly headers: IncomingHttpHeaders;
  /** The request body (`aws-chunked` framing already removed); read it at most once. */
  readonly body: Readable;
  readonly response: ServerResponse;
  readonly requestId: string;
  /** The client's address, as S3 events report it. */
  readonly sourceIp: string;
}

/** What the operations share: the store, the per-key locks, and where created objects are reported. */
export interface S3Backend {
  readonly store: ConsistentFilesystemStore;
  readonly locks: KeyedMutex;
  readonly region: string;
  /** The smallest part CompleteMultipartUpload accepts but for the last. */
  readonly minPartBytes: number;
  /** Called under the key's lock once an object is created, with the object as written. */
  readonly created: (eventName: ObjectCreatedEventName, bucket: string, object: StoredObject, sourceIp: string) => void;
}

/** Serves one request. */
export async function serveS3Call(call: S3Call, backend: S3Backend): Promise<void> {
  const names = subresourcesOf(call.query);
  const has = (name: string): boolean => names.includes(name);
  const only = (...allowed: string[]): boolean => names.every((name) => allowed.includes(name));
  if (call.key === undefined) {
    if (call.method !== 'HEAD' && call.method !== 'PUT' && !(await backend.store.bucketExists(call.bucket))) {
      throw noSuchBucket(call.bucket);
    }
    switch (call.method) {
      case 'GET':
        if (has('location')) return send(call, 200, xmlDocument('LocationConstraint', []));
        if (only(...LISTING_PARAMETERS)) return listObjects(call, backend);
        break;
      case 'HEAD':
        if (!(await backend.store.bucketExists(call.bucket))) throw noSuchBucket(call.bucket);
        return send(call, 200);
      case 'PUT':
        if (names.length > 0) break;
        await backend.store.putBucket(call.bucket);
        call.response.setHeader('Location', `/${call.bucket}`);
        return send(call, 200);
      case 'DELETE':
        if (names.length > 0) break;
        await backend.store.deleteBucket(call.bucket);
        return send(call, 204);
      case 'POST':
        if (has('delete') && only('delete')) return deleteObjects(call, backend);
        break;
    }
    throw notImplemented(call, names);
  }
  if (!(await backend.store.bucketExists(call.bucket))) throw noSuchBucket(call.bucket);
  const key = call.key;
  switch (call.method) {
    case 'GET':
    case 'HEAD':
      if (only(...RESPONSE_OVERRIDES.map(([parameter]) => parameter), 'partNumber', 'versionId')) {
        return getObject(call, backend, key);
      }
      break;
    case 'PUT':
      if (names.length === 0) {
        return call.headers['x-amz-copy-source'] === undefined
          ? putObject(call, backend, key)
          : copyObject(call, backend, key);
      }
      if (has('uploadId') && has('partNumber') && only('uploadId', 'partNumber')) {
        if (call.headers['x-amz-copy-source'] !== undefined) break; // UploadPartCopy
        return uploadPart(call, backend, key);
      }
      break;
    case 'POST':
      if (has('uploads') && only('uploads')) return createMultipartUpload(call, backend, key);
      if (has('uploadId') && only('uploadId')) return completeMultipartUpload(call, backend, key);
      break;
    case 'DELETE':
      if (names.length === 0 || only('versionId')) {
        await backend.locks.run(objectLockKey(call.bucket, key), () => backend.store.deleteObject(call.bucket, key));
        return send(call, 204);
      }
      if (has('uploadId') && only('uploadId')) {
        await backend.store.abortUpload(call.bucket, key, call.query['uploadId'] ?? '');
        return send(call, 204);
      }
      break;
  }
  throw notImplemented(call, names);
}

/** GET's `response-*` parameters (presigned URLs use them) and the header each one sets. */
const RESPONSE_OVERRIDES = [
  ['response-cache-control', 'Cache-Control'],
  ['response-content-disposition', 'Content-Disposition'],
  ['response-content-encoding', 'Content-Encoding'],
  ['response-content-language', 'Content-Language'],
  ['response-content-type', 'Content-Type'],
  ['response-expires', 'Expires'],
] as const;

/** GetObject and HeadObject: conditional headers, one `Range`, stored headers, the bytes. */
async function getObject(call: S3Call, backend: S3Backend, key: string): Promise<void> {
  const opened = await backend.store.openObject(
    call.bucket,
    key,
    (object) => readPlanOf(call.headers, object),
    call.method === 'GET',
  );
  if (opened === undefined) throw new S3Error('NoSuchKey', 'The specified key does not exist.', { Key: key });
  const { object, plan, body } = opened;
  const { response } = call;
  response.setHeader('ETag', object.etag);
  response.setHeader('Last-Modified', object.lastModified.toUTCString());
  if (plan.kind === 'not-modified') return send(call, 304);
  response.setHeader('Accept-Ranges', 'bytes');
  for (const [name, value] of Object.entries(object.headers)) response.setHeader(name, value);
  for (const [parameter, header] of RESPONSE_OVERRIDES) {
    const value = call.query[parameter];
    if (value !== undefined) response.setHeader(header, value);
  }
  const range = plan.range;
  if (range !== undefined) response.setHeader('Content-Range', `bytes ${range.start}-${range.end}/${object.size}`);
  response.setHeader('Content-Length', range === undefined ? object.size : range.end - range.start + 1);
  response.setHeader('x-amz-request-id', call.requestId);
  response.statusCode = range === undefined ? 200 : 206;
  if (body === undefined) {
    response.end();
    return;
  }
  // A client that goes away mid-body ends the pipeline; the file stream is closed either way.
  await pipeline(body, response).catch(() => undefined);
}

/**
 * What a GET or HEAD sends, as S3 decides it: `If-Match` and `If-Unmodified-Since` fail with 412, `If-None-Match`
 * and `If-Modified-Since` answer 304, then a single byte range (an unsatisfiable one is 416; a malformed or
 * multiple-range header is ignored and the whole object is sent, as HTTP allows).
 */
function readPlanOf(headers: IncomingHttpHeaders, object: StoredObject): ReadPlan {
  const ifMatch = headers['if-match'];
  const ifNoneMatch = headers['if-none-match'];
  // HTTP dates have whole seconds; a file's modification time has more.
  const modifiedSeconds = Math.floor(object.lastModified.getTime() / 1000);
  const since = (name: string): number | undefined => {
    const value = Date.parse(String(headers[name] ?? ''));
    return Number.isNaN(value) ? undefined : Math.floor(value / 1000);
  };
  const unmodifiedSince = since('if-unmodified-since');
  const modifiedSince = since('if-modified-since');
  if (
    ifMatch !== undefined ? !etagListMatches(ifMatch, object.etag) : (unmodifiedSince ?? Infinity) < modifiedSeconds
  ) {
    throw preconditionFailed(ifMatch !== undefined ? 'If-Match' : 'If-Unmodified-Since');
  }
  if (
    ifNoneMatch !== undefined ? etagListMatches(ifNoneMatch, object.etag) : modifiedSeconds <= (modifiedSince ?? -1)
  ) {
    return { kind: 'not-modified' };
  }
  const range = byteRangeOf(headers['range'], object.size);
  return range === undefined ? { kind: 'read' } : { kind: 'read', range };
}

function byteRangeOf(header: string | undefined, size: number): ByteRange | undefined {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header?.trim() ?? '');
  if (match === null || (match[1] === '' && match[2] === '')) return undefined;
  const first = match[1] === '' ? undefined : Number(match[1]);
  const last = match[2] === '' ? undefined : Number(match[2]);
  if (first !== undefined && last !== undefined && last < first) return undefined;
  const start = first ?? Math.max(0, size - (last ?? 0));
  const end = first === undefined ? size - 1 : Math.min(last ?? size - 1, size - 1);
  if (start >= size || end < start || (first === undefined && last === 0)) {
    throw new S3Error('InvalidRange', 'The requested range is not satisfiable', {
      RangeRequested: header ?? '',
      ActualObjectSize: size,
    });
  }
  return { start, end };
}

/** PutObject, under the key's lock with its conditions checked. */
async function putObject(call: S3Call, backend: S3Backend, key: string): Promise<void> {
  const object = await createUnderLock(call, backend, key, 'ObjectCreated:Put', () =>
    backend.store.putObject(call.bucket, key, call.body, storedHeadersOf(call.headers), contentMd5Of(call.headers)),
  );
  call.response.setHeader('ETag', object.etag);
  send(call, 200);
}

/** CopyObject: `x-amz-copy-source` is `[/]<bucket>/<key>[?versionId=…]`, URL-encoded. */
async function copyObject(call: S3Call, backend: S3Backend, key: string): Promise<void> {
  const source = parseCopySource(String(call.headers['x-amz-copy-source']));
  if (!(await backend.store.bucketExists(source.bucket))) throw noSuchBucket(source.bucket);
  const replace = String(call.headers['x-amz-metadata-directive'] ?? 'COPY').toUpperCase() === 'REPLACE';
  if (!replace && source.bucket === call.bucket && source.key === key) {
    throw new S3Error(
      'InvalidRequest',
      "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
    );
  }
  const object = await createUnderLock(call, backend, key, 'ObjectCreated:Copy', () =>
    backend.store.copyObject(source, call.bucket, key, replace ? storedHeadersOf(call.headers) : undefined),
  );
  send(
    call,
    200,
    xmlDocument('CopyObjectResult', [
      ['LastModified', object.lastModified.toISOString()],
      ['ETag', object.etag],
    ]),
  );
}

async function createMultipartUpload(call: S3Call, backend: S3Backend, key: string): Promise<void> {
  const uploadId = await backend.store.createUpload(call.bucket, key, storedHeadersOf(call.headers));
  send(
    call,
    200,
    xmlDocument('InitiateMultipartUploadResult', [
      ['Bucket', call.bucket],
      ['Key', key],
      ['UploadId', uploadId],
    ]),
  );
}

async function uploadPart(call: S3Call, backend: S3Backend, key: string): Promise<void> {
  const partNumber = parseDecimalInteger(call.query['partNumber']) ?? 0;
  if (partNumber < 1 || partNumber > MAX_PART_NUMBER) {
    throw new S3Error('InvalidArgument', `Part number must be an integer between 1 and ${MAX_PART_NUMBER}, inclusive`, {
      ArgumentName: 'partNumber',
      ArgumentValue: call.query['partNumber'] ?? '',
    });
  }
  const etag = await backend.store.putPart(
    call.bucket,
    key,
    call.query['uploadId'] ?? '',
    partNumber,
    call.body,
    contentMd5Of(call.headers),
  );
  call.response.setHeader('ETag', etag);
  send(call, 200);
}

async function completeMultipartUpload(call: S3Call, backend: S3Backend, key: string): Promise<void> {
  const document = await readXmlBody(call.body);
  if (document.name !== 'CompleteMultipartUpload') throw malformedXml();
  const parts: CompletedPart[] = document.children
    .filter((child) => child.name === 'Part')
    .map((part) => {
      const partNumber = parseDecimalInteger(childNamed(part, 'PartNumber')?.text.trim()) ?? 0;
      const etag = childNamed(part, 'ETag')?.text.trim();
      if (partNumber < 1 || partNumber > MAX_PART_NUMBER || etag === undefined) {
        throw malformedXml();
      }
      return { partNumber, etag };
    });
  const uploadId = call.query['uploadId'] ?? '';
  const object = await createUnderLock(call, backend, key, 'ObjectCreated:CompleteMultipartUpload', () =>
    backend.store.completeUpload(call.bucket, key, uploadId, parts, backend.minPartBytes),
  );
  send(
    call,
    200,
    xmlDocument('CompleteMultipartUploadResult', [
      ['Location', `/${call.bucket}/${key}`],
      ['Bucket', call.bucket],
      ['Key', key],
      ['ETag', object.etag],
    ]),
  );
}

/**
 * Runs a write that creates `key` under the key's lock: S3's conditional write rules are checked against the
 * current object first, and the creation is reported with the object exactly as this write left it.
 */
async function createUnderLock(
  call: S3Call,
  backend: S3Backend,
  key: string,
  eventName: ObjectCreatedEventName,
  write: () => Promise<StoredObject>,
): Promise<StoredObject> {
  return backend.locks.run(objectLockKey(call.bucket, key), async () => {
    checkWriteConditions(call.headers, (await backend.store.getMetadata(call.bucket, key))?.etag, key);
    const object = await write();
    backend.created(eventName, call.bucket, object, call.sourceIp);
    return object;
  });
}

/**
 * S3's conditional write rules: `If-None-Match: *` fails if the key exists; `If-Match: <etag>` fails if the
 * object's etag differs, and answers NoSuchKey if there is no object.
 */
function checkWriteConditions(headers: IncomingHttpHeaders, etag: string | undefined, key: string): void {
  const ifMatch = headers['if-match'];
  const ifNoneMatch = headers['if-none-match'];
  if (ifMatch !== undefined) {
    if (etag === undefined) throw new S3Error('NoSuchKey', 'The specified key does not exist.', { Key: key });
    if (!etagListMatches(ifMatch, etag)) throw preconditionFailed('If-Match');
  }
  if (ifNoneMatch !== undefined && etag !== undefined && etagListMatches(ifNoneMatch, etag)) {
    throw preconditionFailed('If-None-Match');
  }
}

/** RFC 9110 entity-tag list matching (`*`, or a comma-separated list, quoted or not, weak prefix ignored). */
function etagListMatches(header: string, etag: string): boolean {
  const current = unquote(etag);
  return header.split(',').some((candidate) => {
    const trimmed = candidate.trim();
    return trimmed === '*' || unquote(trimmed.replace(/^W\//, '')) === current;
  });
}

/** An etag without its quotes, as S3 puts it in events. */
export function unquote(etag: string): string {
  return etag.replace(/^"(.*)"$/s, '$1');
}

function preconditionFailed(condition: string): S3Error {
  return new S3Error('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', {
    Condition: condition,
  });
}

/** DeleteObjects: up to 1,000 keys, each deleted under its lock; `Quiet` reports errors only. */
async function deleteObjects(call: S3Call, backend: S3Backend): Promise<void> {
  const document = await readXmlBody(call.body);
  if (document.name !== 'Delete') throw malformedXml();
  const keys = document.children
    .filter((child) => child.name === 'Object')
    .map((object) => {
      const key = childNamed(object, 'Key')?.text;
      if (key === undefined || key === '') throw malformedXml();
      return key;
    });
  if (keys.length === 0 || keys.length > MAX_KEYS) throw malformedXml();
  const quiet = childNamed(document, 'Quiet')?.text.trim().toLowerCase() === 'true';
  const results: XmlChild[] = [];
  for (const key of keys) {
    try {
      // Each key is checked as a request path's is; a refused one is reported in its Error element.
      checkKey(key);
      await backend.locks.run(objectLockKey(call.bucket, key), () => backend.store.deleteObject(call.bucket, key));
      if (!quiet) results.push(['Deleted', [['Key', key]]]);
    } catch (error) {
      const s3Error =
        error instanceof S3Error ? error : new S3Error('InternalError', 'The object could not be deleted.');
      results.push([
        'Error',
        [
          ['Key', key],
          ['Code', s3Error.code],
          ['Message', s3Error.message],
        ],
      ]);
    }
  }
  send(call, 200, xmlDocument('DeleteResult', results));
}

/** ListObjectsV2 (`list-type=2`) and the original ListObjects, from one listing of the store. */
async function listObjects(call: S3Call, backend: S3Backend): Promise<void> {
  const { query } = call;
  const v2 = query['list-type'] === '2';
  const prefix = query['prefix'] ?? '';
  const delimiter = query['delimiter'] ?? '';
  const encodingType = query['encoding-type'];
  if (encodingType !== undefined && encodingType !== 'url') {
    throw new S3Error('InvalidArgument', 'Invalid Encoding Method specified in Request', {
      ArgumentName: 'encoding-type',
      ArgumentValue: encodingType,
    });
  }
  const maxKeysText = query['max-keys'] ?? String(MAX_KEYS);
  const maxKeys = Number(maxKeysText);
  if (!/^\d+$/.test(maxKeysText) || !Number.isSafeInteger(maxKeys)) {
    throw new S3Error('InvalidArgument', 'Provided max-keys not an integer or within integer range', {
      ArgumentName: 'max-keys',
      ArgumentValue: maxKeysText,
    });
  }
  const token = v2 ? query['continuation-token'] : undefined;
  const startAfter = v2
    ? token !== undefined
      ? decodeContinuationToken(token)
      : (query['start-after'] ?? '')
    : (query['marker'] ?? '');
  const page = await backend.store.listObjects(call.bucket, {
    prefix,
    delimiter,
    startAfter,
    maxKeys: Math.min(maxKeys, MAX_KEYS),
  });
  const encode = (text: string): string => (encodingType === 'url' ? encodeEventKey(text) : text);
  const optional = (name: string, value: string | undefined): XmlChild => [
    name,
    value === undefined || value === '' ? undefined : encode(value),
  ];
  const truncated = page.resumeAfter !== undefined;
  const children: XmlChild[] = [
    ['Name', call.bucket],
    ['Prefix', encode(prefix)],
    ...(v2
      ? [['KeyCount', page.objects.length + page.commonPrefixes.length] as const]
      : [['Marker', encode(query['marker'] ?? '')] as const]),
    ['MaxKeys', maxKeys],
    optional('Delimiter', delimiter),
    ['IsTruncated', truncated],
    ...page.objects.map(
      (object): XmlChild => [
        'Contents',
        [
          ['Key', encode(object.key)],
          ['LastModified', object.lastModified.toISOString()],
          ['ETag', object.etag],
          ['Size', object.size],
          ['StorageClass', object.headers['x-amz-storage-class'] ?? 'STANDARD'],
        ],
      ],
    ),
    ...page.commonPrefixes.map((commonPrefix): XmlChild => ['CommonPrefixes', [['Prefix', encode(commonPrefix)]]]),
    ...(v2
      ? [
          optional('ContinuationToken', token === undefined ? undefined : token),
          ['NextContinuationToken', truncated ? encodeContinuationToken(page.resumeAfter ?? '') : undefined] as const,
          optional('StartAfter', token === undefined ? query['start-after'] : undefined),
        ]
      : // The key the page ended after (S3 sends it only with a delimiter; clients fall back to the last key).
        [optional('NextMarker', page.resumeAfter)]),
    ['EncodingType', encodingType],
  ];
  send(call, 200, xmlDocument('ListBucketResult', children));
}

const CONTINUATION_TOKEN_PREFIX = 'embedded-s3:';

/** An opaque continuation token: the key the next page starts after. */
function encodeContinuationToken(resumeAfter: string): string {
  return Buffer.from(CONTINUATION_TOKEN_PREFIX + resumeAfter, 'utf8').toString('base64');
}

function decodeContinuationToken(token: string): string {
  const decoded = Buffer.from(token, 'base64').toString('utf8');
  if (!decoded.startsWith(CONTINUATION_TOKEN_PREFIX)) {
    throw new S3Error('InvalidArgument', 'The continuation token provided is incorrect', {
      ArgumentName: 'continuation-token',
    });
  }
  return decoded.slice(CONTINUATION_TOKEN_PREFIX.length);
}

/** Reads a small XML request body and parses it; anything too large or not well-formed is S3's MalformedXML. */
async function readXmlBody(body: Readable): Promise<XmlElement> {
  const chunks: Buffer[] = [];
  let size = 0;
  // Read to the end even past the limit (keeping nothing): leaving the loop early would destroy the request, and
  // with it the connection the error answer must go out on.
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size <= MAX_XML_BODY_BYTES) chunks.push(chunk as Buffer);
  }
  if (size > MAX_XML_BODY_BYTES) throw malformedXml();
  try {
    return parseXml(Buffer.concat(chunks).toString('utf8'));
  } catch (error) {
    if (error instanceof XmlSyntaxError) throw malformedXml();
    throw error;
  }
}

function malformedXml(): S3Error {
  return new S3Error(
    'MalformedXML',
    'The XML you provided was not well-formed or did not validate against our published schema.',
  );
}

function noSuchBucket(bucket: string): S3Error {
  return new S3Error('NoSuchBucket', 'The specified bucket does not exist', { BucketName: bucket });
}

function notImplemented(call: S3Call, names: readonly string[]): S3Error {
  const what = names.length === 0 ? '' : ` with ?${names.join('&')}`;
  return new S3Error(
    'NotImplemented',
    `This local S3 server does not implement ${call.method}${call.key === undefined ? ' on a bucket' : ' on an object'}${what}; it serves what the product and aws s3 use (docs/architecture.md, "The embedded S3 server").`,
  );
}

/** `Content-MD5`, when sent: the base64 md5 the stored body must have. */
function contentMd5Of(headers: IncomingHttpHeaders): string | undefined {
  const value = headers['content-md5'];
  if (typeof value !== 'string') return undefined;
  if (!/^[A-Za-z0-9+/]{22}==$/.test(value))
    throw new S3Error('InvalidDigest', 'The Content-MD5 you specified was invalid.');
  return value;
}

/** Ends the response with `status` and an optional XML body. */
export function send(call: Pick<S3Call, 'response' | 'requestId' | 'method'>, status: number, xml?: string): void {
  const { response } = call;
  response.statusCode = status;
  response.setHeader('x-amz-request-id', call.requestId);
  if (xml === undefined) {
    if (status !== 204 && status !== 304) response.setHeader('Content-Length', 0);
    response.end();
    return;
  }
  const bytes = Buffer.from(xml, 'utf8');
  response.setHeader('Content-Type', 'application/xml');
  response.setHeader('Content-Length', bytes.length);
  response.end(call.method === 'HEAD' ? undefined : bytes);
}
