/**
 * Graph rewrites applied at registration so that onnxruntime-node can serve what exporters produce.
 *
 * onnxruntime-node returns tensors only ("Non tensor type is temporarily not supported."), yet scikit-learn
 * classifiers exported by skl2onnx end, by default, in a `ZipMap` that turns the `[N, C]` probability tensor into a
 * list of `{label: probability}` maps. The rewrite replaces that node by an `Identity` on the same tensor, keeps the
 * output's name, and hands back the labels so that responses can still say which column is which class.
 */
import { ModelRejectedError } from '../errors.js';
import type { AppliedRewrite } from '../types.js';
import { FIELD, readModelFile, readNodes, type Located, type ModelFile } from './model-file.js';
import {
  DEFAULT_DOMAINS,
  ML_DOMAIN,
  ONNX_ELEMENT_TYPE,
  describeType,
  int64ToSafe,
  onnx,
  tensorDims,
  typeKind,
  type Dim,
  type Int64Like,
  type OnnxTypes,
} from './proto.js';
import { guardIntegerDivision } from './division-guard.js';
import { defaultOpsetOf, ONNXRUNTIME_MIN_OPSET, upgradeOpset } from './version-converter.js';
import { readFields, rebuildMessage, type WireField } from './wire.js';

export { inspectModel, type ModelInspection, type ValueSummary } from './inspect.js';

/** Optional rewrites of {@link rewriteForServing}, applied only when asked for. */
export interface RewriteOptions {
  /**
   * Locale given to every `StringNormalizer` that changes case with onnxruntime's default locale (`en_US.UTF-8`,
   * absent or spelled out), for runtimes that lack it. Nodes that ask for another locale are refused, since
   * their casing rules may differ. @default undefined (no change)
   */
  readonly stringNormalizerLocale?: string;
  /**
   * The model comes with its external-data files (a `.zip` upload, checked by `external-data.ts`), so initializers
   * stored outside the file are accepted. @default false
   */
  readonly externalData?: boolean;
}

/** What {@link rewriteForServing} did. */
export interface RewriteResult {
  /** The model to serve: the original bytes (same object) when nothing was rewritten. */
  readonly model: Uint8Array;
  readonly rewrites: readonly AppliedRewrite[];
  /** Per rewritten output: column i of its probabilities belongs to label i. */
  readonly classLabels: Readonly<Record<string, readonly (string | number)[]>>;
}

/**
 * Identity has kept its meaning since opset 1; 8 is the newest default-domain opset that IR version 3 (the oldest
 * onnxruntime loads) allows, so the import is valid whatever the model's IR version.
 */
const IDENTITY_OPSET = 8;

/** Symbolic batch dimension of a rewritten output whose input shape is not declared in the file. */
const BATCH_DIM = 'N';

/**
 * The locale registration falls back to when onnxruntime cannot construct `en_US.UTF-8` for a `StringNormalizer`.
 * AWS Lambda's Amazon Linux 2023 runtimes (nodejs20.x, nodejs22.x) ship glibc-minimal-langpack: C, C.UTF-8 and
 * POSIX only. glibc builds the case mappings of C.UTF-8 and en_US.UTF-8 from the same Unicode table (i18n_ctype).
 */
export const STRING_NORMALIZER_FALLBACK_LOCALE = 'C.UTF-8';

/** Spellings of onnxruntime's default StringNormalizer locale (`en_US.UTF-8` on Linux and macOS, `en-US` on Windows). */
const DEFAULT_LOCALE_NAMES: ReadonlySet<string> = new Set([
  'en_US.UTF-8',
  'en_US.utf8',
  'en_US.UTF8',
  'en_US',
  'en-US',
]);

/** What a user can do about a StringNormalizer whose locale the runtime lacks. */
export const STRING_NORMALIZER_LOCALE_HINT =
  "StringNormalizer changes case with a locale that this runtime does not have (AWS Lambda's Amazon Linux 2023 " +
  'runtimes have only C, C.UTF-8 and POSIX). Either set the node\'s "locale" attribute to C.UTF-8, or re-export ' +
  'the model with case_change_action "NONE" (for skl2onnx text pipelines: lowercase=False) and change case on ' +
  'the client before sending the strings.';

