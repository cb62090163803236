// SPDX-License-Identifier: Apache-2.0
/**
 * The ordering core shared by both buses: per key a FIFO of entries, one entry of a key running at a
 * time, different keys running concurrently up to a limit, and a FIFO of ready keys beyond it. A
 * key that finishes an entry goes to the back of the ready line, so one key with a long backlog
 * cannot starve the others when every slot is taken.
 *
 * A failed entry stays at the head of its key (order is the point of the whole thing): the key is
 * held, without taking a slot, until the retry delay chosen by the owner has passed.
 */

/** What the owner decides after an entry's run rejected. */
export type FailureDecision =
  /** Try the same entry again after this many milliseconds; the key stays held meanwhile. */
  | { retryInMs: number }
  /** Remove the entry (the owner dead-lettered it or gave it up) and go on with the key. */
  | 'drop';

export interface KeyedDispatcherOptions<T> {
  /** Keys in flight at once. */
  concurrency: number;
  /** Runs one entry; resolve when it is done. */
  run(entry: T): Promise<void>;
  /** Called after `run` rejected; `failures` counts this entry's consecutive failures (1 on the first). */
  onFailure(entry: T, error: unknown, failures: number): FailureDecision;
  /**
   * False for an entry that must not run any more (its RabbitMQ channel closed: the broker will
   * deliver it again). Checked before every start and retry; a dead entry is skipped silently.
   */
  isLive?(entry: T): boolean;
}

interface KeyState<T> {
  entries: T[];
  /** Running or waiting for a retry. */
  held: boolean;
  /** Waiting in `ready`. */
  ready: boolean;
  failures: number;
  timer?: NodeJS.Timeout;
}

/** Per-key FIFO scheduler with bounded cross-key concurrency; see the module comment. */
export class KeyedDispatcher<T> {
  private readonly keys = new Map<string, KeyState<T>>();
  private readonly ready: string[] = [];
  private readyHead = 0;
  private running = 0;
  private waitingRetry = 0;
  private stopped = false;
  private readonly inFlight = new Set<Promise<void>>();
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly options: KeyedDispatcherOptions<T>) {
    if (!(options.concurrency >= 1)) throw new RangeError(`concurrency must be >= 1, got ${options.concurrency}`);
  }

  /** Entries queued or running, over all keys. */
  get size(): number {
    let n = 0;
    for (const state of this.keys.values()) n += state.entries.length;
    return n;
  }

  /** Entries whose run is in progress. */
  get active(): number {
    return this.running;
  }

  push(key: string, entry: T): void {
    let state = this.keys.get(key);
    if (!state) {
      state = { entries: [], held: false, ready: false, failures: 0 };
      this.keys.set(key, state);
    }
    state.entries.push(entry);
    this.markReady(key, state);
    this.pump();
  }

  /**
   * No new runs or retries from now on; resolves once the runs in progress have settled. Entries not
   * yet started stay where they are (the caller's store or broker still has them).
   */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const state of this.keys.values()) {
      if (state.timer) {
        clearTimeout(state.timer);
        state.timer = undefined;
        this.waitingRetry -= 1;
        state.held = false;
      }
    }
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    this.notifyIdle();
  }

  /** Resolves when nothing is queued, running or waiting for a retry (at once after `stop`). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle(): boolean {
    if (this.running > 0) return false;
    if (this.stopped) return true;
    return this.waitingRetry === 0 && this.size === 0;
  }

  private notifyIdle(): void {
    if (this.idleWaiters.length === 0 || !this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private markReady(key: string, state: KeyState<T>): void {
    if (state.held || state.ready || state.entries.length === 0) return;
    state.ready = true;
    this.ready.push(key);
  }

  private pump(): void {
    while (!this.stopped && this.running < this.options.concurrency && this.readyHead < this.ready.length) {
      const key = this.ready[this.readyHead] as string;
      this.readyHead += 1;
      // Compact the ready line now and then instead of shift(): shift is O(n) on long lines.
      if (this.readyHead > 1024 && this.readyHead * 2 > this.ready.length) {
        this.ready.splice(0, this.readyHead);
        this.readyHead = 0;
      }
      const state = this.keys.get(key);
      if (!state) continue;
      state.ready = false;
      this.start(key, state);
    }
    this.notifyIdle();
  }

  private start(key: string, state: KeyState<T>): void {
    const isLive = this.options.isLive;
    while (state.entries.length > 0 && isLive && !isLive(state.entries[0] as T)) {
      state.entries.shift();
      state.failures = 0;
    }
    const entry = state.entries[0];
    if (entry === undefined) {
      this.keys.delete(key);
      return;
    }
    state.held = true;
    this.running += 1;
    // Promise.resolve().then(): a handler that throws synchronously is a rejection like any other.
    const run = Promise.resolve()
      .then(() => this.options.run(entry))
      .then(
        () => this.finish(key, state, entry),
        (error: unknown) => this.fail(key, state, entry, error),
      );
    this.inFlight.add(run);
    void run.finally(() => this.inFlight.delete(run));
  }

  private finish(key: string, state: KeyState<T>, entry: T): void {
    this.running -= 1;
    if (state.entries[0] === entry) state.entries.shift();
    state.failures = 0;
    this.release(key, state);
  }

  private fail(key: string, state: KeyState<T>, entry: T, error: unknown): void {
    this.running -= 1;
    state.failures += 1;
    let decision: FailureDecision;
    try {
      decision = this.options.onFailure(entry, error, state.failures);
    } catch {
      decision = { retryInMs: 1000 };
    }
    if (decision === 'drop' || this.stopped) {
      if (decision === 'drop' && state.entries[0] === entry) {
        state.entries.shift();
        state.failures = 0;
      }
      this.release(key, state);
      return;
    }
    // The key stays held (the failed entry keeps its place at the head) but frees its slot.
    this.waitingRetry += 1;
    state.timer = setTimeout(() => {
      state.timer = undefined;
      this.waitingRetry -= 1;
      this.release(key, state);
    }, Math.max(0, decision.retryInMs));
    this.pump();
  }

  private release(key: string, state: KeyState<T>): void {
    state.held = false;
    if (state.entries.length === 0) this.keys.delete(key);
    else this.markReady(key, state);
    this.pump();
  }
}
