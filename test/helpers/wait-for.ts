// SPDX-License-Identifier: Apache-2.0
/**
 * Bounded polling for end-to-end tests: wait for a state, never for a duration. Every wait has a
 * deadline and a cap on the number of polls, and a failure says what was awaited and what was last
 * seen, so a red test explains itself.
 */

export interface WaitOptions {
  /** Give up after this long. @defaultValue 10_000 */
  timeoutMs?: number;
  /** Pause between polls. @defaultValue 25 */
  intervalMs?: number;
  /** Give up after this many polls, whatever the time. @defaultValue timeoutMs / intervalMs + 10 */
  maxPolls?: number;
  /** Shown in the error: what was awaited. */
  what?: string;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `probe` until it returns a value other than `undefined`, `null` or `false`, and returns that
 * value. A probe that throws counts as "not yet" (the last error is reported on timeout).
 */
export async function waitFor<T>(probe: () => T | Promise<T>, options: WaitOptions = {}): Promise<Exclude<T, undefined | null | false>> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 25;
  const maxPolls = options.maxPolls ?? Math.ceil(timeoutMs / intervalMs) + 10;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  let lastError: unknown;
  for (let poll = 0; poll < maxPolls; poll++) {
    try {
      last = await probe();
      lastError = undefined;
      if (last !== undefined && last !== null && last !== false) return last as Exclude<T, undefined | null | false>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) break;
    await sleep(intervalMs);
  }
  const seen = lastError !== undefined ? `last error: ${(lastError as Error).message ?? String(lastError)}` : `last value: ${describe(last)}`;
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${options.what ?? 'a condition'} (${seen})`);
}

function describe(value: unknown): string {
  try {
    const text = JSON.stringify(value);
    return text === undefined ? String(value) : text.length > 400 ? `${text.slice(0, 400)}…` : text;
  } catch {
    return String(value);
  }
}

/** Rejects if `promise` has not settled within `ms` (a bound on a single awaited step). */
export async function within<T>(promise: Promise<T>, ms: number, what = 'an operation'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    if (timer) clearTimeout(timer);
  }
}

/**
 * The outage of a service a test stopped at `stoppedAt`: runs `whileDown`, then waits out the rest of
 * `downMs`. Resolves with what `whileDown` threw (if anything), so the caller starts the service
 * again before passing the failure on.
 */
export async function stayDown(stoppedAt: number, downMs: number, whileDown?: () => Promise<void>): Promise<unknown> {
  try {
    await whileDown?.();
    const left = stoppedAt + downMs - Date.now();
    if (left > 0) await sleep(left);
    return undefined;
  } catch (err) {
    return err ?? new Error('whileDown failed');
  }
}
