// SPDX-License-Identifier: Apache-2.0
/**
 * One destination of one channel: takes its deliveries from the bus, one key at a time in order,
 * and sends each with the destination's rate limit, batching and retry policy. A delivery that is
 * waiting for a retry keeps its key busy, so later events of the same patient or appointment wait
 * behind it while other keys flow (docs/design/0004-delivery.md). Every attempt is stored.
 */
import type { OutboundResult } from '../adapter-sdk/index.ts';
import { Batcher, batchIdempotencyKey, buildBatchBody } from '../delivery/batcher.ts';
import type { RateLimiter } from '../delivery/rate-limiter.ts';
import { decideRetry, type RetryPolicy } from '../delivery/retry-policy.ts';
import type { WorkItem } from '../message-bus/message-bus.ts';
import type { AttemptRecord, MessageStore, StoredDelivery } from '../message-store/message-store.ts';
import type { Logger } from '../observability/logger.ts';
import { AHEAD_ROW_WAITS_MS, type PendingWrites } from './pending-writes.ts';

/** Sends one body with an idempotency key and classifies the outcome (the REST client, or a test double). */
export interface DeliverySender {
  send(body: unknown, idempotencyKey: string): Promise<OutboundResult>;
  close(): Promise<void> | void;
}

export interface DestinationSettings {
  channel: string;
  name: string;
  retry: RetryPolicy;
  rateLimiter?: RateLimiter;
  batch?: { maxItems: number; maxWaitMs: number };
}

/** Raised into the bus when the engine stops while a delivery waits: the work stays QUEUED in the store. */
export class EngineStopping extends Error {
  constructor() {
    super('engine stopping');
    this.name = 'EngineStopping';
  }
}

/**
 * Raised into the bus when it no longer holds the item (see WorkHandler's `released`) while its
 * delivery waits for a retry: the broker delivers it again, perhaps to another instance, which
 * continues from the stored attempts. Waiting on would race that delivery.
 */
export class WorkReleased extends Error {
  constructor() {
    super('work item released by the bus');
    this.name = 'WorkReleased';
  }
}

export class DestinationWorker {
  private readonly batcher?: Batcher<StoredDelivery, void>;
  private readonly abort = new AbortController();

  constructor(
    private readonly settings: DestinationSettings,
    private readonly sender: DeliverySender,
    private readonly store: MessageStore,
    private readonly logger: Logger,
    /** Deliveries this process is writing or has just written. */
    private readonly pendingWrites?: PendingWrites,
  ) {
    if (settings.batch) {
      this.batcher = new Batcher<StoredDelivery, void>({
        maxItems: settings.batch.maxItems,
        maxWaitMs: settings.batch.maxWaitMs,
        flush: (items) => this.sendBatch(items),
      });
    }
  }

  /** The bus handler: resolves when the delivery is SENT or DEAD_LETTERED (stored). */
  readonly handle = async (item: WorkItem, released?: AbortSignal): Promise<void> => {
    // Stopped: the item stays QUEUED in the store and is recovered at the next start.
    this.throwIfStopping();
    const delivery = await this.load(item);
    // Already final: a redelivery after a crash or a duplicate publish. Nothing to do. None at
    // all: a write that failed or was a resend, or a delivery a replay replaced.
    if (!delivery || delivery.state !== 'QUEUED') return;

    // A batched destination retries whole batches (see sendBatch), so the batch keeps one key.
    if (this.batcher) return this.batcher.add(delivery);
    await this.deliverWithRetries([delivery], (d) => this.sendOne(d[0]!, released), released);
  };

  /**
   * The delivery an item points at, as stored, once its write is over (see pending-writes.ts); the
   * key waits meanwhile, so its later deliveries stay behind it.
   */
  private async load(item: WorkItem): Promise<StoredDelivery | undefined> {
    const written = await this.pendingWrites?.settled(item.id);
    // Only an item published ahead of the write is known to point at nothing: the write may have
    // committed after all (its answer lost), and the delivery be published again from the store.
    if (written && !written.stored && item.ahead) return undefined;
    if (written?.stored && written.delivery) return written.delivery;
    const delivery = await this.store.loadDelivery(item.id);
    if (delivery || !item.ahead || written) return delivery;
    // Published by another instance while it was writing the row, which may not have committed yet.
    for (const ms of AHEAD_ROW_WAITS_MS) {
      await this.sleep(ms);
      const row = await this.store.loadDelivery(item.id);
      if (row) return row;
    }
    return undefined;
  }

