// SPDX-License-Identifier: Apache-2.0
/**
 * The outbox's way back to the bus. The store is the truth and the buffer, the bus only the signal
 * (docs/design/0005-bus.md, "outbox"): work that is stored but not (known to be) on the bus is
 * published from the store, oldest first, so that nothing acknowledged waits for ever and a key's
 * order holds. Three occasions:
 *
 * - start-up: everything unfinished, before any source accepts a message — on a bus that holds
 *   its items in memory (the local one), only a page's worth; the rest follows page by page as the
 *   consumers drain them, with new work waiting in the store behind it (see recoverAtStart);
 * - a publish that failed or was not confirmed in time: from then on nothing is published directly
 *   (a later item of a key would overtake the earlier ones waiting in the store); passes over the
 *   store publish everything pending until a pass saw nothing deferred (the backlog ends);
 * - the bus connected again after an outage, or another engine instance went silent: what was
 *   stored around then, by whichever instance, may never have reached the bus (docs/design/0006 §3).
 *
 * Duplicates of work already on the bus are harmless: the stages skip finished work.
 */
import type { MessageBus, WorkItem } from '../message-bus/message-bus.ts';
import { queueNames } from '../message-bus/message-bus.ts';
import { publishInOrder } from '../message-bus/publish-in-order.ts';
import { PENDING_PAGE_SIZE, pendingWorkPages, type MessageStore, type PendingDelivery, type PendingMessage } from '../message-store/message-store.ts';
import type { Logger } from '../observability/logger.ts';

/** How long an MLLP ACK may wait for the bus to confirm the message's work item. */
const INGEST_PUBLISH_WAIT_MS = 2_000;
/** How often the outbox recovery tries again while the bus is unavailable. */
const OUTBOX_RETRY_MS = 2_000;
/**
 * After a broker outage, work changed from this long before the connection was lost is published
 * again: what was stored around and during the outage, by this instance or one that died (a
 * publish waits ≤ INGEST_PUBLISH_WAIT_MS for its confirm; the rest is room for clocks that differ
 * between machines). Older work reached the bus before the outage; publishing the whole backlog
 * again (a long ERP outage can leave a large one) would only add duplicates, on every instance.
 * The same margin before an instance that went silent was last heard: it stops announcing itself
 * when it loses the broker, and its unpublished work is from then on.
 */
const REPUBLISH_MARGIN_MS = 60_000;
/** Recovery publishes awaiting their confirms at once (see message-bus/publish-in-order.ts). */
const RECOVERY_PUBLISH_WINDOW = 500;
/** Passes of one recovery round before it waits OUTBOX_RETRY_MS (new work keeps arriving). */
const OUTBOX_MAX_PASSES = 20;

/** What {@link OutboxRecovery} works with. */
export interface OutboxRecoveryDeps {
  store: MessageStore;
  bus: MessageBus;
  logger: Pick<Logger, 'info' | 'warn'>;
  /** Whether a channel runs here: the work of the others (failed, removed) stays in the store. */
  isRunning(channel: string): boolean;
  /** Rows per page read from the store (tests); default: the store's page size. */
  pageSize?: number;
}

/** One page of unfinished work, as {@link pendingWorkPages} reads it. */
type PendingWorkPage = { deliveries: PendingDelivery[]; messages: PendingMessage[] };

/** Counts of work items put back on the bus by one recovery. */
export interface Recovered {
  messages: number;
  deliveries: number;
}

/**
 * Publishes stored work on the bus, directly while the bus takes it and from the store (in store
 * order) while it does not. One per engine.
 */
export class OutboxRecovery {
  /** Set when a publish failed: stored messages wait in the store until the bus takes them again. */
  private backlog = false;
  /** Work not published because of the backlog (or a failed publish) since the recovery pass began. */
  private deferredDuringBacklog = 0;
  private timer?: NodeJS.Timeout;
  /** The current backlog's scope: work changed since then (after a reconnect); unset: all of it. */
  private since?: number;
  private stopped = false;
  private readonly pageSize: number;
  /** Resolved by {@link consumersStarted}: the start-up recovery's rest may go on. */
  private startConsumers!: () => void;
  private readonly consumersRunning = new Promise<void>((resolve) => (this.startConsumers = resolve));

  constructor(private readonly deps: OutboxRecoveryDeps) {
    this.pageSize = deps.pageSize ?? PENDING_PAGE_SIZE;
  }

  /** True while stored work waits for the recovery instead of being published directly. */
  get inBacklog(): boolean {
    return this.backlog;
  }

