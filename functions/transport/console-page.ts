/**
 * The console page served at `/` by the control function (docs/console.md): one HTML document whose script and
 * style are inline and allowed by their hashes alone. Its Content-Security-Policy lets it talk to nothing but its
 * own origin (the API's routes): no other host, no frames, no form posts, no plugins, so nothing of the bucket is
 * reachable from it whatever the page is made to do.
 */
import { createHash } from 'node:crypto';
import { compressResponse } from './compression.js';
import type { HttpResponse } from './http.js';
import { CONSOLE_SCRIPT_LINES } from './console-script.js';

/** The page's style sheet (inline, allowed by its hash). Pure arrays: bundles that never serve the page drop them. */
const STYLE_LINES = [
  `body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d1d1f;background:#f5f5f7}`,
  `header{display:flex;gap:1em;align-items:center;padding:.6em 1em;background:#1d1d1f;color:#fff}`,
  `header h1{font-size:1.1em;margin:0}header input{margin-left:auto}`,
  `main{display:grid;grid-template-columns:minmax(16em,1fr) 3fr;gap:1em;padding:1em}`,
  `section{background:#fff;border-radius:8px;padding:.8em 1em;overflow:auto}`,
  `ul#models{list-style:none;padding:0;margin:0}ul#models>li{padding:.4em 0;border-bottom:1px solid #eee}`,
  `button.model{font-weight:600;border:0;background:none;color:#0a60d0;cursor:pointer;padding:0}`,
  `.state{font-size:.8em;margin-left:.4em;padding:0 .3em;border-radius:4px;background:#e3f5e1}`,
  `.state.UNAVAILABLE{background:#fde2e1}.labels{font-size:.8em;margin-left:.4em;color:#6e6e73}`,
  `.rejections,.small{font-size:.85em;color:#6e6e73}.error{color:#c00;white-space:pre-wrap}`,
  `table{border-collapse:collapse}td,th{text-align:left;padding:.15em .6em .15em 0;vertical-align:top}`,
  `td.values{font-family:ui-monospace,monospace;word-break:break-all}`,
  `fieldset{border:1px solid #ddd;border-radius:6px;margin:.5em 0}.block{display:block}`,
  `textarea{width:100%;box-sizing:border-box;font-family:ui-monospace,monospace}`,
  `.drop{border:2px dashed #bbb;border-radius:6px;padding:1em;margin-top:.5em}.drop.over{border-color:#0a60d0}`,
  `pre{white-space:pre-wrap;word-break:break-all;max-height:20em;overflow:auto;background:#f5f5f7;padding:.5em}`,
  `canvas{max-width:100%;margin-top:.5em}`,
];

/**
 * The page around its style and script, as lines: a multi-line literal would keep its newlines in the minified
 * bundle.
 */
const HEAD_LINES = [
  `<!doctype html>`,
  `<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">`,
  `<title>onnx-serverless console</title><style>`,
  `</style></head>`,
  `<body>`,
  `<header><h1>onnx-serverless console</h1><span id="server"></span>`,
  `<input id="api-key" type="password" placeholder="API key (deployed)" autocomplete="off" aria-label="API key"></header>`,
  `<main>`,
  `<section><h2>Models <button id="refresh" type="button">refresh</button></h2><ul id="models"></ul></section>`,
  `<section id="hint"><p>Pick a model to see its metadata and send it a request.</p></section>`,
  `<section id="detail" hidden>`,
  `<h2 id="model-name"></h2><p><a id="openapi-link">OpenAPI document</a></p>`,
  `<div id="metadata"></div>`,
  `<h3>Request</h3><form id="inputs"></form>`,
  `<button id="infer" type="button">Infer</button>`,
  `<div id="result" hidden>`,
  `<h3>Answer <span id="status"></span> in <span id="latency"></span></h3>`,
  `<div id="outputs"></div><p id="letterbox"></p><canvas id="picture" hidden></canvas><ol id="detections"></ol>`,
  `<h3>Same request with curl <button id="copy" type="button">copy</button></h3><pre id="curl"></pre>`,
  `<details><summary>Response JSON</summary><pre id="response-json"></pre></details>`,
  `</div>`,
  `</section>`,
  `</main>`,
];

/** The page and its policy, made on first use. */
let built: { readonly html: string; readonly csp: string } | undefined;

/**
 * The page: its head up to `<style>`, the style, the rest of the head and the body, then the script; the policy
 * allows exactly that style and that script by their hashes.
 */
function build(): { readonly html: string; readonly csp: string } {
  const style = STYLE_LINES.join('\n');
  const script = CONSOLE_SCRIPT_LINES.join('\n');
  const split = HEAD_LINES.indexOf('</style></head>');
  const head = `${HEAD_LINES.slice(0, split).join('\n')}${style}${HEAD_LINES.slice(split).join('\n')}`;
  const html = `${head}\n<script>${script}</script>\n</body></html>\n`;
  return { html, csp: consoleCsp(style, script) };
}

function sha256(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

/**
 * The page's policy: its own inline script and style by hash, API calls to its own origin only, nothing else
 * (images are drawn from the picked file with `createImageBitmap`, which loads nothing).
 */
function consoleCsp(style: string, script: string): string {
  return [
    "default-src 'none'",
    `script-src ${sha256(script)}`,
    `style-src ${sha256(style)}`,
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** Responses under this size are sent uncompressed (the page is always larger). */
const MIN_COMPRESS_BYTES = 1024;

/** The console page, compressed as `Accept-Encoding` allows, with its Content-Security-Policy. */
export function consolePage(acceptEncoding: string | undefined): Promise<HttpResponse> {
  built ??= build();
  return compressResponse(
    {
      statusCode: 200,
      headers: {
        'content-type': 'text/html; charset=utf-8',
        'content-security-policy': built.csp,
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
        'cache-control': 'no-store',
      },
      body: built.html,
    },
    acceptEncoding,
    MIN_COMPRESS_BYTES,
  );
}
