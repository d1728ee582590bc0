/**
 * The runner's HTTP side: a KServe V2 client over `fetch`, on the project's own codec (JSON, or the binary tensor
 * extension for large tensors), as any client of the service would talk to it.
 */
import { decodeInferenceResponse, encodeInferenceRequest } from '../functions/core/codec/index.js';
import type { InferenceResponse, Tensor } from '../functions/core/types.js';

/** A non-2xx answer of the gateway. */
export class HttpStatusError extends Error {
  public constructor(
    public readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'HttpStatusError';
  }
}

/** How one inference request is sent. */
export interface InferOptions {
  /** Inputs in the binary tensor extension instead of JSON `data`. */
  readonly binary?: boolean;
  /** Ask for every output in the binary tensor extension. */
  readonly binaryOutput?: boolean;
  /** Request-level parameters, e.g. `{ zipmap: true }`. */
  readonly parameters?: Readonly<Record<string, unknown>>;
  /** @default 120_000 */
  readonly timeoutMs?: number;
}

/** A V2 client of one gateway. */
export class InferenceClient {
  public constructor(private readonly baseUrl: string) {}

  /** `POST /v2/models/<model>/infer`. @throws HttpStatusError for a non-2xx answer, with the server's message. */
  public async infer(model: string, inputs: readonly Tensor[], options: InferOptions = {}): Promise<InferenceResponse> {
    const { body, headers } = encodeInferenceRequest(inputs, {
      binary: options.binary ?? false,
      ...(options.binaryOutput === undefined ? {} : { binaryOutput: options.binaryOutput }),
      ...(options.parameters === undefined ? {} : { parameters: options.parameters }),
    });
    const response = await fetch(`${this.baseUrl}/v2/models/${encodeURIComponent(model)}/infer`, {
      method: 'POST',
      headers,
      body,
      signal: AbortSignal.timeout(options.timeoutMs ?? 120_000),
    });
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (!response.ok) throw new HttpStatusError(response.status, `HTTP ${response.status}: ${errorMessage(bytes)}`);
    return decodeInferenceResponse(bytes, Object.fromEntries(response.headers));
  }

  /** `POST /v2/repository/index`: one row per version and per refused upload. */
  public async repositoryIndex(): Promise<{ name: string; version: string; state: string; reason: string }[]> {
    const response = await fetch(`${this.baseUrl}/v2/repository/index`, {
      method: 'POST',
      signal: AbortSignal.timeout(30_000),
    });
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (!response.ok) throw new HttpStatusError(response.status, `HTTP ${response.status}: ${errorMessage(bytes)}`);
    return JSON.parse(new TextDecoder().decode(bytes)) as {
      name: string;
      version: string;
      state: string;
      reason: string;
    }[];
  }
}

function errorMessage(bytes: Uint8Array): string {
  const text = new TextDecoder().decode(bytes);
  try {
    const parsed = JSON.parse(text) as { error?: unknown };
    if (typeof parsed.error === 'string') return parsed.error;
  } catch {
    // not JSON: show the text itself
  }
  return text.slice(0, 500);
}
