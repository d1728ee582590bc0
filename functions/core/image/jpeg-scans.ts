/**
 * The scan count of a JPEG, read from its markers without decoding. A progressive JPEG's decode time is its block
 * count times its scan count, and libjpeg reads every scan into its coefficient buffer before the first row of
 * pixels leaves it, where no processing timeout can stop it: a 430 KB file of 2,647 legal scans at 6320 x 6320 takes
 * over 20 s of CPU. Encoders write about 10 scans (libjpeg's standard progression; mozjpeg a few more), so a bound on
 * the count, checked here first, bounds that phase.
 */

const SOS = 0xda;
const EOI = 0xd9;
const SOI = 0xd8;

/** True for markers that stand alone, without a length: RSTn, SOI, EOI, TEM. */
function standalone(marker: number): boolean {
  return (marker >= 0xd0 && marker <= 0xd9) || marker === 0x01;
}

/**
 * Counts the scans (SOS segments) of the JPEG in `bytes`, in one pass over its bytes. Returns 0 for bytes that do
 * not start like a JPEG; a truncated file counts the scans seen (the decoder refuses it).
 * @example jpegScanCount(bytes) > limits.maxJpegScans // more scans than the limit allows
 */
export function jpegScanCount(bytes: Uint8Array): number {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== SOI) return 0;
  let scans = 0;
  let i = 2;
  while (i < bytes.length) {
    if (bytes[i] !== 0xff) {
      // Garbage between segments: find the next marker, as libjpeg does (with a warning).
      const next = bytes.indexOf(0xff, i);
      if (next < 0) break;
      i = next;
    }
    // Fill bytes (0xFF 0xFF ...) may precede a marker.
    while (i < bytes.length && bytes[i] === 0xff) i++;
    const marker = bytes[i];
    i++;
    if (marker === undefined || marker === EOI) break;
    if (marker === 0x00 || standalone(marker)) continue;
    if (i + 1 >= bytes.length) break;
    const length = (bytes[i]! << 8) | bytes[i + 1]!;
    i += length;
    if (marker !== SOS) continue;
    scans++;
    // Entropy-coded data runs to the next marker that is neither a stuffed 0xFF00 nor a restart marker.
    for (;;) {
      const next = bytes.indexOf(0xff, i);
      if (next < 0 || next + 1 >= bytes.length) return scans;
      const following = bytes[next + 1]!;
      if (following === 0x00 || following === 0xff || (following >= 0xd0 && following <= 0xd7)) {
        i = next + (following === 0xff ? 1 : 2);
        continue;
      }
      i = next;
      break;
    }
  }
  return scans;
}
