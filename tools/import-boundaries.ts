/**
 * The import rules of the README's Architecture section, checked over the TypeScript import graph (`npm run lint`):
 * which folder may import which, and no import cycles. Biome's `noRestrictedImports` matches specifiers, not the
 * files they resolve to, so `../adapters/x.js` from core could not be told apart from `./x.js` in adapters; this
 * resolves every relative import to a file and names the file, the line, the rule and what to do instead.
 *
 * @example
 * ```sh
 * npx tsx tools/import-boundaries.ts        # exit 1 and one line per violation, e.g.
 * # functions/core/model-service.ts:4 [core-is-pure] imports '../adapters/s3-client.js' (functions/adapters/s3-client.ts): ...
 * ```
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';

/** One import of one file: a relative one resolved to a repository path, a package one kept as its name. */
export interface ImportEdge {
  /** Importing file, relative to the root, with `/` separators. */
  readonly from: string;
  /** 1-based line of the import in `from`. */
  readonly line: number;
  /** The specifier as written. */
  readonly specifier: string;
  /** The imported file relative to the root (relative specifiers), else `undefined` (a package). */
  readonly target: string | undefined;
  /** The package name (`@aws-sdk/client-s3`, `node:fs`), else `undefined` (one of our files). */
  readonly packageName: string | undefined;
  /** `import type`, `export type ... from` or `import('x').T` in a type: gone at run time (a cycle edge all the same). */
  readonly typeOnly: boolean;
  /** `await import('x')`: loaded on demand, so it cannot take part in a module-initialisation cycle. */
  readonly dynamic: boolean;
}

/** Names of the rules; each violation names its rule so a reader can find it here and in the README. */
export type ImportRuleName =
  | 'core-is-pure'
  | 'adapters-import-core-only'
  | 'wiring-imports-core-and-adapters'
  | 'transport-imports-core-adapters-and-wiring'
  | 'entry-points-never-import-local-or-cli'
  | 'shipped-code-never-imports-dev-folders'
  | 'no-import-cycles';

/** A broken import rule, located at the import that breaks it. */
export interface ImportViolation {
  readonly file: string;
  readonly line: number;
  readonly rule: ImportRuleName;
  readonly message: string;
}

/** A folder rule: which of our folders, and which packages, the files under `from` may not import. */
interface FolderRule {
  readonly name: ImportRuleName;
  /** Folders (root-relative, `/`-terminated) whose files the rule applies to. */
  readonly from: readonly string[];
  /** When set, our files may import only files under these folders. */
  readonly onlyOurs?: readonly string[];
  /** Our folders the files may not import. */
  readonly notOurs?: readonly string[];
  /** Packages the files may not import (a name, or a scope ending in `/`). */
  readonly notPackages?: readonly string[];
  /** What to do instead, appended to the message. */
  readonly why: string;
}

/** The folders that never ship: builders, tests, benchmarks, the conformance runner, scripts. */
const DEV_FOLDERS = ['tools/', 'test/', 'bench/', 'conformance/', 'scripts/'] as const;

/** The rules of the README's Architecture section, in its order. */
export const FOLDER_RULES: readonly FolderRule[] = [
  {
    name: 'core-is-pure',
    from: ['functions/core/'],
    onlyOurs: ['functions/core/'],
    notPackages: ['aws-lambda', '@aws-sdk/', 'onnxruntime-node'],
    why: 'functions/core imports nothing of ours outside core, nor aws-lambda, @aws-sdk/* or onnxruntime-node; take what it needs as a port (BlobStore, SessionFactory) and implement it in functions/adapters',
  },
  {
    name: 'adapters-import-core-only',
    from: ['functions/adapters/'],
    onlyOurs: ['functions/core/', 'functions/adapters/'],
    why: 'adapters implement core ports and import only functions/core; move shared logic into core',
  },
  {
    name: 'wiring-imports-core-and-adapters',
    from: ['functions/wiring/'],
    onlyOurs: ['functions/core/', 'functions/adapters/', 'functions/wiring/'],
    why: 'wiring builds the runtime from core and adapters only; transport and the entry points import it, never the reverse',
  },
  {
    name: 'transport-imports-core-adapters-and-wiring',
    from: ['functions/transport/'],
    onlyOurs: ['functions/core/', 'functions/adapters/', 'functions/wiring/', 'functions/transport/'],
    why: 'transport imports core, adapters and the runtime it is handed (wiring); entry points import transport, never the reverse',
  },
  {
    name: 'entry-points-never-import-local-or-cli',
    from: ['functions/handlers/'],
    notOurs: ['functions/local/', 'functions/cli/'],
    why: 'the Lambda entry points must not bundle npm start or the CLI; put shared code in core, adapters, transport or wiring',
  },
  {
    name: 'shipped-code-never-imports-dev-folders',
    from: ['functions/', 'infra/', 'layers/'],
    notOurs: DEV_FOLDERS,
    why: `shipped code never imports ${DEV_FOLDERS.join(', ')} (never-shipped builders, tests, benchmarks); move what it needs into functions/`,
  },
];

