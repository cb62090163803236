// SPDX-License-Identifier: Apache-2.0
/**
 * A clock whose time moves only when the test says so, for code that takes an injected clock
 * (e.g. the rate limiter's {@link RateLimiterClock}): timers fire in time order during
 * {@link FakeClock.advance}, never on their own, so a test about time does not depend on how busy
 * the machine is.
 */
import type { RateLimiterClock } from '../../engine/delivery/rate-limiter.ts';

interface Timer {
  id: number;
  at: number;
  fn: () => void;
}

export class FakeClock implements RateLimiterClock {
  #now = 0;
  #nextId = 1;
  #timers: Timer[] = [];
  /** How many timers were ever set. */
  armed = 0;

  now(): number {
    return this.#now;
  }

  setTimer(fn: () => void, ms: number): unknown {
    this.armed += 1;
    const timer = { id: this.#nextId++, at: this.#now + Math.max(0, ms), fn };
    this.#timers.push(timer);
    return timer.id;
  }

  clearTimer(handle: unknown): void {
    this.#timers = this.#timers.filter((t) => t.id !== handle);
  }

  /** Timers set and not yet fired or cleared. */
  get pending(): number {
    return this.#timers.length;
  }

  /** When the next timer fires, or undefined when none is set. */
  get nextAt(): number | undefined {
    return this.#timers.reduce<number | undefined>((min, t) => (min === undefined || t.at < min ? t.at : min), undefined);
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way, in order. */
  advance(ms: number): void {
    const until = this.#now + ms;
    for (;;) {
      const next = this.nextAt;
      if (next === undefined || next > until) break;
      const due = this.#timers.filter((t) => t.at === next).sort((a, b) => a.id - b.id)[0]!;
      this.#timers = this.#timers.filter((t) => t !== due);
      this.#now = next;
      due.fn();
    }
    this.#now = until;
  }
}
