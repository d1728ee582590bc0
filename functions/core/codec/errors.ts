/** Errors of the client side of the codec. Server-side failures use the shared classes of `../errors.ts`. */

/**
 * A response body that is not a valid V2 inference response (or an `{"error": ...}` body). Thrown by
 * `decodeInferenceResponse`; `cause` holds the underlying decoding error, if any.
 */
export class InvalidInferenceResponseError extends Error {
  public constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'InvalidInferenceResponseError';
  }
}