/** The folders scanned by {@link checkImports}: everything with TypeScript of ours. */
export const SCANNED_FOLDERS = ['functions', 'infra', 'layers', ...DEV_FOLDERS.map((f) => f.slice(0, -1))] as const;

/** Folders never scanned: data, generated files and their fixtures. */
const SKIPPED_FOLDERS = new Set(['node_modules', 'cdk.out', 'fixtures', 'build', '.data']);

/** The `.ts` files under `folders` of `root` (root-relative, `/` separators, sorted). */
export function listSourceFiles(root: string, folders: readonly string[] = SCANNED_FOLDERS): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = `${dir}/${entry.name}`;
      if (entry.isDirectory()) {
        if (!SKIPPED_FOLDERS.has(entry.name)) walk(rel);
      } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
        out.push(rel);
      }
    }
  };
  for (const folder of folders) if (existsSync(path.join(root, folder))) walk(folder);
  for (const entry of readdirSync(root)) {
    if (entry.endsWith('.ts') && !entry.endsWith('.d.ts') && statSync(path.join(root, entry)).isFile()) out.push(entry);
  }
  return out.sort();
}

/** Resolves a relative specifier as NodeNext does for our sources: `./x.js` is `./x.ts`, a folder is its index. */
function resolveRelative(root: string, fromFile: string, specifier: string): string {
  const base = path.posix.join(path.posix.dirname(fromFile), specifier);
  const candidates = [
    base.replace(/\.js$/, '.ts'),
    base.replace(/\.mjs$/, '.mts'),
    base,
    `${base}.ts`,
    `${base}/index.ts`,
  ];
  const found = candidates.find((c) => existsSync(path.join(root, c)) && statSync(path.join(root, c)).isFile());
  return found ?? base;
}

/** `@scope/name/sub` → `@scope/name`, `name/sub` → `name`, `node:fs/promises` → `node:fs/promises`. */
function packageNameOf(specifier: string): string {
  if (specifier.startsWith('node:')) return specifier;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier);
}

/** Every import, re-export and dynamic import of `file` (root-relative). */
export function importsOf(
  root: string,
  file: string,
  text = readFileSync(path.join(root, file), 'utf8'),
): ImportEdge[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const edges: ImportEdge[] = [];
  const add = (node: ts.Node, literal: ts.Expression | undefined, typeOnly: boolean, dynamic: boolean): void => {
    if (literal === undefined || !ts.isStringLiteralLike(literal)) return;
    const specifier = literal.text;
    const relative = specifier.startsWith('./') || specifier.startsWith('../');
    edges.push({
      from: file,
      line: source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1,
      specifier,
      target: relative ? resolveRelative(root, file, specifier) : undefined,
      packageName: relative ? undefined : packageNameOf(specifier),
      typeOnly,
      dynamic,
    });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      // Under verbatimModuleSyntax only `import type` disappears; `import { type X }` still loads the module.
      add(node, node.moduleSpecifier, node.importClause?.isTypeOnly === true, false);
    } else if (ts.isExportDeclaration(node)) {
      add(node, node.moduleSpecifier, node.isTypeOnly, false);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node, node.moduleReference.expression, node.isTypeOnly, false);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node, node.arguments[0], false, true);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node, node.argument.literal, true, false);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return edges;
}

const under = (file: string, folders: readonly string[]): boolean => folders.some((f) => file.startsWith(f));
const packageMatches = (name: string, patterns: readonly string[]): boolean =>
  patterns.some((p) => (p.endsWith('/') ? name.startsWith(p) : name === p));

