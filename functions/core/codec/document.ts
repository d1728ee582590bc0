/**
 * The JSON document of a request or response (the whole body, or the header of the binary form): parsing, the
 * nesting-depth limit, and the tensor descriptors that both directions share.
 */
import { BadRequestError, PayloadTooLargeError } from '../errors.js';
import { DATATYPES } from '../types.js';
import type { Datatype } from '../types.js';
import { isDatatype } from './datatypes.js';
import { formatShape, quoteName, show } from './describe.js';
import { parseJsonText } from './json-text.js';

/** A parsed JSON object. */
export type JsonObject = Record<string, unknown>;

/** True for a JSON object (not an array, not null). */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes and parses a JSON object. `what` names it in messages ("request body", "inference header").
 * Bare `NaN`/`Infinity` tokens and exact 64-bit integers are read as Triton reads them (see `json-text.ts`).
 * V8's JSON.parse (and the lossless reader) are iterative, so a pathologically deep document cannot overflow the stack here; the depth limit
 * is enforced afterwards by {@link assertDepth} and the tensor-data fillers, without recursion.
 */
export function parseJsonObject(bytes: Uint8Array, what: string, expected: string, lossless = false): JsonObject {
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch (error) {
    throw new BadRequestError(`${what} is not valid UTF-8 text`, { cause: error });
  }
  let parsed: unknown;
  try {
    parsed = parseJsonText(text, lossless);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new BadRequestError(`${what} is not valid JSON: ${reason}`, { cause: error });
  }
  if (!isJsonObject(parsed))
    throw new BadRequestError(`${what} must be a JSON object ${expected}, got ${show(parsed)}`);
  return parsed;
}

/** The 400 for a document nested deeper than the limit. */
export function tooDeepError(maxJsonDepth: number): BadRequestError {
  return new BadRequestError(
    `the JSON document is nested more than ${maxJsonDepth} levels deep (limits.maxJsonDepth); ` +
      'send tensor data flat and keep parameters shallow',
  );
}

/**
 * Throws when `value`, found at JSON depth `depth` (the top-level object is 1), holds arrays or objects nested
 * deeper than `maxJsonDepth`. Iterative, so depth costs heap, never stack.
 */
export function assertDepth(value: unknown, depth: number, maxJsonDepth: number): void {
  if (typeof value !== 'object' || value === null) return;
  const pending: object[] = [value];
  const depths: number[] = [depth];
  while (pending.length > 0) {
    const node = pending.pop() as object;
    const nodeDepth = depths.pop() as number;
    if (nodeDepth > maxJsonDepth) throw tooDeepError(maxJsonDepth);
    const children: readonly unknown[] = Array.isArray(node) ? node : Object.values(node);
    for (const child of children) {
      if (typeof child === 'object' && child !== null) {
        pending.push(child);
        depths.push(nodeDepth + 1);
      }
    }
  }
}

/**
 * The depth check for a whole document except the `data` of the tensors in `tensorsKey`, whose depth the data
 * fillers check as they walk it (so the largest arrays are traversed once, not twice).
 */
export function assertDocumentDepth(
  document: JsonObject,
  tensorsKey: 'inputs' | 'outputs',
  maxJsonDepth: number,
): void {
  for (const [key, value] of Object.entries(document)) {
    if (key !== tensorsKey || !Array.isArray(value)) {
      assertDepth(value, 2, maxJsonDepth);
      continue;
    }
    if (2 > maxJsonDepth) throw tooDeepError(maxJsonDepth);
    for (const tensor of value) {
      if (!isJsonObject(tensor)) {
        assertDepth(tensor, 3, maxJsonDepth);
        continue;
      }
      if (3 > maxJsonDepth) throw tooDeepError(maxJsonDepth);
      for (const [field, fieldValue] of Object.entries(tensor)) {
        if (field !== 'data') assertDepth(fieldValue, DATA_DEPTH, maxJsonDepth);
        // Only the data array itself: the fillers check the levels below it.
        else if (Array.isArray(fieldValue) && DATA_DEPTH > maxJsonDepth) throw tooDeepError(maxJsonDepth);
      }
    }
  }
}

/** Depth of a tensor's `data` array in a request or response document: `{ "inputs": [ { "data": [`. */
export const DATA_DEPTH = 4;

/** An optional `parameters` object; `{}` when absent. */
export function parseParameters(value: unknown, where: string): JsonObject {
  if (value === undefined) return {};
  if (!isJsonObject(value))
    throw new BadRequestError(`${where} "parameters" must be a JSON object, got ${show(value)}`);
  return value;
}

