/**
 * Runs a deployed artifact the way Lambda runs it: a function's bundle as CDK staged it in the cloud assembly, in a
 * fresh Node process, with its layer where Lambda mounts layers, the environment its template declares and the
 * variables Lambda itself sets. The artifact tests assert on the answers; the benchmarks time them (from the spawn
 * of the process, so Node's own start is included) and read the process's memory. An arm64 Node (Lambda's default
 * architecture) runs on an x86_64 host under qemu-user, and the CPU topology can be hidden as Lambda hides it.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { PreludeReader } from '../functions/local/lambda-response-stream.js';
import { HTTP_INTEGRATION_RESPONSE_TYPE, type StreamPrelude } from '../functions/transport/response-stream.js';
import { ARM64_EMULATION, missingArm64Emulation, missingUserNamespaces, type NodeBinary } from './node-binaries.js';

/** The parts of a synthesized CloudFormation template this module reads. */
export interface TemplateJson {
  readonly Resources: Readonly<
    Record<string, { readonly Type: string; readonly Properties?: Readonly<Record<string, unknown>> }>
  >;
}

/** A function of the template, located in its cloud assembly. */
export interface StagedFunction {
  /** The asset folder holding the bundle (`index.mjs`). */
  readonly bundleDir: string;
  /** The asset folders of its layers, in order (each holds `nodejs/node_modules`). */
  readonly layerDirs: readonly string[];
  readonly memoryMb: number;
  /** `Environment.Variables` as the template has them: strings, or references (`{"Ref": ...}`) to resolve. */
  readonly environment: Readonly<Record<string, unknown>>;
}

function assetDir(assemblyDir: string, s3Key: unknown, what: string): string {
  if (typeof s3Key !== 'string')
    throw new Error(`${what} has no staged asset (was the app synthesized with bundling?)`);
  return join(assemblyDir, `asset.${s3Key.replace(/\.zip$/, '')}`);
}

/** Locates the bundle and layers of the function with logical id `logicalId` in a synthesized app. */
export function stagedFunction(template: TemplateJson, assemblyDir: string, logicalId: string): StagedFunction {
  const props = template.Resources[logicalId]?.Properties as
    | {
        Code?: { S3Key?: unknown };
        MemorySize?: number;
        Environment?: { Variables?: Record<string, unknown> };
        Layers?: unknown[];
      }
    | undefined;
  if (props === undefined) throw new Error(`the template has no function ${logicalId}`);
  const layerDirs = (props.Layers ?? []).map((layer) => {
    const id = (layer as { Ref?: unknown }).Ref;
    const content =
      typeof id === 'string'
        ? (template.Resources[id]?.Properties?.['Content'] as { S3Key?: unknown } | undefined)
        : undefined;
    return assetDir(assemblyDir, content?.S3Key, `layer ${String(id)} of ${logicalId}`);
  });
  return {
    bundleDir: assetDir(assemblyDir, props.Code?.S3Key, `function ${logicalId}`),
    layerDirs,
    memoryMb: props.MemorySize ?? 128,
    environment: props.Environment?.Variables ?? {},
  };
}

