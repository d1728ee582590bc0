/**
 * The {@link AsyncObjectStore} of async requests on S3: the serving reader's signed requests (no SDK in the infer
 * bundle) plus the HEAD and conditional PUT that async jobs need. The infer roles may write only under `async/`
 * (`infra/function-grants.ts`); S3 refuses anything else with AccessDenied, here as on AWS.
 */
import { PreconditionFailedError } from '../core/errors.js';
import type { AsyncObjectStore, ObjectHead, ObjectWriteOptions } from '../core/async-jobs.js';
import type { PutCondition } from '../core/blob-store.js';
import { denied, S3Reader, S3ReadError } from './s3-reader.js';

const METADATA_HEADER = 'x-amz-meta-';

/**
 * Reads and writes async inputs, answers and job records on S3.
 *
 * @example
 * ```ts
 * const store = new S3AsyncStore({ bucket: 'models', region: 'eu-west-1', credentials: fromEnvironment() });
 * const head = await store.head('async/iris/inputs/batch-1.json');
 * ```
 */
export class S3AsyncStore extends S3Reader implements AsyncObjectStore {
  public async head(key: string): Promise<ObjectHead | undefined> {
    let response: Awaited<ReturnType<S3Reader['send']>>;
    try {
      response = await this.send({ method: 'HEAD', key });
    } catch (error) {
      // A HEAD answer has no body, so S3's code is missing: 404 is the status alone.
      if (error instanceof S3ReadError && error.statusCode === 404) return undefined;
      throw denied(error, 'HeadObject (s3:GetObject)', key);
    }
    response.resume();
    const metadata: Record<string, string> = {};
    for (const [name, value] of Object.entries(response.headers)) {
      if (name.startsWith(METADATA_HEADER) && typeof value === 'string')
        metadata[name.slice(METADATA_HEADER.length)] = value;
    }
    const contentType = response.headers['content-type'];
    return {
      size: Number(response.headers['content-length'] ?? 0),
      etag: String(response.headers.etag ?? ''),
      ...(contentType === undefined ? {} : { contentType }),
      metadata,
    };
  }

  public override async put(
    key: string,
    body: Uint8Array,
    condition: PutCondition = {},
    options: ObjectWriteOptions = {},
  ): Promise<{ etag: string }> {
    const headers: Record<string, string> = {
      'content-type': options.contentType ?? 'application/octet-stream',
      ...(condition.ifMatch === undefined ? {} : { 'if-match': condition.ifMatch }),
      ...(condition.ifNoneMatch === undefined ? {} : { 'if-none-match': condition.ifNoneMatch }),
    };
    for (const [name, value] of Object.entries(options.metadata ?? {})) headers[`${METADATA_HEADER}${name}`] = value;
    try {
      const response = await this.send({ method: 'PUT', key, body, headers });
      response.resume();
      return { etag: String(response.headers.etag ?? '') };
    } catch (error) {
      // 412 when the condition does not hold; 409 when a concurrent conditional write to the key won the race.
      if (error instanceof S3ReadError && (error.statusCode === 412 || error.statusCode === 409)) {
        throw new PreconditionFailedError(`the conditional write of ${key} did not hold`, { cause: error });
      }
      throw denied(error, 'PutObject', key);
    }
  }
}