/**
 * True when `message` is onnxruntime failing to construct a StringNormalizer's locale (its only kernel that
 * constructs one; the message may have lost the kernel's source location, which names StringNormalizer).
 */
export function isStringNormalizerLocaleFailure(message: string): boolean {
  return message.includes('Failed to construct locale');
}

/** NodeProto.attribute. */
const NODE_ATTRIBUTE_FIELD = 5;

const ZIPMAP_HINT =
  "For a scikit-learn classifier, re-export it without ZipMap: skl2onnx.to_onnx(model, X, options={id(model): {'zipmap': False}}).";

/**
 * Makes a model servable by onnxruntime-node: upgrades models below the default-domain opset onnxruntime
 * implements (see `version-converter.ts`), removes the `ZipMap` of scikit-learn classifiers and refuses any
 * other non-tensor graph input or output, guards integer `Div` and `Mod` against the `MIN / -1` that stops
 * onnxruntime's process (see `division-guard.ts`); with `options.stringNormalizerLocale`, also gives case-changing
 * `StringNormalizer` nodes that locale instead of the default `en_US.UTF-8` (registration asks for this only after
 * onnxruntime failed to construct the default one). Throws `ModelRejectedError` (with a reason for the user) when the bytes
 * are not an ONNX model or cannot be served.
 *
 * @example
 * const { model, classLabels } = rewriteForServing(upload);
 * // classLabels.output_probability: ['setosa', 'versicolor', 'virginica']
 */
export function rewriteForServing(model: Uint8Array, options: RewriteOptions = {}): RewriteResult {
  const file = readModelFile(model);
  const adapted = adaptForOnnxruntime(model, file, options);
  // Second, on the adapted graph: the opset upgrade may have rewritten a Div's inputs.
  const adaptedFile = adapted.model === model ? file : readModelFile(adapted.model);
  const guard = guardIntegerDivision(adaptedFile);
  if (guard === undefined) return adapted;
  return {
    model: rebuildMessage(
      adapted.model,
      adaptedFile.fields,
      new Map([
        [
          adaptedFile.graphField,
          rebuildMessage(adaptedFile.graphField.value, adaptedFile.graphFields, guard.graphReplace),
        ],
      ]),
    ),
    rewrites: [...adapted.rewrites, guard.applied],
    classLabels: adapted.classLabels,
  };
}

