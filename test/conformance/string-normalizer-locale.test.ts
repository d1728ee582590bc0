/**
 * StringNormalizer and the locale it changes case with. onnxruntime constructs `en_US.UTF-8` for it by default,
 * which AWS Lambda's Amazon Linux 2023 runtimes (and this CI machine) do not have; registration then serves the
 * model with C.UTF-8 (same Unicode case mappings in glibc) and refuses, with what to do, a node that asks for any
 * other missing locale.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsBlobStore } from '../../functions/adapters/fs-blob-store.js';
import { onnxruntimeSessionFactory } from '../../functions/adapters/onnxruntime-session.js';
import { DEFAULT_LIMITS } from '../../functions/core/catalog.js';
import { ModelRejectedError } from '../../functions/core/errors.js';
import { ModelRepository } from '../../functions/core/model-repository.js';
import { attr, ModelBuilder, type AttributeValue } from '../../tools/onnx/model-builder.js';
import { onnx } from '../../functions/core/onnx/proto.js';
import { rewriteForServing, STRING_NORMALIZER_FALLBACK_LOCALE } from '../../functions/core/onnx/rewrites.js';
import { registerUpload, type RegistrationOptions } from '../../functions/core/registration.js';
import type { SessionFactory } from '../../functions/core/session.js';

ort.env.logLevel = 'fatal';

/** One StringNormalizer per entry, each reading the input `x` and writing its own output. */
function stringNormalizerModel(nodes: readonly Readonly<Record<string, AttributeValue>>[]): Uint8Array {
  const builder = new ModelBuilder({ opsets: { '': 12 } }).input('x', 'BYTES', ['N']);
  nodes.forEach((attributes, i) => {
    builder.node('StringNormalizer', ['x'], [`y${i}`], attributes, { name: `norm${i}` });
  });
  nodes.forEach((_, i) => {
    builder.output(`y${i}`, 'BYTES', [-1]);
  });
  return builder.toBytes();
}

/** The attributes of every node, decoded, as `{name: value}`. */
function attributesOf(model: Uint8Array): Record<string, string>[] {
  const decoder = new TextDecoder();
  const text = (a: { strings?: Uint8Array[] | null; s?: Uint8Array | null; i?: unknown }): string => {
    if (a.strings && a.strings.length > 0) return a.strings.map((s) => decoder.decode(s)).join('|');
    return a.s && a.s.length > 0 ? decoder.decode(a.s) : String(a.i);
  };
  return (onnx.ModelProto.decode(model).graph?.node ?? []).map((node) =>
    Object.fromEntries((node.attribute ?? []).map((a) => [a.name ?? '', text(a)])),
  );
}

const UPPER = { case_change_action: attr.string('UPPER') };
const WORDS = ['Straße', 'école', 'ǆemal', 'monday'];

describe('rewriteForServing: stringNormalizerLocale', () => {
  it('gives case-changing nodes with the default locale the fallback, keeping their other attributes', () => {
    // Prepare
    const model = stringNormalizerModel([
      { case_change_action: attr.string('LOWER'), is_case_sensitive: attr.int(0), stopwords: attr.strings(['monday']) },
      { case_change_action: attr.string('UPPER'), locale: attr.string('en_US.UTF-8') },
      { case_change_action: attr.string('NONE') },
    ]);

    // Act
    const unchanged = rewriteForServing(model);
    const result = rewriteForServing(model, { stringNormalizerLocale: STRING_NORMALIZER_FALLBACK_LOCALE });

    // Assess
    expect(unchanged.model).toBe(model);
    expect(attributesOf(result.model)).toEqual([
      { case_change_action: 'LOWER', is_case_sensitive: '0', stopwords: 'monday', locale: 'C.UTF-8' },
      { case_change_action: 'UPPER', locale: 'C.UTF-8' },
      { case_change_action: 'NONE' },
    ]);
    expect(result.rewrites).toEqual([
      {
        kind: 'string-normalizer-locale',
        output: 'y0',
        detail: expect.stringContaining('instead of the default en_US.UTF-8'),
      },
      { kind: 'string-normalizer-locale', output: 'y1', detail: expect.stringContaining('instead of en_US.UTF-8') },
    ]);
  });

  it('refuses a node that asks for another locale, saying what to do', () => {
    // Prepare
    const model = stringNormalizerModel([{ ...UPPER, locale: attr.string('tr_TR.UTF-8') }]);

    // Act
    const run = () => rewriteForServing(model, { stringNormalizerLocale: STRING_NORMALIZER_FALLBACK_LOCALE });

    // Assess
    expect(run).toThrow(ModelRejectedError);
    expect(run).toThrow(
      /locale "tr_TR\.UTF-8".*set the node's "locale" attribute to C\.UTF-8.*case_change_action "NONE"/,
    );
  });
});