/** An optional boolean parameter. */
export function optionalBoolean(parameters: JsonObject, key: string, where: string): boolean | undefined {
  const value = parameters[key];
  if (value === undefined || typeof value === 'boolean') return value;
  throw new BadRequestError(`${where} parameter "${key}" must be true or false, got ${show(value)}`);
}

/** A tensor descriptor of `inputs` or `outputs`, checked, before its data is read. */
export interface TensorDescriptor {
  readonly name: string;
  readonly datatype: Datatype;
  readonly shape: number[];
  /** Elements, checked against the element budget. */
  readonly count: number;
  /** `input "x"`: the subject of messages about this tensor. */
  readonly subject: string;
  /** The `data` member as parsed; `undefined` for a binary tensor. */
  readonly data: unknown;
  /** `parameters.binary_data_size`, when the tensor's bytes follow the JSON header. */
  readonly binaryDataSize: number | undefined;
  readonly parameters: JsonObject;
}

/**
 * Elements in `shape`, or `Infinity` as soon as the running product passes `budget` (so an absurd shape can neither
 * overflow nor allocate). A zero dimension anywhere makes the count 0.
 */
export function boundedElementCount(shape: readonly number[], budget: number): number {
  if (shape.includes(0)) return 0;
  let count = 1;
  for (const dim of shape) {
    count *= dim;
    if (count > budget) return Infinity;
  }
  return count;
}

function isDimension(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/**
 * Checks the descriptor at `inputs[index]` or `outputs[index]` and charges its elements to `budget` (before
 * anything is allocated for it).
 */
export function parseTensorDescriptor(
  raw: unknown,
  role: 'input' | 'output',
  index: number,
  budget: { remaining: number; readonly maxElements: number },
): TensorDescriptor {
  const list = `${role}s[${index}]`;
  if (!isJsonObject(raw)) {
    throw new BadRequestError(
      `${list} must be a JSON object with "name", "shape", "datatype" and "data", got ${show(raw)}`,
    );
  }
  const { name } = raw;
  if (typeof name !== 'string' || name.length === 0) {
    throw new BadRequestError(`${list}: "name" must be a non-empty string, got ${show(name)}`);
  }
  const subject = `${role} ${quoteName(name)}`;
  const { datatype, shape } = raw;
  if (!isDatatype(datatype)) {
    throw new BadRequestError(`${subject}: unknown datatype ${show(datatype)}; use one of ${DATATYPES.join(', ')}`);
  }
  if (!Array.isArray(shape) || !shape.every(isDimension)) {
    throw new BadRequestError(
      `${subject}: "shape" must be an array of non-negative integers, got ${Array.isArray(shape) ? formatShape(shape) : show(shape)}`,
    );
  }
  const count = boundedElementCount(shape, budget.remaining);
  if (count > budget.remaining) {
    const exact = shape.reduce((product: number, dim: number) => product * dim, 1);
    const size = Number.isSafeInteger(exact) ? `${exact} elements` : 'more than 2^53 elements';
    const left =
      budget.remaining === budget.maxElements ? '' : ` (${budget.remaining} left after the tensors before it)`;
    throw new PayloadTooLargeError(
      `${subject}: shape ${formatShape(shape)} has ${size}; a message may carry at most ${budget.maxElements} ` +
        `elements over all its tensors${left} (limits.maxElements)`,
    );
  }
  budget.remaining -= count;
  const parameters = parseParameters(raw.parameters, subject);
  const binaryDataSize = parameters.binary_data_size;
  if (binaryDataSize !== undefined) {
    if (!isDimension(binaryDataSize)) {
      throw new BadRequestError(
        `${subject}: "binary_data_size" must be a non-negative integer, got ${show(binaryDataSize)}`,
      );
    }
    if (raw.data !== undefined) {
      throw new BadRequestError(`${subject}: has both "data" and "binary_data_size"; send its elements one way only`);
    }
  } else if (raw.data === undefined) {
    throw new BadRequestError(
      `${subject}: has no "data" (and no "binary_data_size" parameter for the binary tensor extension)`,
    );
  }
  return { name, datatype, shape, count, subject, data: raw.data, binaryDataSize, parameters };
}

/** Throws on the second tensor with an already-seen name. */
export function assertUniqueNames(names: readonly string[], role: 'input' | 'requested output'): void {
  const seen = new Set<string>();
  for (const name of names) {
    if (seen.has(name)) throw new BadRequestError(`${role} ${quoteName(name)} appears more than once`);
    seen.add(name);
  }
}
