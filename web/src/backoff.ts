// Reconnect delays: 0.5 s doubling to a 10 s cap, each shortened by up to a quarter at random so
// that the browsers of a whole team do not reconnect in lock-step after a server restart.

export interface BackoffOptions {
  /** First delay, in milliseconds. */
  baseMs?: number;
  /** Largest delay, in milliseconds. */
  capMs?: number;
  /** Fraction of a delay that jitter may remove, 0..1. */
  jitter?: number;
  /** A source of numbers in [0, 1); `Math.random` unless a test gives its own. */
  random?: () => number;
}

export class Backoff {
  private readonly baseMs: number;
  private readonly capMs: number;
  private readonly jitter: number;
  private readonly random: () => number;
  private failures = 0;

  constructor(options: BackoffOptions = {}) {
    this.baseMs = options.baseMs ?? 500;
    this.capMs = options.capMs ?? 10_000;
    this.jitter = options.jitter ?? 0.25;
    this.random = options.random ?? Math.random;
    if (!(this.baseMs > 0 && this.capMs >= this.baseMs)) throw new Error("backoff needs 0 < base <= cap");
    if (!(this.jitter >= 0 && this.jitter <= 1)) throw new Error("backoff jitter must be within 0..1");
  }

  /** How many delays were handed out since the last `reset`. */
  get attempts(): number {
    return this.failures;
  }

  /** The delay before the next attempt; each call counts as one more failure. */
  next(): number {
    // 2^failures overflows to Infinity long after the cap, which Math.min handles.
    const nominal = Math.min(this.capMs, this.baseMs * 2 ** this.failures);
    this.failures += 1;
    const r = Math.min(Math.max(this.random(), 0), 1);
    return Math.round(nominal * (1 - this.jitter * r));
  }

  /** Called once a connection proved healthy: the next failure starts again at the base delay. */
  reset(): void {
    this.failures = 0;
  }
}
