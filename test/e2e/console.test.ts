/**
 * The console page in a real browser: Debian's Chromium, driven by playwright-core, against `npm start`'s stack
 * (startLocal). It lists the models with their refused uploads, infers on `linear` through the form and on
 * `detector` by picking models/photo.jpg, and shows the answers the API gives to the same requests; its curl line
 * is the same request; a bad request shows the server's 400 and the next one succeeds. The page's headers (CSP,
 * compressed size) are checked on the wire. Screenshots go to test-artifacts/console/ (git-ignored).
 *
 * Without /usr/bin/chromium the browser tests are skipped with what to install, or fail under REQUIRE_CHROMIUM=1
 * (`.ci/run` sets it and installs the package).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocal, type LocalStack } from '../../functions/local/local-runtime.js';
import { loadCatalog } from '../../infra/catalog-loader.js';

const CHROMIUM = '/usr/bin/chromium';
/** The flags of issue 27: no sandbox (root in a container), no GPU, and nothing fetched from the network. */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const REQUIRE_CHROMIUM = process.env.REQUIRE_CHROMIUM === '1';
const hasChromium = existsSync(CHROMIUM);
const hasCurl = existsSync('/usr/bin/curl');
/** Where screenshots are saved (git-ignored). */
const ARTIFACTS = path.join('test-artifacts', 'console');
/** How long the page may take to show what a test waits for: generous, for a loaded machine (not a bound). */
const WAIT = { timeout: 30_000 };
/** The page's budget, compressed as it travels (docs/console.md). */
const PAGE_BUDGET_BYTES = 100 * 1024;

/** A canvas's size (the tests compile without the DOM's types). */
type Size = { width: number; height: number };

let stack: LocalStack;
let dataDir: string;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'console-'));
  stack = await startLocal({ port: 0, s3Port: 0, dataDir, catalogDir: 'models', silent: true });
  await stack.settled();
  // A refused upload, so that the page has a rejection and its reason to show.
  await stack.runtime.store.put('uploads/linear/broken.onnx', new TextEncoder().encode('not an onnx model'));
  await stack.settled();
  // A label, so that the page has one to show.
  await stack.runtime.repository.setPointer('iris', '1', 'stable');
});
afterAll(async () => {
  await stack?.close();
  await rm(dataDir, { recursive: true, force: true });
});

/** GET / as raw bytes, with the headers as sent (Node's fetch would decompress them away). */
function getRaw(acceptEncoding: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const request = http.get(`${stack.gatewayUrl}/`, { headers: { 'accept-encoding': acceptEncoding } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    request.on('error', reject);
  });
}

