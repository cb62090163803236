// SPDX-License-Identifier: Apache-2.0
/**
 * The retry policy of a destination: which outcomes are retried, how long to wait, when to give up.
 * Pure (no clock, no I/O): the caller passes the elapsed time and, in tests, the random source.
 *
 * Vocabulary (docs/conventions.md §4, §5): `maxAttempts`, `backoff {type, initial, max, jitter}`,
 * `maxElapsed`, `retryOn`, `treatAsSuccess`; any HTTP status not listed is permanent. Failures are
 * classified where they happen (the adapter puts an `OSPREY_ERR_*` code on the result) and the
 * decision reads that code's class; HTTP statuses are re-read through this destination's lists.
 *
 * @see docs/design/0004-delivery.md
 */
import type { OutboundResult } from '../adapter-sdk/index.ts';
import { ErrorCodes, type ErrorClass, type ErrorCode } from '../errors/error-codes.ts';
import { computeBackoff, type BackoffOptions } from './backoff.ts';

/** A destination's retry policy, durations in milliseconds. */
export interface RetryPolicy {
  /** Attempts in all, the first included; after the last failed one the delivery is dead-lettered. */
  maxAttempts: number;
  backoff: BackoffOptions;
  /** HTTP statuses that are transient (retried). Any other non-2xx status is permanent. */
  retryOn: readonly number[];
  /** HTTP statuses that count as delivered (e.g. 409 "already applied"); checked first. */
  treatAsSuccess: readonly number[];
  /**
   * Give up when the next attempt would start later than this many milliseconds after the first
   * attempt started. Unset: only `maxAttempts` bounds the retries.
   */
  maxElapsedMs?: number;
  /**
   * Retry `ambiguous` failures (a timeout: the destination may have applied the request). Safe
   * because every request carries an Idempotency-Key that is the same on every attempt.
   * @defaultValue true
   */
  retryAmbiguous?: boolean;
  /**
   * Ceiling on a destination's `Retry-After`. Guards against a wrong header (a date years ahead
   * from a skewed clock) parking an ordered queue indefinitely; a destination still down after
   * the ceiling answers again with a fresh `Retry-After`.
   * @defaultValue 3_600_000 (1 hour)
   */
  maxRetryAfterMs?: number;
}

/** @see RetryPolicy.maxRetryAfterMs */
export const DEFAULT_MAX_RETRY_AFTER_MS = 3_600_000;

/** A partial policy as written in a channel file; missing fields come from {@link defaultRetryPolicy}. */
export type RetryPolicyInput = Partial<Omit<RetryPolicy, 'backoff'>> & { backoff?: Partial<BackoffOptions> };

/**
 * Defaults (docs/design/0002-channel-files.md): 10 attempts, exponential 500 ms → 5 min with 20 %
 * jitter, retry on 408, 429, 500, 502, 503, 504, nothing treated as success beyond 2xx.
 */
export const defaultRetryPolicy: Readonly<RetryPolicy> = Object.freeze({
  maxAttempts: 10,
  backoff: Object.freeze({ type: 'exponential', initialMs: 500, maxMs: 300_000, jitter: 0.2 }),
  retryOn: Object.freeze([408, 429, 500, 502, 503, 504]),
  treatAsSuccess: Object.freeze([] as number[]),
  retryAmbiguous: true,
  maxRetryAfterMs: DEFAULT_MAX_RETRY_AFTER_MS,
}) as Readonly<RetryPolicy>;

/** Fills a channel's partial `retry` block with the defaults (the backoff block field by field). */
export function resolveRetryPolicy(input: RetryPolicyInput = {}): RetryPolicy {
  const { backoff, ...rest } = input;
  const merged: RetryPolicy = {
    ...defaultRetryPolicy,
    ...stripUndefined(rest),
    backoff: { ...defaultRetryPolicy.backoff, ...stripUndefined(backoff ?? {}) },
  };
  return merged;
}

/** What an HTTP status means for one destination. */
export type StatusClass = 'success' | 'transient' | 'permanent';

/**
 * Classifies an HTTP status with a destination's lists: `treatAsSuccess` first, then 2xx is
 * success, then `retryOn` is transient, and everything else (other 4xx, 501, 505, redirects — which
 * are not followed) is permanent. Used by the REST client to build its result and by
 * {@link decideRetry}, so both read the same lists.
 *
 * @param policy - the lists; a missing list takes the default.
 */
export function classifyStatus(
  status: number,
  policy: { retryOn?: readonly number[]; treatAsSuccess?: readonly number[] } = {},
): StatusClass {
  const treatAsSuccess = policy.treatAsSuccess ?? defaultRetryPolicy.treatAsSuccess;
  const retryOn = policy.retryOn ?? defaultRetryPolicy.retryOn;
  if (treatAsSuccess.includes(status)) return 'success';
  if (status >= 200 && status <= 299) return 'success';
  if (retryOn.includes(status)) return 'transient';
  return 'permanent';
}

/**
 * Parses a `Retry-After` header: delay-seconds (`120`) or an HTTP-date
 * (`Wed, 21 Oct 2015 07:28:00 GMT`). A date in the past gives 0.
 *
 * @returns milliseconds, or `undefined` when absent or not understood (the backoff alone applies).
 */