  /**
   * Listens to the bus for the occasions on which work may be in the store and nowhere else: a
   * reconnect after an outage, another instance gone silent.
   */
  watchBus(): void {
    const { bus } = this.deps;
    // After a broker outage, every instance publishes what the store holds unfinished, not only
    // the one that deferred work: an instance that stored (and ACKed) messages while the broker
    // was away and then died would otherwise leave them until some instance starts. Duplicates of
    // work already on the bus are skipped by the stages (docs/design/0006 §3).
    bus.onReconnected?.((lostAt) =>
      this.startBacklog('bus connected again', {
        announce: 'bus connected again: publishing the unfinished work stored around the outage (this instance’s and any other’s)',
        changedSince: lostAt - REPUBLISH_MARGIN_MS,
      }),
    );
    // An instance that lost the broker alone (the others kept it) and then died leaves the work it
    // stored and ACKed meanwhile in the store, with no reconnect anywhere to publish it: one
    // survivor publishes what is unfinished from shortly before it was last heard.
    bus.onMemberLost?.((lastHeardAt) =>
      this.startBacklog('an engine instance went silent', {
        announce: 'an engine instance went silent: publishing the unfinished work stored since shortly before it was last heard',
        changedSince: lastHeardAt - REPUBLISH_MARGIN_MS,
      }),
    );
  }