async function apiInfer(model: string, body: string | Uint8Array, headers: Record<string, string>) {
  const response = await fetch(`${stack.gatewayUrl}/v2/models/${model}/infer`, { method: 'POST', body, headers });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe('GET / (the console page)', () => {
  it('is HTML under a CSP that allows only its own hashed script and style and its own origin', async () => {
    const page = await getRaw('identity');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    const html = page.body.toString('utf8');
    const csp = String(page.headers['content-security-policy']);
    const directives = Object.fromEntries(
      csp.split(';').map((d) => {
        const [name, ...values] = d.trim().split(/\s+/);
        return [name, values];
      }),
    );
    const hash = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
    const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
    const styles = [...html.matchAll(/<style>([\s\S]*?)<\/style>/g)].map((m) => m[1]!);
    expect(scripts).toHaveLength(1);
    expect(styles).toHaveLength(1);
    expect(directives).toEqual({
      'default-src': ["'none'"],
      'script-src': [hash(scripts[0]!)],
      'style-src': [hash(styles[0]!)],
      'connect-src': ["'self'"],
      'base-uri': ["'none'"],
      'form-action': ["'none'"],
      'frame-ancestors': ["'none'"],
    });
    // No script from anywhere else, no inline handlers (a CSP with hashes would block them anyway).
    expect(html).not.toMatch(/<script[^>]*src=|\son[a-z]+=/i);
    expect(page.headers['x-content-type-options']).toBe('nosniff');
  });

  it(`travels gzip-compressed under ${PAGE_BUDGET_BYTES / 1024} KB`, async () => {
    const page = await getRaw('gzip');
    expect(page.headers['content-encoding']).toBe('gzip');
    expect(page.body.byteLength).toBeLessThan(PAGE_BUDGET_BYTES);
    const identity = await getRaw('identity');
    expect(gunzipSync(page.body).equals(identity.body)).toBe(true);
    console.info(`console page: ${identity.body.byteLength} bytes, ${page.body.byteLength} gzip-compressed`);
  });

  it('refuses other methods with 405, and the page is served again after', async () => {
    const post = await fetch(`${stack.gatewayUrl}/`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(((await post.json()) as { error: string }).error).toMatch(/use GET/);
    expect((await getRaw('identity')).status).toBe(200);
  });
});

// Each step waits on a real browser and real inference on a shared machine: room, not a bound.
describe.runIf(hasChromium || REQUIRE_CHROMIUM)('the console in headless Chromium', { timeout: 180_000 }, () => {
  let context: BrowserContext;
  let page: Page;
  let userDataDir: string;
  const requested: string[] = [];
  const problems: string[] = [];

  beforeAll(async () => {
    if (!hasChromium) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (REQUIRE_CHROMIUM=1 is set)`);
    await mkdir(ARTIFACTS, { recursive: true });
    userDataDir = await mkdtemp(path.join(os.tmpdir(), 'chromium-profile-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
      headless: true,
      viewport: { width: 1280, height: 1000 },
    });
    // Injected by the driver (not subject to the page's CSP): records any violation the page causes.
    await context.addInitScript({
      content:
        "document.addEventListener('securitypolicyviolation', (e) => " +
        "console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));",
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('request', (request) => requested.push(request.url()));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(`${stack.gatewayUrl}/`);
  }, 120_000);

  afterAll(async () => {
    await context?.close();
    if (userDataDir !== undefined) await rm(userDataDir, { recursive: true, force: true });
  });

  it('lists every model with its versions, state and labels, and refused uploads with their reasons', async () => {
    const index = (await (await fetch(`${stack.gatewayUrl}/v2/repository/index`, { method: 'POST' })).json()) as {
      name: string;
      version: string;
      state: string;
      reason: string;
    }[];
    for (const { name } of loadCatalog('models')) {
      const row = page.locator(`li[data-model="${name}"]`);
      await expect.poll(() => row.locator('.state').allTextContents(), { timeout: 30_000 }).toEqual(['v1 READY']);
    }
    await expect.poll(() => page.locator('li[data-model="iris"] .labels').textContent(), WAIT).toBe('stable=v1');
    const refused = index.find((r) => r.name === 'linear' && r.version === '');
    expect(refused?.reason).toBeTruthy();
    const rejections = page.locator('li[data-model="linear"] details.rejections');
    await rejections.locator('summary').click();
    expect(await rejections.locator('li').allTextContents()).toEqual([refused!.reason]);
    await page.screenshot({ path: path.join(ARTIFACTS, 'models.png'), fullPage: true });
  });

  it('infers on linear through the form and shows the API answer, its latency and the same request as curl', async () => {
    await page.locator('li[data-model="linear"] button.model').click();
    const input = page.locator('fieldset[data-input="x"]');
    // Prefilled with the model's OpenAPI example.
    const doc = (await (await fetch(`${stack.gatewayUrl}/v2/models/linear/openapi.json`)).json()) as {
      paths: Record<
        string,
        {
          post: {
            requestBody: {
              content: Record<string, { examples: { example: { value: { inputs: { data: unknown }[] } } } }>;
            };
          };
        }
      >;
    };
    const example =
      doc.paths['/v2/models/linear/infer']!.post.requestBody.content['application/json']!.examples.example;
    await expect
      .poll(() => input.locator('textarea').inputValue(), WAIT)
      .toBe(JSON.stringify(example.value.inputs[0]!.data));
    const metadata = (await page.locator('#metadata').textContent()) ?? '';
    expect(metadata).toContain('FP32');
    expect(metadata).not.toContain('null');

    await input.locator('input[name="shape"]').fill('2,4');
    await input.locator('textarea').fill('[[1, 2, 3, 4], [5, 6, 7, 8]]');
    await page.locator('#infer').click();
    await expect.poll(() => page.locator('#status').textContent(), { timeout: 30_000 }).toBe('HTTP 200');

    const sent = {
      inputs: [
        {
          name: 'x',
          datatype: 'FP32',
          shape: [2, 4],
          data: [
            [1, 2, 3, 4],
            [5, 6, 7, 8],
          ],
        },
      ],
    };
    const api = await apiInfer('linear', JSON.stringify(sent), { 'content-type': 'application/json' });
    expect(api.status).toBe(200);
    const shown = JSON.parse((await page.locator('#response-json').textContent()) ?? '');
    expect(shown).toEqual(api.body);
    const outputs = api.body.outputs as { name: string; data: number[] }[];
    expect(await page.locator('tr[data-output="y"] td.values').textContent()).toBe(JSON.stringify(outputs[0]!.data));
    expect(await page.locator('#latency').textContent()).toMatch(/^\d+\.\d ms$/);

    const curl = (await page.locator('#curl').textContent()) ?? '';
    expect(curl).toContain(`${stack.gatewayUrl}/v2/models/linear/infer`);
    // The copy button puts exactly that line on the clipboard.
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: stack.gatewayUrl });
    await page.locator('#copy').click();
    const readClipboard = 'globalThis.navigator.clipboard.readText()';
    await expect.poll(() => page.evaluate(readClipboard), WAIT).toBe(curl);
    if (hasCurl) {
      const { stdout } = await promisify(execFile)('sh', ['-c', curl]);
      expect(JSON.parse(stdout)).toEqual(api.body);
    }
    await page.screenshot({ path: path.join(ARTIFACTS, 'linear.png'), fullPage: true });
  });

  it("shows a bad request's 400 with the server's message, and the next request succeeds", async () => {
    const input = page.locator('fieldset[data-input="x"]');
    await input.locator('input[name="shape"]').fill('3,4');
    await input.locator('textarea').fill('[1, 2, 3, 4]');
    await page.locator('#infer').click();
    await expect.poll(() => page.locator('#status').textContent(), { timeout: 30_000 }).toBe('HTTP 400');
    const bad = { inputs: [{ name: 'x', datatype: 'FP32', shape: [3, 4], data: [1, 2, 3, 4] }] };
    const api = await apiInfer('linear', JSON.stringify(bad), { 'content-type': 'application/json' });
    expect(api.status).toBe(400);
    expect(await page.locator('#outputs .error').textContent()).toBe(api.body.error);

    await input.locator('textarea').fill('not json');
    await page.locator('#infer').click();
    await expect.poll(() => page.locator('#outputs .error').textContent(), WAIT).toMatch(/input x: data is not JSON/);
    expect(await page.locator('#status').textContent()).toBe('not sent');

    await input.locator('input[name="shape"]').fill('1,4');
    await input.locator('textarea').fill('[0.5, 0.5, 0.5, 0.5]');
    await page.locator('#infer').click();
    await expect.poll(() => page.locator('#status').textContent(), { timeout: 30_000 }).toBe('HTTP 200');
  });

  it('infers on detector from a picked photo: the answer, the letterbox placement and the boxes on the picture', async () => {
    await page.locator('li[data-model="detector"] button.model').click();
    const input = page.locator('fieldset[data-input="images"]');
    await input.locator('input[type="file"]').setInputFiles(path.join('models', 'photo.jpg'));
    await page.locator('#infer').click();
    await expect.poll(() => page.locator('#status').textContent(), { timeout: 60_000 }).toBe('HTTP 200');

    const photo = await readFile(path.join('models', 'photo.jpg'));
    const api = await apiInfer('detector', photo, { 'content-type': 'image/jpeg', accept: 'application/json' });
    expect(api.status).toBe(200);
    const shown = JSON.parse((await page.locator('#response-json').textContent()) ?? '');
    expect(shown).toEqual(api.body);
    const placement = (api.body.parameters as { image: Record<string, unknown> }).image;
    expect(placement).toMatchObject({ original_size: [720, 1280], scale: 0.5, pad: [140, 0], size: [640, 640] });
    expect(await page.locator('#letterbox').textContent()).toBe(
      `letterbox: original_size ${JSON.stringify(placement.original_size)}, scale ${JSON.stringify(placement.scale)}, ` +
        `pad ${JSON.stringify(placement.pad)}, size ${JSON.stringify(placement.size)}`,
    );
    const canvas = page.locator('#picture');
    await expect.poll(() => canvas.getAttribute('data-boxes'), { timeout: 30_000 }).toBe('10');
    // The boxes, recomputed here: YOLO's [1, 4 + classes, N] rows; detector's Sigmoid gives box values in 0..1 of
    // the 640 x 640 tensor; each maps back to the photo as (point - pad) / scale.
    const [output] = api.body.outputs as { shape: number[]; data: number[] }[];
    const [, rows, n] = output!.shape as [number, number, number];
    const d = output!.data;
    const expected = Array.from({ length: n }, (_, i) => {
      const scores = Array.from({ length: rows - 4 }, (_, c) => d[(c + 4) * n + i]!);
      const score = Math.max(...scores);
      const [cx, cy, w, h] = [0, 1, 2, 3].map((row) => d[row * n + i]! * 640) as [number, number, number, number];
      return {
        score,
        text:
          `class ${scores.indexOf(score)} score ${score.toFixed(3)} at x ${((cx - w / 2 - 0) / 0.5).toFixed(1)}, ` +
          `y ${((cy - h / 2 - 140) / 0.5).toFixed(1)}, ${(w / 0.5).toFixed(1)} x ${(h / 0.5).toFixed(1)} px of the picture`,
      };
    });
    expected.sort((a, b) => b.score - a.score);
    expect(await page.locator('#detections li').allTextContents()).toEqual(expected.slice(0, 10).map((e) => e.text));
    const size = await canvas.evaluate((c) => [(c as unknown as Size).width, (c as unknown as Size).height]);
    expect(size).toEqual([1280, 720]);
    expect(await page.locator('#curl').textContent()).toContain("-H 'Content-Type: image/jpeg'");
    await page.screenshot({ path: path.join(ARTIFACTS, 'detector.png'), fullPage: true });
  });

  it('takes a dropped picture as it takes a picked one', async () => {
    const photo = await readFile(path.join('models', 'photo.jpg'));
    const drop = page.locator('fieldset[data-input="images"] .drop');
    // What a drag from the file manager hands the page: a DataTransfer holding the file.
    const dataTransfer = await page.evaluateHandle((base64) => {
      const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      // Browser globals, typed here by hand: the tests compile without the DOM's types.
      const browser = globalThis as unknown as { DataTransfer: new () => { items: { add(file: File): void } } };
      const transfer = new browser.DataTransfer();
      transfer.items.add(new File([bytes], 'dropped.jpg', { type: 'image/jpeg' }));
      return transfer;
    }, photo.toString('base64'));
    await drop.dispatchEvent('drop', { dataTransfer });
    await expect.poll(() => drop.textContent(), WAIT).toContain(`dropped.jpg (${photo.byteLength} bytes)`);
    await page.locator('#infer').click();
    await expect.poll(() => page.locator('#status').textContent(), { timeout: 60_000 }).toBe('HTTP 200');
    const api = await apiInfer('detector', photo, { 'content-type': 'image/jpeg', accept: 'application/json' });
    expect(JSON.parse((await page.locator('#response-json').textContent()) ?? '')).toEqual(api.body);
    expect(await page.locator('#curl').textContent()).toContain("--data-binary @'dropped.jpg'");
  });

  it('talked only to its own origin, with no CSP violation or script error', () => {
    expect(requested.length).toBeGreaterThan(0);
    expect(requested.filter((url) => !url.startsWith(`${stack.gatewayUrl}/`))).toEqual([]);
    // A 400 shown on purpose is logged by Chromium as a failed resource load; nothing else may be.
    expect(problems.filter((p) => !/status of 400/.test(p))).toEqual([]);
  });
});

it.runIf(!hasChromium && !REQUIRE_CHROMIUM)(
  'needs Chromium for the browser tests (apt-get install chromium; REQUIRE_CHROMIUM=1 in CI)',
  () => {
    expect(hasChromium).toBe(false);
  },
);