/** What {@link runInLambdaProcess} runs. */
export interface LambdaProcessOptions {
  /** The folder holding `index.mjs` (and its source map, if any). */
  readonly bundleDir: string;
  /** The layer to mount at `/opt`: the folder that holds `nodejs/node_modules`. */
  readonly layerDir?: string;
  /** An empty scratch folder used as `/var/task`; the caller removes it. */
  readonly taskDir: string;
  /** `AWS_LAMBDA_FUNCTION_NAME`. */
  readonly functionName: string;
  /** `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`. */
  readonly memoryMb: number;
  /** The function's environment (resolved), and anything else the process needs (endpoints, credentials). */
  readonly environment: Readonly<Record<string, string>>;
  /** Events, handled in order by one instance. */
  readonly events: readonly unknown[];
  /**
   * The Node binary to run (another major or CPU, from `tools/node-binaries.ts`). An arm64 binary on an x86_64 host
   * runs under qemu-user, in a user and mount namespace of its own whose private binfmt_misc hands every arm64
   * executable to qemu, so the processes it spawns (registration's isolated onnxruntime child) run too.
   * @default this process's own (`process.execPath`)
   */
  readonly node?: NodeBinary;
  /**
   * Hide the CPU topology as Lambda does: `/sys/devices/system/cpu` is an empty tmpfs in a mount namespace of the
   * process's own (libraries that read it, such as onnxruntime's cpuinfo, must cope). Needs what
   * {@link missingUserNamespaces} checks for.
   * @default false
   */
  readonly hideCpuTopology?: boolean;
  /**
   * Start every event at once instead of one after the other, as Lambda Managed Instances do with several
   * invocations per execution environment. Each invocation still gets its own request id (`req-<index>`).
   * @default false
   */
  readonly concurrent?: boolean;
  /** Node's command-line options. @default none */
  readonly nodeOptions?: readonly string[];
  /** Keep what the function writes to stdout (its logs) in the result. @default false */
  readonly captureStdout?: boolean;
  /**
   * Serve Lambda's Runtime API response route on loopback (`AWS_LAMBDA_RUNTIME_API`), for a function that posts an
   * invocation's answer itself and ends its process (the inference watchdog), and for a streaming handler
   * (`awslambda.streamifyResponse`), whose answers the runner posts there in the streaming response mode as the Node
   * runtime does; the process may then end before every event is handled, and the result says how it ended instead
   * of rejecting. @default false
   */
  readonly runtimeApi?: boolean;
}

/** An answer a streaming handler posted in Lambda's streaming response mode, as the front reads it. */
export interface StreamedResponse {
  /** The POST's own headers (lower-case names): response mode, content type, transfer encoding. */
  readonly requestHeaders: Readonly<Record<string, string>>;
  /** The status, headers and cookies of an HTTP integration response; `undefined` for any other content type. */
  readonly prelude?: StreamPrelude;
  /** The body after the prelude's delimiter (the whole stream when there is no prelude). */
  readonly body: Buffer;
  /** Chunks the body arrived in (more than one: it was streamed, not posted at once). */
  readonly chunks: number;
}

