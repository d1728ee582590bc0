/**
 * The error model: one class per failure a client can cause or meet. Each carries its HTTP status; the HTTP layer
 * (`functions/transport/http.ts`) is the one place that turns them into responses.
 */

/** Base class of every error whose message is safe and useful to show to a client. */
export abstract class InferenceServerError extends Error {
  /** HTTP status this error maps to. */
  public abstract readonly statusCode: number;

  public constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }

  /** The `{"error": ...}` body of the V2 protocol. */
  public toJSON(): { error: string } {
    return { error: this.message };
  }
}

/** 400: the request is malformed or does not fit the model. */
export class BadRequestError extends InferenceServerError {
  public readonly statusCode = 400;
}

/** 404: unknown model, version or route. */
export class NotFoundError extends InferenceServerError {
  public readonly statusCode = 404;
}

/** 405: known route, wrong method. */
export class MethodNotAllowedError extends InferenceServerError {
  public readonly statusCode = 405;
  public constructor(
    message: string,
    public readonly allowed: readonly string[],
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** 413: body, tensor or response over a configured limit. */
export class PayloadTooLargeError extends InferenceServerError {
  public readonly statusCode = 413;
}

/** 415: a content type the endpoint does not speak. */
export class UnsupportedMediaTypeError extends InferenceServerError {
  public readonly statusCode = 415;
}

/** 415 for a request `Content-Encoding` the server cannot decode; the response lists the ones it can (RFC 7694). */
export class UnsupportedContentEncodingError extends UnsupportedMediaTypeError {
  public constructor(
    message: string,
    /** The codings accepted, for the response's `Accept-Encoding` header. */
    public readonly accepted: readonly string[],
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** 503: the model cannot be loaded right now (storage down, checksum mismatch); retry later. */
export class ServiceUnavailableError extends InferenceServerError {
  public readonly statusCode = 503;
  public constructor(
    message: string,
    public readonly retryAfterSeconds: number = 1,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * 502: the engine running the model died during the inference (a native fault such as SIGFPE). Deployed, API Gateway
 * answers a crashed Lambda instance with a 502 too; locally the message says what happened.
 */
export class InferenceCrashedError extends InferenceServerError {
  public readonly statusCode = 502;
}

/** 504: the inference passed its model's deadline (`limits.timeoutMs`); the work was stopped. */
export class InferenceTimeoutError extends InferenceServerError {
  public readonly statusCode = 504;
}

/**
 * Storage refused an operation (S3 403 AccessDenied): the function's permissions do not cover what it did. A
 * configuration error, not an outage: retrying cannot help, so it is a 500 with the request id (never a 503 that
 * invites retries), and its message (operation, key, storage's own words) goes to the log, not to the client.
 */
export class StorageAccessDeniedError extends Error {
  public constructor(
    public readonly operation: string,
    public readonly key: string,
    options?: ErrorOptions,
  ) {
    super(
      `storage refused ${operation} of "${key}" (AccessDenied): the function's role lacks this permission`,
      options,
    );
    this.name = 'StorageAccessDeniedError';
  }
}

/** A model upload that cannot become a version; the message is stored under `rejected/`. */
export class ModelRejectedError extends Error {
  public constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ModelRejectedError';
  }
}

/** A conditional write lost its race (S3 412 or 409): re-read and try again. */
export class PreconditionFailedError extends Error {
  public constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PreconditionFailedError';
  }
}

/**
 * An object of the repository that is not what its key says (truncated JSON, a manifest of the wrong shape): the
 * problem of the one model it belongs to. Serving answers 503 naming the object; registration leaves the upload
 * pending, to be retried once the object is fixed.
 */
export class CorruptObjectError extends Error {
  public constructor(
    public readonly key: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'CorruptObjectError';
  }
}
