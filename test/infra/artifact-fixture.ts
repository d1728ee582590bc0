/**
 * What the artifact tests share: a synthesized app with bundling, the embedded S3 server enforcing the S3 statements
 * the template attaches to each function's role, and the invocation of a staged function in a fresh Lambda-like
 * process (tools/lambda-process.ts) with the environment its template declares. Also the API Gateway REST (1.0) and
 * HTTP API / function URL (2.0) events those tests send, and readers for the answers.
 */
import type { APIGatewayProxyEvent, APIGatewayProxyEventV2, APIGatewayProxyResult, S3Event } from 'aws-lambda';
import { expect } from 'vitest';
import { describeDenial, type AccessDenial } from '../../functions/local/s3-access.js';
import type { PolicyStatementJson } from '../../infra/function-grants.js';
import {
  runInLambdaProcess,
  stagedFunction,
  type LambdaProcessResult,
  type TemplateJson,
} from '../../tools/lambda-process.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCatalogEntry, type CatalogEntry } from '../../functions/core/catalog.js';
import { LAMBDA_NODE_VERSIONS, type NodeBinary } from '../../tools/node-binaries.js';
import { startS3Fixture, type S3Fixture } from '../s3/fixture.js';
import { s3PolicyOf, tempDir, type Synthesized } from './fixture.js';

/** The Nodes the artifact tests run each bundle on: the machine's, then each Lambda runtime's. */
export const ARTIFACT_NODES: ReadonlyArray<{ readonly label: string; readonly version?: string }> = [
  { label: `this machine's Node ${process.version}` },
  ...Object.entries(LAMBDA_NODE_VERSIONS).map(([runtime, version]) => ({
    label: `${runtime} (Node ${version})`,
    version,
  })),
];

/**
 * The catalog entry of the detector example on x86_64 without a warmer, with the image preprocessing its catalog
 * file declares (which reaches register through the template's environment).
 */
export function detectorCatalogEntry(): CatalogEntry {
  return parseCatalogEntry('detector', {
    architecture: 'x86_64',
    warmer: false,
    preprocess: JSON.parse(readFileSync(join('models', 'detector.json'), 'utf8')).preprocess,
  });
}

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
  /**
   * Loopback stand-ins of AWS APIs that have no local server (CloudWatch, SNS), as the SDKs' service endpoint
   * variables (`AWS_ENDPOINT_URL_CLOUDWATCH`...), added to the function's environment.
   */
  readonly awsEndpoints?: Readonly<Record<string, string>>;
  /** Where the function's own Lambda API calls go (`AWS_ENDPOINT_URL_LAMBDA`): a loopback stand-in. */
  readonly lambdaEndpoint?: string;
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
export async function startArtifactRig(
  synth: Synthesized,
  options: {
    /**
     * Narrows a function's role (by the function's logical id) to see the denials it causes: receives the statements
     * the template gives it, returns those the server enforces. @default the template's statements
     */
    readonly narrowRole?: (logicalId: string, statements: PolicyStatementJson[]) => PolicyStatementJson[];
  } = {},
): Promise<ArtifactRig> {
  const idOf = (construct: { node: { defaultChild?: unknown } }): string =>
    synth.stack.resolve(synth.stack.getLogicalId(construct.node.defaultChild as never)) as string;
  const bucketId = idOf(synth.stack.bucket);
  const functions = [
    synth.stack.registerFunction,
    synth.stack.controlFunction,
    synth.stack.rolloutFunction,
    synth.stack.batchJobs.batchFunction,
    ...[...synth.stack.endpoints.values()].map((endpoint) => endpoint.inferFunction),
  ];
  const denials: AccessDenial[] = [];
  const s3 = await startS3Fixture({
    bucket: 'models',
    eventFilter: { prefix: 'uploads/', suffix: '.onnx' },
    roles: functions.map((fn) => {
      const statements = s3PolicyOf(synth.template, idOf(fn.role), bucketId, 'models');
      const role = idOf(fn.function);
      return { role, statements: options.narrowRole?.(role, statements) ?? statements };
    }),
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
        ...(options.lambdaEndpoint === undefined ? {} : { AWS_ENDPOINT_URL_LAMBDA: options.lambdaEndpoint }),
        // No X-Ray daemon here: Powertools' tracer is told so instead of emitting to a closed UDP port.
        POWERTOOLS_TRACE_ENABLED: 'false',
        ...options.awsEndpoints,
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

/**
 * The same request as a payload format 2.0 event, as a Lambda function URL sends it (`routeKey` `$default`), or an
 * HTTP API with `extra.routeKey` the matched route (e.g. `POST /v2/models/{model}/infer`) and its `pathParameters`:
 * `rawPath` and `rawQueryString` as the client wrote them, repeated headers joined with commas, cookies apart from
 * the headers; text bodies (JSON) arrive as text, others base64, as both fronts send them.
 */
export function httpApiEvent(
  method: string,
  path: string,
  body?: Buffer,
  headers: Record<string, string> = {},
  extra: {
    readonly cookies?: readonly string[];
    readonly rawQueryString?: string;
    readonly routeKey?: string;
    readonly pathParameters?: Record<string, string>;
  } = {},
): APIGatewayProxyEventV2 {
  const routeKey = extra.routeKey ?? '$default';
  const host =
    routeKey === '$default' ? 'abc123xyz.lambda-url.us-east-1.on.aws' : 'abc123xyz.execute-api.us-east-1.amazonaws.com';
  const allHeaders = Object.fromEntries(
    Object.entries({ host, 'user-agent': 'artifact-test', ...headers }).map(([name, value]) => [
      name.toLowerCase(),
      value,
    ]),
  );
  const text = /^(application\/json|text\/)/.test(allHeaders['content-type'] ?? '');
  return {
    version: '2.0',
    routeKey,
    rawPath: path,
    rawQueryString: extra.rawQueryString ?? '',
    ...(extra.cookies === undefined ? {} : { cookies: [...extra.cookies] }),
    headers: allHeaders,
    ...(extra.pathParameters === undefined ? {} : { pathParameters: extra.pathParameters }),
    ...(body === undefined ? {} : { body: text ? body.toString('utf8') : body.toString('base64') }),
    isBase64Encoded: body !== undefined && !text,
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123xyz',
      domainName: host,
      domainPrefix: 'abc123xyz',
      http: {
        method,
        // Decoded, as function URLs give it; the handlers read rawPath.
        path: decodeURIComponent(path),
        protocol: 'HTTP/1.1',
        sourceIp: '203.0.113.7',
        userAgent: 'artifact-test',
      },
      requestId: `req-${method}-${path}`,
      routeKey,
      stage: '$default',
      time: '06/Dec/2026:05:00:00 +0000',
      timeEpoch: Date.now(),
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