/** What the function posted to the Runtime API, per invocation, and how its process ended. */
export interface RuntimeApiRecord {
  /** Bodies posted to `/2018-06-01/runtime/invocation/<id>/response`, by request id (`req-<index>`), parsed. */
  readonly responses: ReadonlyMap<string, unknown>;
  /** Answers posted in the streaming response mode (`Lambda-Runtime-Function-Response-Mode: streaming`), by id. */
  readonly streamed: ReadonlyMap<string, StreamedResponse>;
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** What happened in the process. Times are milliseconds since the process was spawned. */
export interface LambdaProcessResult {
  /** The handler's answers, in event order. */
  readonly results: unknown[];
  /** When the handler module had been imported: the end of Lambda's init phase. */
  readonly initMs: number;
  /** When each answer was ready (in completion order when the events ran concurrently). */
  readonly responseMs: readonly number[];
  /** Resident memory at the end of init, in bytes. */
  readonly initRssBytes: number;
  /**
   * Peak resident memory since the end of init, in bytes, read after each event: Linux's `VmHWM`, reset at the end
   * of init. (`getrusage`'s maxRSS would not do: a spawned child inherits its parent's peak.) Elsewhere, maxRSS.
   */
  readonly peakRssBytes: readonly number[];
  /** The function's stdout, with `captureStdout`; else empty. */
  readonly stdout: string;
  /** The last 16 KB of the function's stderr (where warnings and errors are logged). */
  readonly stderr: string;
  /** `process.version` of the Node that ran the function, e.g. `v22.23.5`. */
  readonly nodeVersion: string;
  /** With `runtimeApi`: what was posted there and how the process ended. */
  readonly runtimeApi?: RuntimeApiRecord;
  /** `process.arch` of the Node that ran the function: `arm64` under qemu-user. */
  readonly nodeArch: string;
  /**
   * The shared objects (`.so`, `.node`) mapped in the process after the last event, by real path, from
   * `/proc/self/maps` (emptied where that file does not exist): which native binaries really loaded.
   */
  readonly loadedLibraries: readonly string[];
}

// The Lambda runtime's part: import the handler (init), then call it once per event with a Context. Progress goes to
// file descriptor 3 so that it never mixes with the function's own logs on stdout.
const RUNNER = `import { readFileSync, writeFileSync, writeSync } from 'node:fs';
import http from 'node:http';
const mark = (line) => writeSync(3, line + '\\n');
// The Node runtime's awslambda global, as its runtime interface client defines it: streamifyResponse marks a
// handler, HttpResponseStream.from puts the JSON prelude and 8 NUL bytes before the first write.
const STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
globalThis.awslambda = {
  streamifyResponse: (handler) => { handler[STREAMING] = 'response'; return handler; },
  HttpResponseStream: class {
    static from(stream, prelude) {
      stream.setContentType('application/vnd.awslambda.http-integration-response');
      const metadata = JSON.stringify(prelude);
      stream._onBeforeFirstWrite = (write) => { write(metadata); write(new Uint8Array(8)); };
      return stream;
    }
  },
};
// A streaming invocation's answer: one chunked POST to the Runtime API in the streaming response mode, its
// content type set until the first write sends the headers.
const responseStream = (id) => {
  const [host, port] = process.env.AWS_LAMBDA_RUNTIME_API.split(':');
  const request = http.request({
    host, port: Number(port), method: 'POST',
    path: '/2018-06-01/runtime/invocation/' + encodeURIComponent(id) + '/response',
    headers: { 'Lambda-Runtime-Function-Response-Mode': 'streaming', 'Transfer-Encoding': 'chunked' },
  });
  const done = new Promise((resolve, reject) => {
    request.on('response', (response) => { response.resume(); response.on('end', resolve); });
    request.on('error', reject);
  });
  let contentType = 'application/octet-stream';
  let started = false;
  const write = request.write.bind(request);
  const end = request.end.bind(request);
  const start = () => {
    if (started) return;
    started = true;
    request.setHeader('Content-Type', contentType);
    const before = request._onBeforeFirstWrite;
    request._onBeforeFirstWrite = undefined;
    if (before !== undefined) before((chunk) => write(chunk));
  };
  request.setContentType = (type) => { contentType = type; };
  request.write = (...args) => { start(); return write(...args); };
  request.end = (...args) => { start(); return end(...args); };
  return { stream: request, done };
};
const peakRss = () => {
  try {
    const kb = /VmHWM:\\s+(\\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    if (kb !== undefined) return Number(kb) * 1024;
  } catch {}
  return process.resourceUsage().maxRSS * 1024;
};
mark('node ' + process.version + ' ' + process.arch);
const { handler } = await import('./index.mjs');
try { writeFileSync('/proc/self/clear_refs', '5'); } catch {}
mark('init ' + process.memoryUsage().rss);
const contextOf = (index) => ({
  functionName: process.env.AWS_LAMBDA_FUNCTION_NAME, functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:' + process.env.AWS_LAMBDA_FUNCTION_NAME,
  memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE, awsRequestId: 'req-' + index,
  logGroupName: 'local', logStreamName: 'local', callbackWaitsForEmptyEventLoop: true,
  getRemainingTimeInMillis: () => 25000, done() {}, fail() {}, succeed() {},
});
const events = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const results = [];
if (process.argv[4] === 'concurrent') {
  results.push(...(await Promise.all(events.map(async (event, index) => {
    const result = await handler(event, contextOf(index));
    mark('response ' + peakRss());
    return result;
  }))));
} else if (handler[STREAMING] === 'response') {
  for (const event of events) {
    const context = contextOf(results.length);
    const { stream, done } = responseStream(context.awsRequestId);
    await handler(event, stream, context);
    if (!stream.writableEnded) stream.end();
    await done;
    results.push({ streamed: context.awsRequestId });
    mark('response ' + peakRss());
    mark('result ' + JSON.stringify(results[results.length - 1]));
  }
} else {
  for (const event of events) {
    results.push(await handler(event, contextOf(results.length)));
    mark('response ' + peakRss());
    mark('result ' + JSON.stringify(results[results.length - 1]));
  }
}
let libraries = [];
try {
  const paths = readFileSync('/proc/self/maps', 'utf8').split('\\n').map((line) => line.slice(line.indexOf(' /') + 1));
  libraries = [...new Set(paths.filter((path) => /^\\/.*\\.(node|so(\\.\\d+)*)$/.test(path)))];
} catch {}
writeFileSync(process.argv[3], JSON.stringify({ results, libraries }));
`;

function lines(stream: Readable, onLine: (line: string) => void): void {
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    pending += chunk;
    let newline = pending.indexOf('\n');
    while (newline >= 0) {
      onLine(pending.slice(0, newline));
      pending = pending.slice(newline + 1);
      newline = pending.indexOf('\n');
    }
  });
}

