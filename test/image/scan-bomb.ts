/**
 * A progressive-JPEG scan bomb: a legal JPEG whose cost is its scan count times its block count, not its size.
 * libjpeg and sharp cannot write custom scan scripts, so it is written here byte for byte: every coefficient is 0
 * (a flat grey image), the DC of all components in one interleaved scan (one Huffman bit per block), then for each
 * component and each AC coefficient a first scan at the coarsest successive approximation (`Al` 13) and the 13
 * refinement scans down to `Al` 0. Each of those scans is one end-of-band run over every block of its component
 * (a few bytes), yet the decoder visits every block in each: 3 x 63 x 14 + 1 = 2,647 scans for a 3-component image.
 * The progression is the one the standard allows (each refinement's `Ah` is the previous `Al`), so decoders read it
 * without a warning.
 */

/** Settings of {@link scanBombJpeg}. */
export interface ScanBombOptions {
  readonly width: number;
  readonly height: number;
  /** AC coefficients (1 to this) that get scans; 63 for the full bomb. @default 63 */
  readonly lastCoefficient?: number;
  /** Successive-approximation scans per coefficient (1 to 14): a first scan at `Al = levels - 1`, refinements to 0. @default 14 */
  readonly levels?: number;
  /** 3 (YCbCr) or 1 (grey). @default 3 */
  readonly components?: 1 | 3;
}

/** The JPEG of a scan bomb, and how many scans it holds. */
export function scanBombJpeg(options: ScanBombOptions): { bytes: Buffer; scans: number } {
  const { width, height } = options;
  const last = options.lastCoefficient ?? 63;
  const levels = options.levels ?? 14;
  const components = options.components === 1 ? [1] : [1, 2, 3];
  const blocks = Math.ceil(width / 8) * Math.ceil(height / 8);
  const parts: Buffer[] = [Buffer.from([0xff, 0xd8])];
  // One quantization table of ones; every component samples 1x1 (so each has the image's block count).
  parts.push(segment(0xdb, [0x00, ...new Array<number>(64).fill(1)]));
  parts.push(
    segment(0xc2, [
      8,
      height >> 8,
      height & 0xff,
      width >> 8,
      width & 0xff,
      components.length,
      ...components.flatMap((id) => [id, 0x11, 0]),
    ]),
  );
  // DC table: the one symbol "difference category 0" as the 1-bit code 0.
  parts.push(segment(0xc4, [0x00, 1, ...new Array<number>(15).fill(0), 0x00]));
  // AC table: the 15 end-of-band-run symbols EOB0..EOB14 (run 2^r plus r extra bits), 4-bit codes 0000..1110.
  const eobSymbols = Array.from({ length: 15 }, (_, r) => r << 4);
  parts.push(segment(0xc4, [0x10, 0, 0, 0, 15, ...new Array<number>(12).fill(0), ...eobSymbols]));

  let scans = 0;
  // The DC scan: every block of every component codes category 0, one zero bit each.
  parts.push(sos(components, 0, 0, 0, 0));
  parts.push(stuffed(bitsToBytes(new BitWriter().zeros(blocks * components.length))));
  scans++;
  for (const id of components) {
    for (let k = 1; k <= last; k++) {
      for (let ah = 0, al = levels - 1; al >= 0; ah = al, al--) {
        parts.push(sos([id], k, k, ah, al));
        parts.push(stuffed(eobRun(blocks)));
        scans++;
      }
    }
  }
  parts.push(Buffer.from([0xff, 0xd9]));
  return { bytes: Buffer.concat(parts), scans };
}

/**
 * A flat baseline CMYK JPEG of `width × height` (Adobe APP14, no ICC profile), written directly (sharp takes a minute
 * to convert 40 MP to CMYK): two zero bits per block, so 40 MP is 624 KB. Turning it into sRGB goes through libvips'
 * built-in CMYK profile, pixel by pixel: seconds of CPU for 40 MP, a legal image that only the decode time limit
 * bounds.
 */
export function flatCmykJpeg(width: number, height: number): Buffer {
  const ids = [1, 2, 3, 4];
  const blocks = Math.ceil(width / 8) * Math.ceil(height / 8);
  return Buffer.concat([
    Buffer.from([0xff, 0xd8]),
    // Adobe APP14, transform 0: the four components are CMYK as they are.
    segment(0xee, [...Buffer.from('Adobe'), 0, 100, 0, 0, 0, 0, 0]),
    segment(0xdb, [0x00, ...new Array<number>(64).fill(1)]),
    segment(0xc0, [8, height >> 8, height & 0xff, width >> 8, width & 0xff, 4, ...ids.flatMap((id) => [id, 0x11, 0])]),
    // One symbol per table, each the 1-bit code 0: DC "difference 0", AC "end of block".
    segment(0xc4, [0x00, 1, ...new Array<number>(15).fill(0), 0x00]),
    segment(0xc4, [0x10, 1, ...new Array<number>(15).fill(0), 0x00]),
    segment(0xda, [4, ...ids.flatMap((id) => [id, 0x00]), 0, 63, 0]),
    Buffer.alloc(Math.ceil((blocks * ids.length * 2) / 8)),
    Buffer.from([0xff, 0xd9]),
  ]);
}

function segment(marker: number, payload: readonly number[]): Buffer {
  const length = payload.length + 2;
  return Buffer.from([0xff, marker, length >> 8, length & 0xff, ...payload]);
}

function sos(ids: readonly number[], ss: number, se: number, ah: number, al: number): Buffer {
  return segment(0xda, [ids.length, ...ids.flatMap((id) => [id, 0x00]), ss, se, (ah << 4) | al]);
}

/** One end-of-band run over `blocks` blocks, as EOBr symbols of at most 32,767 blocks each. */
function eobRun(blocks: number): Buffer {
  const writer = new BitWriter();
  for (let left = blocks; left > 0; ) {
    const run = Math.min(left, 32767);
    const r = Math.floor(Math.log2(run));
    writer.bits(r, 4);
    if (r > 0) writer.bits(run - 2 ** r, r);
    left -= run;
  }
  return bitsToBytes(writer);
}

class BitWriter {
  public readonly bytes: number[] = [];
  public current = 0;
  public count = 0;

  public bits(value: number, length: number): this {
    for (let i = length - 1; i >= 0; i--) this.bit((value >> i) & 1);
    return this;
  }

  public zeros(length: number): this {
    while (this.count !== 0 && length > 0) {
      this.bit(0);
      length--;
    }
    for (; length >= 8; length -= 8) this.bytes.push(0);
    for (; length > 0; length--) this.bit(0);
    return this;
  }

  private bit(value: number): void {
    this.current = (this.current << 1) | value;
    if (++this.count === 8) {
      this.bytes.push(this.current);
      this.current = 0;
      this.count = 0;
    }
  }
}

/** The bytes of a scan, its last byte padded with one bits as the standard asks. */
function bitsToBytes(writer: BitWriter): Buffer {
  const bytes = [...writer.bytes];
  if (writer.count > 0) bytes.push((writer.current << (8 - writer.count)) | ((1 << (8 - writer.count)) - 1));
  return Buffer.from(bytes);
}

/** Entropy-coded bytes with each 0xFF followed by a stuffed 0x00. */
function stuffed(data: Buffer): Buffer {
  const out: number[] = [];
  for (const byte of data) {
    out.push(byte);
    if (byte === 0xff) out.push(0);
  }
  return Buffer.from(out);
}
