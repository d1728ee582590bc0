/**
 * The limits of the AWS services in front of the functions, in one place: the catalog's defaults, the handlers'
 * checks, the local gateway (which refuses what API Gateway and Lambda would) and the infrastructure's validation
 * all read them from here.
 */
export const PLATFORM_LIMITS = {
  /** API Gateway REST refuses request bodies over 10 MB with 413 before Lambda sees them. */
  apiGatewayMaxBodyBytes: 10 * 1024 * 1024,
  /** API Gateway REST stops waiting for an integration after this long. */
  apiGatewayTimeoutSeconds: 29,
  /**
   * Lambda's limit on a synchronous invocation's request payload: the whole event, as JSON. API Gateway REST sends
   * every body base64-encoded (binary media type `*\/*`), so a body of more than about 3/4 of this never reaches the
   * function. A response may be 100 bytes larger; both are "6 MB" in the quotas page.
   */
  lambdaRequestPayloadBytes: 6 * 1024 * 1024,
  /** Lambda's limit on a synchronous invocation's response payload: the handler's result, as JSON. */
  lambdaResponsePayloadBytes: 6 * 1024 * 1024 + 100,
  /**
   * Lambda's limit on a streamed response (function URLs with `RESPONSE_STREAM`, REST APIs with
   * `responseTransferMode: STREAM`): the bytes written to the response stream, prelude included.
   */
  lambdaStreamedResponseBytes: 200 * 1024 * 1024,
  /** The streamed response budget: the streamed limit less room for the prelude (status and headers). */
  maxStreamedResponseBytes: 200 * 1024 * 1024 - 64 * 1024,
  /** The default response budget: Lambda's response limit less room for the result's envelope and headers. */
  defaultMaxResponseBytes: 6 * 1024 * 1024 - 64 * 1024,
  /** Lambda's ephemeral storage (`/tmp`), in MB: what every function gets, and the most one can have. */
  lambdaMinEphemeralStorageMb: 512,
  lambdaMaxEphemeralStorageMb: 10240,
  /** Lambda's limit on a function's environment variables: names and values together, in bytes. */
  lambdaEnvironmentBytes: 4 * 1024,
} as const;
