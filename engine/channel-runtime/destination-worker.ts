// SPDX-License-Identifier: Apache-2.0
/**
 * One destination of one channel: takes its deliveries from the bus, one key at a time in order,
 * and sends each with the destination's rate limit, batching and retry policy. A delivery that is
 * waiting for a retry keeps its key busy, so later events of the same patient or appointment wait
 * behind it while other keys flow (docs/design/0004-delivery.md). Every attempt is stored; a batch
 * request once, each item's attempt keeping its own element of it (0004 § Batching).
 */
import { randomUUID } from 'node:crypto';
import type { OutboundResult } from '../adapter-sdk/index.ts';
import { Batcher, batchIdempotencyKey, buildBatchBody, type BatcherTimers } from '../delivery/batcher.ts';
import type { RateLimiter } from '../delivery/rate-limiter.ts';
import { decideRetry, type RetryPolicy } from '../delivery/retry-policy.ts';
import type { WorkItem } from '../message-bus/message-bus.ts';
import type { AttemptRecord, BatchAttemptRecord, MessageStore, StoredDelivery } from '../message-store/message-store.ts';
import type { Logger } from '../observability/logger.ts';
import { AHEAD_ROW_WAITS_MS, type PendingWrites } from './pending-writes.ts';

/** Sends one body with an idempotency key and classifies the outcome (the REST client, an SFTP writer, a test double). */
export type { DeliverySender } from '../adapter-sdk/destination-definition.ts';
import type { DeliverySender } from '../adapter-sdk/destination-definition.ts';

export interface DestinationSettings {
  channel: string;
  name: string;
  retry: RetryPolicy;
  rateLimiter?: RateLimiter;
  batch?: { maxItems: number; maxWaitMs: number };
  /**
   * Where the worker's waits (a retry's backoff, an ahead item's row) and its batcher's maxWait
   * timer are set: the process's timers unless a test injects its own (time is then the test's
   * to advance).
   */
  timers?: BatcherTimers;
}

