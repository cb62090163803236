// SPDX-License-Identifier: Apache-2.0
/**
 * Backoff delays between delivery attempts. Pure: no clock, no timers; randomness is injected so
 * tests can pin it. Durations are milliseconds (the channel loader converts `500ms`, `5m`).
 *
 * @see docs/design/0004-delivery.md#backoff
 */

/** `fixed`: every wait is `initialMs`. `exponential`: `initialMs · 2^(attempt−1)`, capped at `maxMs`. */
export const BackoffType = { fixed: 'fixed', exponential: 'exponential' } as const;
export type BackoffType = (typeof BackoffType)[keyof typeof BackoffType];

/** The `backoff` block of a destination's `retry`, in milliseconds. */
export interface BackoffOptions {
  type: BackoffType;
  /** Base delay of the first retry. */
  initialMs: number;
  /** No delay is ever longer than this. */
  maxMs: number;
  /**
   * Proportional jitter, 0..1: the delay is drawn uniformly from `[base·(1−jitter), base]`.
   * 0 gives exact delays; 1 is "full jitter" (uniform in `[0, base]`).
   */
  jitter: number;
}

/**
 * The wait before the retry that follows attempt number `attempt` (1-based: after the first
 * attempt failed, `attempt` is 1).
 *
 * Formula: `base = min(maxMs, type === 'fixed' ? initialMs : initialMs · 2^(attempt−1))`, then
 * `delay = base · (1 − jitter · random())`, rounded to whole milliseconds.
 *
 * Jitter only ever shortens the delay, so `maxMs` stays a hard ceiling and the schedule never
 * drifts above what the channel author wrote; spreading senders apart (after an outage every
 * queued delivery fails at once) is what jitter is for, and a downward spread does that equally
 * well. With `jitter: 1` this is the "full jitter" of the AWS architecture blog.
 *
 * @param random - a source in [0, 1), `Math.random` by default; values outside are clamped.
 * @returns milliseconds, an integer in `[0, maxMs]`.
 */
export function computeBackoff(options: BackoffOptions, attempt: number, random: () => number = Math.random): number {
  const initial = nonNegative(options.initialMs);
  const max = nonNegative(options.maxMs);
  const jitter = clamp01(options.jitter);
  // Attempt 0 or garbage is treated as the first retry rather than producing NaN delays.
  const n = Number.isFinite(attempt) ? Math.max(1, Math.floor(attempt)) : 1;

  let base: number;
  if (options.type === 'fixed') {
    base = initial;
  } else {
    // 2^(n−1) overflows to Infinity after ~1024 attempts; 0 · Infinity would be NaN, hence the guard.
    base = initial === 0 ? 0 : initial * 2 ** (n - 1);
  }
  base = Math.min(base, max);

  const r = jitter === 0 ? 0 : clamp01(random());
  return Math.round(base * (1 - jitter * r));
}

function nonNegative(value: number): number {
  return Number.isFinite(value) && value > 0 ? value : 0;
}

function clamp01(value: number): number {
  if (!Number.isFinite(value) || value <= 0) return 0;
  return value >= 1 ? 1 : value;
}
