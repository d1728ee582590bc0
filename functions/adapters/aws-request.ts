/**
 * One signed POST to an AWS service endpoint over node:http(s), for the few AWS calls the functions make without an
 * SDK client (the warmers' Lambda `Invoke`, the rollout controller's CloudWatch and SNS calls, the CLI's Step Functions
 * calls): a client would add hundreds of kilobytes to a bundle, or a dependency, for one request.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { createSigner, type CredentialsSource } from './aws-signing.js';
import { S3_CLIENT_DEFAULTS } from './s3-settings.js';

/** An answer of a signed call, whatever its status. */
export interface AwsAnswer {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  readonly text: string;
}

/** Posts `body` to `path` (already escaped once) with `headers`, signed. */
export type AwsPoster = (path: string, headers: Record<string, string>, body: string) => Promise<AwsAnswer>;

/**
 * A poster to `endpoint` for `service` in `region`: keep-alive connections, the credentials read on the first call,
 * and the sockets' idle timeout of the S3 client (a silent endpoint fails the call).
 * @example await createAwsPoster('sns', 'https://sns.eu-west-1.amazonaws.com', 'eu-west-1', creds)('/', headers, body)
 */
export function createAwsPoster(
  service: 'lambda' | 'monitoring' | 'sns' | 'states',
  endpoint: string,
  region: string,
  credentials: () => CredentialsSource,
): AwsPoster {
  const base = new URL(endpoint);
  const https = base.protocol === 'https:';
  const agent = https ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
  let signer: ReturnType<typeof createSigner> | undefined;
  return async (path, headers, body) => {
    signer ??= createSigner(service, region, credentials());
    const signed = await signer.sign({
      method: 'POST',
      protocol: base.protocol,
      hostname: base.hostname,
      ...(base.port === '' ? {} : { port: Number(base.port) }),
      path,
      query: {},
      headers: { host: base.host, 'content-length': String(Buffer.byteLength(body)), ...headers },
      body,
    });
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const outgoing = (https ? httpsRequest : httpRequest)(
        { method: 'POST', hostname: base.hostname, port: base.port, path, headers: signed.headers, agent },
        resolve,
      );
      outgoing.setTimeout(S3_CLIENT_DEFAULTS.socketTimeoutMs, () =>
        outgoing.destroy(new Error(`the ${service} API stayed silent for ${S3_CLIENT_DEFAULTS.socketTimeoutMs} ms`)),
      );
      outgoing.on('error', reject);
      outgoing.end(body);
    });
    const chunks: Buffer[] = [];
    for await (const chunk of response) chunks.push(chunk as Buffer);
    return {
      status: response.statusCode ?? 0,
      headers: response.headers,
      text: Buffer.concat(chunks).toString('utf8'),
    };
  };
}
