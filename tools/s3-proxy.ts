/**
 * A loopback HTTP proxy in front of an S3-compatible server, for the bench and the tests (never shipped):
 *
 * - `bytesPerSecond` caps each response's bandwidth, as one S3 connection delivers on the order of 90 MB/s: on
 *   loopback, a single GET would otherwise be as fast as memory and parallel ranged GETs would show no gain;
 * - `transform` lets a test alter a response body in transit (a corrupted part) or fail a request;
 * - every request is recorded (method, path, Range) so a test can count the GETs of one key.
 *
 * Requests are forwarded byte for byte with their Host header, so SigV4 signatures stay valid.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the proxy forwarded. */
export interface ProxiedRequest {
  readonly method: string;
  readonly path: string;
  readonly range?: string;
}

/** What a test may do to one response. */
export interface ProxyFault {
  /** Answer this status with an S3-style error body instead of forwarding. */
  readonly status?: number;
  /** Change the body's bytes (same length): flips, zeroes. */
  readonly mutate?: (chunk: Buffer, offset: number) => Buffer;
}

/** Options of {@link startS3Proxy}. */
export interface S3ProxyOptions {
  /** The server behind the proxy, e.g. `http://127.0.0.1:9000`. */
  readonly target: string;
  /**
   * Bandwidth cap of each response, in bytes per second; 0 for none.
   * @default 0
   */
  readonly bytesPerSecond?: number;
  /** Picks a fault for a request, or `undefined` to forward it untouched. */
  readonly fault?: (request: ProxiedRequest) => ProxyFault | undefined;
}

/** A running proxy. */
export interface S3Proxy {
  /** `http://127.0.0.1:<port>`: use as the S3 endpoint. */
  readonly endpoint: string;
  readonly requests: ProxiedRequest[];
  close(): Promise<void>;
}

/** The default per-connection cap that emulates one S3 connection: 90 MB/s. */
export const S3_CONNECTION_BYTES_PER_SECOND = 90 * 1000 * 1000;

/** Slice written per pacing step: small enough that the cap holds on short ranges. */
const SLICE_BYTES = 256 * 1024;

/** Starts the proxy on an ephemeral loopback port. */
export async function startS3Proxy(options: S3ProxyOptions): Promise<S3Proxy> {
  const target = new URL(options.target);
  const rate = options.bytesPerSecond ?? 0;
  const requests: ProxiedRequest[] = [];
  const server: Server = createServer((req, res) => {
    const range = typeof req.headers.range === 'string' ? req.headers.range : undefined;
    const record: ProxiedRequest = {
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      ...(range === undefined ? {} : { range }),
    };
    requests.push(record);
    const fault = options.fault?.(record);
    if (fault?.status !== undefined) {
      req.resume();
      res.writeHead(fault.status, { 'content-type': 'application/xml' });
      res.end(
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected</Message></Error>',
      );
      return;
    }
    const upstream = httpRequest(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (answer: IncomingMessage) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        void pace(answer, res, rate, fault?.mutate).catch(() => res.destroy());
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Copies `from` to `to` at no more than `rate` bytes per second (0: as fast as possible), mutating if asked. */
async function pace(
  from: IncomingMessage,
  to: NodeJS.WritableStream & { destroyed?: boolean },
  rate: number,
  mutate?: (chunk: Buffer, offset: number) => Buffer,
): Promise<void> {
  const started = performance.now();
  let sent = 0;
  for await (const received of from) {
    let chunk = received as Buffer;
    if (mutate !== undefined) chunk = mutate(chunk, sent);
    for (let offset = 0; offset < chunk.byteLength; offset += SLICE_BYTES) {
      const slice = chunk.subarray(offset, offset + SLICE_BYTES);
      if (rate > 0) {
        const due = started + ((sent + slice.byteLength) / rate) * 1000;
        const wait = due - performance.now();
        if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
      }
      if (!to.write(slice)) await new Promise((resolve) => to.once('drain', resolve));
      sent += slice.byteLength;
    }
  }
  to.end();
}
