/**
 * Registration of an upload: everything between "an object appeared under `uploads/`" and "a new version is in
 * the manifest" (or "the upload is refused, with its reason under `rejected/`"). Called by the `register`
 * handler for each S3 record, locally and on AWS alike.
 */
import { createHash } from 'node:crypto';
import { isValidModelName, type Limits } from './catalog.js';
import { createTensorData, decodeInferenceRequest, decodeInferenceResponse, smallestShape } from './codec/index.js';
import { CorruptObjectError, InferenceServerError, ModelRejectedError } from './errors.js';
import { registerFromFile } from './file-registration.js';
import {
  ARCHIVE_SUFFIX,
  isRegistrationUpload,
  isStoreRefusal,
  outcomeId,
  UPLOADS_PREFIX,
  type OutcomeRecord,
} from './model-repository.js';
import { redactInternals } from './redact.js';
import {
  STRING_NORMALIZER_FALLBACK_LOCALE,
  STRING_NORMALIZER_LOCALE_HINT,
  isStringNormalizerLocaleFailure,
  rewriteForServing,
  type RewriteResult,
} from './onnx/rewrites.js';
import { checkImagePreprocess } from './image/input-fit.js';
import { parsePreprocess, type Preprocess } from './image/spec.js';
import { LABEL_DATATYPES, parseRolloutPolicy, type DeclaredRollout, type RolloutPolicy } from './rollout.js';
import { imageToTensor, syntheticImage } from './image/preprocess.js';
import type { ModelSession } from './session.js';
import type { Tensor, TensorData, TensorSpec } from './types.js';
import { versionMetadata, type ValidatedModel } from './version-metadata.js';
import type { RegistrationOptions, RegistrationOutcome, ValidationTarget } from './registration-types.js';

export type { RegistrationOptions, RegistrationOutcome, ValidationTarget } from './registration-types.js';

/** Suffix of the optional sample that goes with `<file>.onnx`. */
export const SAMPLE_SUFFIX = '.json';

/** Default absolute tolerance when a sample gives expected outputs without `decimal`. */
const DEFAULT_DECIMAL = 4;

interface Sample {
  /** Absent when the sidecar carries only `preprocess` or `rollout`: the smoke test then feeds generated inputs. */
  readonly inputs?: Tensor[];
  readonly preprocess?: Preprocess;
  /** The rollout policy this upload registers under (docs/rollouts.md). */
  readonly rollout?: RolloutPolicy;
  readonly expected?: readonly Tensor[];
  readonly decimal: number;
}

/**
 * A storage read of registration failed (the sample sidecar could not be read): not the upload's fault, so the
 * upload stays pending and is retried rather than refused.
 */
export class RegistrationStorageError extends Error {
  public constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'RegistrationStorageError';
  }
}

/**
 * Whether `error`, thrown while an upload was being read, checked or validated, refuses the upload: anything does
 * (a bug or a resource limit met by this file is this file's outcome, never a pending upload), except a storage
 * outage, after which the same upload may well register.
 */
function isRefusal(error: unknown): boolean {
  return !(error instanceof RegistrationStorageError) || isStoreRefusal(error);
}

/** The reason a refusal records: the message of our own errors, what was thrown (without internals) otherwise. */
function refusalReason(error: unknown): string {
  if (error instanceof ModelRejectedError || error instanceof InferenceServerError) return error.message;
  const system = error as NodeJS.ErrnoException;
  if (typeof system.code === 'string' && typeof system.syscall === 'string') {
    // A system error's message names scratch paths, which mean nothing to the user: say what was refused instead.
    return (
      `registration failed on this upload: the register function's file system refused ${system.syscall} ` +
      `(${system.code})${system.code === 'ENAMETOOLONG' ? ': a name in the upload (an external-data location) is too long; shorten it and upload again' : ''}`
    );
  }
  const message = redactInternals(error instanceof Error ? error.message : String(error));
  return `registration failed on this upload: ${error instanceof Error ? `${error.name}: ` : ''}${message}`;
}

