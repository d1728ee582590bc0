/**
 * The model catalog: `models/<name>.json`, one file per model that `cdk deploy` gives an endpoint. The schema is
 * the single definition of every per-model option and its default; infra reads it to size functions, the handlers
 * read the limits it passes down.
 */
import { z } from 'zod';
import { capturePolicySchema } from './capture.js';
import { preprocessSchema, type Preprocess } from './image/spec.js';
import { PLATFORM_LIMITS } from './platform-limits.js';
import { catalogRolloutSchema } from './rollout.js';

/** Model names: what DESIGN.md allows, checked before any key or path is built from a name. */
export const MODEL_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** True when `name` may be used as a model name (and so inside S3 keys and local paths). */
export function isValidModelName(name: string): boolean {
  return MODEL_NAME_PATTERN.test(name) && !name.includes('..');
}

/**
 * The inference deadline a function gets when its limits set none: its timeout less a margin for answering the 504
 * (2 s, or half of a timeout under 4 s). For the default 29 s function timeout (API Gateway's own), 27 s.
 * @example defaultInferenceTimeoutMs(29) // 27_000
 */
export function defaultInferenceTimeoutMs(functionTimeoutSeconds: number): number {
  const timeoutMs = functionTimeoutSeconds * 1000;
  return Math.max(Math.round(timeoutMs / 2), timeoutMs - 2000);
}

/** API Gateway REST stops waiting after 29 s: the default timeout of every infer function. */
const DEFAULT_FUNCTION_TIMEOUT_SECONDS = PLATFORM_LIMITS.apiGatewayTimeoutSeconds;

/** The shared infer function (every model without a catalog entry): its memory unless the stack sets another. */
export const SHARED_FUNCTION_DEFAULTS = { memoryMb: 3008 } as const;

/**
 * The shared function's session budget (`SESSION_BUDGET_MB`) for its memory size: a quarter, since onnxruntime holds
 * about twice a model's file size and requests need room too. `npm start` applies the same default.
 * @example sessionBudgetMbFor(3008) // 752
 */
export function sessionBudgetMbFor(memoryMb: number): number {
  return Math.floor(memoryMb / 4);
}

/** Request limits, enforced before allocation. Defaults follow API Gateway's and Lambda's own limits. */
export const limitsSchema = z
  .object({
    /** Request body in bytes (API Gateway REST rejects more than 10 MB before we see it). */
    maxBodyBytes: z.number().int().positive().default(PLATFORM_LIMITS.apiGatewayMaxBodyBytes),
    /** Elements over all input tensors of one request. */
    maxElements: z
      .number()
      .int()
      .positive()
      .default(16 * 1024 * 1024),
    /** JSON nesting depth of a request body. */
    maxJsonDepth: z.number().int().positive().default(64),
    /** Bytes in one BYTES element. */
    maxBytesElementSize: z
      .number()
      .int()
      .positive()
      .default(1024 * 1024),
    /** Input tensors in one request. */
    maxInputs: z.number().int().positive().default(64),
    /** Outputs requested in one request. */
    maxOutputs: z.number().int().positive().default(64),
    /** Characters of the request `id`. */
    maxIdLength: z.number().int().positive().default(256),
    /** Response body in bytes (Lambda's synchronous response limit is 6 MB, base64 included). */
    maxResponseBytes: z.number().int().positive().default(PLATFORM_LIMITS.defaultMaxResponseBytes),
    /**
     * Width × height decoded per request, over all its images (an image body, or the BYTES image elements of a
     * batch), each image checked from its header before decoding (a decompression bomb's guard).
     */
    maxImagePixels: z.number().int().positive().default(40_000_000),
    /** Seconds one image decode may take (libvips' processing timeout). */
    imageDecodeTimeoutSeconds: z.number().int().positive().default(5),
    /** Scans of a JPEG image, counted from its markers before decoding (progressive scan bombs). */
    maxJpegScans: z.number().int().positive().default(100),
    /**
     * Smallest response body compressed when the client's `Accept-Encoding` allows gzip or deflate: below about a
     * kilobyte the coding's framing costs more than it saves.
     */
    minCompressBytes: z.number().int().nonnegative().default(1024),
    /**
     * Deadline of one inference in milliseconds: past it the request gets a 504 and the work is stopped. In a
     * catalog entry it defaults to the entry's `timeoutSeconds` less a margin ({@link defaultInferenceTimeoutMs})
     * and must stay below it.
     */
    timeoutMs: z.number().int().positive().default(defaultInferenceTimeoutMs(DEFAULT_FUNCTION_TIMEOUT_SECONDS)),
  })
  .strict();

