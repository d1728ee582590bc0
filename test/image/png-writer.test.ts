/**
 * The PNG writer behind the OpenAPI image examples (functions/core/image/png.ts): what it writes, libvips (sharp, the
 * decoder the API uses) reads back pixel for pixel, across one stored deflate block and several.
 */
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { encodePng } from '../../functions/core/image/png.js';
import { syntheticImage } from '../../functions/core/image/preprocess.js';

describe('encodePng', () => {
  it.each([
    [1, 1],
    [48, 64],
    // 150 rows of 1 + 200 x 3 bytes: 90,150 bytes, over one stored block's 65,535.
    [150, 200],
  ])('writes a %i x %i RGB image that sharp decodes to the same pixels', async (height, width) => {
    const image = syntheticImage(height, width);
    const { data, info } = await sharp(encodePng(image)).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([width, height, 3]);
    expect(new Uint8Array(data)).toEqual(image.data);
  });
});
