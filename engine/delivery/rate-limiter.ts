// SPDX-License-Identifier: Apache-2.0
/**
 * Token-bucket rate limits for destinations. Limits are named resources of the engine config
 * (`rateLimits: { erp-api: { perSecond: 20, burst: 40 } }`) that channels reference by name, so
 * every channel hitting the same ERP draws from ONE bucket (docs/conventions.md §6).
 *
 * A limit is the environment's, not one engine instance's: with several instances (production
 * mode) each takes an equal share ({@link RateLimiterRegistry.share}), recomputed as instances come
 * and go, so N instances together stay within the limit the receiving team gave.
 *
 * Waiting is FIFO: a caller asking for several tokens is not overtaken by later callers asking for
 * one, so a large request cannot starve. There is no polling: one timer, set for the moment the
 * head of the queue can be served, and unref'd so a limiter never keeps the process alive.
 *
 * @see docs/design/0004-delivery.md#rate-limits
 */
import { OspreyError } from '../errors/error-codes.ts';

/** A rate limit: `perSecond` tokens refill continuously, up to `burst` kept in reserve. */
export interface RateLimit {
  perSecond: number;
  /**
   * Bucket capacity: how many requests may go at once after a quiet period.
   * @defaultValue `max(1, ceil(perSecond))`
   */
  burst?: number;
}

/** What a destination needs of a limit; {@link TokenBucket} is the implementation. */
export interface RateLimiter {
  /** Resolves once `n` tokens (requests) may go; FIFO. */
  acquire(n?: number, signal?: AbortSignal): Promise<void>;
}

interface Waiter {
  n: number;
  resolve: () => void;
  reject: (reason: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/**
 * Where a bucket reads the time and sets its one timer: the process's monotonic clock and timers
 * unless a test injects its own (time is then the test's to advance).
 */
export interface RateLimiterClock {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  /** Calls `fn` after `ms`; the handle is unref'd when it can be (a limiter never keeps the process alive). */
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

/** The process's clock: `performance.now()` and unref'd `setTimeout`. */
export const systemClock: RateLimiterClock = {
  now: () => performance.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

// Refill arithmetic is in floating point; without a tolerance a waiter can be woken a hair short
// of its tokens and re-armed for a 0 ms timer.
const EPSILON = 1e-9;

/** One token bucket. Starts full. */
export class TokenBucket implements RateLimiter {
  /** The configured limit, before any share. */
  readonly limit: Readonly<Required<RateLimit>>;
  perSecond: number;
  burst: number;
  #tokens: number;
  #refilledAt: number;
  readonly #waiters: Waiter[] = [];
  readonly #clock: RateLimiterClock;
  #timer: unknown;

  constructor(limit: RateLimit, clock: RateLimiterClock = systemClock) {
    if (!Number.isFinite(limit.perSecond) || limit.perSecond <= 0) {
      throw new RangeError(`rate limit perSecond must be a positive number, got ${String(limit.perSecond)}`);
    }
    const burst = limit.burst ?? Math.max(1, Math.ceil(limit.perSecond));
    if (!Number.isFinite(burst) || burst < 1) {
      throw new RangeError(`rate limit burst must be at least 1, got ${String(limit.burst)}`);
    }
    this.limit = { perSecond: limit.perSecond, burst };
    this.perSecond = limit.perSecond;
    this.burst = burst;
    this.#clock = clock;
    this.#tokens = burst;
    this.#refilledAt = clock.now();
  }

  /**
   * Runs at `fraction` (0 < fraction ≤ 1) of the configured limit: rate and burst scaled (burst at
   * least 1). Tokens in hand above the new burst are dropped; waiters are re-timed.
   */
  share(fraction: number): void {
    if (!Number.isFinite(fraction) || fraction <= 0 || fraction > 1) throw new RangeError(`a rate limit share must be in (0, 1], got ${String(fraction)}`);
    this.#refill();
    this.perSecond = this.limit.perSecond * fraction;
    this.burst = Math.max(1, this.limit.burst * fraction);
    this.#tokens = Math.min(this.#tokens, this.burst);
    this.#arm();
  }

  /** Callers waiting for tokens. */
  get waiting(): number {
    return this.#waiters.length;
  }

  /**
   * Resolves once `n` tokens are taken. Callers are served in call order.
   *
   * @param signal - aborting removes the caller from the queue and rejects with the signal's reason
   *   (for shutdown; the tokens are not taken).
   * @returns rejects with a RangeError when `n` is not in `(0, burst]`: such a request could never
   *   be served and would block everyone queued behind it.
   */
  acquire(n = 1, signal?: AbortSignal): Promise<void> {
    if (!Number.isFinite(n) || n <= 0 || n > this.burst) {
      return Promise.reject(new RangeError(`cannot acquire ${String(n)} tokens from a bucket of ${this.burst}`));
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    this.#refill();
    if (this.#waiters.length === 0 && this.#tokens >= n - EPSILON) {
      this.#tokens = Math.max(0, this.#tokens - n);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { n, resolve, reject, signal, onAbort: undefined };
      if (signal) {
        waiter.onAbort = () => this.#abort(waiter);
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.#waiters.push(waiter);
      if (this.#waiters.length === 1) this.#arm();
    });
  }

  #refill(): void {
    const now = this.#clock.now();
    const elapsed = now - this.#refilledAt;
    this.#refilledAt = now;
    if (elapsed > 0) this.#tokens = Math.min(this.burst, this.#tokens + (elapsed * this.perSecond) / 1000);
  }

  /** Serves waiters from the head while tokens last, then re-arms for the next head. */
  #drain(): void {
    this.#refill();
    let head = this.#waiters[0];
    while (head && this.#tokens >= head.n - EPSILON) {
      this.#tokens = Math.max(0, this.#tokens - head.n);
      this.#waiters.shift();
      if (head.signal && head.onAbort) head.signal.removeEventListener('abort', head.onAbort);
      head.resolve();
      head = this.#waiters[0];
    }
    this.#arm();
  }

  /** One timer, for the moment the head's tokens will be there; none when nobody waits. */
  #arm(): void {
    if (this.#timer !== undefined) {
      this.#clock.clearTimer(this.#timer);
      this.#timer = undefined;
    }
    const head = this.#waiters[0];
    if (!head) return;
    const missing = Math.max(0, head.n - this.#tokens);
    const waitMs = Math.max(1, Math.ceil((missing * 1000) / this.perSecond));
    this.#timer = this.#clock.setTimer(() => {
      this.#timer = undefined;
      this.#drain();
    }, waitMs);
  }

  #abort(waiter: Waiter): void {
    const index = this.#waiters.indexOf(waiter);
    if (index === -1) return;
    this.#waiters.splice(index, 1);
    waiter.reject(waiter.signal?.reason);
    // The head left: the next one may need fewer tokens and be servable now.
    if (index === 0) this.#drain();
  }
}

/**
 * The engine's named rate limits, one bucket per name, created from the engine config. Channels
 * that name the same limit get the same {@link TokenBucket}.
 */
export class RateLimiterRegistry {
  readonly #buckets = new Map<string, TokenBucket>();
  /** Every bucket handed out, named or a destination's own: all take the same share. */
  readonly #all: TokenBucket[] = [];
  readonly #clock: RateLimiterClock;
  #fraction = 1;

