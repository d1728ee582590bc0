/**
 * The scan count read from a JPEG's markers, on files written by libjpeg (through sharp) and on hand-written
 * progressive files: it must match what the encoder wrote, skip entropy-coded data (stuffed 0xFF00 included)
 * and never count a scan that is not there.
 */
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { jpegScanCount } from '../../functions/core/image/jpeg-scans.js';
import { scanBombJpeg } from './scan-bomb.js';

/** A noisy 64 x 48 RGB image, so that entropy-coded data holds 0xFF bytes. */
function noise(): Buffer {
  const data = Buffer.alloc(64 * 48 * 3);
  let x = 7;
  for (let i = 0; i < data.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    data[i] = x >>> 24;
  }
  return data;
}
const image = () => sharp(noise(), { raw: { width: 64, height: 48, channels: 3 } });

describe('jpegScanCount', () => {
  it('counts one scan in a baseline JPEG, past the stuffed 0xFF bytes of its data', async () => {
    const baseline = await image().jpeg({ quality: 95 }).toBuffer();

    expect(baseline.includes(Buffer.from([0xff, 0x00]))).toBe(true);
    expect(jpegScanCount(baseline)).toBe(1);
  });

  it("counts libjpeg's standard progression (10 scans for colour)", async () => {
    const progressive = await image().jpeg({ quality: 95, progressive: true }).toBuffer();

    expect(jpegScanCount(progressive)).toBe(10);
  });

  it('counts every scan of a hand-written progression', () => {
    for (const [options, expected] of [
      [{ width: 16, height: 16 }, 2647],
      [{ width: 16, height: 16, components: 1, lastCoefficient: 1, levels: 4 }, 5],
      [{ width: 1000, height: 8, components: 1, lastCoefficient: 2, levels: 1 }, 3],
    ] as const) {
      const bomb = scanBombJpeg(options);
      expect(bomb.scans).toBe(expected);
      expect(jpegScanCount(bomb.bytes)).toBe(expected);
    }
  });

  it('counts nothing in bytes that are not a JPEG, and only the scans present in a truncated one', async () => {
    const png = await image().png().toBuffer();
    const progressive = await image().jpeg({ progressive: true }).toBuffer();

    expect(jpegScanCount(png)).toBe(0);
    expect(jpegScanCount(new Uint8Array([0xff, 0xd8]))).toBe(0);
    expect(jpegScanCount(progressive.subarray(0, Math.floor(progressive.length / 2)))).toBeLessThan(10);
  });
});
