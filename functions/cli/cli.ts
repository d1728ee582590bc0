/**
 * `npm run models -- <command>`: manage the model repository of any S3 endpoint (AWS, or the embedded server of
 * `npm start`). {@link runCli} parses argv, opens the store and runs one command; the entry file only wires it to
 * the process, so tests run the whole CLI in-process.
 */
import { parseArgs } from 'node:util';
import type { BlobStore } from '../core/blob-store.js';
import { ENV } from '../core/contract.js';
import { ModelRepository } from '../core/model-repository.js';
import { createStepFunctions } from '../adapters/step-functions.js';
import { type BatchOptions, batchCommand } from './batch-command.js';
import {
  type CommandContext,
  DEFAULT_WAIT_SECONDS,
  listCommand,
  promoteCommand,
  rejectionsCommand,
  uploadCommand,
} from './commands.js';
import {
  type Connection,
  credentialChain,
  describeConnection,
  openStore,
  resolveConnection,
  resolveRegion,
} from './connection.js';
import { CommandFailedError, EXIT_CODES, UsageError } from './errors.js';
import { rolloutCommand } from './rollout-command.js';

/** The usage text, as `--help` prints it. */
export const USAGE = `usage: npm run models -- <command> [options]

commands:
  upload <file.onnx|file.zip> --model <m> [--sample <sample.json>] [--wait [--timeout <s>]]
      upload to uploads/<m>/<file> (the sample first, as <file>.json); a .zip holds one .onnx and its external
      data files; with --wait, wait until it is registered (prints the version) or refused (prints why, exit 1)
  list [<m>]                  models with latest version and labels; with <m>, its versions and their state
  promote <m> <version> [--label <name>]
                              point latest (rollback or roll forward) or a label such as stable at a version
  rejections [<m>]            refused uploads and why
  rollout <m> status|start [<version>]|pause|resume|promote|rollback|policy [--policy '<json>']
                              a guarded rollout (docs/rollouts.md): state, weights and guard figures; start one
                              (with --policy, else the model's), pause or resume its steps, end it by hand, or
                              set the model's policy
  batch <m>[:<version>] --input s3://<bucket>/batch/<in>/ --output s3://<bucket>/batch/<out>/
        [--api <url> | --state-machine <arn>] [--wait [--timeout <s>]]
      start a batch job (one result or failure record per input; docs/batch.md): with MODEL_BUCKET set, an
      execution of the stack's state machine (--state-machine, else env BATCH_STATE_MACHINE_ARN: the stack
      output BatchStateMachineArn); else on npm start's local engine through its gateway (--api, default
      http://127.0.0.1:\${PORT:-8080}); with --wait, print its counts when done

options:
  --endpoint <url>   S3 endpoint (env S3_ENDPOINT); default: the local server http://127.0.0.1:\${S3_PORT:-9000}
                     when MODEL_BUCKET is unset, else AWS
  --bucket <name>    bucket (env MODEL_BUCKET); default: models
  --region <name>    region; default: AWS_REGION, AWS_DEFAULT_REGION, else the profile's region in
                     ~/.aws/config (AWS_PROFILE, AWS_CONFIG_FILE), as the AWS CLI finds it
  --json             machine-readable output
  -h, --help         this text

credentials: the AWS SDK's default chain (AWS_ACCESS_KEY_ID..., AWS_PROFILE, SSO, instance role); on a loopback
endpoint with neither AWS_ACCESS_KEY_ID nor AWS_PROFILE set, the embedded server's S3RVER/S3RVER pair.
exit codes: 0 done, 1 refused or failed, 2 bad usage, 3 --wait timed out`;

/** Where the CLI writes and what it runs against. */
export interface CliIo {
  /** One line of output (stdout). */
  readonly out: (line: string) => void;
  /** One line of diagnostics (stderr). @default out */
  readonly err?: (line: string) => void;
  /** @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** A store to use instead of opening one from flags and environment (tests). */
  readonly store?: BlobStore;
  /** @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
  /** @default Date.now */
  readonly now?: () => number;
}

