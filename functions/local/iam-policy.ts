/**
 * A small IAM policy evaluator: the part of AWS's identity-policy logic the embedded S3 server needs to run each
 * function with exactly its deployed role's S3 permissions.
 *
 * Rules (as AWS documents them for a single identity policy): a request is allowed when some `Allow` statement
 * matches it and no `Deny` statement does; an explicit `Deny` always wins; nothing matching is an implicit deny.
 * A statement matches when one of its actions matches (case-insensitive, `*` and `?` wildcards), one of its
 * resources matches (case-sensitive, `*` crosses `/` as in ARNs), and every condition holds.
 *
 * Supported condition operators: `StringEquals`, `StringNotEquals`, `StringLike`, `StringNotLike`, each with an
 * `IfExists` form. Anything else (NotAction, NotResource, other operators) throws: a policy this evaluator does not
 * understand must fail loudly, never be read as more or less permissive than AWS reads it.
 * @see https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
 */
import type { PolicyStatementJson } from '../../infra/function-grants.js';

/** One request as IAM sees it. */
export interface AccessRequest {
  /** e.g. `s3:GetObject` */
  readonly action: string;
  /** e.g. `arn:aws:s3:::models/models/iris/manifest.json` */
  readonly resource: string;
  /** Condition keys present in the request, e.g. `{ 's3:prefix': 'models/iris/' }`; absent keys are missing. */
  readonly context?: Readonly<Record<string, string>>;
}

/** The outcome, with the statement that decided it (for denial logs). */
export type AccessDecision =
  | { readonly effect: 'allow'; readonly statement: PolicyStatementJson }
  | { readonly effect: 'explicit-deny'; readonly statement: PolicyStatementJson }
  | { readonly effect: 'implicit-deny' };

const KNOWN_FIELDS = new Set(['Sid', 'Effect', 'Action', 'Resource', 'Condition']);

/** Evaluates `request` against the statements of one identity's policies. */
export function evaluatePolicy(statements: readonly PolicyStatementJson[], request: AccessRequest): AccessDecision {
  let allowedBy: PolicyStatementJson | undefined;
  for (const statement of statements) {
    checkSupported(statement);
    if (!matches(statement, request)) continue;
    if (statement.Effect === 'Deny') return { effect: 'explicit-deny', statement };
    allowedBy ??= statement;
  }
  return allowedBy === undefined ? { effect: 'implicit-deny' } : { effect: 'allow', statement: allowedBy };
}

function checkSupported(statement: PolicyStatementJson): void {
  for (const field of Object.keys(statement)) {
    if (!KNOWN_FIELDS.has(field))
      throw new Error(`policy statement field "${field}" is not supported by the local evaluator`);
  }
  if (statement.Effect !== 'Allow' && statement.Effect !== 'Deny') {
    throw new Error(`policy statement effect "${String(statement.Effect)}" is not Allow or Deny`);
  }
}

function matches(statement: PolicyStatementJson, request: AccessRequest): boolean {
  const actions = asArray(statement.Action);
  const resources = asArray(statement.Resource);
  return (
    actions.some((pattern) => wildcardMatch(pattern.toLowerCase(), request.action.toLowerCase())) &&
    resources.some((pattern) => wildcardMatch(pattern, request.resource)) &&
    conditionsHold(statement.Condition ?? {}, request.context ?? {})
  );
}

function conditionsHold(
  condition: NonNullable<PolicyStatementJson['Condition']>,
  context: Readonly<Record<string, string>>,
): boolean {
  return Object.entries(condition).every(([operator, keys]) =>
    Object.entries(keys).every(([key, values]) => operatorHolds(operator, context[key], asArray(values))),
  );
}

/** One condition operator on one key; `value` is undefined when the request has no such key. */
function operatorHolds(operator: string, value: string | undefined, values: readonly string[]): boolean {
  const ifExists = operator.endsWith('IfExists');
  const base = ifExists ? operator.slice(0, -'IfExists'.length) : operator;
  const test = OPERATORS[base];
  if (test === undefined) throw new Error(`condition operator "${operator}" is not supported by the local evaluator`);
  if (value === undefined) {
    // A missing key satisfies ...IfExists, and the negated operators (AWS: "true if the key is not present").
    return ifExists || base.startsWith('StringNot');
  }
  return test(value, values);
}

const OPERATORS: Readonly<Record<string, (value: string, values: readonly string[]) => boolean>> = {
  StringEquals: (value, values) => values.includes(value),
  StringNotEquals: (value, values) => !values.includes(value),
  StringLike: (value, values) => values.some((pattern) => wildcardMatch(pattern, value)),
  StringNotLike: (value, values) => !values.some((pattern) => wildcardMatch(pattern, value)),
};

function asArray(value: string | readonly string[]): readonly string[] {
  return typeof value === 'string' ? [value] : value;
}

/** IAM's glob: `*` any run of characters (including none and `/`), `?` exactly one; everything else literal. */
export function wildcardMatch(pattern: string, value: string): boolean {
  // Iterative two-pointer glob with backtracking to the last `*`: linear in practice, no regex built from input.
  let p = 0;
  let v = 0;
  let star = -1;
  let resume = 0;
  while (v < value.length) {
    const c = pattern[p];
    if (c === '?' || (c !== undefined && c !== '*' && c === value[v])) {
      p += 1;
      v += 1;
    } else if (c === '*') {
      star = p;
      resume = v;
      p += 1;
    } else if (star !== -1) {
      p = star + 1;
      resume += 1;
      v = resume;
    } else {
      return false;
    }
  }
  while (pattern[p] === '*') p += 1;
  return p === pattern.length;
}