/**
 * Runs `events` through the bundle's `handler` in one fresh Node process, as one Lambda instance would: the task
 * folder holds only the bundle; Lambda's Node runtime resolves imports through `NODE_PATH`
 * (`/opt/nodejs/node_modules`), which plain Node does not do for ES modules, so the task folder links
 * `node_modules` to the layer instead. Rejects with the process's stderr when it fails.
 */
export async function runInLambdaProcess(options: LambdaProcessOptions): Promise<LambdaProcessResult> {
  const task = options.taskDir;
  mkdirSync(task, { recursive: true });
  for (const file of ['index.mjs', 'index.mjs.map']) {
    if (existsSync(join(options.bundleDir, file))) copyFileSync(join(options.bundleDir, file), join(task, file));
  }
  const modules = options.layerDir === undefined ? undefined : join(options.layerDir, 'nodejs', 'node_modules');
  if (modules !== undefined) symlinkSync(modules, join(task, 'node_modules'), 'dir');
  const eventsFile = join(task, 'events.json');
  const resultsFile = join(task, 'results.json');
  writeFileSync(eventsFile, JSON.stringify(options.events));
  writeFileSync(join(task, 'runner.mjs'), RUNNER);

  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '',
    ...options.environment,
    AWS_LAMBDA_FUNCTION_NAME: options.functionName,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(options.memoryMb),
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    LAMBDA_TASK_ROOT: task,
    ...(modules === undefined ? {} : { NODE_PATH: modules }),
  };
  const api = options.runtimeApi === true ? await startRuntimeApi() : undefined;
  if (api !== undefined) env['AWS_LAMBDA_RUNTIME_API'] = api.address;
  const started = performance.now();
  const mode = options.concurrent === true ? ['concurrent'] : [];
  const [file, ...args] = lambdaCommand(options, [
    ...(options.nodeOptions ?? []),
    'runner.mjs',
    eventsFile,
    resultsFile,
    ...mode,
  ]);
  const child = spawn(file!, args, {
    cwd: task,
    env,
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
  });
  let nodeVersion = '';
  let nodeArch = '';
  let initMs = NaN;
  let initRssBytes = NaN;
  const responseMs: number[] = [];
  const handled: unknown[] = [];
  const peakRssBytes: number[] = [];
  lines(child.stdio[3] as Readable, (line) => {
    const at = performance.now() - started;
    const [kind, value] = line.split(' ');
    if (kind === 'node') {
      nodeVersion = value ?? '';
      nodeArch = line.split(' ')[2] ?? '';
    } else if (kind === 'init') {
      initMs = at;
      initRssBytes = Number(value);
    } else if (kind === 'response') {
      responseMs.push(at);
      peakRssBytes.push(Number(value));
    } else if (kind === 'result') {
      handled.push(JSON.parse(line.slice('result '.length)));
    }
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-16_384);
  });
  let stdout = '';
  if (options.captureStdout === true) {
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      stdout += chunk;
    });
  } else {
    child.stdout?.resume();
  }
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (exitCode, exitSignal) => resolve([exitCode, exitSignal]));
  });
  const measured = { initMs, responseMs, initRssBytes, peakRssBytes, stdout, stderr, nodeVersion, nodeArch };
  if (api !== undefined) {
    await api.close();
    // The process may have been ended on purpose (the deadline watchdog): what it posted is the result.
    const runtimeApi = { responses: api.responses, streamed: api.streamed, exitCode: code, signal };
    return { results: handled, ...measured, loadedLibraries: [], runtimeApi };
  }
  if (code !== 0) throw new Error(`the Lambda process exited with code ${code}: ${stderr.trim()}`);
  const { results, libraries } = JSON.parse(readFileSync(resultsFile, 'utf8')) as {
    results: unknown[];
    libraries: string[];
  };
  return { results, ...measured, loadedLibraries: libraries };
}