/** The rewrites onnxruntime-node needs to load and answer the model at all (see {@link rewriteForServing}). */
function adaptForOnnxruntime(model: Uint8Array, file: ModelFile, options: RewriteOptions): RewriteResult {
  if (file.externalInitializers.length > 0 && options.externalData !== true) {
    const [first] = file.externalInitializers;
    throw new ModelRejectedError(
      `The model keeps ${file.externalInitializers.length} weight tensor(s) (e.g. "${first}") in external data ` +
        'files, which a single .onnx upload does not carry. Save it as one file: onnx.save_model(model, path, ' +
        'save_as_external_data=False) (possible below 2 GB), or upload it as a .zip with its data files ' +
        '(docs/versions.md, "External data").',
    );
  }
  for (const { message: input } of file.inputs) {
    if (typeKind(input.type) !== 'tensor' && typeKind(input.type) !== 'unknown') {
      throw new ModelRejectedError(
        `Input "${input.name}" has type ${describeType(input.type)}; only tensor inputs can be sent in an inference ` +
          'request. Re-export the model so that every graph input is a tensor.',
      );
    }
  }
  const nonTensorOutputs = file.outputs.filter(({ message }) => typeKind(message.type) !== 'tensor');
  const locale = options.stringNormalizerLocale;
  const opset = defaultOpsetOf(file);
  const oldOpset = opset !== undefined && opset < ONNXRUNTIME_MIN_OPSET;
  if (nonTensorOutputs.length === 0 && locale === undefined && !oldOpset)
    return { model, rewrites: [], classLabels: {} };

  const nodes = readNodes(file);
  const replace = new Map<WireField, Uint8Array | readonly Uint8Array[] | null>();
  const rewrites: AppliedRewrite[] = [];
  // First, so that the other rewrites see (and leave alone) nodes of the opset the model will be served with.
  const upgrade = upgradeOpset(file, nodes);
  if (upgrade !== undefined) {
    for (const [field, bytes] of upgrade.graphReplace) replace.set(field, bytes);
    rewrites.push(...upgrade.rewrites);
  }
  const classLabels: Record<string, readonly (string | number)[]> = {};
  for (const output of nonTensorOutputs) {
    const name = output.message.name;
    const zipMap = nodes.find(
      ({ message: n }) => n.opType === 'ZipMap' && n.domain === ML_DOMAIN && n.output[0] === name,
    );
    if (zipMap === undefined) {
      if (typeKind(output.message.type) === 'unknown') continue; // onnxruntime infers it; a tensor is fine
      throw new ModelRejectedError(
        `Output "${name}" has type ${describeType(output.message.type)}; onnxruntime-node can only return tensors ` +
          `("Non tensor type is temporarily not supported."). Re-export the model so that every graph output is a ` +
          `tensor. ${ZIPMAP_HINT}`,
      );
    }
    const rewrite = removeZipMap(file, nodes, zipMap, output);
    for (const [field, bytes] of rewrite.replace) replace.set(field, bytes);
    rewrites.push(rewrite.applied);
    classLabels[name] = rewrite.labels;
  }
  if (locale !== undefined) {
    for (const node of nodes) {
      const rewrite = setStringNormalizerLocale(node, locale);
      if (rewrite === undefined) continue;
      replace.set(node.field, rewrite.node);
      rewrites.push(rewrite.applied);
    }
  }
  if (rewrites.length === 0) return { model, rewrites: [], classLabels: {} };

  const graph = rebuildMessage(file.graphField.value, file.graphFields, replace);
  const hasDefaultDomain = file.header.opsetImport.some((o) => DEFAULT_DOMAINS.has(o.domain ?? ''));
  const appendOpset = hasDefaultDomain
    ? []
    : [
        {
          number: FIELD.model.opsetImport,
          value: onnx.OperatorSetIdProto.encode({ domain: '', version: IDENTITY_OPSET }).finish(),
        },
      ];
  const modelReplace = new Map<WireField, Uint8Array>([[file.graphField, graph]]);
  if (upgrade !== undefined) modelReplace.set(upgrade.opsetField, upgrade.opsetImport);
  return {
    model: rebuildMessage(model, file.fields, modelReplace, appendOpset),
    rewrites,
    classLabels,
  };
}

/** The field edits that turn one `ZipMap` feeding `output` into an `Identity`. */
function removeZipMap(
  file: ModelFile,
  nodes: readonly Located<OnnxTypes.NodeProto>[],
  zipMap: Located<OnnxTypes.NodeProto>,
  output: Located<OnnxTypes.ValueInfoProto>,
): { replace: Map<WireField, Uint8Array | null>; applied: AppliedRewrite; labels: (string | number)[] } {
  const name = output.message.name;
  const probabilities = zipMap.message.input[0];
  if (probabilities === undefined || probabilities === '') {
    throw new ModelRejectedError(`The ZipMap node producing output "${name}" has no input; the model is malformed.`);
  }
  const consumer = nodes.find(({ message: n }) => n.input.includes(name));
  if (consumer) {
    throw new ModelRejectedError(
      `Output "${name}" (type ${describeType(output.message.type)}) is also read by node "${consumer.message.name}" ` +
        `(${consumer.message.opType}), so its ZipMap cannot be replaced by a tensor and onnxruntime-node cannot ` +
        `return it. ${ZIPMAP_HINT}`,
    );
  }
  const labels = classLabelsOf(zipMap.message, name);

  // The batch dim of the probabilities when the file declares their shape (exporters rarely do for
  // intermediate values); otherwise symbolic, which onnxruntime reports as -1.
  const declared = [...file.inputs, ...file.valueInfo, ...file.outputs].find((v) => v.message.name === probabilities);
  const batch: Dim = tensorDims(declared?.message.type)?.[0] ?? BATCH_DIM;
  const dims: Dim[] = [batch, labels.length];

  const identity = onnx.NodeProto.encode({
    input: [probabilities],
    output: [name],
    name: zipMap.message.name,
    opType: 'Identity',
    domain: '',
    docString: `ZipMap removed by onnx-serverless: "${name}" returns the [N, C] probabilities tensor itself.`,
  }).finish();
  const valueInfo = onnx.ValueInfoProto.encode({
    name,
    docString: output.message.docString,
    type: {
      tensorType: {
        elemType: ONNX_ELEMENT_TYPE.FP32,
        shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : d < 0 ? {} : { dimValue: d })) },
      },
    },
  }).finish();

  const replace = new Map<WireField, Uint8Array | null>([
    [zipMap.field, identity],
    [output.field, valueInfo],
  ]);
  // A stale value_info entry of the old type would contradict the new output type.
  for (const entry of file.valueInfo) if (entry.message.name === name) replace.set(entry.field, null);

  const shown = dims.map((d) => (typeof d === 'string' ? d : String(d))).join(', ');
  return {
    replace,
    labels,
    applied: {
      kind: 'remove-zipmap',
      output: name,
      detail:
        `ZipMap replaced by Identity: "${name}" is tensor(float) [${shown}] instead of ` +
        `${describeType(output.message.type)}; column i is the probability of class label i (${labels.length} labels).`,
    },
  };
}