  /**
   * Sends `items` (one delivery, or one batch) until the destination accepts them, the policy
   * gives up, or the engine stops. Every try is stored as an attempt of every item. The request
   * is the same on every try — same body, same Idempotency-Key — so the receiver can apply it once.
   */
  private async deliverWithRetries(items: StoredDelivery[], send: (items: StoredDelivery[]) => Promise<OutboundResult>, released?: AbortSignal): Promise<void> {
    // After a restart, continue where the stored attempts left off: count, next attempt time, and
    // the retry window, which counts from the first attempt however often the engine restarted.
    let attempt = Math.max(...items.map((d) => d.attempts));
    const nextAttemptAt = Math.max(...items.map((d) => d.nextAttemptAt ?? 0));
    const firstAttemptAt = attempt > 0 ? await this.firstAttemptAt(items) : undefined;
    // A timer can fire a millisecond before the wall clock reaches its time: wait until it has.
    while (Date.now() < nextAttemptAt) await this.sleep(nextAttemptAt - Date.now(), released);
    const windowStart = firstAttemptAt ?? Date.now();
    for (;;) {
      attempt += 1;
      const startedAt = Date.now();
      const result = await send(items);
      const decision = result.outcome === 'success' ? undefined : decideRetry(this.settings.retry, attempt, result, { firstAttemptAt: windowStart });
      const error =
        decision?.action === 'dead-letter'
          ? { code: decision.code, detail: `${result.error?.detail ?? `HTTP ${result.status}`} (attempt ${attempt})` }
          : result.error;
      const records: AttemptRecord[] = items.map((d) => ({
        deliveryId: d.id,
        startedAt,
        durationMs: result.durationMs,
        request: result.sentRequest,
        response: result.status !== undefined ? { status: result.status, body: result.responseBody ?? '' } : undefined,
        error,
        outcome: !decision ? 'SENT' : decision.action === 'retry' ? 'RETRY' : 'DEAD_LETTERED',
        nextAttemptAt: decision?.action === 'retry' ? Date.now() + decision.delayMs : undefined,
      }));
      await this.store.recordAttempts(records);
      if (!decision) return;
      const meta = {
        channel: this.settings.channel,
        destination: this.settings.name,
        messageId: items.length === 1 ? items[0]!.messageId : undefined,
        batchSize: items.length > 1 ? items.length : undefined,
        attempt,
        code: result.error?.code,
        status: result.status,
      };
      if (decision.action === 'dead-letter') {
        this.logger.warn('delivery dead-lettered', meta);
        return;
      }
      this.logger.info('delivery will be retried', { ...meta, delayMs: decision.delayMs });
      await this.sleep(decision.delayMs, released);
    }
  }

  /** The earliest stored first attempt of `items` (a batch shares its attempts). */
  private async firstAttemptAt(items: StoredDelivery[]): Promise<number | undefined> {
    const starts = await Promise.all(items.map((d) => (d.attempts > 0 ? this.store.firstAttemptAt(d.id) : undefined)));
    const known = starts.filter((t): t is number => t !== undefined);
    return known.length > 0 ? Math.min(...known) : undefined;
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.batcher?.close();
    await this.sender.close();
  }

  private async sendOne(delivery: StoredDelivery, released?: AbortSignal): Promise<OutboundResult> {
    await this.settings.rateLimiter?.acquire();
    this.throwIfStopping();
    if (released?.aborted) throw new WorkReleased();
    return this.sender.send(delivery.payload, delivery.id);
  }

  /**
   * One request for the whole batch (the rate limit counts requests, as the ERP does), retried as a
   * unit: a batch re-formed on each retry would get a new batch key and the receiver could not
   * recognise the repeat. Batches go one at a time, in order, so per-key order holds.
   */
  private async sendBatch(items: StoredDelivery[]): Promise<void> {
    const body = buildBatchBody(items.map((d) => ({ idempotencyKey: d.id, payload: d.payload })));
    const key = batchIdempotencyKey(items.map((d) => d.id));
    await this.deliverWithRetries(items, async () => {
      await this.settings.rateLimiter?.acquire();
      this.throwIfStopping();
      return this.sender.send(body, key);
    });
  }

  /**
   * No request starts once the worker is stopping: the sender is being closed, and a send now
   * would come back as a failure ("client is closed") that never reached the destination, yet be
   * recorded as an attempt — spending the retry budget, or dead-lettering a delivery on its last
   * attempt, on every clean stop under load. The bus keeps delivering items until it is stopped
   * itself, after the channels; those items stay QUEUED in the store and are recovered at start.
   */
  private throwIfStopping(): void {
    if (this.abort.signal.aborted) throw new EngineStopping();
  }

  /** Waits `ms`; rejects at once when the engine stops or the bus releases the item. */
  private sleep(ms: number, released?: AbortSignal): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      if (this.abort.signal.aborted) return reject(new EngineStopping());
      if (released?.aborted) return reject(new WorkReleased());
      const done = (): void => {
        clearTimeout(timer);
        this.abort.signal.removeEventListener('abort', onStop);
        released?.removeEventListener('abort', onReleased);
      };
      const timer = setTimeout(() => {
        done();
        resolve();
      }, ms);
      const onStop = (): void => {
        done();
        reject(new EngineStopping());
      };
      const onReleased = (): void => {
        done();
        reject(new WorkReleased());
      };
      this.abort.signal.addEventListener('abort', onStop, { once: true });
      released?.addEventListener('abort', onReleased, { once: true });
    });
  }
}
