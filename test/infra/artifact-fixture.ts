/**
 * What the artifact tests share: a synthesized app with bundling, the embedded S3 server enforcing the S3 statements
 * the template attaches to each function's role, and the invocation of a staged function in a fresh Lambda-like
 * process (tools/lambda-process.ts) with the environment its template declares. Also the API Gateway REST events
 * those tests send, and readers for the answers.
 */
import type { APIGatewayProxyEvent, APIGatewayProxyResult, S3Event } from 'aws-lambda';
import { expect } from 'vitest';
import { describeDenial, type AccessDenial } from '../../functions/local/s3-access.js';
import {
  runInLambdaProcess,
  stagedFunction,
  type LambdaProcessResult,
  type TemplateJson,
} from '../../tools/lambda-process.js';
import type { NodeBinary } from '../../tools/node-binaries.js';
import { startS3Fixture, type S3Fixture } from '../s3/fixture.js';
import { s3PolicyOf, tempDir, type Synthesized } from './fixture.js';

/** How one process runs: see `LambdaProcessOptions` for each. */
export interface InvokeOptions {
  /** @default the machine's own Node */
  readonly node?: NodeBinary;
  readonly hideCpuTopology?: boolean;
  /** All events at once in one process (Lambda Managed Instances). */
  readonly concurrent?: boolean;
  /** Receives the function's JSON log lines (stdout and stderr). */
  readonly logs?: string[];
  /**
   * The layer folder to mount instead of the function's own staged layer (a reference run of the same bundle with
   * another architecture's layer). @default the one layer the template gives the function
   */
  readonly layerDir?: string;
  /** Fault injections only (never a setting the template lacks), added to the function's environment. */
  readonly faults?: Readonly<Record<string, string>>;
  /** Serve Lambda's Runtime API on loopback and record what is posted to it (the inference watchdog's answers). */
  readonly runtimeApi?: boolean;
}

/** A synthesized app's functions, runnable against an embedded S3 server that enforces their roles. */
export interface ArtifactRig {
  readonly synth: Synthesized;
  readonly s3: S3Fixture;
  /** Every request the server refused under a function's policy. */
  readonly denials: readonly AccessDenial[];
  /** The logical id of an L2 construct's CloudFormation resource. */
  idOf(construct: { node: { defaultChild?: unknown } }): string;
  /** Invokes a function's staged bundle with `events`, in order, in one fresh process (one warm instance). */
  invoke(logicalId: string, events: readonly unknown[], options?: InvokeOptions): Promise<LambdaProcessResult>;
  /** The object-created event of `key`, once the server has sent it. */
  eventFor(key: string): Promise<S3Event>;
  /** The denials as readable lines (an empty list is the expected outcome). */
  describeDenials(): string[];
  stop(): Promise<void>;
}

/**
 * Starts the embedded S3 server (bucket `models`, `uploads/**.onnx` events) with one role per function of `synth`,
 * keyed by the function's logical id and holding the S3 statements the template gives that function's role.
 */
