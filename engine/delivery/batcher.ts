// SPDX-License-Identifier: Apache-2.0
/**
 * Batching for destinations with `batch: { maxItems, maxWait }`: items are gathered into one
 * request, sent when the batch is full or `maxWait` after its first item, and every caller gets
 * the outcome of the request its item went out in. Plus the body and idempotency key of a batch.
 *
 * @see docs/design/0004-delivery.md#batching
 */
import { createHash } from 'node:crypto';

/** Options of a {@link Batcher}; durations in milliseconds. */
export interface BatcherOptions<T, R> {
  /** A batch is flushed as soon as it holds this many items. */
  maxItems: number;
  /** …or this long after its first item arrived, whichever comes first. */
  maxWaitMs: number;
  /**
   * Sends one batch (items in the order they were added). Its result, or its error, is what every
   * `add` of that batch resolves, or rejects, with. A retry loop belongs inside `flush`, so that a
   * retried batch keeps its members and therefore its idempotency key.
   */
  flush: (items: T[]) => Promise<R>;
  /** Where the maxWait timer is set: the process's timers unless a test injects its own. */
  timers?: BatcherTimers;
}

/** Sets and clears the maxWait timer. */
export interface BatcherTimers {
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

const processTimers: BatcherTimers = {
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

interface Entry<T, R> {
  item: T;
  resolve: (result: R) => void;
  reject: (reason: unknown) => void;
}

/**
 * Gathers items into batches. Batches are flushed one at a time, in order: a batch never
 * overtakes an earlier one, which keeps the per-key order of the destination queue. Memory is
 * bounded by the callers: each `add` stays pending until its batch is sent, so a consumer with a
 * concurrency limit cannot pile up more than that many items.
 *
 * The maxWait timer is not unref'd: a pending batch is work that should go out; call
 * {@link Batcher.close} at shutdown.
 */
export class Batcher<T, R> {
  readonly #maxItems: number;
  readonly #maxWaitMs: number;
  readonly #flush: (items: T[]) => Promise<R>;
  readonly #timers: BatcherTimers;
  #open: Array<Entry<T, R>> = [];
  #timer: unknown;
  #chain: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(options: BatcherOptions<T, R>) {
    if (!Number.isInteger(options.maxItems) || options.maxItems < 1) {
      throw new RangeError(`batch maxItems must be a positive integer, got ${String(options.maxItems)}`);
    }
    if (!Number.isFinite(options.maxWaitMs) || options.maxWaitMs < 0) {
      throw new RangeError(`batch maxWait must be a non-negative duration, got ${String(options.maxWaitMs)}`);
    }
    this.#maxItems = options.maxItems;
    this.#maxWaitMs = options.maxWaitMs;
    this.#flush = options.flush;
    this.#timers = options.timers ?? processTimers;
  }

  /** Items gathered and not yet handed to `flush`. */
  get pending(): number {
    return this.#open.length;
  }

  /** Adds an item; settles with the result (or error) of the batch it is sent in. Rejects after close. */
  add(item: T): Promise<R> {
    if (this.#closed) return Promise.reject(new Error('batcher is closed'));
    return new Promise<R>((resolve, reject) => {
      this.#open.push({ item, resolve, reject });
      if (this.#open.length >= this.#maxItems) {
        this.#seal();
      } else if (this.#open.length === 1) {
        this.#timer = this.#timers.setTimer(() => {
          this.#timer = undefined;
          this.#seal();
        }, this.#maxWaitMs);
      }
    });
  }

  /** Stops accepting items, flushes what is pending and resolves when every batch is sent. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#seal();
    await this.#chain;
  }

  /** Closes the open batch and queues it behind the batches already being sent. */
  #seal(): void {
    if (this.#timer !== undefined) {
      this.#timers.clearTimer(this.#timer);
      this.#timer = undefined;
    }
    const batch = this.#open;
    if (batch.length === 0) return;
    this.#open = [];
    this.#chain = this.#chain.then(() => this.#send(batch));
  }

  async #send(batch: Array<Entry<T, R>>): Promise<void> {
    try {
      const result = await this.#flush(batch.map((e) => e.item));
      for (const entry of batch) entry.resolve(result);
    } catch (err) {
      // Never rejects: a failed batch must not stop the batches queued behind it.
      for (const entry of batch) entry.reject(err);
    }
  }
}

/** One member of a batch request: the item's own idempotency key and its payload. */
export interface BatchItem {
  idempotencyKey: string;
  payload: unknown;
}

/**
 * The JSON body of a batch request: a bare array, one `{ idempotencyKey, payload }` per item in
 * batch order — the "JSON array" of docs/design/0002-channel-files.md, with each element keeping
 * its own key so a batch endpoint can apply items idempotently one by one, e.g.
 * `[{"idempotencyKey":"01J…:erp:0","payload":{…}}, …]`.
 */
export function buildBatchBody(items: ReadonlyArray<BatchItem>): BatchItem[] {
  return items.map(({ idempotencyKey, payload }) => ({ idempotencyKey, payload }));
}

/**
 * The Idempotency-Key of a batch request: `batch-` + SHA-256 (hex) of its members' keys, sorted and
 * length-prefixed. The same members give the same key whatever their order (so a retried batch is
 * recognised), and no two different member sets collide by concatenation (`a,bc` vs `ab,c`).
 */
export function batchIdempotencyKey(keys: readonly string[]): string {
  const hash = createHash('sha256');
  for (const key of [...keys].sort()) {
    hash.update(`${Buffer.byteLength(key, 'utf8')}:`);
    hash.update(key, 'utf8');
    hash.update('\n');
  }
  return `batch-${hash.digest('hex')}`;
}
