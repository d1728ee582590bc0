/**
 * Whether a declared image preprocessing fits the model inputs it names, checked at registration. Apart from
 * `spec.ts` because it reads the model's {@link TensorSpec}s, and `types.ts` (which declares them) imports the
 * schema's type from `spec.ts`: kept together they were an import cycle.
 */
import type { TensorSpec } from '../types.js';
import { imageAxes, type Preprocess } from './spec.js';

/** Input datatypes an image can be turned into. */
export const IMAGE_DATATYPES = ['FP32', 'FP16', 'UINT8'] as const;

/**
 * Checks that each declaration fits the model input it names (datatype, rank, channels, batch, fixed or dynamic
 * height and width). Returns the reasons it does not, empty when it fits.
 */
export function checkImagePreprocess(preprocess: Preprocess, inputs: readonly TensorSpec[]): string[] {
  const problems: string[] = [];
  for (const [name, spec] of Object.entries(preprocess.images)) {
    const input = inputs.find((i) => i.name === name);
    const where = `preprocess.images.${name}`;
    if (input === undefined) {
      problems.push(
        `${where}: the model has no input "${name}" (inputs: ${inputs.map((i) => `"${i.name}"`).join(', ')})`,
      );
      continue;
    }
    const declared = `"${name}" ${input.datatype} [${input.shape.join(', ')}]`;
    if (!(IMAGE_DATATYPES as readonly string[]).includes(input.datatype)) {
      problems.push(`${where}: input ${declared} is not FP32, FP16 or UINT8, so it cannot take an image`);
      continue;
    }
    if (input.shape.length !== 4) {
      problems.push(`${where}: input ${declared} is not rank 4 (${spec.layout}), so it cannot take an image`);
      continue;
    }
    const axes = imageAxes(spec.layout);
    const channels = input.shape[axes.c];
    if (channels !== 3 && channels !== -1) {
      problems.push(
        `${where}: input ${declared} has ${channels} channels at the ${spec.layout} channel axis; images have 3 (check "layout")`,
      );
    }
    const batch = input.shape[0];
    if (batch !== 1 && batch !== -1)
      problems.push(`${where}: input ${declared} has batch ${batch}; one image makes batch 1`);
    const h = input.shape[axes.h] ?? -1;
    const w = input.shape[axes.w] ?? -1;
    if (Array.isArray(spec.size)) {
      const [sh, sw] = spec.size;
      if ((h !== -1 && h !== sh) || (w !== -1 && w !== sw)) {
        problems.push(`${where}: size [${sh}, ${sw}] (height, width) does not fit input ${declared} (${spec.layout})`);
      }
    } else if (h !== -1 || w !== -1) {
      problems.push(
        `${where}: keep-ratio sizing ("multiple_of") needs dynamic height and width, but input ${declared} fixes them: declare "size": [${h}, ${w}]`,
      );
    }
    if (
      input.datatype === 'UINT8' &&
      (spec.scale !== 1 || spec.mean.some((m) => m !== 0) || spec.std.some((s) => s !== 1))
    ) {
      problems.push(
        `${where}: input ${declared} is UINT8, which holds raw pixels: set "scale": 1, "mean": [0, 0, 0], "std": [1, 1, 1]`,
      );
    }
    if (spec.std.some((s) => s === 0)) problems.push(`${where}: std has a 0 (value = (pixel × scale − mean) / std)`);
  }
  return problems;
}