const OPTIONS = {
  model: { type: 'string' },
  sample: { type: 'string' },
  wait: { type: 'boolean' },
  timeout: { type: 'string' },
  label: { type: 'string' },
  policy: { type: 'string' },
  input: { type: 'string' },
  output: { type: 'string' },
  api: { type: 'string' },
  'state-machine': { type: 'string' },
  endpoint: { type: 'string' },
  bucket: { type: 'string' },
  region: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type OptionName = keyof typeof OPTIONS;
type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

const GLOBAL_OPTIONS: readonly OptionName[] = ['endpoint', 'bucket', 'region', 'json', 'help'];
const COMMAND_OPTIONS: Readonly<Record<string, readonly OptionName[]>> = {
  upload: ['model', 'sample', 'wait', 'timeout'],
  list: [],
  promote: ['label'],
  rejections: [],
  rollout: ['policy'],
  batch: ['input', 'output', 'api', 'state-machine', 'wait', 'timeout'],
};

function expectPositionals(
  command: string,
  positionals: readonly string[],
  min: number,
  max: number,
  shape: string,
): void {
  if (positionals.length < min || positionals.length > max) {
    throw new UsageError(
      `${command} takes ${shape}, got ${positionals.length === 0 ? 'nothing' : positionals.join(' ')}`,
    );
  }
}

function rejectForeignOptions(command: string, values: Values): void {
  const allowed = new Set<string>([...GLOBAL_OPTIONS, ...(COMMAND_OPTIONS[command] ?? [])]);
  const foreign = Object.keys(values).filter((name) => !allowed.has(name));
  if (foreign.length > 0) throw new UsageError(`${command} does not take --${foreign.join(', --')}`);
}

function timeoutSeconds(raw: string | undefined): number {
  if (raw === undefined) return DEFAULT_WAIT_SECONDS;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0)
    throw new UsageError(`--timeout takes a number of seconds > 0, got "${raw}"`);
  return value;
}

/** `arn:<partition>:states:<region>:<account>:stateMachine:<name>`; its executions run in its region. */
const STATE_MACHINE_ARN = /^arn:aws[a-z-]*:states:([a-z0-9-]+):\d{12}:stateMachine:[A-Za-z0-9_-]{1,80}$/;

/**
 * Where `batch` starts its job: with `MODEL_BUCKET` set (the CLI talks to AWS) the stack's state machine, else
 * `npm start`'s gateway; `--api` asks for a gateway whatever the bucket. `close` releases the credential chain.
 */
function batchEngine(values: Values, env: NodeJS.ProcessEnv): { engine: BatchOptions['engine']; close?: () => void } {
  const modelBucket = env[ENV.modelBucket] || undefined;
  const flag = values['state-machine'];
  if (flag !== undefined && values.api !== undefined) {
    throw new UsageError("--api (npm start's gateway) and --state-machine (a deployed stack) exclude each other");
  }
  if (modelBucket === undefined || values.api !== undefined) {
    if (flag !== undefined) {
      throw new UsageError(
        "--state-machine starts a deployed job, whose inputs, outputs and job record are in the stack's model " +
          'bucket: set MODEL_BUCKET to the stack output BucketName',
      );
    }
    return { engine: { kind: 'gateway', api: values.api ?? `http://127.0.0.1:${env[ENV.port] || 8080}` } };
  }
  const arn = flag ?? (env[ENV.batchStateMachineArn] || undefined);
  if (arn === undefined) {
    throw new UsageError(
      `MODEL_BUCKET is set, so batch starts a deployed job: pass --state-machine <arn> or set ` +
        `${ENV.batchStateMachineArn} to the stack output BatchStateMachineArn (for npm start's local engine, unset ` +
        'MODEL_BUCKET or pass --api)',
    );
  }
  const region = STATE_MACHINE_ARN.exec(arn)?.[1];
  if (region === undefined) {
    throw new UsageError(
      `"${arn}" is not a state machine ARN (arn:aws:states:<region>:<account>:stateMachine:<name>): use the ` +
        'stack output BatchStateMachineArn',
    );
  }
  const chain = credentialChain(region, env);
  const endpoint = env[ENV.stepFunctionsEndpoint] || undefined;
  const stepFunctions = createStepFunctions({
    region,
    credentials: () => chain.credentials,
    ...(endpoint === undefined ? {} : { endpoint }),
  });
  return {
    engine: { kind: 'step-functions', stateMachineArn: arn, stepFunctions, bucket: values.bucket || modelBucket },
    close: chain.close,
  };
}

/** Says what went wrong talking to S3, and what to check, without a stack trace. */
export function describeFailure(error: unknown, connection: Connection | undefined): string {
  const where = connection === undefined ? 'the store' : describeConnection(connection);
  const e = error as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const code = e.code ?? (error as { cause?: { code?: string } }).cause?.code;
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'ENOTFOUND' || code === 'ETIMEDOUT') {
    const hint = connection?.local === true ? ' (start it with `npm start`)' : ' (check --endpoint and your network)';
    return `cannot reach ${where}: ${code}${hint}`;
  }
  if (e.name === 'NoSuchBucket') return `the bucket does not exist: ${where} (check --bucket or MODEL_BUCKET)`;
  if (e.name === 'CredentialsProviderError') {
    return `no AWS credentials for ${where}: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY`;
  }
  if (['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken'].includes(e.name ?? '')) {
    return `${where} refused the credentials (${e.name}): check AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY`;
  }
  const status = e.$metadata?.httpStatusCode;
  return `${where} failed: ${e.name ?? 'Error'}${status === undefined ? '' : ` (HTTP ${status})`}: ${e.message ?? String(error)}`;
}

