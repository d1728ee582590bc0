/**
 * Descriptions drawn from all of Unicode (emoji, CJK, right-to-left text, control characters, lone surrogates, up to
 * 10,000 characters) fit every service they reach: first `fitDescription` alone over thousands of cases, then whole
 * stacks synthesized (with CDK's strict CloudFormation validation) from catalogs holding such descriptions, every
 * description of the template checked against the limits AWS documents, written out here independently.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCatalogEntry } from '../../functions/core/catalog.js';
import { DESCRIPTION_RULES, fitDescription } from '../../infra/descriptions.js';
import { removeTempDirs, resources, synthesize, tempDir } from './fixture.js';

afterAll(removeTempDirs);

/** IAM's description pattern, as IAM's API reference and the CloudFormation schema of AWS::IAM::Role give it. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: IAM's pattern verbatim; it allows tab, LF and CR
const IAM_PATTERN = /^[\u0009\u000A\u000D\u0020-\u007E\u00A1-\u00FF]*$/;
/** EC2's GroupDescription pattern (AWS::EC2::SecurityGroup). */
const SECURITY_GROUP_PATTERN = /^([a-z,A-Z,0-9,. _\-:/()#,@[\]+=&;{}!$*])*$/;

/** What AWS accepts per resource type and description field: at most `max` characters (bytes for `bytes`). */
const AWS_LIMITS: Record<string, { field: string; max: number; pattern?: RegExp; bytes?: boolean }> = {
  'AWS::IAM::Role': { field: 'Description', max: 1000, pattern: IAM_PATTERN },
  'AWS::Lambda::Function': { field: 'Description', max: 256 },
  'AWS::Lambda::Version': { field: 'Description', max: 256 },
  'AWS::Lambda::Alias': { field: 'Description', max: 256 },
  'AWS::Lambda::LayerVersion': { field: 'Description', max: 256 },
  'AWS::CloudWatch::Alarm': { field: 'AlarmDescription', max: 1024 },
  'AWS::Events::Rule': { field: 'Description', max: 512 },
  'AWS::EC2::SecurityGroup': { field: 'GroupDescription', max: 255, pattern: SECURITY_GROUP_PATTERN },
  'AWS::SNS::Topic': { field: 'DisplayName', max: 100 },
  // API Gateway documents no limit on these; they hold only our own text and the stack name.
  'AWS::ApiGateway::RestApi': { field: 'Description', max: Number.POSITIVE_INFINITY },
  'AWS::ApiGateway::ApiKey': { field: 'Description', max: Number.POSITIVE_INFINITY },
  'AWS::ApiGateway::UsagePlan': { field: 'Description', max: Number.POSITIVE_INFINITY },
  'AWS::ApiGateway::Deployment': { field: 'Description', max: Number.POSITIVE_INFINITY },
};

const surrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code));
const special = fc.constantFrom(
  '🚀',
  '👩‍👩‍👧',
  '图像分类',
  'שלום',
  'مرحبا',
  '\u202e',
  '\u200b',
  '\u0000',
  '\u0007',
  '\u007f',
  '\t',
  '\r\n',
  '…',
  '—',
  'é',
  'e\u0301',
  'ﬁ',
  'Ａ',
  ' ',
);
/** Catalog descriptions: any code points, the awkward ones often, and sometimes 10,000 characters. */
const description = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 400 }),
  fc.string({ unit: fc.oneof(special, surrogate, fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })) }),
  fc.string({ unit: 'binary', minLength: 10_000, maxLength: 10_000 }),
  fc.string({ unit: fc.oneof(special, fc.constantFrom('a', 'b', ' ')), minLength: 1000, maxLength: 10_000 }),
);

describe('fitDescription', () => {
  it('fits every rule, whatever the text, and is stable', () => {
    fc.assert(
      fc.property(description, fc.constantFrom(...Object.values(DESCRIPTION_RULES)), (text, rule) => {
        const fitted = fitDescription(text, rule);
        expect(Buffer.byteLength(fitted, 'utf8')).toBeLessThanOrEqual(rule.maxBytes);
        expect([...fitted].every((c) => rule.allowed.test(c))).toBe(true);
        expect(fitted).toMatch(rule === DESCRIPTION_RULES.securityGroup ? SECURITY_GROUP_PATTERN : IAM_PATTERN);
        expect(fitDescription(fitted, rule)).toBe(fitted);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps printable text as it is, and says where it cut', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary-ascii', maxLength: 300 }), (raw) => {
        const text = raw.replace(/[^\x21-\x7e]+/g, ' ').trim();
        const fitted = fitDescription(text, DESCRIPTION_RULES.iamRole);
        expect(fitted).toBe(text);
      }),
    );
    expect(fitDescription(`${'a'.repeat(300)}`, DESCRIPTION_RULES.lambda)).toBe(`${'a'.repeat(253)}...`);
    expect(fitDescription('cut here… 图像 🚀 café', DESCRIPTION_RULES.iamRole)).toBe('cut here... ? ? café');
    expect(fitDescription('two\n\tlines', DESCRIPTION_RULES.iamRole)).toBe('two lines');
  });
});

describe('synthesized descriptions', () => {
  // One layer build for every run: building it is most of a synth.
  const layerBuildDir = tempDir('description-layers');

  it('fit their service for catalog descriptions drawn from all of Unicode', () => {
    fc.assert(
      fc.property(fc.array(description, { minLength: 2, maxLength: 3 }), (texts) => {
        // Prepare: one catalog model per description.
        const models = texts.map((text, i) => parseCatalogEntry(`m${i}`, { description: text, warmer: false }));

        // Act: synthesized with the app's strict validation (a finding throws).
        const { template } = synthesize({ models, layerBuildDir }, { bundling: false, id: 'Descriptions' });

        // Assess: every description field of every resource, output and the template itself.
        const json = template.toJSON() as {
          Description?: string;
          Outputs?: Record<string, { Description?: string }>;
        };
        for (const [id, resource] of Object.entries(resources(template))) {
          const limit = AWS_LIMITS[resource.Type];
          const value = resource.Properties?.[limit?.field ?? 'Description'];
          if (value === undefined) continue;
          expect(limit, `${resource.Type} has a description with no known limit`).toBeDefined();
          expect(typeof value, `${id}: a literal description`).toBe('string');
          const text = value as string;
          expect(text.length, `${id} ${limit!.field}`).toBeLessThanOrEqual(limit!.max);
          if (limit!.pattern !== undefined) expect(text, `${id} ${limit!.field}`).toMatch(limit!.pattern);
        }
        for (const text of [json.Description, ...Object.values(json.Outputs ?? {}).map((o) => o.Description)]) {
          if (text !== undefined) expect(Buffer.byteLength(text, 'utf8')).toBeLessThanOrEqual(1024);
        }
        // Each model's own text reached its role and its function, fitted.
        const all = Object.values(resources(template));
        for (const [i, text] of texts.entries()) {
          const start = fitDescription(text, DESCRIPTION_RULES.iamRole).slice(0, 10);
          for (const type of ['AWS::IAM::Role', 'AWS::Lambda::Function']) {
            const own = all.find(
              (r) => r.Type === type && String(r.Properties?.['Description']).includes(`infer-m${i} (onnx-serverless)`),
            );
            expect(String(own?.Properties?.['Description']), `${type} of m${i}`).toContain(start);
          }
        }
      }),
      // A failing case is not shrunk: every step would be another synth.
      { numRuns: 3, endOnFailure: true },
    );
  }, 600_000);
});