export function parseRetryAfter(value: string | readonly string[] | undefined, now: number = Date.now()): number | undefined {
  const raw = typeof value === 'string' ? value : value?.[0];
  if (raw === undefined) return undefined;
  const text = raw.trim();
  if (text === '') return undefined;
  if (/^\d+$/.test(text)) {
    const seconds = Number(text);
    return Number.isSafeInteger(seconds) ? seconds * 1000 : undefined;
  }
  // Only a date-looking value: Date.parse accepts odd things ("1.5" → a year), which would turn a
  // malformed number into a wait of decades before the cap hides it.
  if (!/[a-z]/i.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** The decision after a failed attempt. */
export type RetryDecision = { action: 'retry'; delayMs: number } | { action: 'dead-letter'; code: ErrorCode };

/** Class of a result under a policy: `success`, or the error class that decides the retry. */
export type ResultClass = 'success' | ErrorClass;

/**
 * Classifies a failed outbound result for a destination. A result with an HTTP status is read
 * through {@link classifyStatus} with this policy's lists, so the policy decides transient versus
 * permanent even for an adapter built with other lists; otherwise the class of its error code
 * decides (TIMEOUT is `ambiguous`, NETWORK and AUTH are `transient`); otherwise its `outcome`.
 *
 * A result the adapter reported as failed is never turned into a success here (a status in this
 * policy's `treatAsSuccess` that the adapter did not know about): the adapter's own class stands,
 * because the caller has already treated the attempt as failed. Give the REST client the same
 * `retryOn` / `treatAsSuccess` as the policy.
 */
export function classifyResult(result: OutboundResult, policy: Pick<RetryPolicy, 'retryOn' | 'treatAsSuccess'>): ResultClass {
  if (result.outcome === 'success') return 'success';
  if (result.status !== undefined) {
    const cls = classifyStatus(result.status, policy);
    if (cls !== 'success') return cls;
  }
  if (result.error) return ErrorCodes[result.error.code].class;
  return result.outcome;
}

/** Inputs of {@link decideRetry} besides the policy, the attempt and the result. */
export interface DecideRetryOptions {
  /** Source for the jitter, in [0, 1). @defaultValue Math.random */
  random?: () => number;
  /** Epoch ms when the first attempt of this delivery started; needed for `maxElapsedMs`. */
  firstAttemptAt?: number;
  /** Epoch ms now. @defaultValue Date.now() */
  now?: number;
  /** Elapsed time since the first attempt, instead of `firstAttemptAt` and `now`. */
  elapsedMs?: number;
}

/**
 * Decides what follows the failed attempt number `attempt` (1-based).
 *
 * - permanent (or ambiguous with `retryAmbiguous: false`) → dead-letter with the result's code
 *   (`OSPREY_ERR_DELIVERY_HTTP_PERMANENT` for an HTTP status);
 * - `attempt >= maxAttempts` → dead-letter, `OSPREY_ERR_DELIVERY_EXHAUSTED`;
 * - otherwise retry after `max(backoff(attempt), min(retryAfterMs, maxRetryAfterMs))`;
 * - unless `maxElapsedMs` is set and `elapsedMs + delay` passes it → dead-letter,
 *   `OSPREY_ERR_DELIVERY_MAX_ELAPSED` (no attempt starts after the window).
 *
 * @param options - the jitter source (a function, as a shorthand) and, for `maxElapsedMs`, when
 *   the first attempt started.
 * @throws RangeError when the result is a success: the caller records it as SENT and must not
 *   ask for a retry decision (a programming error, not a delivery failure).
 */
export function decideRetry(
  policy: RetryPolicy,
  attempt: number,
  result: OutboundResult,
  options: DecideRetryOptions | (() => number) = {},
): RetryDecision {
  const opts: DecideRetryOptions = typeof options === 'function' ? { random: options } : options;
  const random = opts.random ?? Math.random;
  const elapsedMs =
    opts.elapsedMs ?? (opts.firstAttemptAt !== undefined ? (opts.now ?? Date.now()) - opts.firstAttemptAt : undefined);
  const cls = classifyResult(result, policy);
  if (cls === 'success') {
    throw new RangeError('decideRetry called with a successful result');
  }
  const failureCode: ErrorCode =
    result.status !== undefined
      ? cls === 'transient'
        ? 'OSPREY_ERR_DELIVERY_HTTP_TRANSIENT'
        : 'OSPREY_ERR_DELIVERY_HTTP_PERMANENT'
      : (result.error?.code ?? (cls === 'permanent' ? 'OSPREY_ERR_DELIVERY_HTTP_PERMANENT' : 'OSPREY_ERR_DELIVERY_NETWORK'));

  if (cls === 'permanent' || (cls === 'ambiguous' && !(policy.retryAmbiguous ?? true))) {
    return { action: 'dead-letter', code: failureCode };
  }
  if (attempt >= policy.maxAttempts) {
    return { action: 'dead-letter', code: 'OSPREY_ERR_DELIVERY_EXHAUSTED' };
  }

  const backoffMs = computeBackoff(policy.backoff, attempt, random);
  const retryAfterMs =
    result.retryAfterMs !== undefined && Number.isFinite(result.retryAfterMs)
      ? Math.min(Math.max(0, result.retryAfterMs), policy.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS)
      : 0;
  const delayMs = Math.max(backoffMs, Math.round(retryAfterMs));

  if (policy.maxElapsedMs !== undefined && elapsedMs !== undefined && elapsedMs + delayMs > policy.maxElapsedMs) {
    return { action: 'dead-letter', code: 'OSPREY_ERR_DELIVERY_MAX_ELAPSED' };
  }
  return { action: 'retry', delayMs };
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