/** Resolved request limits. */
export type Limits = z.infer<typeof limitsSchema>;

/** The limits with every default applied. */
export const DEFAULT_LIMITS: Limits = limitsSchema.parse({});

/** The smallest function Lambda Managed Instances run (2 GB and one vCPU). */
export const MANAGED_INSTANCES_MIN_MEMORY_MB = 2048;

/** Settings of an entry's `managedInstances`, defaults applied. */
interface ManagedInstancesSettings {
  readonly maxConcurrency: number;
  readonly memoryGiBPerVCpu: 2 | 4 | 8;
  readonly minExecutionEnvironments: number;
  readonly maxExecutionEnvironments?: number | undefined;
}

/** One `models/<name>.json` file. */
export const catalogEntrySchema = z
  .object({
    /** Lambda memory in MB; also sets the vCPUs and so onnxruntime's intra-op threads. */
    memoryMb: z.number().int().min(128).max(10240).default(2048),
    /** CPU architecture of the function and of the onnxruntime layer it uses. */
    architecture: z.enum(['x86_64', 'arm64']).default('arm64'),
    /** Function timeout; API Gateway REST stops waiting after 29 s. */
    timeoutSeconds: z.number().int().min(1).max(900).default(DEFAULT_FUNCTION_TIMEOUT_SECONDS),
    /** EventBridge warmer; `false` disables it. */
    warmer: z
      .union([
        z.literal(false),
        z
          .object({
            schedule: z.string().min(1).default('rate(5 minutes)'),
            concurrency: z.number().int().min(1).max(50).default(1),
          })
          .strict(),
      ])
      .default({ schedule: 'rate(5 minutes)', concurrency: 1 }),
    /** Provisioned concurrency on the `live` alias; 0 = none. */
    provisionedConcurrency: z.number().int().min(0).default(0),
    /**
     * Lambda Managed Instances: the function runs on EC2 capacity of a capacity provider, many invocations per
     * execution environment, no cold starts on the request path. `true` for the defaults, or the settings.
     */
    managedInstances: z
      .union([
        z.boolean(),
        z
          .object({
            /** Invocations one execution environment runs at once. */
            maxConcurrency: z.number().int().min(1).max(64).default(10),
            /** GiB of memory per vCPU of an execution environment. */
            memoryGiBPerVCpu: z.union([z.literal(2), z.literal(4), z.literal(8)]).default(2),
            /** Most vCPUs the capacity provider may scale to. */
            maxVCpuCount: z.number().int().min(2).max(15000).optional(),
            /** Execution environments kept for the published version. */
            minExecutionEnvironments: z.number().int().min(0).max(15000).default(3),
            maxExecutionEnvironments: z.number().int().min(1).max(15000).optional(),
          })
          .strict(),
      ])
      .default(false)
      .transform((value) =>
        value === false
          ? false
          : value === true
            ? { maxConcurrency: 10, memoryGiBPerVCpu: 2 as 2 | 4 | 8, minExecutionEnvironments: 3 }
            : value,
      ),
    /** Load the latest version during the init phase instead of on the first request. */
    preload: z.boolean().default(false),
    /**
     * The largest model file (MB) the endpoint must load: sizes the function's ephemeral storage (`/tmp`), which
     * holds the file while onnxruntime reads it. Defaults to the seed's size; without either, Lambda's 512 MB.
     */
    maxModelMb: z.number().positive().max(10240).optional(),
    /** A seed model file next to the catalog entry, uploaded to `uploads/<name>/` at deploy time. */
    seed: z.string().optional(),
    limits: limitsSchema.default({}),
    /**
     * Declared image preprocessing per input, as in an upload's sidecar: applies to every version of the model
     * registered once it is deployed, and wins over a sidecar's (registration refuses a sidecar that declares
     * different settings). Reaches `register` as `CATALOG_PREPROCESS` ({@link catalogPreprocessJson}).
     */
    preprocess: preprocessSchema.optional(),
    /**
     * Data capture (docs/capture.md): a sampled percent of requests and answers written as SageMaker Data Capture
     * records under `capture/<name>/`. `samplingPercent` unset: the deployment's `-c captureSamplingPercent`.
     */
    capture: capturePolicySchema.optional(),
    /**
     * The rollout policy of every version registered once deployed (docs/rollouts.md): wins over a sidecar's
     * (registration refuses a sidecar that declares another). Reaches `register` as `CATALOG_ROLLOUT`.
     */
    rollout: catalogRolloutSchema.optional(),
    description: z.string().optional(),
  })
  .strict()
  .superRefine(checkManagedInstances);

