/**
 * The user documentation as data, for the tests that keep it true: README.md and docs/*.md read as one set of
 * pages, so that a test asks for a section by its heading ("Versions", "Context options") and keeps working when
 * the section moves to another page. Never shipped.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file sits in `tools/`). */
export const DOCS_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** One page of the documentation. */
export interface DocPage {
  /** Repository-relative path, `/`-separated: `README.md`, `docs/protocol.md`. */
  readonly file: string;
  readonly text: string;
}

/** A heading and everything under it up to the next heading of the same or a higher level. */
export interface DocSection {
  readonly file: string;
  /** The heading's text, without the `#` marks. */
  readonly heading: string;
  /** 1 for `#`, 2 for `##`, ... */
  readonly level: number;
  /** 1-based line of the heading in its file. */
  readonly line: number;
  /** The heading line and the section's body. */
  readonly text: string;
}

/** A fenced code block. */
export interface CodeBlock {
  readonly file: string;
  /** The fence's info string (`sh`, `json`, `text`), empty when the fence has none. */
  readonly info: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
  /** The lines between the fences. */
  readonly lines: readonly string[];
}

/** A relative link (`[text](target)`) found outside code. */
export interface DocLink {
  readonly file: string;
  readonly line: number;
  /** The target as written: `docs/limits.md#errors`, `#versions`, `../models/detector.json`. */
  readonly target: string;
}

/** Info strings of fenced blocks that hold shell commands. */
export const SHELL_INFO = ['sh', 'bash', 'shell', 'console'] as const;

/** README.md, then docs/*.md in name order. */
export function readDocs(root: string = DOCS_ROOT): DocPage[] {
  const docs = readdirSync(join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`);
  return ['README.md', ...docs].map((file) => ({ file, text: readFileSync(join(root, file), 'utf8') }));
}

/** Each line of a page with whether it lies inside a fenced code block (fences included). */
function linesWithFences(text: string): { line: string; inCode: boolean }[] {
  let fence: string | undefined;
  return text.split('\n').map((line) => {
    const marker = /^ {0,3}(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence === undefined && marker !== undefined) {
      fence = marker;
      return { line, inCode: true };
    }
    if (fence !== undefined) {
      if (marker !== undefined && marker[0] === fence[0] && marker.length >= fence.length && line.trim() === marker)
        fence = undefined;
      return { line, inCode: true };
    }
    return { line, inCode: false };
  });
}

/** The headings of a page (ATX `#` headings outside code blocks). */
export function headingsOf(page: DocPage): { heading: string; level: number; line: number }[] {
  return linesWithFences(page.text).flatMap(({ line, inCode }, index) => {
    const match = inCode ? null : /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    return match === null ? [] : [{ heading: match[2] ?? '', level: match[1]?.length ?? 0, line: index + 1 }];
  });
}

/**
 * GitHub's anchor for a heading: lower case, punctuation but `-` and `_` removed, spaces to `-`; a repeated
 * heading gets `-1`, `-2`, ... as GitHub numbers them.
 */
export function headingSlug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

/** Every anchor a page offers to links (`#versions`), numbered for repeated headings as GitHub does. */
export function anchorsOf(page: DocPage): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const { heading } of headingsOf(page)) {
    const slug = headingSlug(heading);
    const count = seen.get(slug) ?? 0;
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
    seen.set(slug, count + 1);
  }
  return anchors;
}

/**
 * The one section, across README.md and docs/*.md, whose heading is `heading` (exactly, or matching it).
 * Throws when none or several match: a test reading a section must know which one it reads.
 */
export function findSection(heading: string | RegExp, pages: readonly DocPage[] = readDocs()): DocSection {
  const matches: DocSection[] = [];
  for (const page of pages) {
    const headings = headingsOf(page);
    const lines = page.text.split('\n');
    headings.forEach((h, i) => {
      if (typeof heading === 'string' ? h.heading !== heading : !heading.test(h.heading)) return;
      const next = headings.slice(i + 1).find((later) => later.level <= h.level);
      const text = lines.slice(h.line - 1, next === undefined ? lines.length : next.line - 1).join('\n');
      matches.push({ file: page.file, heading: h.heading, level: h.level, line: h.line, text });
    });
  }
  const where = matches.map((m) => `${m.file}:${m.line}`).join(', ');
  if (matches.length !== 1)
    throw new Error(
      `expected one section headed ${String(heading)} in README.md and docs/, found ${matches.length}${where === '' ? '' : ` (${where})`}`,
    );
  return matches[0] as DocSection;
}

/**
 * The rows of the first Markdown table in `text` whose header row's first cell is `firstHeader`, as cells (trimmed,
 * outer pipes dropped), header and separator excluded. Throws when there is no such table.
 */
