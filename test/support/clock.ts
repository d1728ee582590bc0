/** A clock that moves only when a test moves it: time passes (a manifest TTL expires) without sleeping. */
export class ManualClock {
  private ms: number;

  public constructor(start = 0) {
    this.ms = start;
  }

  /** The current time, for `now` options. */
  public readonly now = (): number => this.ms;

  /** Moves time forward by `ms`. */
  public advance(ms: number): void {
    this.ms += ms;
  }
}