/**
 * Registers the upload under `key` (an `uploads/<model>/<file>.onnx` key, already URL-decoded), and records its one
 * outcome (`models/<model>/outcomes/<sha256 of key>.json`, {@link OutcomeRecord}) last. Never throws for a bad
 * upload: anything the upload causes is a `rejected` outcome, recorded under `rejected/`. Storage outages do throw,
 * so that the event is delivered again (the upload stays pending until then: it has no outcome record).
 */
export async function registerUpload(key: string, options: RegistrationOptions): Promise<RegistrationOutcome> {
  const parsed = parseUploadKey(key);
  if (parsed.kind === 'ignored') return parsed;
  const { model } = parsed;
  const now = options.now ?? (() => new Date());

  let rejection: { key: string; sha256?: string } | undefined;
  /** Records a refusal for `cause` (a reason, or what was thrown); rethrows a storage outage. */
  const reject = async (cause: unknown, sha256?: string): Promise<RegistrationOutcome> => {
    if (typeof cause !== 'string' && !isRefusal(cause)) throw cause;
    const reason = typeof cause === 'string' ? cause : refusalReason(cause);
    const recorded = await options.repository.recordRejection({
      model,
      sourceKey: key,
      rejectedAt: now().toISOString(),
      reason,
      ...(sha256 === undefined ? {} : { sha256 }),
    });
    rejection = { key: recorded, ...(sha256 === undefined ? {} : { sha256 }) };
    return { kind: 'rejected', model, reason, key };
  };

  if (!isValidModelName(model)) {
    // No key can be built from the name: the rejection record (under `_invalid-names`) is the outcome.
    return reject(
      `"${model.slice(0, 200)}" is not an allowed model name: use 1 to 128 letters, digits, "_", "." or "-", starting with a letter or digit, without ".."`,
    );
  }
  let outcome: RegistrationOutcome;
  try {
    outcome = await decide(key, model, options, reject);
  } catch (error) {
    // Writing the version: a key the store refuses, or one it could not hold, is this upload's outcome.
    if (!(error instanceof ModelRejectedError) && !isStoreRefusal(error)) throw error;
    outcome = await reject(error);
  }
  await recordOutcome(outcome, rejection, options, now);
  return outcome;
}