/**
 * Gives a case-changing `StringNormalizer` that uses the default locale the `locale` attribute `locale`; edits
 * the node at the wire level so that every other byte of it is kept. `undefined` for other nodes: without a
 * case change onnxruntime constructs no locale.
 */
function setStringNormalizerLocale(
  node: Located<OnnxTypes.NodeProto>,
  locale: string,
): { node: Uint8Array; applied: AppliedRewrite } | undefined {
  const { message } = node;
  if (message.opType !== 'StringNormalizer' || !DEFAULT_DOMAINS.has(message.domain ?? '')) return undefined;
  const decoder = new TextDecoder();
  const stringAttribute = (name: string): string | undefined => {
    const attribute = message.attribute.find((a) => a.name === name);
    return attribute === undefined ? undefined : decoder.decode(attribute.s);
  };
  const action = stringAttribute('case_change_action') ?? 'NONE';
  if (action === 'NONE') return undefined;
  const current = stringAttribute('locale');
  const label = message.name ? `"${message.name}"` : `producing "${message.output[0] ?? ''}"`;
  if (current !== undefined && !DEFAULT_LOCALE_NAMES.has(current)) {
    throw new ModelRejectedError(
      `The StringNormalizer node ${label} changes case (${action}) with locale "${current}", which this runtime ` +
        `does not have, and whose casing rules may differ from ${locale}'s. ${STRING_NORMALIZER_LOCALE_HINT}`,
    );
  }
  const fields = readFields(node.field.value);
  const replace = new Map<WireField, Uint8Array | null>();
  for (const field of fields) {
    if (field.number === NODE_ATTRIBUTE_FIELD && onnx.AttributeProto.decode(field.value).name === 'locale') {
      replace.set(field, null);
    }
  }
  const attribute = onnx.AttributeProto.encode({
    name: 'locale',
    type: onnx.AttributeProto.AttributeType.STRING,
    s: new TextEncoder().encode(locale),
  }).finish();
  return {
    node: rebuildMessage(node.field.value, fields, replace, [{ number: NODE_ATTRIBUTE_FIELD, value: attribute }]),
    applied: {
      kind: 'string-normalizer-locale',
      output: message.output[0] ?? '',
      detail:
        `StringNormalizer ${label} changes case (${action}) with locale ${locale} instead of ` +
        `${current ?? 'the default en_US.UTF-8'}, which this runtime does not have; glibc gives both the same ` +
        'Unicode case mappings.',
    },
  };
}

function classLabelsOf(zipMap: OnnxTypes.NodeProto, output: string): (string | number)[] {
  const decoder = new TextDecoder();
  const strings = zipMap.attribute.find((a) => a.name === 'classlabels_strings')?.strings ?? [];
  if (strings.length > 0) return strings.map((s) => decoder.decode(s));
  const ints = zipMap.attribute.find((a) => a.name === 'classlabels_int64s')?.ints ?? [];
  if (ints.length > 0) return ints.map((i) => int64ToSafe(i as Int64Like));
  throw new ModelRejectedError(
    `The ZipMap node producing output "${output}" has neither classlabels_strings nor classlabels_int64s; ` +
      'the model is malformed.',
  );
}