describe('registration of StringNormalizer models', () => {
  let dir: string;
  let options: RegistrationOptions;

  const register = async (model: Uint8Array, factory: SessionFactory = onnxruntimeSessionFactory) => {
    const key = 'uploads/text/model.onnx';
    await options.store.put(key, model);
    return registerUpload(key, { ...options, sessionFactory: factory });
  };

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'strnorm-'));
    const store = new FsBlobStore(dir);
    options = {
      store,
      repository: new ModelRepository(store),
      sessionFactory: onnxruntimeSessionFactory,
      sessionOptions: { intraOpNumThreads: 1, graphOptimizationLevel: 'all' },
      maxModelBytes: 1 << 20,
      limits: DEFAULT_LIMITS,
    };
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('serves the default locale as is where the runtime has it, else with C.UTF-8, and gets the case right', async () => {
    // Prepare
    const model = stringNormalizerModel([UPPER]);
    const hostHasEnUs = await ort.InferenceSession.create(model).then(
      async (session) => {
        await session.release();
        return true;
      },
      () => false,
    );

    // Act
    const outcome = await register(model);

    // Assess
    expect(outcome.kind).toBe('registered');
    const metadata = await options.repository.readMetadata('text', '1');
    expect(metadata.rewrites.map((r) => r.kind)).toEqual(hostHasEnUs ? [] : ['string-normalizer-locale']);
    const session = await ort.InferenceSession.create(await options.repository.readModelFile('text', '1'));
    const result = await session.run({ x: new ort.Tensor('string', WORDS, [WORDS.length]) });
    expect(result.y0!.data).toEqual(['STRAßE', 'ÉCOLE', 'ǄEMAL', 'MONDAY']);
    await session.release();
  });

  it('falls back to C.UTF-8 when onnxruntime cannot construct en_US.UTF-8 (fault injected), and records it', async () => {
    // Prepare: a runtime without en_US.UTF-8, whatever this host has: the first load fails as onnxruntime does.
    const loaded: Uint8Array[] = [];
    const withoutEnUs: SessionFactory = {
      create: async (model, sessionOptions) => {
        loaded.push(model);
        if (loaded.length === 1) {
          throw new ModelRejectedError(
            'onnxruntime cannot load the model: Exception during initialization: Failed to construct locale with ' +
              'name:en_US.UTF-8:locale::facet::_S_create_c_locale name not valid:Please, install necessary language-pack-XX',
          );
        }
        return onnxruntimeSessionFactory.create(model, sessionOptions);
      },
      // Registration validates from a scratch file: the same fault, whichever way the model arrives.
      createFromFile: async (file, sessionOptions) =>
        withoutEnUs.create(new Uint8Array(await readFile(file)), sessionOptions),
    };

    // Act
    const outcome = await register(stringNormalizerModel([UPPER]), withoutEnUs);

    // Assess
    expect(outcome.kind).toBe('registered');
    expect(loaded).toHaveLength(2);
    expect(attributesOf(loaded[1]!)).toEqual([{ case_change_action: 'UPPER', locale: 'C.UTF-8' }]);
    const metadata = await options.repository.readMetadata('text', '1');
    expect(metadata.rewrites).toEqual([expect.objectContaining({ kind: 'string-normalizer-locale', output: 'y0' })]);
    expect(await options.repository.readModelFile('text', '1')).toEqual(loaded[1]);
  });

  it("refuses a locale that no runtime has, with onnxruntime's reason and what to do", async () => {
    // Act
    const outcome = await register(stringNormalizerModel([{ ...UPPER, locale: attr.string('xx_XX.UTF-8') }]));

    // Assess
    expect(outcome).toMatchObject({ kind: 'rejected', model: 'text' });
    const reason = outcome.kind === 'rejected' ? outcome.reason : '';
    expect(reason).toContain('Failed to construct locale with name:xx_XX.UTF-8');
    expect(reason).toMatch(/locale "xx_XX\.UTF-8".*case_change_action "NONE"/);
    const rejections = await options.repository.listRejections('text');
    expect(rejections.map((r) => r.reason)).toEqual([reason]);
    expect(await options.repository.readManifest('text')).toBeUndefined();
  });

  it('refuses with what to do when even C.UTF-8 is missing (fault injected)', async () => {
    // Prepare
    const noLocales: SessionFactory = {
      create: async (model) => {
        const locale = attributesOf(model)[0]?.locale ?? 'en_US.UTF-8';
        throw new ModelRejectedError(
          `onnxruntime cannot load the model: Failed to construct locale with name:${locale}`,
        );
      },
      createFromFile: async (file, sessionOptions) =>
        noLocales.create(new Uint8Array(await readFile(file)), sessionOptions),
    };

    // Act
    const outcome = await register(stringNormalizerModel([UPPER]), noLocales);

    // Assess
    const reason = outcome.kind === 'rejected' ? outcome.reason : '';
    expect(reason).toContain('name:C.UTF-8');
    expect(reason).toContain('re-export the model with case_change_action "NONE"');
  });
});
