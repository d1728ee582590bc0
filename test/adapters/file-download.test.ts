/**
 * PartedFileWriter: parts arriving in any order land at their offsets, and the sha256 is the file's, in file order.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PartedFileWriter } from '../../functions/adapters/file-download.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'onnx-serverless-parts-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('PartedFileWriter', () => {
  it('writes parts finished in reverse order, interleaved chunk by chunk, and hashes the whole file in order', async () => {
    // Prepare: 3 parts of 100 bytes and a last one of 50, each sent in chunks of 30.
    const data = randomBytes(350);
    const file = join(dir, 'reverse.bin');
    const writer = await PartedFileWriter.open(file, data.byteLength, 100);
    const chunksOf = (index: number): Buffer[] => {
      const { start, end } = writer.ranges[index]!;
      const part = data.subarray(start, end + 1);
      return Array.from({ length: Math.ceil(part.byteLength / 30) }, (_, i) => part.subarray(i * 30, i * 30 + 30));
    };

    // Act: part 3 complete first, then 2 and 1 interleaved, then 0.
    for (const chunk of chunksOf(3)) await writer.write(3, chunk);
    await writer.finish(3);
    const two = chunksOf(2);
    const one = chunksOf(1);
    for (let i = 0; i < Math.max(two.length, one.length); i++) {
      if (two[i] !== undefined) await writer.write(2, two[i]!);
      if (one[i] !== undefined) await writer.write(1, one[i]!);
    }
    await writer.finish(2);
    await writer.finish(1);
    for (const chunk of chunksOf(0)) await writer.write(0, chunk);
    await writer.finish(0);
    const result = await writer.close();

    // Assess
    expect(writer.ranges).toHaveLength(4);
    expect(Buffer.compare(await readFile(file), data)).toBe(0);
    expect(result).toEqual({ size: 350, sha256: createHash('sha256').update(data).digest('hex') });
  });

  it('refuses a part that overflows or ends short, and discard removes the file', async () => {
    // Prepare
    const file = join(dir, 'short.bin');
    const writer = await PartedFileWriter.open(file, 20, 10);

    // Act / Assess
    await expect(writer.write(0, new Uint8Array(11))).rejects.toThrow('part 0 received more than its 10 bytes');
    await writer.write(1, new Uint8Array(4));
    await expect(writer.finish(1)).rejects.toThrow('part 1 ended after 4 of its 10 bytes');
    await expect(writer.close()).rejects.toThrow('the download ended with 2 parts incomplete');
    await writer.discard();
    await expect(stat(file)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