const processTimers: BatcherTimers = {
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

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

/**
 * One delivery being sent, and the end of its bus handler. A batch member's handler can end before
 * its batch does (its item released by the bus), so each member settles on its own.
 */
interface Member {
  delivery: StoredDelivery;
  released?: AbortSignal;
  /** True while a request holding this member is under way: it cannot leave then. */
  sending: boolean;
  readonly done: Promise<void>;
  /** Settles `done`; later calls do nothing. */
  settle(error?: unknown): void;
}

function member(delivery: StoredDelivery, released: AbortSignal | undefined): Member {
  let settle!: (error?: unknown) => void;
  const done = new Promise<void>((resolve, reject) => {
    settle = (error) => (error === undefined ? resolve() : reject(error));
  });
  return released ? { delivery, released, sending: false, done, settle } : { delivery, sending: false, done, settle };
}

/** One request as sent: its result, and for a batch its key and each member's element of the body. */
interface Sent {
  result: OutboundResult;
  batch?: { key: string; elements: string[] };
}

/** One try's outcome, as stored. */
interface Tried {
  /** Undefined when the destination accepted it. */
  decision: ReturnType<typeof decideRetry> | undefined;
  result: OutboundResult;
  nextAttemptAt: number | undefined;
  batch: boolean;
  batchAttemptId: string | undefined;
}

export class DestinationWorker {
  private readonly batcher?: Batcher<Member, void>;
  private readonly abort = new AbortController();
  /**
   * Batch members by the bus signal that releases them (one per partition subscription): one
   * listener per signal, not one per member, which would pile up on a busy partition.
   */
  private readonly releasable = new WeakMap<AbortSignal, Set<Member>>();

  constructor(
    private readonly settings: DestinationSettings,
    private readonly sender: DeliverySender,
    private readonly store: MessageStore,
    private readonly logger: Logger,
    /** Deliveries this process is writing or has just written. */
    private readonly pendingWrites?: PendingWrites,
  ) {
    if (settings.batch) {
      this.batcher = new Batcher<Member, void>({
        maxItems: settings.batch.maxItems,
        maxWaitMs: settings.batch.maxWaitMs,
        flush: (members) => this.sendBatch(members),
        ...(settings.timers ? { timers: settings.timers } : {}),
      });
    }
  }

  /**
   * The bus handler: resolves when the delivery is SENT or DEAD_LETTERED (stored); rejects with
   * WorkReleased when the bus released the item while it waited (single or batched alike).
   */
  readonly handle = async (item: WorkItem, released?: AbortSignal): Promise<void> => {
    // Stopped: the item stays QUEUED in the store and is recovered at the next start.
    this.throwIfStopping();
    const delivery = await this.load(item);
    // Already final: a redelivery after a crash or a duplicate publish. Nothing to do. None at
    // all: a write that failed or was a resend, or a delivery a replay replaced.
    if (!delivery || delivery.state !== 'QUEUED') return;

    if (released?.aborted) throw new WorkReleased();
    const m = member(delivery, released);
    // A batched destination retries whole batches (see sendBatch), so the batch keeps one key.
    let run: Promise<void>;
    if (this.batcher) {
      this.watchRelease(m);
      run = this.batcher.add(m);
    } else {
      run = this.deliverWithRetries([m], async ([one]) => ({ result: await this.sender.send(one!.delivery.payload, one!.delivery.id) }));
    }
    run.then(
      () => m.settle(),
      (err: unknown) => m.settle(err ?? new Error('delivery failed')),
    );
    return m.done;
  };

  /**
   * Lets a batch member go as soon as the bus releases its item, wherever it waits — in a batch
   * being gathered, in a batch queued behind the one being retried, or in that one's retry wait
   * — but never during a request holding it (see deliverWithRetries, which lets it go after).
   * Otherwise a partition hand-over would wait for every batch ahead of it to be done.
   */
  private watchRelease(m: Member): void {
    const signal = m.released;
    if (!signal) return;
    let members = this.releasable.get(signal);
    if (!members) {
      const set = (members = new Set());
      this.releasable.set(signal, set);
      signal.addEventListener(
        'abort',
        () => {
          for (const x of set) if (!x.sending) x.settle(new WorkReleased());
        },
        { once: true },
      );
    }
    members.add(m);
    const forget = (): void => void members.delete(m);
    m.done.then(forget, forget);
  }

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
   * Sends `members` (one delivery, or one batch) until the destination accepts them, the policy
   * gives up, the engine stops, or the bus releases them. Every try is stored: one attempt per
   * member, and a batch's request once ({@link BatchAttemptRecord}). The request is the same on
   * every try — same body, same Idempotency-Key — so the receiver can apply it once.
   *
   * A member whose item the bus released (a partition hand-over, a closed channel) leaves at the
   * next wait or before the next try — never while a request holding it is under way, so that
   * the instance that gets it next cannot send it alongside — and its handler rejects with
   * WorkReleased, as a single delivery's does. The others carry on without it: rejecting them
   * would count against their bus delivery limit.
   */
  private async deliverWithRetries(members: Member[], send: (live: Member[]) => Promise<Sent>): Promise<void> {
    let live = members;
    /** Lets the released members go; false when none is left. */
    const prune = (): boolean => {
      const kept: Member[] = [];
      for (const m of live) {
        if (m.released?.aborted) m.settle(new WorkReleased());
        else kept.push(m);
      }
      live = kept;
      return live.length > 0;
    };
    /** Waits until `time`, letting members go as the bus releases them; false when none is left. */
    const waitUntil = async (time: number): Promise<boolean> => {
      // A timer can fire a millisecond before the wall clock reaches its time: wait until it has.
      while (prune() && Date.now() < time) {
        const signals = live.flatMap((m) => (m.released ? [m.released] : []));
        try {
          await this.sleep(time - Date.now(), signals.length === 0 ? undefined : signals.length === 1 ? signals[0] : AbortSignal.any(signals));
        } catch (err) {
          if (!(err instanceof WorkReleased)) throw err;
        }
      }
      return live.length > 0;
    };

    // After a restart, continue where the stored attempts left off: count, next attempt time, and
    // the retry window, which counts from the first attempt however often the engine restarted.
    const items = live.map((m) => m.delivery);
    let attempt = Math.max(...items.map((d) => d.attempts));
    const nextAttemptAt = Math.max(...items.map((d) => d.nextAttemptAt ?? 0));
    const firstAttemptAt = attempt > 0 ? await this.firstAttemptAt(items) : undefined;
    if (!(await waitUntil(nextAttemptAt))) return;
    const windowStart = firstAttemptAt ?? Date.now();
    for (;;) {
      attempt += 1;
      // The rate limit counts requests (as the ERP does): one per batch.
      await this.settings.rateLimiter?.acquire();
      this.throwIfStopping();
      // Released while the rate limit held the request back: they leave before it does.
      if (!prune()) return;
      const startedAt = Date.now();
      // Held from the request until its attempts are stored: whoever gets a member next must find them.
      for (const m of live) m.sending = true;
      const sending = live;
      let decided: Tried;
      try {
        decided = await this.tryOnce(live, send, attempt, startedAt, windowStart);
      } finally {
        for (const m of sending) m.sending = false;
      }
      const { decision, result } = decided;
      if (!decision) return;
      const meta = {
        channel: this.settings.channel,
        destination: this.settings.name,
        messageId: decided.batch ? undefined : live[0]!.delivery.messageId,
        batchSize: decided.batch ? live.length : undefined,
        batchAttemptId: decided.batchAttemptId,
        attempt,
        code: result.error?.code,
        status: result.status,
      };
      if (decision.action === 'dead-letter') {
        this.logger.warn('delivery dead-lettered', meta);
        return;
      }
      this.logger.info('delivery will be retried', { ...meta, delayMs: decision.delayMs });
      if (!(await waitUntil(decided.nextAttemptAt!))) return;
    }
  }

  /** One try: sends, decides (retry or not), and stores the attempts. */
  private async tryOnce(live: Member[], send: (live: Member[]) => Promise<Sent>, attempt: number, startedAt: number, windowStart: number): Promise<Tried> {
    const { result, batch } = await send(live);
    const decision = result.outcome === 'success' ? undefined : decideRetry(this.settings.retry, attempt, result, { firstAttemptAt: windowStart });
    const error =
      decision?.action === 'dead-letter'
        ? { code: decision.code, detail: `${result.error?.detail ?? `HTTP ${result.status}`} (attempt ${attempt})` }
        : result.error;
    const outcome: AttemptRecord['outcome'] = !decision ? 'SENT' : decision.action === 'retry' ? 'RETRY' : 'DEAD_LETTERED';
    const nextAttemptAt = decision?.action === 'retry' ? Date.now() + decision.delayMs : undefined;
    const { body: _body, ...requestHead } = result.sentRequest;
    const records: AttemptRecord[] = live.map((m, i) => ({
      deliveryId: m.delivery.id,
      startedAt,
      durationMs: result.durationMs,
      // A batch member keeps its own element of the body, and the status of the answer: the
      // batch's answer, which may name every patient of the batch, is kept once, with the batch.
      request: batch ? { ...requestHead, body: batch.elements[i]! } : result.sentRequest,
      response: result.status === undefined ? undefined : batch ? { status: result.status } : { status: result.status, body: result.responseBody ?? '' },
      error,
      outcome,
      nextAttemptAt,
    }));
    const batchRecord: BatchAttemptRecord | undefined = batch && {
      id: randomUUID(),
      key: batch.key,
      size: live.length,
      startedAt,
      durationMs: result.durationMs,
      request: requestHead,
      response: result.status === undefined ? undefined : { status: result.status, body: result.responseBody ?? '' },
      error,
      outcome,
      nextAttemptAt,
    };
    await this.store.recordAttempts(records, batchRecord);
    return { decision, result, nextAttemptAt, batch: batch !== undefined, batchAttemptId: batchRecord?.id };
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

  /**
   * One request for the whole batch, retried as a unit: a batch re-formed on each retry would get
   * a new batch key and the receiver could not recognise the repeat (a member the bus releases
   * leaves it, see deliverWithRetries; every element keeps its own key). Batches go one at a
   * time, in order, so per-key order holds.
   */
  private async sendBatch(members: Member[]): Promise<void> {
    await this.deliverWithRetries(members, async (live) => {
      const body = buildBatchBody(live.map((m) => ({ idempotencyKey: m.delivery.id, payload: m.delivery.payload })));
      const key = batchIdempotencyKey(live.map((m) => m.delivery.id));
      const result = await this.sender.send(body, key);
      // The body is sent as JSON.stringify(body): element i of it is exactly this text.
      return { result, batch: { key, elements: body.map((e) => JSON.stringify(e)) } };
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
      const timers = this.settings.timers ?? processTimers;
      const done = (): void => {
        timers.clearTimer(timer);
        this.abort.signal.removeEventListener('abort', onStop);
        released?.removeEventListener('abort', onReleased);
      };
      const timer = timers.setTimer(() => {
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
