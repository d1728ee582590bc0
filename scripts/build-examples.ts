/**
 * Writes the example models and their catalog entries into `models/`: `npm run build:examples`.
 * The output is deterministic; `test/onnx/examples.test.ts` checks that the committed files equal a fresh build.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildExamples, catalogJson } from '../tools/onnx/examples.js';

const modelsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../models');
mkdirSync(modelsDir, { recursive: true });
for (const example of buildExamples()) {
  writeFileSync(path.join(modelsDir, `${example.name}.onnx`), example.bytes);
  writeFileSync(path.join(modelsDir, `${example.name}.json`), catalogJson(example));
  console.log(`models/${example.name}.onnx (${example.bytes.length} bytes), models/${example.name}.json`);
}