  /**
   * Puts work that is already in the store (a message for its pipeline, a delivery for its
   * destination) on the bus. An ACK waits for this, so it never waits long: when the bus does not
   * confirm in time the work is durable anyway, and it is left to the outbox recovery. While such a
   * backlog exists nothing is published directly — a later message or delivery of a key would
   * otherwise overtake the earlier ones that wait in the store; the recovery publishes everything
   * pending in store order instead, and ends the backlog only after a pass during which nothing was
   * deferred. Resolves true when the item is on the bus, false when it is left to the recovery.
   */
  async publish(queue: string, item: WorkItem): Promise<boolean> {
    const { bus } = this.deps;
    if (this.backlog) {
      this.deferredDuringBacklog += 1;
      return false;
    }
    const publish = bus.publish(queue, item);
    // A bus that cannot disconnect (the local one) answers at once: no timer on the hot path.
    if (bus.connected === undefined) return publish.then(() => true);
    let timer: NodeJS.Timeout | undefined;
    const bounded = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('bus did not confirm in time')), INGEST_PUBLISH_WAIT_MS);
    });
    try {
      await Promise.race([publish, bounded]);
      return true;
    } catch (err) {
      // A publish that confirms later is a harmless duplicate: the stages skip finished work.
      publish.catch(() => undefined);
      this.deferredDuringBacklog += 1;
      this.startBacklog((err as Error).message);
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Start-up: re-queues the running channels' unfinished work, oldest first, before any source
   * accepts a message (a message that arrives after a restart must queue behind the recovered work
   * of its key). A broker holds what it is given on disk: everything is published now. A bus that
   * holds its items in memory (the local one) gets a page's worth now; when the store has more,
   * the backlog begins — new work waits in the store — and the rest is published a page at a time
   * once the consumers have started ({@link consumersStarted}) and drained all but a page's worth,
   * so that the bus never holds more than two pages' worth of work items (and the recovery one page
   * read ahead). Then the backlog passes publish what waited meanwhile, as after a bus outage, and
   * the backlog ends.
   * @returns how many of each were published before it returned.
   */
  async recoverAtStart(): Promise<Recovered> {
    if (!this.deps.bus.whenHeldAtMost) return this.recoverPending();
    const recovered: Recovered = { messages: 0, deliveries: 0 };
    const startedAt = Date.now();
    const pages = this.pages();
    for (;;) {
      const next = await pages.next();
      if (next.done) return recovered;
      if (recovered.deliveries + recovered.messages >= this.pageSize) {
        this.backlog = true;
        this.deferredDuringBacklog = 0;
        this.since = undefined;
        this.deps.logger.info('more unfinished work in the store than the local bus holds at once: the rest is published as it drains, new work waits in the store behind it', {
          pageSize: this.pageSize,
        });
        void this.continueAtStart(next.value, pages, startedAt, { ...recovered });
        return recovered;
      }
      await this.publishPage(next.value, recovered);
    }
  }

  /** The engine's consumers run: the start-up recovery may go on (see recoverAtStart). */
  consumersStarted(): void {
    this.startConsumers();
  }

  /**
   * Re-queues the running channels' unfinished work (changed since `changedSince`, when given),
   * page by page, in the order of {@link pendingWorkPages}: oldest first, deliveries before messages.
   * On a bus that holds its items in memory, each page waits until at most a page's worth is held.
   * @returns how many of each were published.
   */
  private async recoverPending(changedSince?: number): Promise<Recovered> {
    const published: Recovered = { messages: 0, deliveries: 0 };
    for await (const page of this.pages(changedSince)) {
      await this.deps.bus.whenHeldAtMost?.(this.pageSize);
      await this.publishPage(page, published);
    }
    return published;
  }

  /** No further pass starts (the engine stops); a running one ends with its page. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.startConsumers(); // a start-up recovery still waiting for them ends
  }

  private pages(changedSince?: number): AsyncGenerator<PendingWorkPage> {
    return pendingWorkPages(this.deps.store, { pageSize: this.pageSize, ...(changedSince === undefined ? {} : { changedSince }) });
  }

  /** Publishes one page's work of the running channels, in its order; counts it in `published`. */
  private async publishPage(page: PendingWorkPage, published: Recovered): Promise<void> {
    const { bus, isRunning } = this.deps;
    const publish = (queue: string, item: WorkItem) => bus.publish(queue, item);
    const deliveries = page.deliveries.filter((d) => isRunning(d.channel));
    const messages = page.messages.filter((m) => isRunning(m.channel));
    await publishInOrder(publish, deliveries.map((d) => [queueNames.delivery(d.channel, d.destination), { id: d.id, key: d.orderKey }]), RECOVERY_PUBLISH_WINDOW);
    await publishInOrder(publish, messages.map((m) => [queueNames.pipeline(m.channel), { id: m.id, key: m.orderKey }]), RECOVERY_PUBLISH_WINDOW);
    published.deliveries += deliveries.length;
    published.messages += messages.length;
  }

  /**
   * The rest of a start-up recovery on a bus that holds its items in memory (see recoverAtStart):
   * `page` read already, then the rest of `pages`, each published once at most a page's worth is
   * held. Work stored meanwhile waited in the store (the backlog): the backlog passes publish it,
   * from when the recovery began.
   */
  private async continueAtStart(page: PendingWorkPage, pages: AsyncGenerator<PendingWorkPage>, startedAt: number, recovered: Recovered): Promise<void> {
    const { bus, logger } = this.deps;
    try {
      await this.consumersRunning;
      let next: IteratorResult<PendingWorkPage> = { done: false, value: page };
      while (!next.done) {
        await bus.whenHeldAtMost!(this.pageSize);
        if (this.stopped) return;
        await this.publishPage(next.value, recovered);
        next = await pages.next();
      }
      logger.info('recovered the rest of the unfinished work from the store', recovered);
      if (this.deferredDuringBacklog === 0) {
        this.backlog = false;
        return;
      }
      this.since = startedAt - REPUBLISH_MARGIN_MS;
    } catch (err) {
      if (this.stopped) return;
      logger.warn('start-up recovery failed; the outbox recovery takes over', { error: (err as Error).message });
      this.since = undefined;
    }
    await this.recoverBacklog();
  }

  /**
   * Enters (or widens) the backlog: `changedSince` limits the recovery to work changed since then
   * (a reconnect); without it, a publish of this instance failed and everything unfinished is due.
   */
  private startBacklog(reason: string, scope: { announce?: string; changedSince?: number } = {}): void {
    if (!this.backlog) {
      this.deps.logger.warn(scope.announce ?? 'bus unavailable: messages are stored and acknowledged, and published from the store when it is back', { reason });
      this.since = scope.changedSince;
    } else if (scope.changedSince === undefined || this.since === undefined) this.since = undefined;
    else this.since = Math.min(this.since, scope.changedSince);
    this.backlog = true;
    this.schedulePass();
  }

  private schedulePass(): void {
    if (this.timer || this.stopped) return;
    this.timer = setTimeout(() => void this.recoverBacklog(), OUTBOX_RETRY_MS);
    this.timer.unref();
  }

  /**
   * Publishes every message and delivery the store has as unfinished (changed since `since` when a
   * reconnect set it), oldest first, pass after pass, until a whole pass (from before its snapshot
   * to its last publish) saw no work deferred: only then is everything that waited in the store on
   * the bus, in order, and the backlog ends. Duplicates of work already on the bus are skipped by
   * the stages' state checks.
   */
  private async recoverBacklog(): Promise<void> {
    this.timer = undefined;
    if (this.stopped) return;
    if (this.deps.bus.connected === false) return this.schedulePass();
    try {
      let published = 0;
      for (let pass = 0; pass < OUTBOX_MAX_PASSES; pass++) {
        this.deferredDuringBacklog = 0;
        const { messages, deliveries } = await this.recoverPending(this.since);
        published += messages + deliveries;
        if (this.deferredDuringBacklog === 0) {
          this.backlog = false;
          this.since = undefined;
          this.deps.logger.info('bus available again: the stored backlog is published', { published, passes: pass + 1 });
          return;
        }
      }
      this.schedulePass(); // work kept arriving during the recovery passes
    } catch (err) {
      this.deps.logger.warn('outbox recovery pass failed; trying again', { error: (err as Error).message });
      this.schedulePass();
    }
  }
}