/**
 * Lambda Managed Instances' own rules, which CloudFormation would otherwise report only at deploy time: a function
 * of at least 2,048 MB and of at least one vCPU at its memory-per-vCPU ratio, and a scaling range that is one.
 */
function checkManagedInstances(
  entry: { memoryMb: number; managedInstances: false | ManagedInstancesSettings },
  ctx: z.RefinementCtx,
): void {
  const settings = entry.managedInstances;
  if (settings === false) return;
  const oneVCpuMb = settings.memoryGiBPerVCpu * 1024;
  const minimum = Math.max(MANAGED_INSTANCES_MIN_MEMORY_MB, oneVCpuMb);
  if (entry.memoryMb < minimum) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      path: ['memoryMb'],
      message:
        `${entry.memoryMb} MB is too little for Lambda Managed Instances: they need at least ` +
        `${MANAGED_INSTANCES_MIN_MEMORY_MB} MB, and one vCPU at managedInstances.memoryGiBPerVCpu ` +
        `${settings.memoryGiBPerVCpu} takes ${oneVCpuMb} MB; set memoryMb to ${minimum} or more`,
    });
  }
  const max = settings.maxExecutionEnvironments;
  if (max !== undefined && max < settings.minExecutionEnvironments) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      path: ['managedInstances', 'maxExecutionEnvironments'],
      message: `${max} is below minExecutionEnvironments (${settings.minExecutionEnvironments})`,
    });
  }
}

/** A resolved catalog entry, with its name (the file name without `.json`). */
export type CatalogEntry = z.infer<typeof catalogEntrySchema> & { readonly name: string };

/**
 * Parses one catalog file's JSON. Throws an `Error` naming the file and each offending field.
 * @example parseCatalogEntry('iris', JSON.parse(readFileSync('models/iris.json', 'utf8')))
 */
export function parseCatalogEntry(name: string, json: unknown): CatalogEntry {
  if (!isValidModelName(name)) {
    throw new Error(`models/${name}.json: "${name}" is not a valid model name (${MODEL_NAME_PATTERN.source}, no "..")`);
  }
  const parsed = catalogEntrySchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new Error(`models/${name}.json is invalid: ${problems}`);
  }
  const entry = parsed.data;
  const functionTimeoutMs = entry.timeoutSeconds * 1000;
  const given = (json as { limits?: { timeoutMs?: unknown } } | null)?.limits?.timeoutMs !== undefined;
  if (given && entry.limits.timeoutMs >= functionTimeoutMs) {
    throw new Error(
      `models/${name}.json is invalid: limits.timeoutMs (${entry.limits.timeoutMs}) must be below the function's ` +
        `timeoutSeconds (${entry.timeoutSeconds} s), which would end the request first; lower it or raise timeoutSeconds`,
    );
  }
  const timeoutMs = given ? entry.limits.timeoutMs : defaultInferenceTimeoutMs(entry.timeoutSeconds);
  return { ...entry, limits: { ...entry.limits, timeoutMs }, name };
}

/**
 * The `CATALOG_PREPROCESS` value for `register`: `{"<model>": <preprocess>}` of every entry that declares image
 * preprocessing (compact JSON, defaults applied), or `undefined` when none does.
 * @example catalogPreprocessJson(loadCatalog('models')) // '{"detector":{"images":{"images":{...}}}}'
 */
export function catalogPreprocessJson(entries: readonly CatalogEntry[]): string | undefined {
  const declared = entries.filter((entry) => entry.preprocess !== undefined);
  if (declared.length === 0) return undefined;
  return JSON.stringify(Object.fromEntries(declared.map((entry) => [entry.name, entry.preprocess])));
}

/**
 * Reads a `CATALOG_PREPROCESS` value: image preprocessing per model name. Throws an `Error` naming the model and
 * field at fault.
 */
export function parseCatalogPreprocess(json: string): ReadonlyMap<string, Preprocess> {
  const parsed = z.record(z.string(), preprocessSchema).safeParse(JSON.parse(json));
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`invalid image preprocessing: ${problems}`);
  }
  const byModel = new Map(Object.entries(parsed.data));
  const invalid = [...byModel.keys()].filter((name) => !isValidModelName(name));
  if (invalid.length > 0) throw new Error(`"${invalid[0]!.slice(0, 200)}" is not a valid model name`);
  return byModel;
}
