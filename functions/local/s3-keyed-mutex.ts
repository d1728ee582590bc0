/**
 * Per-key mutual exclusion for the embedded S3 server: one object's check-then-write (a conditional PUT) must not
 * interleave with another write or a read of the same object, while different keys proceed in parallel.
 */

/** Runs async sections one at a time per key, in arrival order; keys are independent. */
export class KeyedMutex {
  /** The last section queued per key; a key disappears when its queue drains, so the map stays small. */
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `section` once every section queued before it under `key` has settled. */
  public async run<T>(key: string, section: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release: () => void = () => undefined;
    const tail = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.tails.set(key, tail);
    await previous;
    try {
      return await section();
    } finally {
      release();
      if (this.tails.get(key) === tail) {
        this.tails.delete(key);
      }
    }
  }
}