export function tableRows(text: string, firstHeader: string): string[][] {
  const cells = (row: string): string[] =>
    row
      .trim()
      .replace(/^\||\|$/g, '')
      .split(/(?<!\\)\|/)
      .map((cell) => cell.trim());
  const lines = text.split('\n');
  const start = lines.findIndex((line) => line.trim().startsWith('|') && cells(line)[0] === firstHeader);
  if (start < 0) throw new Error(`no table whose first column is headed "${firstHeader}"`);
  const rows: string[][] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.trim().startsWith('|')) break;
    rows.push(cells(line));
  }
  return rows;
}

/** The fenced code blocks of a page, in order. */
export function codeBlocksOf(page: DocPage): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  let open: { info: string; line: number; lines: string[] } | undefined;
  linesWithFences(page.text).forEach(({ line, inCode }, index) => {
    if (!inCode) return;
    if (open === undefined) {
      open = {
        info: line
          .trim()
          .replace(/^(`{3,}|~{3,})/, '')
          .trim(),
        line: index + 1,
        lines: [],
      };
      return;
    }
    if (/^ {0,3}(`{3,}|~{3,})\s*$/.test(line)) {
      blocks.push({ file: page.file, ...open });
      open = undefined;
      return;
    }
    open.lines.push(line);
  });
  return blocks;
}

/** Whether a block holds shell commands (its info string's first word is one of {@link SHELL_INFO}). */
export function isShellBlock(block: CodeBlock): boolean {
  return (SHELL_INFO as readonly string[]).includes(block.info.split(/\s/)[0] ?? '');
}

/** One command of a shell block: its lines joined where they continue (`\`, a trailing `|`, `&&` or `||`). */
export interface ShellCommand {
  readonly file: string;
  /** 1-based line of the command's first line. */
  readonly line: number;
  /** The command as written, continuation lines included (trailing comment removed from the last line). */
  readonly command: string;
  /** The trailing comment of the command's last line, without `#`, or empty. */
  readonly comment: string;
  /**
   * What the command prints, when the block states it: the comment lines right after the command that start with
   * `{` or `[` (a JSON answer), joined. Undefined when the block does not say.
   */
  readonly output?: string;
}

/** Splits a line into its code and its trailing comment (a `#` after whitespace, outside quotes). */
export function splitComment(line: string): { code: string; comment: string } {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"') i++;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '\\') i++;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1] ?? ''))) {
      return { code: line.slice(0, i).trimEnd(), comment: line.slice(i + 1).trim() };
    }
  }
  return { code: line.trimEnd(), comment: '' };
}

/** The commands of a shell block: blank lines dropped, continued lines joined, stated outputs attached. */
export function shellCommands(block: CodeBlock): ShellCommand[] {
  const commands: { file: string; line: number; command: string; comment: string; output?: string }[] = [];
  let pending: { line: number; parts: string[]; depth: number } | undefined;
  let outputOf: (typeof commands)[number] | undefined;
  block.lines.forEach((raw, index) => {
    const { code, comment } = splitComment(raw);
    if (code.trim() === '' && pending === undefined) {
      // A comment line right after a command that reads as JSON is that command's stated output.
      if (outputOf !== undefined && code.trim() === '' && /^[[{]/.test(comment)) {
        outputOf.output = outputOf.output === undefined ? comment : `${outputOf.output}\n${comment}`;
      } else outputOf = undefined;
      return;
    }
    const current = pending ?? { line: block.line + 1 + index, parts: [], depth: 0 };
    current.parts.push(code);
    // Compound commands (`for ...; do` ... `done`, `if ...; then` ... `fi`, `{` ... `}`) are one command.
    current.depth += (/(\bdo|\bthen|\{)\s*$/.test(code) ? 1 : 0) - (/^\s*(done|fi|\})(\s|;|$)/.test(code) ? 1 : 0);
    if (current.depth > 0 || /(\\|\||&&)\s*$/.test(code)) {
      pending = current;
      return;
    }
    pending = undefined;
    outputOf = { file: block.file, line: current.line, command: current.parts.join('\n'), comment };
    commands.push(outputOf);
  });
  if (pending !== undefined)
    throw new Error(`${block.file}:${pending.line}: a command continues past the end of its block`);
  return commands;
}

/** The relative links of a page (absolute `http(s):`/`mailto:` links left out), outside code blocks and spans. */
export function relativeLinksOf(page: DocPage): DocLink[] {
  return linesWithFences(page.text).flatMap(({ line, inCode }, index) => {
    if (inCode) return [];
    const prose = line.replace(/`[^`]*`/g, '');
    return [...prose.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)]
      .map((m) => m[1] ?? '')
      .filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target))
      .map((target) => ({ file: page.file, line: index + 1, target }));
  });
}