/** The folder rules broken by `edges` (type-only imports included: core must not even name Lambda's types). */
export function checkFolderRules(
  edges: readonly ImportEdge[],
  rules: readonly FolderRule[] = FOLDER_RULES,
): ImportViolation[] {
  const out: ImportViolation[] = [];
  for (const edge of edges) {
    for (const rule of rules) {
      if (!under(edge.from, rule.from)) continue;
      const imported = edge.target ?? edge.packageName ?? edge.specifier;
      const broken =
        edge.target !== undefined
          ? // JSON data such as `package.json` (the server version) is not a layer: only code is held to `onlyOurs`.
            (rule.onlyOurs !== undefined && !edge.target.endsWith('.json') && !under(edge.target, rule.onlyOurs)) ||
            (rule.notOurs !== undefined && under(edge.target, rule.notOurs))
          : rule.notPackages !== undefined && packageMatches(imported, rule.notPackages);
      if (broken) {
        const shown = edge.target !== undefined ? `'${edge.specifier}' (${edge.target})` : `'${edge.specifier}'`;
        out.push({ file: edge.from, line: edge.line, rule: rule.name, message: `imports ${shown}: ${rule.why}` });
      }
    }
  }
  return out;
}

/**
 * Import cycles among our files, one violation per strongly connected component, located at the first edge of the
 * cycle it prints. Every static import counts, type-only ones too (`import type`, `import { type X }`,
 * `export type ... from`, `import('x').T`): they vanish at run time, but two modules that name each other's types
 * are one module in two files (neither can move or be read alone), and one added value import makes the circle
 * real. A dynamic `import()` loads on demand, after initialisation, and does not count.
 */
export function findCycles(edges: readonly ImportEdge[]): ImportViolation[] {
  const graph = new Map<string, ImportEdge[]>();
  for (const edge of edges) {
    if (edge.target === undefined || edge.dynamic) continue;
    graph.set(edge.from, [...(graph.get(edge.from) ?? []), edge]);
  }
  // Tarjan's strongly connected components, iterative enough for a repository's depth.
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const strongConnect = (node: string): void => {
    index.set(node, counter);
    low.set(node, counter);
    counter += 1;
    stack.push(node);
    onStack.add(node);
    for (const edge of graph.get(node) ?? []) {
      const next = edge.target as string;
      if (!index.has(next)) {
        strongConnect(next);
        low.set(node, Math.min(low.get(node) as number, low.get(next) as number));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node) as number, index.get(next) as number));
      }
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      let member: string | undefined;
      do {
        member = stack.pop() as string;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      const selfLoop = (graph.get(node) ?? []).some((e) => e.target === node);
      if (component.length > 1 || selfLoop) components.push(component.sort());
    }
  };
  for (const node of [...graph.keys()].sort()) if (!index.has(node)) strongConnect(node);

  return components.map((component) => {
    const members = new Set(component);
    const start = component[0] as string;
    // Shortest way back to `start` inside the component: the cycle a reader can follow.
    const previous = new Map<string, ImportEdge>();
    const queue = [start];
    let closing: ImportEdge | undefined;
    while (queue.length > 0 && closing === undefined) {
      const node = queue.shift() as string;
      for (const edge of graph.get(node) ?? []) {
        const next = edge.target as string;
        if (!members.has(next)) continue;
        if (next === start) {
          closing = edge;
          break;
        }
        if (!previous.has(next)) {
          previous.set(next, edge);
          queue.push(next);
        }
      }
    }
    const route: ImportEdge[] = [];
    for (let edge = closing; edge !== undefined; edge = edge.from === start ? undefined : previous.get(edge.from)) {
      route.unshift(edge);
    }
    const first = route[0] as ImportEdge;
    const chain = [...route.map((e) => e.from), start].join(' → ');
    const types = route.every((e) => e.typeOnly) ? ' (type imports only)' : '';
    return {
      file: first.from,
      line: first.line,
      rule: 'no-import-cycles' as const,
      message: `import cycle ${chain}${types}: move what both sides need, types included, into a module neither of them imports`,
    };
  });
}

/** Scans `root` and returns every broken rule, sorted by file and line. */
export function checkImports(root: string): { files: number; imports: number; violations: ImportViolation[] } {
  const files = listSourceFiles(root);
  const edges = files.flatMap((file) => importsOf(root, file));
  const violations = [...checkFolderRules(edges), ...findCycles(edges)].sort(
    (a, b) => a.file.localeCompare(b.file) || a.line - b.line,
  );
  return { files: files.length, imports: edges.length, violations };
}

/** `file:line [rule] message`: what the command prints per violation. */
export function formatViolation(violation: ImportViolation): string {
  return `${violation.file}:${violation.line} [${violation.rule}] ${violation.message}`;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const root = process.argv[2] ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const { files, imports, violations } = checkImports(root);
  for (const violation of violations) console.error(formatViolation(violation));
  if (violations.length > 0) {
    console.error(
      `import boundaries: ${violations.length} violation(s) in ${files} files (rules: README, Architecture)`,
    );
    process.exitCode = 1;
  } else {
    console.log(`import boundaries: ${files} files, ${imports} imports, no violation`);
  }
}
