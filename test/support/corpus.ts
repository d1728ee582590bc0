/**
 * The one gate of every test that needs the shared conformance corpus: where it is missing, the tests skip with a
 * note, except under `REQUIRE_CONFORMANCE=1` (`.ci/run`), where a test fails and says where it looked.
 */
import { describe, it } from 'vitest';
import { corpusRequired, missingCorpusMessage, REQUIRE_CONFORMANCE } from '../../conformance/corpus.js';

/**
 * `describe` for tests that need the corpus at `dir`: runs `body` when the corpus is there; otherwise registers one
 * failing test under `REQUIRE_CONFORMANCE=1`, or skips with a console note.
 */
export function describeWithCorpus(dir: string, name: string, body: () => void): void {
  const missing = missingCorpusMessage(dir);
  if (missing === undefined) {
    describe(name, body);
  } else if (corpusRequired()) {
    describe(name, () => {
      it('finds the conformance corpus (REQUIRE_CONFORMANCE=1)', () => {
        throw new Error(`${missing}; ${REQUIRE_CONFORMANCE}=1 makes a missing corpus a failure (unset it to skip)`);
      });
    });
  } else {
    console.warn(`[conformance] SKIPPED ${name}: ${missing}`);
    // biome-ignore lint/suspicious/noSkippedTests: the one deliberate skip: no corpus outside CI, and CI sets REQUIRE_CONFORMANCE
    describe.skip(name, body);
  }
}