  /** @throws RangeError when a limit is invalid (checked at start, not at the first send). */
  constructor(limits: Readonly<Record<string, RateLimit>> = {}, clock: RateLimiterClock = systemClock) {
    this.#clock = clock;
    for (const [name, limit] of Object.entries(limits)) {
      this.#buckets.set(name, this.#track(new TokenBucket(limit, clock)));
    }
  }

  /** The share of every limit this instance takes: `1 / instances` (production mode). */
  share(instances: number): void {
    const n = Math.max(1, Math.floor(instances));
    this.#fraction = 1 / n;
    for (const bucket of this.#all) bucket.share(this.#fraction);
  }

  #track(bucket: TokenBucket): TokenBucket {
    if (this.#fraction !== 1) bucket.share(this.#fraction);
    this.#all.push(bucket);
    return bucket;
  }

  has(name: string): boolean {
    return this.#buckets.has(name);
  }

  names(): string[] {
    return [...this.#buckets.keys()];
  }

  /** The shared bucket of a named limit. @throws OspreyError OSPREY_ERR_CHANNEL_RATE_LIMIT when undefined. */
  get(name: string): TokenBucket {
    const bucket = this.#buckets.get(name);
    if (!bucket) {
      throw new OspreyError('OSPREY_ERR_CHANNEL_RATE_LIMIT', `rate limit "${name}" is not defined in the engine config rateLimits`);
    }
    return bucket;
  }

  /**
   * The bucket for a destination's `rateLimit`: a name gives the shared bucket; an inline
   * `{perSecond, burst}` gives a bucket of the destination's own; nothing gives `undefined`.
   */
  resolve(ref: string | RateLimit | undefined): TokenBucket | undefined {
    if (ref === undefined) return undefined;
    return typeof ref === 'string' ? this.get(ref) : this.#track(new TokenBucket(ref, this.#clock));
  }
}

/** Builds the registry from the engine config's `rateLimits` block. */
export function createRateLimiterRegistry(config: { rateLimits?: Readonly<Record<string, RateLimit>> }): RateLimiterRegistry {
  return new RateLimiterRegistry(config.rateLimits ?? {});
}
