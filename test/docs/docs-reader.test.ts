/**
 * tools/docs.ts, the reader the docs tests stand on: sections found by heading on any page (and refused when the
 * heading is missing or ambiguous), GitHub's anchors, tables, and shell commands with their comments, continuations
 * and stated outputs. Pages are built in memory here, so each rule is shown on the smallest case.
 */
import { describe, expect, it } from 'vitest';
import {
  anchorsOf,
  codeBlocksOf,
  type DocPage,
  findSection,
  headingSlug,
  isShellBlock,
  relativeLinksOf,
  shellCommands,
  splitComment,
  tableRows,
} from '../../tools/docs.js';

const readme: DocPage = {
  file: 'README.md',
  text: ['# Title', '', '## Two commands', '', 'text', '', '```sh', '# not a heading', 'npm test', '```'].join('\n'),
};
const limits: DocPage = {
  file: 'docs/limits.md',
  text: [
    '# Limits and errors',
    '',
    '## Limits',
    '',
    '| limit | default |',
    '|---|---|',
    '| `maxBodyBytes` | 10 MiB |',
    '| `maxInputs` | 64 |',
    '',
    '### Detail',
    '',
    'more',
    '',
    '## Errors',
    '',
    'See [Limits](#limits) and [the README](../README.md#two-commands), or [AWS](https://aws.amazon.com).',
  ].join('\n'),
};

describe('findSection', () => {
  it('finds a heading on any page and keeps its sub-sections, up to the next heading of its level', () => {
    const section = findSection('Limits', [readme, limits]);
    expect(section).toMatchObject({ file: 'docs/limits.md', level: 2, line: 3 });
    expect(section.text).toContain('### Detail');
    expect(section.text).not.toContain('## Errors');
  });

  it('refuses a heading that is missing, or on several pages, naming where', () => {
    expect(() => findSection('Versions', [readme, limits])).toThrow(/found 0/);
    const twice: DocPage = { file: 'docs/other.md', text: '## Errors\n' };
    expect(() => findSection('Errors', [limits, twice])).toThrow(/found 2 \(docs\/limits\.md:14, docs\/other\.md:1\)/);
  });

  it('never takes a comment inside a code block for a heading', () => {
    expect(() => findSection('not a heading', [readme])).toThrow(/found 0/);
  });
});

describe('anchors and links', () => {
  it("makes GitHub's anchors: code and punctuation dropped, <name> kept as text, repeats numbered", () => {
    expect(headingSlug('The model catalog: `models/<name>.json`')).toBe('the-model-catalog-modelsnamejson');
    expect(headingSlug("Binary (Triton's binary tensor extension)")).toBe('binary-tritons-binary-tensor-extension');
    expect([...anchorsOf(limits)]).toEqual(['limits-and-errors', 'limits', 'detail', 'errors']);
    expect([...anchorsOf({ file: 'x.md', text: '## Notes\n\n## Notes\n' })]).toEqual(['notes', 'notes-1']);
  });

  it('lists relative links only, with their lines', () => {
    expect(relativeLinksOf(limits)).toEqual([
      { file: 'docs/limits.md', line: 16, target: '#limits' },
      { file: 'docs/limits.md', line: 16, target: '../README.md#two-commands' },
    ]);
  });
});

describe('tables and commands', () => {
  it("reads a table's rows by its first header", () => {
    expect(tableRows(limits.text, 'limit')).toEqual([
      ['`maxBodyBytes`', '10 MiB'],
      ['`maxInputs`', '64'],
    ]);
    expect(() => tableRows(limits.text, 'option')).toThrow(/no table/);
  });

  it("splits a trailing comment from a command, never inside quotes or a variable's length", () => {
    expect(splitComment(`curl -d '{"a": "# x"}' "$URL"   # needs AWS`)).toEqual({
      code: `curl -d '{"a": "# x"}' "$URL"`,
      comment: 'needs AWS',
    });
    const length = `echo \${#header}`;
    expect(splitComment(length)).toEqual({ code: length, comment: '' });
  });

  it('joins continued lines and compound commands, and attaches the JSON a block states after a command', () => {
    const page: DocPage = {
      file: 'x.md',
      text: [
        '```sh',
        'curl -s $URL \\',
        "  -d '{}'",
        '# {"ok": true}',
        '{ printf a; } |',
        '  wc -c     # (exit 0)',
        'for b in a b; do',
        '  echo "$b"',
        'done     # needs AWS',
        '# not an output',
        '```',
      ].join('\n'),
    };
    const [block] = codeBlocksOf(page);
    expect(block !== undefined && isShellBlock(block)).toBe(true);
    expect(shellCommands(block!)).toEqual([
      { file: 'x.md', line: 2, command: "curl -s $URL \\\n  -d '{}'", comment: '', output: '{"ok": true}' },
      { file: 'x.md', line: 5, command: '{ printf a; } |\n  wc -c', comment: '(exit 0)' },
      { file: 'x.md', line: 7, command: 'for b in a b; do\n  echo "$b"\ndone', comment: 'needs AWS' },
    ]);
  });
});