/**
 * Runs one CLI command and resolves to its exit code; never throws for a user's mistake or an S3 failure.
 * @example
 * const code = await runCli(['list', '--json'], { out: (line) => lines.push(line), store });
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const err = io.err ?? io.out;
  let connection: Connection | undefined;
  let close: (() => void) | undefined;
  try {
    let parsed;
    try {
      parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
    } catch (error) {
      throw new UsageError((error as Error).message, { cause: error });
    }
    const { values, positionals } = parsed;
    const [command, ...rest] = positionals;
    if (values.help === true || command === undefined || command === 'help') {
      io.out(USAGE);
      return command === undefined && values.help !== true ? EXIT_CODES.usage : EXIT_CODES.ok;
    }
    if (!(command in COMMAND_OPTIONS)) throw new UsageError(`unknown command "${command}"`);
    rejectForeignOptions(command, values);

    let store = io.store;
    let where = 'the given store';
    if (store === undefined) {
      const env = io.env ?? process.env;
      connection = await resolveRegion(resolveConnection(values, env), env);
      ({ store, close } = openStore(connection));
      where = describeConnection(connection);
    }
    const ctx: CommandContext = {
      store,
      repository: new ModelRepository(store),
      out: io.out,
      err,
      json: values.json === true,
      where,
      ...(io.sleep === undefined ? {} : { sleep: io.sleep }),
      ...(io.now === undefined ? {} : { now: io.now }),
    };

    switch (command) {
      case 'upload': {
        expectPositionals('upload', rest, 1, 1, 'one <file.onnx|file.zip>');
        if (values.model === undefined)
          throw new UsageError('upload needs --model <name>: the model the file is a version of');
        if (values.timeout !== undefined && values.wait !== true) throw new UsageError('--timeout goes with --wait');
        return await uploadCommand(ctx, {
          file: rest[0] ?? '',
          model: values.model,
          ...(values.sample === undefined ? {} : { sample: values.sample }),
          wait: values.wait === true,
          timeoutSeconds: timeoutSeconds(values.timeout),
        });
      }
      case 'list':
        expectPositionals('list', rest, 0, 1, 'at most one <model>');
        return await listCommand(ctx, rest[0]);
      case 'promote':
        expectPositionals('promote', rest, 2, 2, '<model> <version>');
        return await promoteCommand(ctx, {
          model: rest[0] ?? '',
          version: rest[1] ?? '',
          ...(values.label === undefined ? {} : { label: values.label }),
        });
      case 'rollout':
        expectPositionals('rollout', rest, 2, 3, '<model> <action> [<version>]');
        return await rolloutCommand(ctx, {
          model: rest[0] ?? '',
          action: rest[1] ?? '',
          ...(rest[2] === undefined ? {} : { version: rest[2] }),
          ...(values.policy === undefined ? {} : { policy: values.policy }),
        });
      case 'batch': {
        expectPositionals('batch', rest, 1, 1, 'one <model>[:<version>]');
        if (values.input === undefined || values.output === undefined) {
          throw new UsageError('batch needs --input s3://<bucket>/batch/<in>/ and --output s3://<bucket>/batch/<out>/');
        }
        if (values.timeout !== undefined && values.wait !== true) throw new UsageError('--timeout goes with --wait');
        const { engine, close: release } = batchEngine(values, io.env ?? process.env);
        try {
          return await batchCommand(ctx, {
            target: rest[0] ?? '',
            input: values.input,
            output: values.output,
            engine,
            wait: values.wait === true,
            timeoutSeconds: timeoutSeconds(values.timeout),
          });
        } finally {
          release?.();
        }
      }
      default:
        expectPositionals('rejections', rest, 0, 1, 'at most one <model>');
        return await rejectionsCommand(ctx, rest[0]);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      err(`error: ${error.message}`);
      err('run `npm run models -- --help` for usage');
      return error.exitCode;
    }
    if (error instanceof CommandFailedError) {
      err(`error: ${error.message}`);
      return error.exitCode;
    }
    err(`error: ${describeFailure(error, connection)}`);
    return EXIT_CODES.failed;
  } finally {
    close?.();
  }
}
