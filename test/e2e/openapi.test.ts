/**
 * The OpenAPI documents, through `npm start`'s stack: both are valid OpenAPI 3.1 (an independent validator from the
 * npm registry), the deployment's document lists exactly the route table and the server answers every path it
 * lists, and each example model's document gives an example request that the model answers with 200, in the
 * documented response schema.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import Ajv2020 from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_ROUTES } from '../../functions/core/api-routes.js';
import { startLocal, type LocalStack } from '../../functions/local/local-runtime.js';
import { loadCatalog } from '../../infra/catalog-loader.js';

let stack: LocalStack;
let dataDir: string;
const catalog = loadCatalog('models').map((entry) => entry.name);

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'openapi-'));
  stack = await startLocal({ port: 0, s3Port: 0, dataDir, catalogDir: 'models', silent: true });
  await stack.settled();
});
afterAll(async () => {
  await stack?.close();
  await rm(dataDir, { recursive: true, force: true });
});

type Document = {
  openapi: string;
  servers: { url: string }[];
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown> };
};
type Operation = {
  requestBody?: { content: Record<string, { schema: unknown; examples?: { example: { value: unknown } } }> };
  responses: Record<string, { content?: Record<string, { schema: unknown }> }>;
};

async function getJson(route: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${stack.gatewayUrl}${route}`);
  return { status: response.status, body: await response.json() };
}

async function expectValidOpenApi(document: unknown): Promise<void> {
  const result = await new Validator().validate(document as Record<string, unknown>);
  expect(result.errors ?? [], JSON.stringify(result.errors)).toEqual([]);
  expect(result.valid).toBe(true);
}

/** A validator of `schema` (a `$ref` into `document`), JSON Schema 2020-12 as OpenAPI 3.1 uses it. */
function schemaValidator(document: Document, schema: unknown) {
  const ajv = new Ajv2020.default({ strict: false, allErrors: true });
  ajv.addSchema({ $id: 'doc', components: document.components }, 'doc');
  const rewritten = JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"doc#/components/'));
  return ajv.compile(rewritten);
}

describe('GET /v2/openapi.json', () => {
  let document: Document;
  beforeAll(async () => {
    const { status, body } = await getJson('/v2/openapi.json');
    expect(status).toBe(200);
    document = body as Document;
  });

  it('is valid OpenAPI 3.1', async () => {
    expect(document.openapi).toBe('3.1.0');
    await expectValidOpenApi(document);
  });

  it('lists exactly the route table, and the server answers every path it lists', async () => {
    const listed = Object.entries(document.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`));
    expect(listed.sort()).toEqual(API_ROUTES.map((r) => `${r.method.toLowerCase()} ${r.path}`).sort());
    const unanswered: string[] = [];
    for (const entry of listed) {
      const [method, template] = entry.split(' ') as [string, string];
      const concrete = template.replace('{model}', 'linear').replace('{version}', '1');
      const response = await fetch(`${stack.gatewayUrl}${concrete}`, {
        method: method.toUpperCase(),
        ...(method === 'post' ? { body: '{}', headers: { 'content-type': 'application/json' } } : {}),
      });
      const text = await response.text();
      // A documented route may refuse this body (400), never be missing (404 "no route") or the wrong method (405).
      if (response.status === 405 || (response.status === 404 && text.includes('no route')))
        unanswered.push(`${entry}: ${response.status} ${text}`);
      const documented = Object.keys(document.paths[template]![method]!.responses);
      expect(documented, `${entry} answered ${response.status}`).toContain(String(response.status));
    }
    expect(unanswered).toEqual([]);
  });
});

describe('GET /v2/models/<m>/openapi.json', () => {
  it.each(catalog)('%s: valid OpenAPI 3.1 whose example request the model answers, as documented', async (model) => {
    const { status, body } = await getJson(`/v2/models/${model}/openapi.json`);
    expect(status, JSON.stringify(body)).toBe(200);
    const document = body as Document;
    await expectValidOpenApi(document);
    const metadata = (await getJson(`/v2/models/${model}`)).body as {
      inputs: { name: string }[];
      outputs: { name: string; datatype: string }[];
      parameters: { preprocess?: { images: Record<string, unknown> } };
    };

    const infer = document.paths[`/v2/models/${model}/infer`]!.post!;
    const json = infer.requestBody!.content['application/json']!;
    const example = json.examples!.example.value as { inputs: { name: string }[] };
    expect(example.inputs.map((i) => i.name)).toEqual(metadata.inputs.map((i) => i.name));
    const requestSchema = schemaValidator(document, json.schema);
    expect(requestSchema(example), JSON.stringify(requestSchema.errors)).toBe(true);
    // The schema is the model's own: a request naming an input it does not have is not valid.
    expect(requestSchema({ inputs: [{ name: 'no-such-input', datatype: 'FP32', shape: [1], data: [0] }] })).toBe(false);

    const response = await fetch(`${stack.gatewayUrl}/v2/models/${model}/infer`, {
      method: 'POST',
      body: JSON.stringify(example),
      headers: { 'content-type': 'application/json' },
    });
    const answer = (await response.json()) as { outputs: { name: string; datatype: string }[] };
    expect(response.status, JSON.stringify(answer)).toBe(200);
    const responseSchema = schemaValidator(document, infer.responses['200']!.content!['application/json']!.schema);
    expect(responseSchema(answer), JSON.stringify(responseSchema.errors)).toBe(true);
    expect(answer.outputs.map((o) => [o.name, o.datatype]).sort()).toEqual(
      metadata.outputs.map((o) => [o.name, o.datatype]).sort(),
    );

    // Declared image preprocessing is in the document, on the input it applies to.
    const declared = metadata.parameters.preprocess?.images ?? {};
    const documented = JSON.stringify(document.components.schemas[`${model}_request`]);
    expect(documented.includes('x-image-preprocess')).toBe(Object.keys(declared).length > 0);
    for (const [input, spec] of Object.entries(declared)) {
      expect(documented).toContain(JSON.stringify({ 'x-image-preprocess': spec }).slice(1, -1));
      expect(example.inputs.find((i) => i.name === input)).toMatchObject({ datatype: 'BYTES', shape: [1] });
    }
  });

  it('describes a version asked for, with that version in its paths', async () => {
    const { status, body } = await getJson('/v2/models/linear/versions/1/openapi.json');
    expect(status).toBe(200);
    const document = body as Document;
    await expectValidOpenApi(document);
    expect(Object.keys(document.paths)).toContain('/v2/models/linear/versions/1/infer');
    expect(document.servers[0]!.url).toBe('../../../../..');
  });

  it('answers an unknown model with a 404 saying so, and the next request succeeds', async () => {
    const missing = await getJson('/v2/models/no-such-model/openapi.json');
    expect(missing.status).toBe(404);
    expect((missing.body as { error: string }).error).toMatch(/no-such-model/);
    expect((await getJson('/v2/models/linear/openapi.json')).status).toBe(200);
  });
});
