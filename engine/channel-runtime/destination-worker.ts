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

export class DestinationWorker {
  private readonly batcher?: Batcher<StoredDelivery, OutboundResult>;
  private readonly abort = new AbortController();

  constructor(
    private readonly settings: DestinationSettings,
    private readonly sender: DeliverySender,
    private readonly store: MessageStore,
    private readonly logger: Logger,
  ) {
    if (settings.batch) {
      this.batcher = new Batcher<StoredDelivery, OutboundResult>({
        maxItems: settings.batch.maxItems,
        maxWaitMs: settings.batch.maxWaitMs,
        flush: (items) => this.sendBatch(items),
      });
    }
  }

  /** The bus handler: resolves when the delivery is SENT or DEAD_LETTERED (stored). */
  readonly handle = async (item: WorkItem): Promise<void> => {
    // Stopped: the item stays QUEUED in the store and is recovered at the next start.
    this.throwIfStopping();
    const delivery = await this.store.loadDelivery(item.id);
    // Already final: a redelivery after a crash or a duplicate publish. Nothing to do.
    if (!delivery || delivery.state !== 'QUEUED') return;

    let attempt = delivery.attempts;
    if (delivery.nextAttemptAt !== undefined) await this.sleep(delivery.nextAttemptAt - Date.now());
    const firstAttemptAt = Date.now();
    for (;;) {
      attempt += 1;
      const startedAt = Date.now();
      const result = this.batcher ? await this.batcher.add(delivery) : await this.sendOne(delivery);
      const decision = result.outcome === 'success' ? undefined : decideRetry(this.settings.retry, attempt, result, { firstAttemptAt });
      const record: AttemptRecord = {
        deliveryId: delivery.id,
        startedAt,
        durationMs: result.durationMs,
        request: result.sentRequest,
        response: result.status !== undefined ? { status: result.status, body: result.responseBody ?? '' } : undefined,
        error: result.error,
        outcome: !decision ? 'SENT' : decision.action === 'retry' ? 'RETRY' : 'DEAD_LETTERED',
        nextAttemptAt: decision?.action === 'retry' ? Date.now() + decision.delayMs : undefined,
      };
      if (decision?.action === 'dead-letter') {
        record.error = { code: decision.code, detail: `${result.error?.detail ?? `HTTP ${result.status}`} (attempt ${attempt})` };
      }
      await this.store.recordAttempts([record]);
      if (!decision) return;
      const meta = { channel: this.settings.channel, destination: this.settings.name, messageId: delivery.messageId, attempt, code: result.error?.code, status: result.status };
      if (decision.action === 'dead-letter') {
        this.logger.warn('delivery dead-lettered', meta);
        return;
      }
      this.logger.info('delivery will be retried', { ...meta, delayMs: decision.delayMs });
      await this.sleep(decision.delayMs);
    }
  };

  async stop(): Promise<void> {
    this.abort.abort();
    await this.batcher?.close();
    await this.sender.close();
  }

  private async sendOne(delivery: StoredDelivery): Promise<OutboundResult> {
    await this.settings.rateLimiter?.acquire();
    this.throwIfStopping();
    return this.sender.send(delivery.payload, delivery.id);
  }

  /** One request for the whole batch: the rate limit counts requests, as the ERP does. */
  private async sendBatch(items: StoredDelivery[]): Promise<OutboundResult> {
    await this.settings.rateLimiter?.acquire();
    this.throwIfStopping();
    const body = buildBatchBody(items.map((d) => ({ idempotencyKey: d.id, payload: d.payload })));
    return this.sender.send(body, batchIdempotencyKey(items.map((d) => d.id)));
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

  private sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      if (this.abort.signal.aborted) return reject(new EngineStopping());
      const timer = setTimeout(() => {
        this.abort.signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clearTimeout(timer);
        reject(new EngineStopping());
      };
      this.abort.signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
