/**
 * `npm start`: the local stack on 127.0.0.1 (gateway on PORT, default 8080; embedded S3 on S3_PORT, default 9000;
 * data under .data/), seeded with the example models of `models/`. It prints the URLs once the seeds are
 * registered, which is also when `/v2/health/ready` turns 200.
 */
import { ENV } from '../core/contract.js';
import { FrontChoiceError } from '../core/fronts.js';
import { frontOptionsFromEnv, type LocalFront, type LocalFrontOptions } from './front.js';
import { busyPortMessage, startLocal, type LocalStack } from './local-runtime.js';
import { endWithin } from './shutdown.js';

// The SDK's "2027 releases need Node 22" notice is about the SDK's future, not this run: Node 20 works locally.
process.env[ENV.sdkNodeVersionWarningDisabled] ??= 'true';

const DEFAULT_PORT = 8080;
const DEFAULT_S3_PORT = 9000;
const port = Number(process.env[ENV.port] ?? DEFAULT_PORT);
const s3Port = Number(process.env[ENV.s3Port] ?? DEFAULT_S3_PORT);

let front: LocalFrontOptions;
try {
  front = frontOptionsFromEnv(process.env);
} catch (error) {
  if (!(error instanceof FrontChoiceError)) throw error;
  console.error(`npm start: ${ENV.front}/${ENV.frontAuth}: ${error.message}`);
  process.exit(1);
}

let stack: LocalStack;
try {
  stack = await startLocal({
    port,
    s3Port,
    dataDir: process.env[ENV.dataDir] ?? '.data',
    catalogDir: 'models',
    front,
  });
} catch (error) {
  if (error instanceof FrontChoiceError) {
    console.error(`npm start: ${ENV.front}/${ENV.responseStreaming}: ${error.message}`);
    process.exit(1);
  }
  const busy = busyPortMessage(error, { port, s3Port });
  if (busy === undefined) throw error;
  console.error(busy);
  process.exit(1);
}

// The CLI finds the local server through S3_PORT; say so when it is not the default.
const cliEnv = s3Port === DEFAULT_S3_PORT ? '' : `${ENV.s3Port}=${s3Port} `;
/** How to call the emulated front: what it checks, and the header a client adds. */
async function frontLines(emulated: LocalFront): Promise<{ lines: string[]; curlHeader: string }> {
  const title = `front: ${emulated.profile.title} (${ENV.front}=${emulated.api}), authorization ${emulated.authorization}`;
  if (emulated.apiKey !== undefined) {
    return { lines: [title, `  API key: ${emulated.apiKey}`], curlHeader: ` -H 'x-api-key: ${emulated.apiKey}'` };
  }
  if (emulated.jwt !== undefined) {
    const token = await emulated.jwt.issueToken({}, 12 * 3600);
    return {
      lines: [title, `  JWT (12 h, iss ${emulated.jwt.issuer}, aud ${emulated.jwt.audience}): ${token}`],
      curlHeader: ` -H 'Authorization: Bearer ${token}'`,
    };
  }
  if (emulated.sigV4 !== undefined) {
    return {
      lines: [
        title,
        `  sign with SigV4: service ${emulated.sigV4.service}, region ${emulated.sigV4.region}, the access key below`,
      ],
      curlHeader: ` --aws-sigv4 'aws:amz:${emulated.sigV4.region}:${emulated.sigV4.service}' --user '${stack.s3.credentials.accessKeyId}:${stack.s3.credentials.secretAccessKey}'`,
    };
  }
  return { lines: [title], curlHeader: '' };
}
const frontInfo = await frontLines(stack.front);

const lines = [
  `onnx-serverless is ready on ${stack.gatewayUrl}`,
  `console: ${stack.gatewayUrl}/  API as OpenAPI 3.1: ${stack.gatewayUrl}/v2/openapi.json`,
  ...frontInfo.lines,
  `embedded S3: ${stack.s3.endpoint}  bucket: ${stack.s3.bucket}  access key: ${stack.s3.credentials.accessKeyId}  secret: ${stack.s3.credentials.secretAccessKey}  region: ${stack.s3.region}`,
  `  (owner credentials: full access; each function runs with its deployed role's S3 permissions; denials print as "embedded S3: AccessDenied ...")`,
  '',
  'models:',
  ...(await stack.runtime.repository.listModels()).map((m) => `  ${stack.gatewayUrl}/v2/models/${m}`),
  '',
  'try:',
  `  curl -s -X POST ${stack.gatewayUrl}/v2/models/linear/infer -H 'Content-Type: application/json'${frontInfo.curlHeader} \\`,
  `    -d '{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}]}'`,
  '',
  'upload a new version:',
  `  AWS_ACCESS_KEY_ID=${stack.s3.credentials.accessKeyId} AWS_SECRET_ACCESS_KEY=${stack.s3.credentials.secretAccessKey} \\`,
  `    aws s3 cp model.onnx s3://${stack.s3.bucket}/uploads/<model>/ --endpoint-url ${stack.s3.endpoint}`,
  `  or: ${cliEnv}npm run models -- upload model.onnx --model <model>`,
];
console.log(lines.join('\n'));

/**
 * Ctrl-C or SIGTERM: stop listening, give work in flight {@link SHUTDOWN_GRACE_MS} to finish, then exit whatever
 * still runs (registration's children die with this process); {@link SHUTDOWN_BOUND_MS} is the hard bound, for work
 * stuck inside onnxruntime that would hold the exit itself. An upload abandoned mid-way has no outcome yet: the
 * next start registers it. Further signals change nothing: the bound holds.
 */
const SHUTDOWN_GRACE_MS = 3_000;
const SHUTDOWN_BOUND_MS = 6_000;
let stopping = false;
const stop = (signal: NodeJS.Signals) => {
  // One stop: Ctrl-C reaches npm, tsx and this process alike, and some relay it again.
  if (stopping) return;
  stopping = true;
  endWithin(SHUTDOWN_BOUND_MS);
  console.log(`${signal}: stopping (work in flight gets ${SHUTDOWN_GRACE_MS / 1000} s)`);
  const abandon = setTimeout(() => {
    console.log('stopped with work in flight; uploads without an outcome are registered at the next start');
    process.exit(0);
  }, SHUTDOWN_GRACE_MS);
  stack.close().then(
    () => {
      clearTimeout(abandon);
      process.exit(0);
    },
    (error: unknown) => {
      console.error('npm start: stopping failed:', error);
      process.exit(1);
    },
  );
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