/** Reads, checks and validates the upload, then adds its version: the outcome, not yet recorded. */
async function decide(
  key: string,
  model: string,
  options: RegistrationOptions,
  reject: (cause: unknown, sha256?: string) => Promise<RegistrationOutcome>,
): Promise<RegistrationOutcome> {
  // Both forms stream to a scratch file (bounded memory); the in-memory path below stays for stores without disk.
  if (options.fromFile !== false) return registerFromFile(key, model, options, reject, validate);
  if (key.endsWith(ARCHIVE_SUFFIX)) return reject('a .zip upload needs registration from a file (fromFile)');
  const upload = await options.store.get(key);
  if (upload === undefined) return { kind: 'ignored', reason: 'the object no longer exists', key };
  const bytes = upload.body;
  if (bytes.byteLength === 0) return reject('the file is empty');
  if (bytes.byteLength > options.maxModelBytes) {
    return reject(`the file has ${bytes.byteLength} bytes; the limit is ${options.maxModelBytes} (MAX_MODEL_BYTES)`);
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const existing = (await options.repository.readManifest(model))?.manifest.versions.find((v) => v.sha256 === sha256);
  if (existing !== undefined) return { kind: 'duplicate', model, version: existing.version, key };

  let validated: Awaited<ReturnType<typeof validate>>;
  try {
    validated = await validate(bytes, key, options);
  } catch (error) {
    return reject(error, sha256);
  }
  const createdAt = (options.now ?? (() => new Date()))().toISOString();
  const result = await options.repository.addVersion({
    model,
    modelFile: validated.model,
    sha256,
    size: bytes.byteLength,
    sourceKey: key,
    createdAt,
    ...(options.afterStep && { afterStep: options.afterStep }),
    ...(validated.rollout && { rollout: validated.rollout }),
    metadataFor: (version) => versionMetadata(validated, { model, version, sourceKey: key, createdAt }),
  });
  return { kind: result.kind === 'added' ? 'registered' : 'duplicate', model, version: result.version, key };
}

/**
 * Writes the upload's {@link OutcomeRecord}, the last step: a version (or a repeated delivery of the upload it was
 * registered from) is `registered`, the same bytes under another key are a `duplicate`, a refusal is `refused`.
 */
async function recordOutcome(
  outcome: RegistrationOutcome,
  rejection: { key: string; sha256?: string } | undefined,
  options: RegistrationOptions,
  now: () => Date,
): Promise<void> {
  if (outcome.kind === 'ignored') return;
  const { model, key } = outcome;
  const decidedAt = now().toISOString();
  let record: OutcomeRecord;
  if (outcome.kind === 'rejected') {
    record = {
      sourceKey: key,
      outcome: 'refused',
      reason: outcome.reason,
      ...(rejection === undefined ? {} : { rejectionKey: rejection.key }),
      ...(rejection?.sha256 === undefined ? {} : { sha256: rejection.sha256 }),
      decidedAt,
    };
  } else {
    const row = (await options.repository.readManifest(model))?.manifest.versions.find(
      (v) => v.version === outcome.version,
    );
    record = {
      sourceKey: key,
      outcome: row === undefined || row.sourceKey === key ? 'registered' : 'duplicate',
      version: outcome.version,
      ...(row === undefined ? {} : { sha256: row.sha256 }),
      decidedAt,
    };
  }
  await options.repository.recordOutcome(model, record);
}

/**
 * Uploads with no outcome yet: an `uploads/<model>/<file>.onnx` (or `.zip`) key without an outcome record
 * (`models/<model>/outcomes/`). One listing of the uploads and one of each model's outcome records decide it: no
 * upload, rejection or manifest is read. An event lost to a crash, a timeout or a restart leaves such an upload
 * behind; nothing else would ever register it. With `model`, only that model's uploads are looked at. Storage
 * failures throw.
 */
export async function pendingUploads(
  options: Pick<RegistrationOptions, 'store' | 'repository'>,
  model?: string,
): Promise<string[]> {
  // No key is ever built from a name that is not allowed (its uploads are refused by name, never pending).
  if (model !== undefined && !isValidModelName(model)) return [];
  const keys = await options.store.list(model === undefined ? UPLOADS_PREFIX : `${UPLOADS_PREFIX}${model}/`);
  const byModel = new Map<string, string[]>();
  for (const key of keys) {
    const parsed = parseUploadKey(key);
    if (parsed.kind !== 'upload' || !isValidModelName(parsed.model)) continue;
    byModel.set(parsed.model, [...(byModel.get(parsed.model) ?? []), key]);
  }
  const pending: string[] = [];
  for (const [name, uploads] of byModel) {
    const decided = await options.repository.outcomeIds(name);
    pending.push(...uploads.filter((key) => !decided.has(outcomeId(key))));
  }
  return pending;
}

/**
 * Gives every {@link pendingUploads} upload (of `model`, or of all models) its outcome, one after the other. An
 * upload the manifest already lists (its registration died after the manifest, before the outcome record) gets its
 * record without being read again. A storage failure leaves that upload pending for the next reconciliation instead
 * of failing the others.
 */
export async function reconcileUploads(
  options: RegistrationOptions,
  model?: string,
  skip: ReadonlySet<string> = new Set(),
): Promise<{ outcomes: RegistrationOutcome[]; failures: { key: string; error: unknown }[] }> {
  const outcomes: RegistrationOutcome[] = [];
  const failures: { key: string; error: unknown }[] = [];
  const sources = new Map<string, Map<string, string>>();
  /** Version by source key of `name`'s manifest; empty for a corrupt one (its uploads are retried once it is fixed). */
  const listedOf = async (name: string): Promise<Map<string, string>> => {
    let listed = sources.get(name);
    if (listed === undefined) {
      const manifest = await options.repository.readManifest(name).catch((error: unknown) => {
        if (error instanceof CorruptObjectError) return undefined;
        throw error;
      });
      listed = new Map((manifest?.manifest.versions ?? []).map((v) => [v.sourceKey, v.version]));
      sources.set(name, listed);
    }
    return listed;
  };
  for (const key of await pendingUploads(options, model)) {
    if (skip.has(key)) continue;
    try {
      const name = uploadModel(key) ?? '';
      const version = (await listedOf(name)).get(key);
      if (version === undefined) {
        outcomes.push(await registerUpload(key, options));
        continue;
      }
      const outcome: RegistrationOutcome = { kind: 'registered', model: name, version, key };
      await recordOutcome(outcome, undefined, options, options.now ?? (() => new Date()));
      outcomes.push(outcome);
    } catch (error) {
      failures.push({ key, error });
    }
  }
  return { outcomes, failures };
}

/** The model an `uploads/<model>/<file>.onnx` key is for (not validated), or `undefined` for any other key. */
export function uploadModel(key: string): string | undefined {
  const parsed = parseUploadKey(key);
  return parsed.kind === 'upload' ? parsed.model : undefined;
}

/** `uploads/<model>/<file>.onnx` → the model name; anything else is not an upload to register. */
function parseUploadKey(
  key: string,
): { kind: 'upload'; model: string } | { kind: 'ignored'; reason: string; key: string } {
  if (!key.startsWith(UPLOADS_PREFIX)) return { kind: 'ignored', reason: 'not under uploads/', key };
  const rest = key.slice(UPLOADS_PREFIX.length);
  const slash = rest.indexOf('/');
  if (slash <= 0 || !isRegistrationUpload(key)) {
    return { kind: 'ignored', reason: 'not an uploads/<model>/<file>.onnx or .zip key', key };
  }
  return { kind: 'upload', model: rest.slice(0, slash) };
}

/** Rewrite, load, describe and smoke-test the model. Throws `ModelRejectedError` with the reason. */
export async function validate(
  bytes: Uint8Array,
  key: string,
  options: RegistrationOptions,
  target: ValidationTarget = {},
): Promise<ValidatedModel> {
  const { file } = target;
  // With a file, `bytes` is its skeleton, and the rewrites work on it.
  let rewritten = rewriteForServing(bytes, target.rewrite);
  const sample = await readSample(key, options);
  let session: ModelSession | undefined;
  try {
    ({ session, rewritten } = await createSession(bytes, rewritten, options, target));
    assertReachable(session.inputs, options.limits);
    const declared = declaredPreprocess(key, sample, options);
    const preprocess = declared?.preprocess;
    if (declared !== undefined) {
      const problems = checkImagePreprocess(declared.preprocess, session.inputs);
      if (problems.length > 0)
        throw new ModelRejectedError(
          `${declared.source}'s image preprocessing does not fit the model: ${problems.join('; ')}`,
        );
    }
    const rollout = declaredRollout(key, sample, options, session.outputs);
    const inputs =
      sample?.inputs ??
      withSyntheticImages(generatedInputs(session.inputs, options.limits), session.inputs, preprocess);
    const outputNames = session.outputs.map((o) => o.name);
    let outputs: Tensor[];
    try {
      outputs = await session.run(inputs, outputNames);
    } catch (error) {
      const what =
        sample?.inputs !== undefined
          ? 'the sample request'
          : preprocess === undefined
            ? 'generated inputs (dynamic dimensions set to 1)'
            : 'a synthetic image through the declared preprocessing';
      throw new ModelRejectedError(
        `the smoke inference on ${what} failed: ${error instanceof Error ? error.message : String(error)}` +
          (sample?.inputs === undefined ? `; upload a sample request as ${key}${SAMPLE_SUFFIX} before the model` : ''),
        { cause: error },
      );
    }
    if (sample?.expected !== undefined) compareOutputs(outputs, sample.expected, sample.decimal);
    if (file !== undefined) {
      // Served unchanged, the upload's file is the version's model file, and its sha256 is the upload's.
      const stored = rewritten.model === bytes ? file : await file.write(rewritten.model);
      return {
        model: { path: stored.path },
        servedSha256: stored.sha256,
        size: stored.size,
        rewrites: rewritten.rewrites,
        classLabels: rewritten.classLabels,
        inputs: session.inputs,
        outputs: session.outputs,
        preprocess,
        ...(rollout && { rollout }),
      };
    }
    return {
      model: rewritten.model,
      servedSha256: createHash('sha256').update(rewritten.model).digest('hex'),
      size: rewritten.model.byteLength,
      rewrites: rewritten.rewrites,
      classLabels: rewritten.classLabels,
      inputs: session.inputs,
      outputs: session.outputs,
      preprocess,
      ...(rollout && { rollout }),
    };
  } finally {
    await session?.release();
  }
}

/**
 * The image preprocessing that applies to the upload `key`, and where it was declared: the model's catalog entry
 * wins (it is the deployed configuration); a sidecar may repeat it, but a sidecar that declares different settings
 * is refused rather than silently ignored.
 */
function declaredPreprocess(
  key: string,
  sample: Sample | undefined,
  options: RegistrationOptions,
): { preprocess: Preprocess; source: string } | undefined {
  const model = uploadModel(key);
  const catalog = model === undefined ? undefined : options.catalogPreprocess?.get(model);
  const sidecar = sample?.preprocess;
  if (catalog === undefined) return sidecar && { preprocess: sidecar, source: 'the sidecar' };
  const source = `the catalog entry models/${model}.json`;
  if (sidecar !== undefined && stableJson(sidecar) !== stableJson(catalog)) {
    throw new ModelRejectedError(
      `the sidecar ${key}${SAMPLE_SUFFIX} declares image preprocessing that differs from ${source}, which applies ` +
        `to every version of "${model}": remove "preprocess" from the sidecar, or change the catalog entry and ` +
        `deploy (catalog: ${stableJson(catalog)}; sidecar: ${stableJson(sidecar)})`,
    );
  }
  return { preprocess: catalog, source };
}

/**
 * The rollout policy the upload `key` registers under, as {@link declaredPreprocess} decides preprocessing: the
 * catalog entry's wins, a sidecar may repeat it or, without one, set its own; neither: `undefined` (the manifest's
 * policy, set with the CLI, or all-at-once). A label-agreement guard needs an output to compare labels of.
 */
function declaredRollout(
  key: string,
  sample: Sample | undefined,
  options: RegistrationOptions,
  outputs: readonly TensorSpec[],
): DeclaredRollout | undefined {
  const model = uploadModel(key);
  const catalog = model === undefined ? undefined : options.catalogRollout?.get(model);
  const sidecar = sample?.rollout;
  if (catalog !== undefined && sidecar !== undefined && stableJson(sidecar) !== stableJson(catalog)) {
    throw new ModelRejectedError(
      `the sidecar ${key}${SAMPLE_SUFFIX} declares a rollout policy that differs from the catalog entry ` +
        `models/${model}.json, which applies to every version of "${model}": remove "rollout" from the sidecar, or ` +
        `change the catalog entry and deploy (catalog: ${stableJson(catalog)}; sidecar: ${stableJson(sidecar)})`,
    );
  }
  const policy = catalog ?? sidecar;
  if (policy?.strategy === 'shadow' && policy.minLabelAgreement !== undefined) {
    const labels = outputs.filter((o) => LABEL_DATATYPES.has(o.datatype));
    if (labels.length === 0) {
      throw new ModelRejectedError(
        `rollout.minLabelAgreement cannot be evaluated: the model has no label output (BYTES or integer; its outputs ` +
          `are ${outputs.map((o) => `"${o.name}" ${o.datatype}`).join(', ')}); use maxAbsDiff or maxRelDiff instead`,
      );
    }
  }
  if (policy === undefined) return undefined;
  return { policy, declaredBy: catalog === undefined ? 'sidecar' : 'catalog' };
}

/** JSON with object keys sorted, so that two declarations with the same settings compare equal. */
function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/**
 * Creates the session. When onnxruntime cannot construct the `en_US.UTF-8` locale that `StringNormalizer` uses by
 * default (AWS Lambda's Amazon Linux 2023 runtimes lack it), the model is served with `C.UTF-8`, which has the same
 * case mappings; the rewrite is recorded in the version's metadata. Anything else is refused with what to do.
 */
async function createSession(
  model: Uint8Array,
  rewritten: RewriteResult,
  options: RegistrationOptions,
  target: ValidationTarget,
): Promise<{ session: ModelSession; rewritten: RewriteResult }> {
  const create = target.open ?? ((model: Uint8Array) => options.sessionFactory.create(model, options.sessionOptions));
  try {
    return { session: await create(rewritten.model), rewritten };
  } catch (error) {
    if (!(error instanceof ModelRejectedError) || !isStringNormalizerLocaleFailure(error.message)) throw error;
    let fallback: RewriteResult;
    try {
      fallback = rewriteForServing(model, {
        ...target.rewrite,
        stringNormalizerLocale: STRING_NORMALIZER_FALLBACK_LOCALE,
      });
    } catch (refusal) {
      if (!(refusal instanceof ModelRejectedError)) throw refusal;
      throw new ModelRejectedError(`${error.message}. ${refusal.message}`, { cause: error });
    }
    try {
      return { session: await create(fallback.model), rewritten: fallback };
    } catch (again) {
      if (!(again instanceof ModelRejectedError)) throw again;
      throw new ModelRejectedError(`${again.message}. ${STRING_NORMALIZER_LOCALE_HINT}`, { cause: again });
    }
  }
}

/**
 * Reads `<key>.json`: a V2 request whose `inputs` feed the smoke test, with optional `expected_outputs`, and
 * optional `preprocess` (declared image preprocessing); a sidecar may carry `preprocess` alone.
 */
async function readSample(key: string, options: RegistrationOptions): Promise<Sample | undefined> {
  const object = await options.store.get(`${key}${SAMPLE_SUFFIX}`).catch((error: unknown) => {
    throw new RegistrationStorageError(`could not read the sample ${key}${SAMPLE_SUFFIX}`, { cause: error });
  });
  if (object === undefined) return undefined;
  let preprocess: Preprocess | undefined;
  let rollout: RolloutPolicy | undefined;
  let document: { inputs?: unknown; preprocess?: unknown; rollout?: unknown } | undefined;
  try {
    document = JSON.parse(new TextDecoder().decode(object.body)) as typeof document;
  } catch {
    // The V2 decoder below says precisely what is wrong with the JSON.
  }
  if (document?.preprocess !== undefined) {
    const parsed = parsePreprocess(document.preprocess);
    if (!parsed.ok) throw new ModelRejectedError(`the sidecar ${key}${SAMPLE_SUFFIX} is invalid: ${parsed.message}`);
    preprocess = parsed.value;
  }
  if (document?.rollout !== undefined) {
    const parsed = parseRolloutPolicy(document.rollout);
    if (!parsed.ok) throw new ModelRejectedError(`the sidecar ${key}${SAMPLE_SUFFIX} is invalid: ${parsed.message}`);
    rollout = parsed.value;
  }
  const declared = { ...(preprocess && { preprocess }), ...(rollout && { rollout }) };
  if (document?.inputs === undefined && (preprocess !== undefined || rollout !== undefined)) {
    return { ...declared, decimal: DEFAULT_DECIMAL };
  }
  let request;
  try {
    request = decodeInferenceRequest(object.body, { contentType: 'application/json', limits: options.limits });
  } catch (error) {
    throw new ModelRejectedError(
      `the sample ${key}${SAMPLE_SUFFIX} is not a valid V2 request: ${(error as Error).message}`,
    );
  }
  const raw = JSON.parse(new TextDecoder().decode(object.body)) as { expected_outputs?: unknown; decimal?: unknown };
  const decimal = typeof raw.decimal === 'number' ? raw.decimal : DEFAULT_DECIMAL;
  if (raw.expected_outputs === undefined) return { inputs: [...request.inputs], decimal, ...declared };
  let expected;
  try {
    // Decoded as the outputs of a V2 response, whose envelope fields the codec requires.
    const response = { model_name: 'sample', model_version: '0', outputs: raw.expected_outputs };
    expected = decodeInferenceResponse(new TextEncoder().encode(JSON.stringify(response)), {
      'content-type': 'application/json',
    }).outputs;
  } catch (error) {
    throw new ModelRejectedError(`the sample's expected_outputs are not valid V2 outputs: ${(error as Error).message}`);
  }
  return { inputs: [...request.inputs], expected, decimal, ...declared };
}

/** Smoke-test inputs: each declared image input gets a synthetic 480 x 640 test card through its preprocessing. */
function withSyntheticImages(
  generated: Tensor[],
  specs: readonly TensorSpec[],
  preprocess: Preprocess | undefined,
): Tensor[] {
  if (preprocess === undefined) return generated;
  return generated.map((tensor, index) => {
    const image = preprocess.images[tensor.name];
    const datatype = specs[index]?.datatype;
    if (image === undefined || !(datatype === 'FP32' || datatype === 'FP16' || datatype === 'UINT8')) return tensor;
    return imageToTensor(syntheticImage(480, 640), image, tensor.name, datatype).tensor;
  });
}

/**
 * Refuses a model that no request within the limits could feed, before it displaces the version that serves: every
 * request must carry every input, so more inputs than `limits.maxInputs` make each one a 413.
 */
function assertReachable(specs: readonly TensorSpec[], limits: Limits): void {
  if (specs.length > limits.maxInputs) {
    throw new ModelRejectedError(
      `the model has ${specs.length} inputs, over the ${limits.maxInputs}-input limit of one request ` +
        '(limits.maxInputs), so no request could feed it; raise limits.maxInputs in the catalog entry or merge inputs',
    );
  }
}

/**
 * Inputs of the declared types and shapes (dynamic dimensions = 1), zero-filled: enough to prove the graph runs.
 * Fixed dimensions are checked against the request limit before anything is allocated: a model whose smallest
 * request is over `maxElements` could never be served, and allocating its input would crash the registration.
 */
function generatedInputs(specs: readonly TensorSpec[], limits: Limits): Tensor[] {
  const shapes = specs.map((spec) => smallestShape(spec.shape));
  const counts = shapes.map((shape) => shape.reduce((a, b) => a * b, 1));
  const total = counts.reduce((a, b) => a + b, 0);
  if (total > limits.maxElements) {
    const declared = specs.map((s) => `"${s.name}" [${s.shape.join(', ')}]`).join(', ');
    throw new ModelRejectedError(
      `the inputs declare ${total} elements at their smallest (${declared}; -1 = dynamic), over the ` +
        `${limits.maxElements}-element limit of one request (limits.maxElements), so no request could feed the model; ` +
        're-export it with a dynamic batch dimension or smaller fixed dimensions',
    );
  }
  return specs.map((spec, index) => {
    const data: TensorData = createTensorData(spec.datatype, counts[index] ?? 0);
    return { name: spec.name, datatype: spec.datatype, shape: shapes[index] ?? [], data };
  });
}

/** Compares actual outputs with the sample's expected ones (by name when given, else by position). */
function compareOutputs(actual: readonly Tensor[], expected: readonly Tensor[], decimal: number): void {
  // `10 ** -4` is 0.00009999999999999999 in floating point; parsing `1e-4` gives the tolerance the user wrote.
  const tolerance = Number.isInteger(decimal) ? Number(`1e${-decimal}`) : 10 ** -decimal;
  expected.forEach((want, index) => {
    const got = want.name ? actual.find((o) => o.name === want.name) : actual[index];
    const label = want.name || `#${index}`;
    if (got === undefined) throw new ModelRejectedError(`expected output ${label} is not produced by the model`);
    if (got.data.length !== want.data.length) {
      throw new ModelRejectedError(
        `output ${label}: expected ${want.data.length} elements, the model produced ${got.data.length}`,
      );
    }
    for (let i = 0; i < want.data.length; i += 1) {
      const a = got.data[i];
      const b = want.data[i];
      const equal =
        typeof a === 'number' && typeof b === 'number'
          ? (Number.isNaN(a) && Number.isNaN(b)) || Math.abs(a - b) <= tolerance || a === b
          : String(a) === String(b);
      if (!equal) {
        throw new ModelRejectedError(
          `output ${label} differs from the sample's expected output at element ${i}: expected ${String(b)}, got ${String(a)} (tolerance ${tolerance})`,
        );
      }
    }
  });
}
