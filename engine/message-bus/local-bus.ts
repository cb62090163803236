// SPDX-License-Identifier: Apache-2.0
/**
 * The embedded bus: in process, no broker. Per queue, a map key → FIFO of work items; one item of a
 * key at a time, in publish order; different keys concurrently up to `concurrency`, then a fair FIFO
 * of ready keys. A handler that rejects is retried after a short backoff with the item kept at the
 * head of its key, so a failure never reorders a key.
 *
 * It holds only ids (a `WorkItem` is two short strings), and nothing survives the process: the
 * store is the truth, and the engine republishes what the store still has pending when it starts
 * (docs/design/0005-bus.md, "outbox").
 */
import type { Logger } from '../observability/logger.ts';
import { BusError, BusErrorCode } from './bus-errors.ts';
import { KeyedDispatcher } from './keyed-dispatcher.ts';
import type { ConsumeOptions, MessageBus, WorkHandler, WorkItem } from './message-bus.ts';

/** Options of {@link LocalBus}. */
export interface LocalBusOptions {
  /**
   * Default for {@link ConsumeOptions.concurrency}: keys in flight at once per queue.
   * @defaultValue 256
   */
  concurrency?: number;
  /**
   * Delay before the first retry of an item whose handler rejected; doubles on each further failure.
   * @defaultValue 100
   */
  retryDelayMs?: number;
  /**
   * Upper bound of the retry delay.
   * @defaultValue 5000
   */
  maxRetryDelayMs?: number;
  /** Handler failures are logged here (warn); nothing is logged when absent. */
  logger?: Pick<Logger, 'warn' | 'error'>;
}

interface LocalQueue {
  /** Items published before a consumer subscribed: handed over, in order, on `consume`. */
  buffered: WorkItem[];
  dispatcher?: KeyedDispatcher<WorkItem>;
}

/** A wait of {@link LocalBus.whenHeldAtMost}. */
interface HeldWaiter {
  limit: number;
  resolve: () => void;
}

/**
 * In-process {@link MessageBus}. Items published before `consume` are buffered (ids only) and
 * dispatched once the queue has a consumer. `stop()` waits for running handlers; a handler that
 * rejects while the bus stops is not retried. One consumer per queue.
 *
 * @see docs/design/0005-bus.md
 */
export class LocalBus implements MessageBus {
  private readonly queues = new Map<string, LocalQueue>();
  private stopped = false;
  private stopping?: Promise<void>;
  private readonly concurrency: number;
  private readonly retryDelayMs: number;
  private readonly maxRetryDelayMs: number;
  /** Items in consumed queues whose handler has not succeeded yet (see heldItems). */
  private held = 0;
  private heldWaiters: HeldWaiter[] = [];

  constructor(private readonly options: LocalBusOptions = {}) {
    this.concurrency = options.concurrency ?? 256;
    this.retryDelayMs = options.retryDelayMs ?? 100;
    this.maxRetryDelayMs = options.maxRetryDelayMs ?? 5000;
  }

  /** Nothing to connect; idempotent. */
  async start(): Promise<void> {}

  /** Resolves at once: the item is in this process's memory (the store has it durably). */
  async publish(queue: string, item: WorkItem): Promise<void> {
    if (this.stopped) throw new BusError(BusErrorCode.OSPREY_ERR_BUS_STOPPED, `local bus is stopped; item ${item.id} not published to ${queue}`);
    // Copy: the caller may reuse its object, and the bus must hand out exactly what was published.
    const copy: WorkItem = item.ahead ? { id: item.id, key: item.key, ahead: true } : { id: item.id, key: item.key };
    const q = this.queue(queue);
    if (q.dispatcher) {
      this.held += 1;
      q.dispatcher.push(copy.key, copy);
    } else q.buffered.push(copy);
  }

  /**
   * Items published to queues that have a consumer and not handled yet (waiting, running or
   * waiting for a retry). Items of a queue nobody consumes (yet) are not counted: a recovery that
   * waits for this to drop must not wait for a channel that never started.
   */
  get heldItems(): number {
    return this.held;
  }

  /** Resolves once at most `limit` items are held ({@link heldItems}), or the bus stopped. */
  whenHeldAtMost(limit: number): Promise<void> {
    if (this.held <= limit || this.stopped) return Promise.resolve();
    return new Promise((resolve) => this.heldWaiters.push({ limit, resolve }));
  }

  async consume(queue: string, handler: WorkHandler, options: ConsumeOptions = {}): Promise<void> {
    if (this.stopped) throw new BusError(BusErrorCode.OSPREY_ERR_BUS_STOPPED, `local bus is stopped; cannot consume ${queue}`);
    const q = this.queue(queue);
    if (q.dispatcher) throw new Error(`queue ${queue} already has a consumer`);
    q.dispatcher = new KeyedDispatcher<WorkItem>({
      concurrency: options.concurrency ?? this.concurrency,
      run: (item) => handler(item).then(this.released),
      onFailure: (item, error, failures) => {
        const retryInMs = Math.min(this.maxRetryDelayMs, this.retryDelayMs * 2 ** Math.min(failures - 1, 20));
        // Ids and the error's text only: a handler's error never carries message content (STYLE §18).
        this.options.logger?.warn('bus handler failed; retrying the item', {
          queue,
          messageId: item.id,
          failures,
          retryInMs,
          error: error instanceof Error ? error.message : String(error),
        });
        return { retryInMs };
      },
    });
    const buffered = q.buffered;
    q.buffered = [];
    this.held += buffered.length;
    for (const item of buffered) q.dispatcher.push(item.key, item);
  }

  /** Stops dispatching (and retrying); resolves when running handlers have settled. Idempotent. */
  stop(): Promise<void> {
    this.stopped = true;
    const waiters = this.heldWaiters;
    this.heldWaiters = [];
    for (const waiter of waiters) waiter.resolve();
    this.stopping ??= Promise.all([...this.queues.values()].map((q) => q.dispatcher?.stop())).then(() => undefined);
    return this.stopping;
  }

  /**
   * For tests and orderly shutdown: resolves when every queue that has a consumer is empty, no
   * handler runs and no retry is pending. Items of queues without a consumer are not waited for.
   */
  async idle(): Promise<void> {
    // Loop: a handler may publish to another queue that was already seen idle.
    for (;;) {
      const dispatchers = [...this.queues.values()].flatMap((q) => (q.dispatcher ? [q.dispatcher] : []));
      await Promise.all(dispatchers.map((d) => d.idle()));
      if (this.stopped || dispatchers.every((d) => d.size === 0 && d.active === 0)) return;
    }
  }

  /** Items waiting or running on a queue (buffered ones included). */
  depth(queue: string): number {
    const q = this.queues.get(queue);
    if (!q) return 0;
    return q.buffered.length + (q.dispatcher?.size ?? 0);
  }

  /** An item's handler succeeded: it is no longer held. */
  private readonly released = (): void => {
    this.held -= 1;
    if (this.heldWaiters.length === 0) return;
    const still: HeldWaiter[] = [];
    for (const waiter of this.heldWaiters) {
      if (this.held <= waiter.limit) waiter.resolve();
      else still.push(waiter);
    }
    this.heldWaiters = still;
  };

  private queue(name: string): LocalQueue {
    let q = this.queues.get(name);
    if (!q) {
      q = { buffered: [] };
      this.queues.set(name, q);
    }
    return q;
  }
}
