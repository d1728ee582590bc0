/**
 * What README.md and docs/ state stays true: the counts they quote are read from the catalog and from the template
 * `cdk synth` makes of it (as infra/app.ts builds it), the upload suffixes from core's UPLOAD_SUFFIXES and the
 * synthesized bucket notifications, the CLI's usage and the import rules' names from the code; every relative link
 * leads to a file and, when it names one, a heading; and the README stays short enough to read.
 */
import { Template } from 'aws-cdk-lib/assertions';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { USAGE } from '../../functions/cli/cli.js';
import { UPLOAD_SUFFIXES } from '../../functions/core/model-repository.js';
import { DEFAULT_MODELS_DIR } from '../../infra/catalog-loader.js';
import { addServiceStack, createServiceApp } from '../../infra/service-app.js';
import {
  anchorsOf,
  DOCS_ROOT,
  findSection,
  headingsOf,
  readDocs,
  relativeLinksOf,
  tableRows,
} from '../../tools/docs.js';
import { FOLDER_RULES } from '../../tools/import-boundaries.js';
import { tempDir } from '../infra/fixture.js';

const pages = readDocs();
/** All the documentation's prose on one line per page, so that a stated fact may wrap. */
const flat = pages.map((page) => ({ file: page.file, text: page.text.replace(/\s+/g, ' ') }));

/** Every number captured by `pattern`'s first group, across the pages, with where it was found. */
function statedNumbers(pattern: RegExp): { file: string; value: number }[] {
  return flat.flatMap(({ file, text }) =>
    [...text.matchAll(new RegExp(pattern, 'g'))].map((m) => ({ file, value: Number(m[1]) })),
  );
}

const catalog = readdirSync(DEFAULT_MODELS_DIR)
  .filter((name) => name.endsWith('.json'))
  .map((name) => name.slice(0, -'.json'.length))
  .sort();

describe('the facts the docs state', () => {
  let template: Template;

  beforeAll(() => {
    // The default template, as `cdk synth` makes it with no context (infra/app.ts), without bundling.
    const app = createServiceApp({
      outdir: tempDir('docs-facts-out'),
      context: { 'aws:cdk:bundling-stacks': [], 'aws:cdk:disable-asset-staging': true },
    });
    const stack = addServiceStack(app, { layerBuildDir: tempDir('docs-facts-layers') });
    template = Template.fromStack(stack);
  }, 120_000);

  it('count the example models as the catalog does, and list each of them', () => {
    const stated = statedNumbers(/\b(\d+) example models\b/);
    expect(stated.length).toBeGreaterThan(0);
    for (const { file, value } of stated) expect(value, file).toBe(catalog.length);
    const listed = tableRows(findSection('Example models').text, 'model').map((row) => row[0]?.replaceAll('`', ''));
    expect(listed.sort()).toEqual(catalog);
  });

  it('count the alarms of the default template, per catalog model and shared', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')).map((alarm) =>
      String((alarm as { Properties: { AlarmDescription: string } }).Properties.AlarmDescription),
    );
    const perModel = alarms.filter((description) => catalog.some((m) => description.startsWith(`infer-${m}:`)));
    const shared = alarms.length - perModel.length;

    const total = [...statedNumbers(/\b(\d+) alarms\b/), ...statedNumbers(/\bshared = (\d+)\b/)];
    expect(total.length).toBeGreaterThan(1);
    for (const { file, value } of total) expect(value, `${file}: the number of alarms`).toBe(alarms.length);
    for (const { file, value } of statedNumbers(/\b(\d+) per catalog model\b/))
      expect(value, `${file}: alarms per catalog model`).toBe(perModel.length / catalog.length);
    for (const { file, value } of statedNumbers(/per catalog model (?:\+|and) (\d+) shared/))
      expect(value, `${file}: shared alarms`).toBe(shared);
  });

  it('name the upload suffixes that start a registration: core, the template and the docs agree', () => {
    // The template: one bucket notification per suffix, each for keys under uploads/.
    const notifications = Object.values(template.findResources('Custom::S3BucketNotifications')).flatMap(
      (resource) =>
        (
          resource as {
            Properties: {
              NotificationConfiguration: {
                LambdaFunctionConfigurations: { Filter: { Key: { FilterRules: { Name: string; Value: string }[] } } }[];
              };
            };
          }
        ).Properties.NotificationConfiguration.LambdaFunctionConfigurations,
    );
    const suffixes = notifications.flatMap((n) =>
      n.Filter.Key.FilterRules.filter((rule) => rule.Name === 'suffix').map((rule) => rule.Value),
    );
    expect(suffixes.sort()).toEqual([...UPLOAD_SUFFIXES].sort());

    // The docs: every "ending in `.onnx` or `.zip`" names exactly those suffixes.
    const stated = flat.flatMap(({ file, text }) =>
      [...text.matchAll(/ending in ((?:`\.[a-z]+`(?:, | or )?)+)/g)].map((m) => ({
        file,
        suffixes: [...(m[1] ?? '').matchAll(/`([^`]+)`/g)].map((s) => s[1]),
      })),
    );
    expect(stated.length).toBeGreaterThan(1);
    for (const { file, suffixes: named } of stated) expect(named.sort(), file).toEqual([...UPLOAD_SUFFIXES].sort());
  });

  it("print the models CLI's usage as the CLI does", () => {
    expect(findSection('The `models` CLI').text).toContain(USAGE);
  });

  it('name every import rule that the boundary check enforces', () => {
    const section = findSection('Lint and format').text;
    for (const rule of [...FOLDER_RULES.map((r) => r.name), 'no-import-cycles'])
      expect(section, rule).toContain(`\`${rule}\``);
  });
});

describe('README.md and docs/', () => {
  it('keep the README at 300 lines or fewer', () => {
    const readme = pages.find((page) => page.file === 'README.md');
    expect(readme?.text.trimEnd().split('\n').length).toBeLessThanOrEqual(300);
  });

  it('give the messages of the code that cite a page and section a real one', () => {
    // A user reads "(docs/versions.md, \"External data\")" in an error: that page must have that section.
    const sources = readdirSync(join(DOCS_ROOT, 'functions'), { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
      .map((entry) => join(entry.parentPath, entry.name));
    const citations = sources.flatMap((source) =>
      [...readFileSync(source, 'utf8').matchAll(/(docs\/[a-z-]+\.md), "([^"]+)"/g)].map((m) => ({
        source,
        file: m[1] ?? '',
        heading: m[2] ?? '',
      })),
    );
    expect(citations.length).toBeGreaterThan(1);
    for (const { source, file, heading } of citations) {
      const page = pages.find((p) => p.file === file);
      const found = page === undefined ? [] : headingsOf(page).filter((h) => h.heading.startsWith(heading));
      expect(found.length, `${source} cites ${file}, "${heading}"`).toBe(1);
    }
  });

  it('link only to files that exist and headings that exist in them', () => {
    const anchors = new Map(pages.map((page) => [page.file, anchorsOf(page)]));
    const broken = pages.flatMap((page) =>
      relativeLinksOf(page).flatMap((link) => {
        const [file = '', anchor] = link.target.split('#');
        const target = file === '' ? page.file : normalize(join(dirname(page.file), file));
        const exists = existsSync(join(DOCS_ROOT, target));
        const headed = anchor === undefined || anchors.get(target)?.has(anchor) === true;
        return exists && headed ? [] : [`${link.file}:${link.line} ${link.target}`];
      }),
    );
    expect(broken).toEqual([]);
  });
});
