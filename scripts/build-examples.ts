/**
 * Writes the example models and their catalog entries into `models/`: `npm run build:examples`.
 * The output is deterministic; `test/onnx/examples.test.ts` checks that the committed files equal a fresh build.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { buildExamples, catalogJson, examplePhotoPixels, sidecarJson } from '../tools/onnx/examples.js';

const modelsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../models');
mkdirSync(modelsDir, { recursive: true });
for (const example of buildExamples()) {
  writeFileSync(path.join(modelsDir, `${example.name}.onnx`), example.bytes);
  writeFileSync(path.join(modelsDir, `${example.name}.json`), catalogJson(example));
  const sidecar = sidecarJson(example);
  if (sidecar !== undefined) writeFileSync(path.join(modelsDir, `${example.name}.onnx.json`), sidecar);
  console.log(`models/${example.name}.onnx (${example.bytes.length} bytes), models/${example.name}.json`);
}
// The README's image example: drawn by code, encoded by libvips (the bytes may differ between libjpeg versions).
const photo = examplePhotoPixels();
const jpeg = await sharp(Buffer.from(photo.data), { raw: { width: photo.width, height: photo.height, channels: 3 } })
  .jpeg({ quality: 85 })
  .toBuffer();
writeFileSync(path.join(modelsDir, 'photo.jpg'), jpeg);
console.log(`models/photo.jpg (${jpeg.length} bytes)`);
