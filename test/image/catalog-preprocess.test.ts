/**
 * Image preprocessing declared in the catalog entry (`models/<m>.json` `preprocess`), as `register` receives it
 * (`CATALOG_PREPROCESS`): the real `register` handler applies it to uploads without a sidecar, checks it against the
 * model, refuses a sidecar that contradicts it, and the version serves image bodies. (Through `npm start`'s catalog
 * and the synthesized bundle: test/e2e/local-gateway.test.ts and test/infra/artifact.test.ts, with the detector.)
 */
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { catalogPreprocessJson, parseCatalogEntry } from '../../functions/core/catalog.js';
import { readConfig } from '../../functions/wiring/config.js';
import { identityModel, startHardened, type HardenedStack } from '../hardening/fixture.js';

const LETTERBOX = { images: { input: { size: [64, 64], pad: 0 } } };

let stack: HardenedStack;

beforeAll(async () => {
  const catalog = [
    parseCatalogEntry('cat-img', { preprocess: LETTERBOX }),
    parseCatalogEntry('cat-unfit', { preprocess: { images: { input: { size: [32, 32] } } } }),
    parseCatalogEntry('no-decl', {}),
  ];
  stack = await startHardened({ CATALOG_PREPROCESS: catalogPreprocessJson(catalog)! });
});

afterAll(async () => {
  await stack?.close();
});

describe('preprocess in the catalog entry', () => {
  it('applies to an upload without a sidecar: stored, shown, and the version takes an image body', async () => {
    const outcome = await stack.register('cat-img', 'a.onnx', identityModel('FP32', [1, 3, 64, 64]));
    expect(outcome).toMatchObject({ kind: 'registered', version: '1' });
    const metadata = JSON.parse((await stack.send({ method: 'GET', path: '/v2/models/cat-img' })).text);
    expect(metadata.parameters.preprocess.images.input).toMatchObject({ size: [64, 64], pad: 0, resize: 'letterbox' });
    const png = await sharp({ create: { width: 16, height: 8, channels: 3, background: { r: 51, g: 102, b: 255 } } })
      .png()
      .toBuffer();
    const answer = await stack.send({
      method: 'POST',
      path: '/v2/models/cat-img/infer',
      headers: { 'content-type': 'image/png', accept: 'application/json' },
      body: png,
    });
    expect(answer.status, answer.text.slice(0, 300)).toBe(200);
    const body = JSON.parse(answer.text);
    expect(body.parameters.image).toEqual({ original_size: [8, 16], scale: 1, pad: [28, 24], size: [64, 64] });
    expect(body.outputs[0].data[28 * 64 + 24]).toBe(Math.fround(51 / 255));
  });

  it('a sidecar that repeats it (in any key order) is accepted; one that differs is refused, naming both', async () => {
    const same = { preprocess: { images: { input: { pad: 0, size: [64, 64], resize: 'letterbox' } } } };
    const model = identityModel('FP32', [1, 3, 64, 64]);
    expect(await stack.register('cat-img', 'b.onnx', new Uint8Array([...model, 0x12, 0x00]), same)).toMatchObject({
      kind: 'registered',
    });
    const other = { preprocess: { images: { input: { size: [64, 64], pad: 114 } } } };
    const refused = await stack.register('cat-img', 'c.onnx', new Uint8Array([...model, 0x12, 0x01, 0x20]), other);
    expect(refused.kind).toBe('rejected');
    expect(refused.kind === 'rejected' && refused.reason).toMatch(
      /^the sidecar uploads\/cat-img\/c\.onnx\.json declares image preprocessing that differs from the catalog entry models\/cat-img\.json, which applies to every version of "cat-img": remove "preprocess" from the sidecar/,
    );
  });

  it('a catalog declaration that does not fit the uploaded model refuses the upload, saying where it comes from', async () => {
    const outcome = await stack.register('cat-unfit', 'a.onnx', identityModel('FP32', [1, 3, 64, 64]));
    expect(outcome.kind).toBe('rejected');
    expect(outcome.kind === 'rejected' && outcome.reason).toMatch(
      /^the catalog entry models\/cat-unfit\.json's image preprocessing does not fit the model: preprocess\.images\.input: size \[32, 32\]/,
    );
  });

  it('other models are untouched: their sidecar declares as before', async () => {
    const outcome = await stack.register('no-decl', 'a.onnx', identityModel('FP32', [1, 3, 64, 64]), {
      preprocess: { images: { input: { size: [64, 64] } } },
    });
    expect(outcome).toMatchObject({ kind: 'registered' });
  });

  it('a CATALOG_PREPROCESS the function cannot read stops it at init, naming the variable', () => {
    expect(() => readConfig({ CATALOG_PREPROCESS: '{"m": {"images": {"x": {"size": "big"}}}}' })).toThrow(
      /CATALOG_PREPROCESS is invalid: .*m\.images\.x\.size/,
    );
    expect(() => readConfig({ CATALOG_PREPROCESS: '{"a/b": {"images": {"x": {"size": [1, 1]}}}}' })).toThrow(
      /"a\/b" is not a valid model name/,
    );
  });
});