// Runs in the new namespaces as root of its user namespace, then becomes the Node process (exec keeps its pid and
// file descriptors, so the progress pipe on fd 3 still reaches us): "$1" hides the CPU topology, "$2" is the binfmt_misc
// rule for arm64 executables (empty: none). A binfmt_misc mounted in a user namespace is that namespace's own
// (Linux 6.7 and later), so nothing changes for the rest of the machine.
const NAMESPACE_SETUP = `set -e
if [ "$1" = hide ]; then mount -t tmpfs -o mode=0555 lambda-cpu /sys/devices/system/cpu; fi
if [ -n "$2" ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  printf '%s' "$2" > /proc/sys/fs/binfmt_misc/register
fi
shift 2
exec "$@"`;

// binfmt_misc's rule for 64-bit little-endian ELF executables of machine aarch64 (the magic and mask of Debian's
// qemu-user-static): "F" opens qemu now, so the rule holds whatever the mount namespace shows later.
const AARCH64_BINFMT =
  ':qemu-aarch64:M::\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\xb7\\x00:' +
  '\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff:' +
  `${ARM64_EMULATION.emulator}:F`;

/** The command line that runs Node with `args` as `options` ask: directly, or in namespaces of its own. */
function lambdaCommand(options: LambdaProcessOptions, args: readonly string[]): string[] {
  const node = options.node;
  const emulated = node !== undefined && node.cpu !== process.arch;
  if (emulated && !(node.cpu === 'arm64' && process.arch === 'x64')) {
    throw new Error(`a ${node.cpu} Node cannot run on this ${process.arch} host`);
  }
  const hide = options.hideCpuTopology === true;
  if (!emulated && !hide) return [node?.path ?? process.execPath, ...args];
  const missing = emulated ? missingArm64Emulation() : missingUserNamespaces();
  if (missing !== undefined) throw new Error(`cannot run ${emulated ? 'arm64 Node' : 'in namespaces'}: ${missing}`);
  const binfmt = emulated ? AARCH64_BINFMT : '';
  // QEMU_LD_PREFIX is qemu's -L (the arm64 sysroot) as a variable: every arm64 process started in there inherits it.
  const exec = emulated ? ['env', `QEMU_LD_PREFIX=${ARM64_EMULATION.sysroot}`] : [];
  return [
    'unshare',
    '--user',
    '--map-root-user',
    '--mount',
    'sh',
    '-c',
    NAMESPACE_SETUP,
    'lambda-namespace',
    hide ? 'hide' : 'show',
    binfmt,
    ...exec,
    node?.path ?? process.execPath,
    ...args,
  ];
}

/**
 * The Runtime API's response route on loopback: records each posted body by request id, a buffered one parsed as
 * JSON, a streamed one (`Lambda-Runtime-Function-Response-Mode: streaming`, chunked) split into prelude and body as
 * a streaming front splits it.
 */
async function startRuntimeApi(): Promise<{
  address: string;
  responses: Map<string, unknown>;
  streamed: Map<string, StreamedResponse>;
  close: () => Promise<void>;
}> {
  const responses = new Map<string, unknown>();
  const streamed = new Map<string, StreamedResponse>();
  const server = createServer((request, response) => {
    const id = /^\/2018-06-01\/runtime\/invocation\/([^/]+)\/response$/.exec(request.url ?? '')?.[1];
    const streaming = request.headers['lambda-runtime-function-response-mode'] === 'streaming';
    const reader =
      streaming && request.headers['content-type'] === HTTP_INTEGRATION_RESPONSE_TYPE ? new PreludeReader() : undefined;
    const chunks: Buffer[] = [];
    let received = 0;
    request.on('data', (chunk: Buffer) => {
      received++;
      chunks.push(reader === undefined ? chunk : Buffer.from(reader.push(chunk)));
    });
    request.on('end', () => {
      if (request.method !== 'POST' || id === undefined) {
        response.writeHead(404).end();
        return;
      }
      const body = Buffer.concat(chunks);
      if (streaming) {
        const requestHeaders = Object.fromEntries(
          Object.entries(request.headers).map(([name, value]) => [name, String(value)]),
        );
        const prelude = reader?.prelude;
        streamed.set(decodeURIComponent(id), {
          requestHeaders,
          ...(prelude === undefined ? {} : { prelude }),
          body,
          chunks: received,
        });
      } else {
        responses.set(decodeURIComponent(id), JSON.parse(body.toString('utf8')));
      }
      response.writeHead(202, { 'content-type': 'application/json' }).end('{"status":"OK"}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    responses,
    streamed,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
