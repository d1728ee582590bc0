/**
 * `npm start`: the local stack on 127.0.0.1 (gateway on PORT, default 8080; embedded S3 on S3_PORT, default 9000;
 * data under .data/), seeded with the example models of `models/`.
 */
import { ENV } from '../core/contract.js';
import { startLocal } from './local-runtime.js';

const port = Number(process.env[ENV.port] ?? 8080);
const s3Port = Number(process.env[ENV.s3Port] ?? 9000);
const stack = await startLocal({ port, s3Port, dataDir: process.env[ENV.dataDir] ?? '.data', catalogDir: 'models' });

const lines = [
  `onnx-serverless is serving on ${stack.gatewayUrl}`,
  `embedded S3: ${stack.s3.endpoint}  bucket: ${stack.s3.bucket}  access key: ${stack.s3.credentials.accessKeyId}  secret: ${stack.s3.credentials.secretAccessKey}  region: ${stack.s3.region}`,
  `  (owner credentials: full access; each function runs with its deployed role's S3 permissions; denials print as "embedded S3: AccessDenied ...")`,
  '',
  'models:',
  ...(await stack.runtime.repository.listModels()).map((m) => `  ${stack.gatewayUrl}/v2/models/${m}`),
  '',
  'try:',
  `  curl -s -X POST ${stack.gatewayUrl}/v2/models/linear/infer -H 'Content-Type: application/json' \\`,
  `    -d '{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}]}'`,
  '',
  'upload a new version:',
  `  AWS_ACCESS_KEY_ID=${stack.s3.credentials.accessKeyId} AWS_SECRET_ACCESS_KEY=${stack.s3.credentials.secretAccessKey} \\`,
  `    aws s3 cp model.onnx s3://${stack.s3.bucket}/uploads/<model>/ --endpoint-url ${stack.s3.endpoint}`,
  `  or: npm run models -- upload model.onnx --model <model>`,
];
console.log(lines.join('\n'));

const stop = async () => {
  await stack.close();
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