export async function startArtifactRig(synth: Synthesized): Promise<ArtifactRig> {
  const idOf = (construct: { node: { defaultChild?: unknown } }): string =>
    synth.stack.resolve(synth.stack.getLogicalId(construct.node.defaultChild as never)) as string;
  const bucketId = idOf(synth.stack.bucket);
  const functions = [
    synth.stack.registerFunction,
    synth.stack.controlFunction,
    synth.stack.batchJobs.batchFunction,
    ...[...synth.stack.endpoints.values()].map((endpoint) => endpoint.inferFunction),
  ];
  const denials: AccessDenial[] = [];
  const s3 = await startS3Fixture({
    bucket: 'models',
    eventFilter: { prefix: 'uploads/', suffix: '.onnx' },
    roles: functions.map((fn) => ({
      role: idOf(fn.function),
      statements: s3PolicyOf(synth.template, idOf(fn.role), bucketId, 'models'),
    })),
    onAccessDenied: (denial) => denials.push(denial),
  });
  const template = synth.template.toJSON() as TemplateJson;

  const invoke = async (
    logicalId: string,
    events: readonly unknown[],
    options: InvokeOptions = {},
  ): Promise<LambdaProcessResult> => {
    const credentials = s3.server.credentialsFor(logicalId);
    const fn = stagedFunction(template, synth.assemblyDir, logicalId);
    const layerDir = options.layerDir ?? fn.layerDirs[0];
    if (layerDir === undefined || fn.layerDirs.length !== 1) {
      throw new Error(`${logicalId} has ${fn.layerDirs.length} layers; these tests mount exactly one`);
    }
    // Only what the template declares, and the local S3 endpoint and its key pair.
    const declared = Object.fromEntries(
      Object.entries(fn.environment).map(([name, value]) => [
        name,
        typeof value === 'string' ? value : s3.server.bucket, // the only reference: MODEL_BUCKET -> the bucket
      ]),
    );
    const run = await runInLambdaProcess({
      ...(options.concurrent === true ? { concurrent: true, captureStdout: true } : {}),
      ...(options.node === undefined ? {} : { node: options.node }),
      ...(options.hideCpuTopology === true ? { hideCpuTopology: true } : {}),
      ...(options.runtimeApi === true ? { runtimeApi: true } : {}),
      bundleDir: fn.bundleDir,
      layerDir,
      taskDir: tempDir('task'),
      functionName: logicalId,
      memoryMb: fn.memoryMb,
      events,
      environment: {
        ...declared,
        AWS_REGION: s3.server.region,
        AWS_ACCESS_KEY_ID: credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
        S3_ENDPOINT: s3.server.endpoint,
        // No X-Ray daemon here: Powertools' tracer is told so instead of emitting to a closed UDP port.
        POWERTOOLS_TRACE_ENABLED: 'false',
        ...options.faults,
      },
    });
    expect(run.nodeVersion).toBe(options.node === undefined ? process.version : `v${options.node.version}`);
    expect(run.nodeArch).toBe(options.node?.cpu ?? process.arch);
    // Powertools writes info to stdout, warnings and errors to stderr: one JSON object per line.
    options.logs?.push(...`${run.stdout}\n${run.stderr}`.split('\n').filter((line) => line.startsWith('{')));
    return run;
  };

  const eventFor = async (key: string): Promise<S3Event> => {
    for (let seen = 1; ; seen++) {
      const event = ((await s3.waitForEvents(seen)) as S3Event[]).find((e) => e.Records[0]?.s3.object.key === key);
      if (event !== undefined) return event;
    }
  };

  return {
    synth,
    s3,
    denials,
    idOf,
    invoke,
    eventFor,
    describeDenials: () => denials.map(describeDenial),
    stop: () => s3.stop(),
  };
}

/** A REST API proxy event for a deployed route (`resource` is the route template, `path` has no stage). */
export function restEvent(
  method: string,
  resource: string,
  path: string,
  body?: Buffer,
  headers: Record<string, string> = {},
): APIGatewayProxyEvent {
  const allHeaders = { host: 'abc123.execute-api.us-east-1.amazonaws.com', 'x-api-key': 'test-key', ...headers };
  const version = /\/versions\/([^/]+)/.exec(path)?.[1];
  return {
    resource,
    path,
    httpMethod: method,
    headers: allHeaders,
    multiValueHeaders: Object.fromEntries(Object.entries(allHeaders).map(([k, v]) => [k, [v]])),
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: version === undefined ? null : { v: version },
    stageVariables: null,
    body: body === undefined ? null : body.toString('base64'),
    isBase64Encoded: body !== undefined,
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123',
      authorizer: undefined,
      protocol: 'HTTP/1.1',
      httpMethod: method,
      identity: { sourceIp: '203.0.113.7', apiKey: 'test-key' } as APIGatewayProxyEvent['requestContext']['identity'],
      path: `/prod${path}`,
      stage: 'prod',
      requestId: `req-${method}-${path}`,
      requestTimeEpoch: Date.now(),
      resourceId: 'res',
      resourcePath: resource,
    },
  };
}

/** The JSON body of an API Gateway answer. */
export const bodyOf = (result: unknown): unknown => {
  const r = result as APIGatewayProxyResult;
  return JSON.parse(r.isBase64Encoded === true ? Buffer.from(r.body, 'base64').toString('utf8') : r.body);
};

/** An answer in the binary tensor form: its JSON header (read as `H`) and the bytes after it. */
export function binaryAnswerOf<H = Record<string, unknown>>(
  result: APIGatewayProxyResult,
): { header: H; tail: Buffer } {
  const raw = Buffer.from(result.body, result.isBase64Encoded === true ? 'base64' : 'utf8');
  const headerLength = Number(
    Object.entries(result.headers ?? {}).find(([k]) => k.toLowerCase() === 'inference-header-content-length')?.[1],
  );
  return {
    header: JSON.parse(raw.subarray(0, headerLength).toString('utf8')) as H,
    tail: raw.subarray(headerLength),
  };
}
