// SPDX-License-Identifier: Apache-2.0
/**
 * Group commit: the store's hot writes (`receive`, `recordProcessing`, `recordAttempts`) are
 * queued and written together, in ONE transaction, once per turn of the event loop (or at once
 * when `maxBatch` are queued). One commit (one fsync) then pays for every write of the turn, which
 * is what makes "ACK only after the message is durable" affordable at thousands of messages per
 * second. Each caller's promise settles only after the transaction holding its write committed.
 *
 * The store supplies the flush function; it reports a result per item, so a write that fails on its
 * own (a constraint, an unknown id) fails only its own promise. A flush that throws (the commit
 * failed, the connection dropped) rejects every promise of the batch with
 * `OSPREY_ERR_STORE_UNAVAILABLE`: nothing of the batch may be assumed stored, and the MLLP sender
 * gets an AE and resends (dedupe catches the resend if the commit did in fact happen).
 *
 * @see docs/design/0003-message-store.md § Group commit
 */
import { OspreyError, isOspreyError } from '../errors/error-codes.ts';

/** The outcome of one queued item, as reported by a flush. */
export type ItemResult<R> = { ok: true; value: R } | { ok: false; error: unknown };

/**
 * Writes a batch in one transaction and reports one result per item, in order. It throws when the
 * batch as a whole could not be committed. It may be synchronous (better-sqlite3) or not.
 */
export type FlushFn<Op, R> = (ops: readonly Op[]) => ItemResult<R>[] | Promise<ItemResult<R>[]>;

export interface GroupCommitOptions {
  /**
   * Flush at once (without waiting for the end of the turn) when this many are queued; a longer
   * queue is split into batches of this size.
   * @defaultValue 1000
   */
  maxBatch?: number;
  /**
   * Batches being flushed at the same time. 1 suits a single connection (SQLite); an asynchronous
   * store may overlap the round trips of two batches.
   * @defaultValue 1
   */
  maxInFlight?: number;
}

interface Pending<Op, R> {
  op: Op;
  resolve: (value: R) => void;
  reject: (error: unknown) => void;
}

/** Wraps a failure of the whole batch as the store's transient error, keeping the cause. */
export function storeUnavailable(cause: unknown): OspreyError {
  if (isOspreyError(cause) && cause.code === 'OSPREY_ERR_STORE_UNAVAILABLE') return cause;
  // The driver's message can quote values (a key in a constraint error): keep it as the cause only.
  return new OspreyError('OSPREY_ERR_STORE_UNAVAILABLE', 'the message store could not commit the batch', { cause });
}

/** Queues writes and flushes them together; see the module comment. */
export class GroupCommitter<Op, R> {
  readonly #flush: FlushFn<Op, R>;
  readonly #maxBatch: number;
  readonly #maxInFlight: number;
  #queue: Array<Pending<Op, R>> = [];
  #inFlight = 0;
  #turnScheduled = false;
  #microtaskScheduled = false;
  #closed = false;
  #idleWaiters: Array<() => void> = [];

  constructor(flush: FlushFn<Op, R>, options: GroupCommitOptions = {}) {
    this.#flush = flush;
    this.#maxBatch = Math.max(1, options.maxBatch ?? 1000);
    this.#maxInFlight = Math.max(1, options.maxInFlight ?? 1);
  }

  /** Items queued and not yet handed to a flush. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Queues one write; settles once its batch committed (or failed). */
  submit(op: Op): Promise<R> {
    if (this.#closed) {
      return Promise.reject(new OspreyError('OSPREY_ERR_STORE_UNAVAILABLE', 'the message store is closed'));
    }
    return new Promise<R>((resolve, reject) => {
      this.#queue.push({ op, resolve, reject });
      this.#schedule();
    });
  }

  /** Resolves once everything queued so far has been flushed. */
  drain(): Promise<void> {
    if (this.#queue.length === 0 && this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Refuses new writes, then waits for the queued ones to be flushed. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.drain();
  }

  #schedule(): void {
    if (this.#queue.length >= this.#maxBatch) {
      // A full batch need not wait for the end of the turn. A microtask, not a direct call, so a
      // synchronous flush never runs inside the caller's own stack frame.
      if (!this.#microtaskScheduled) {
        this.#microtaskScheduled = true;
        queueMicrotask(() => {
          this.#microtaskScheduled = false;
          this.#run();
        });
      }
      return;
    }
    if (!this.#turnScheduled) {
      // setImmediate runs after the I/O callbacks of this turn: the writes of every socket that
      // delivered data in this turn join the same batch.
      this.#turnScheduled = true;
      setImmediate(() => {
        this.#turnScheduled = false;
        this.#run();
      });
    }
  }

  #run(): void {
    while (this.#inFlight < this.#maxInFlight && this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.#maxBatch);
      this.#inFlight++;
      void this.#flushBatch(batch).finally(() => {
        this.#inFlight--;
        // Items that queued while this batch was being written have waited a whole commit already.
        if (this.#queue.length > 0) this.#run();
        else if (this.#inFlight === 0) this.#notifyIdle();
      });
    }
  }

  async #flushBatch(batch: Array<Pending<Op, R>>): Promise<void> {
    let results: ItemResult<R>[];
    try {
      results = await this.#flush(batch.map((p) => p.op));
    } catch (err) {
      const error = storeUnavailable(err);
      for (const p of batch) p.reject(error);
      return;
    }
    batch.forEach((p, i) => {
      const result = results[i];
      if (result === undefined) p.reject(storeUnavailable(new Error('the flush reported no result for an item')));
      else if (result.ok) p.resolve(result.value);
      else p.reject(result.error);
    });
  }

  #notifyIdle(): void {
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }
}

/**
 * Two group committers over one flush: receives — which an MLLP ACK waits for — in their own
 * batches, everything else (processing results, attempts, replays) in others. An ACK then waits
 * for the writer to reach a batch of receives, not for a larger mixed batch to be formed and
 * committed first. Both stores use it; the flush still decides how batches run side by side
 * (SQLite's single writer runs one transaction at a time).
 */
export class ReceiveFirstCommitter<Op extends { kind: string }, R> {
  private readonly receives: GroupCommitter<Op, R>;
  private readonly others: GroupCommitter<Op, R>;

  constructor(flush: FlushFn<Op, R>, options: GroupCommitOptions = {}) {
    this.receives = new GroupCommitter(flush, options);
    this.others = new GroupCommitter(flush, options);
  }

  submit(op: Op): Promise<R> {
    return (op.kind === 'receive' ? this.receives : this.others).submit(op);
  }

  async close(): Promise<void> {
    await Promise.all([this.receives.close(), this.others.close()]);
  }
}
