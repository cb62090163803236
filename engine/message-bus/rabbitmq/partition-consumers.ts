// SPDX-License-Identifier: Apache-2.0
/**
 * Consuming: per logical queue, one subscription per partition queue, each on a channel of its own
 * (single active consumer: only one consumer across every instance takes from a partition at a
 * time). Within a partition the handler runs one key at a time, in order, different keys
 * concurrently (the keyed dispatcher the local bus uses too).
 *
 * Which partitions an instance subscribes to, and when, follows the membership rules
 * (membership.ts): its home partitions at once, the others later as standby. A partition held as
 * former home is handed over (running handlers finish, the channel closes, the unstarted
 * deliveries go back to the broker in order) once its new home waits in line on it.
 *
 * Failures: a handler that rejects is retried in process after a backoff, holding its key (a nack
 * with requeue would let the key's later items, already prefetched, overtake it); after
 * `deliveryLimit` attempts (broker redeliveries included; transient errors such as an unreachable
 * store not counted, see onHandlerFailure) the item is rejected without requeue and the broker
 * dead-letters it to `<prefix>.<queue>.dlq`. The quorum queue's own `x-delivery-limit`
 * dead-letters an item that kills its consumer again and again (a crash loop). Business retry
 * delays are not the bus's job: a destination worker waits inside its handler, holding its key.
 */
import type { Channel, ConsumeMessage } from 'amqplib';
import { ErrorCodes, isOspreyError, type ErrorCode } from '../../errors/error-codes.ts';
import type { Logger } from '../../observability/logger.ts';
import { errorText } from '../bus-errors.ts';
import { KeyedDispatcher } from '../keyed-dispatcher.ts';
import type { ConsumeOptions, WorkHandler, WorkItem } from '../message-bus.ts';
import type { TopologyNames } from '../rabbitmq-topology.ts';
import { safely } from './amqplib-quirks.ts';
import type { BrokerConnection } from './connection.ts';
import type { Membership } from './membership.ts';
import { parseWorkItem } from './work-item-content.ts';

type PartitionStatus = 'idle' | 'subscribing' | 'subscribed' | 'yielding';

/** One partition queue of a consumed logical queue, as this instance holds it. */
export interface PartitionState {
  readonly consumer: ConsumerState;
  readonly index: number;
  readonly queueName: string;
  channel?: Channel;
  /** Bumped whenever the channel is dropped: deliveries of an older epoch must not run or be acked. */
  epoch: number;
  status: PartitionStatus;
  /** Whether this instance subscribed as the partition's home or as a standby. */
  role: 'home' | 'standby';
  /** When the current subscription was made. */
  subscribedAt?: number;
  /** When the current subscription got its first delivery: active since then (single active consumer). */
  activeSince?: number;
  /** Handlers running on this partition's deliveries. */
  inFlight: number;
  /** Aborted when the channel is dropped: its deliveries' handlers are told (see WorkHandler). */
  release?: AbortController;
  /** A pending subscribe (standby delay or retry after a failure). */
  timer?: NodeJS.Timeout;
  onIdle?: () => void;
}

/** A consumed logical queue. */
export interface ConsumerState {
  readonly queue: string;
  readonly handler: WorkHandler;
  readonly dispatcher: KeyedDispatcher<Delivery>;
  readonly partitions: PartitionState[];
}

interface Delivery {
  readonly item: WorkItem;
  readonly message: ConsumeMessage;
  readonly channel: Channel;
  readonly partition: PartitionState;
  readonly epoch: number;
  /** Earlier deliveries of this message by the broker (`x-delivery-count`). */
  readonly priorDeliveries: number;
  /** Aborts when the delivery's channel is dropped (see WorkHandler). */
  readonly released: AbortSignal;
  /** Handler failures that count towards the delivery limit (not those of an unreachable store). */
  countedFailures: number;
}

/** What {@link PartitionConsumers} works with. */
export interface PartitionConsumersOptions {
  connection: BrokerConnection;
  membership: Membership;
  names: TopologyNames;
  instanceId: string;
  partitions: number;
  prefetch: number;
  deliveryLimit: number;
  concurrency: number;
  retryDelayMs: number;
  maxRetryDelayMs: number;
  /** Caps the retry delay of a failed subscribe (at most 1 s). */
  maxReconnectDelayMs: number;
  standbyDelayMs: number;
  logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
  isStopped(): boolean;
  /** Announces this instance's subscriptions now (see the membership exchange). */
  announce(): void;
  /** A subscription became active on `part` (its first delivery, at `part.activeSince`). */
  activated(part: PartitionState): void;
}

/** The partition subscriptions of every consumed queue; see the module comment. */
export class PartitionConsumers {
  private readonly consumers = new Map<string, ConsumerState>();

  constructor(private readonly options: PartitionConsumersOptions) {}

  has(queue: string): boolean {
    return this.consumers.has(queue);
  }

  /** The consumed logical queues. */
  queues(): string[] {
    return [...this.consumers.keys()];
  }

  /** Every consumed queue's state (for `idle()`). */
  all(): ConsumerState[] {
    return [...this.consumers.values()];
  }

  /** Registers a consumer (not subscribed yet: see {@link subscribe}). */
  add(queue: string, handler: WorkHandler, options: ConsumeOptions = {}): ConsumerState {
    const partitions: PartitionState[] = [];
    const consumer: ConsumerState = {
      queue,
      handler,
      partitions,
      dispatcher: new KeyedDispatcher<Delivery>({
        concurrency: options.concurrency ?? this.options.concurrency,
        isLive: (d) => this.isLive(d),
        run: (d) => this.runDelivery(d),
        onFailure: (d, error, failures) => this.onHandlerFailure(d, error, failures),
      }),
    };
    for (let p = 0; p < this.options.partitions; p += 1) {
      partitions.push({ consumer, index: p, queueName: this.options.names.partitionQueue(queue, p), epoch: 0, status: 'idle', role: 'home', inFlight: 0 });
    }
    this.consumers.set(queue, consumer);
    return consumer;
  }

  /** Forgets a consumer that could not be subscribed (its topology refused). */
  remove(queue: string): void {
    this.consumers.delete(queue);
  }

  /** Logical queue → the partitions this instance has a consumer registered on (for the announcements). */
  ownPartitions(): Record<string, number[]> {
    const queues: Record<string, number[]> = {};
    for (const consumer of this.consumers.values()) {
      queues[consumer.queue] = consumer.partitions.filter((p) => p.status === 'subscribed' || p.status === 'yielding').map((p) => p.index);
    }
    return queues;
  }

  /** Subscribes a consumer's home partitions (awaited), then lines up the others; announces. */
  async subscribe(consumer: ConsumerState): Promise<void> {
    // Home partitions first and awaited, so that announcing them (below) is true.
    const home: Array<Promise<void>> = [];
    for (const part of consumer.partitions) {
      if (this.isHome(part)) home.push(this.subscribePartition(part, 'home'));
    }
    await Promise.all(home);
    for (const part of consumer.partitions) this.reconcile(part);
    this.options.announce();
  }

  /** Subscribes every consumer (after a connect). */
  async subscribeAll(): Promise<void> {
    for (const consumer of this.consumers.values()) await this.subscribe(consumer);
  }

  /** Brings every partition in line with the membership (the homes may have moved). */
  reconcileAll(): void {
    for (const consumer of this.consumers.values()) for (const part of consumer.partitions) this.reconcile(part);
  }

  /**
   * The homes are the same, but `member` may now wait on partitions this instance still holds as
   * former home: hand those over.
   */
  reconcileHomesOf(member: string): void {
    for (const consumer of this.consumers.values()) {
      for (const part of consumer.partitions) {
        if (part.status === 'subscribed' && part.role === 'home' && this.options.membership.homeOf(part.consumer.queue, part.index) === member) this.reconcile(part);
      }
    }
  }

  /** Every partition channel is gone with its connection: forget them all. */
  dropAll(): void {
    for (const consumer of this.consumers.values()) {
      for (const part of consumer.partitions) this.dropChannel(part);
    }
  }

  /** The bus stops: no pending subscribe runs. */
  clearTimers(): void {
    for (const consumer of this.consumers.values()) {
      for (const part of consumer.partitions) {
        clearTimeout(part.timer);
        part.timer = undefined;
      }
    }
  }

  /** No new handler starts; resolves once the running ones have settled (and been acked). */
  async stopDispatchers(): Promise<void> {
    await Promise.all([...this.consumers.values()].map((c) => c.dispatcher.stop()));
  }

  private isHome(part: PartitionState): boolean {
    return this.options.membership.isHome(part.consumer.queue, part.index);
  }

  private homeIsWaiting(part: PartitionState): boolean {
    return this.options.membership.homeIsWaiting(part.consumer.queue, part.index, part.activeSince ?? part.subscribedAt ?? Number.POSITIVE_INFINITY);
  }

  private get connected(): boolean {
    return this.options.connection.current !== undefined;
  }

  private async subscribePartition(part: PartitionState, role: 'home' | 'standby'): Promise<void> {
    const { connection, logger } = this.options;
    const session = connection.current;
    if (!session || this.options.isStopped() || part.status !== 'idle') return;
    clearTimeout(part.timer);
    part.timer = undefined;
    part.status = 'subscribing';
    part.release = new AbortController();
    part.role = role;
    part.epoch += 1;
    part.subscribedAt = Date.now();
    part.activeSince = undefined;
    const epoch = part.epoch;
    let channel: Channel | undefined;
    try {
      await connection.ensureDeclared(session, part.consumer.queue);
      channel = await session.connection.createChannel();
      const ch = channel;
      ch.on('error', (err: Error) => {
        if (/acknowledgement timed out/i.test(errorText(err))) {
          // The broker's consumer_timeout (30 min by default) is shorter than a handler's wait (a
          // destination retrying through an outage): the deliveries come back, counted towards
          // the delivery limit. Operators must raise it (docs/design/0005-bus.md, "Operations").
          logger?.error('bus delivery outlived the broker consumer_timeout; raise consumer_timeout above the longest destination retry window', {
            queue: part.queueName,
            error: errorText(err),
          });
        } else logger?.warn('bus consumer channel error', { queue: part.queueName, error: errorText(err) });
      });
      ch.on('close', () => this.onPartitionChannelClosed(part, epoch));
      await ch.prefetch(this.options.prefetch);
      if (part.epoch !== epoch) throw new Error('superseded');
      part.channel = ch;
      // Subscribed before consume-ok is awaited: deliveries can be handled in the same read as
      // consume-ok, before this function resumes, and must not find the partition 'subscribing'.
      part.status = 'subscribed';
      await ch.consume(part.queueName, (message) => this.onDelivery(part, epoch, ch, message), { noAck: false });
      if (part.epoch !== epoch) throw new Error('superseded');
    } catch (err) {
      if (part.epoch === epoch) {
        part.epoch += 1;
        part.channel = undefined;
        part.status = 'idle';
        if (!session.closed && !this.options.isStopped()) {
          logger?.warn('bus subscribe failed; retrying', { queue: part.queueName, error: errorText(err) });
          this.scheduleSubscribe(part, this.nextPartitionRetryDelay());
        }
      }
      if (channel) await channel.close().catch(() => undefined);
    }
  }

  private nextPartitionRetryDelay(): number {
    return Math.round(Math.min(this.options.maxReconnectDelayMs, 1000) * (0.8 + Math.random() * 0.4));
  }

  private scheduleSubscribe(part: PartitionState, delayMs: number): void {
    clearTimeout(part.timer);
    part.timer = setTimeout(() => {
      part.timer = undefined;
      if (part.status !== 'idle') return;
      void this.subscribePartition(part, this.isHome(part) ? 'home' : 'standby').then(() => {
        // A home partition back in line: say so now, so that a standby holding it hands it back.
        if (part.role === 'home' && part.status === 'subscribed') this.options.announce();
        this.reconcile(part);
      });
    }, delayMs);
  }

  /** Brings one partition's subscription in line with the current membership. */
  private reconcile(part: PartitionState): void {
    if (this.options.isStopped() || !this.connected) return;
    const home = this.isHome(part);
    switch (part.status) {
      case 'idle':
        if (home) {
          if (part.timer) clearTimeout(part.timer);
          part.timer = undefined;
          void this.subscribePartition(part, 'home').then(() => this.options.announce());
        } else if (!part.timer) this.scheduleSubscribe(part, this.options.standbyDelayMs);
        return;
      case 'subscribed':
        if (home) part.role = 'home';
        // No longer ours: hand it over once the new home waits on it (until then, keep it: the
        // partition is never given up to nobody).
        else if (part.role === 'home' && this.homeIsWaiting(part)) void this.yieldPartition(part);
        return;
      case 'subscribing':
      case 'yielding':
        return;
      default:
        part.status satisfies never;
    }
  }

  /**
   * Hands a partition over: no new deliveries start, running handlers finish (and are acked) or,
   * when waiting, give up (see WorkHandler),
   * then the channel closes, which returns the unstarted deliveries to the broker in order and lets
   * the next waiting consumer (the home instance) take the partition. Called only when the home
   * instance has announced a consumer on it (Membership.homeIsWaiting).
   */
  private async yieldPartition(part: PartitionState): Promise<void> {
    if (part.status !== 'subscribed') return;
    part.status = 'yielding';
    const epoch = part.epoch;
    // A handler waiting for a retry would hold the hand-over for as long: told, it gives up, and
    // its item goes back with the others (its retry time is in the store).
    part.release?.abort();
    if (part.inFlight > 0) await new Promise<void>((resolve) => (part.onIdle = resolve));
    if (part.epoch !== epoch || part.status !== 'yielding') return;
    this.options.logger?.info('bus partition handed over', { queue: part.queueName, instance: this.options.instanceId });
    const channel = part.channel;
    this.dropChannel(part);
    await channel?.close().catch(() => undefined);
    this.options.announce();
    // The home instance was already in line, so it is active now and a new standby subscription
    // goes behind it; soon, so that if the home went meanwhile the partition is not left without
    // a consumer for long.
    if (!this.options.isStopped() && this.connected) this.scheduleSubscribe(part, Math.min(this.options.standbyDelayMs, this.nextPartitionRetryDelay()));
  }

  /** Forgets a partition's channel (closed or about to be): its deliveries are dead from now on. */
  private dropChannel(part: PartitionState): void {
    part.epoch += 1;
    part.release?.abort();
    part.release = undefined;
    part.channel = undefined;
    part.activeSince = undefined;
    part.status = 'idle';
    clearTimeout(part.timer);
    part.timer = undefined;
    const onIdle = part.onIdle;
    part.onIdle = undefined;
    onIdle?.();
  }

  private onPartitionChannelClosed(part: PartitionState, epoch: number): void {
    if (part.epoch !== epoch) return; // closed by us (hand-over, stop) or superseded
    this.dropChannel(part);
    if (this.options.isStopped() || !this.connected) return; // a lost connection re-subscribes everything
    this.options.logger?.warn('bus consumer channel closed; re-subscribing', { queue: part.queueName });
    this.scheduleSubscribe(part, this.nextPartitionRetryDelay());
  }

  private onDelivery(part: PartitionState, epoch: number, channel: Channel, message: ConsumeMessage | null): void {
    if (message === null) {
      // The broker cancelled the consumer (queue deleted): declare and subscribe again.
      if (part.epoch !== epoch) return;
      this.options.connection.current?.declared.delete(part.consumer.queue);
      this.dropChannel(part);
      void channel.close().catch(() => undefined);
      if (!this.options.isStopped() && this.connected) this.scheduleSubscribe(part, this.nextPartitionRetryDelay());
      return;
    }
    // An old channel's delivery, or one during a hand-over: it goes back to the broker when its
    // channel closes.
    if (part.epoch !== epoch || part.status !== 'subscribed') return;
    if (part.activeSince === undefined) {
      part.activeSince = Date.now();
      this.options.activated(part);
    }
    const item = parseWorkItem(message.content);
    if (!item) {
      this.options.logger?.error('bus dead-lettered a malformed work item', { queue: part.queueName, deliveryTag: message.fields.deliveryTag });
      safely(() => channel.nack(message, false, false));
      return;
    }
    if (this.homeIsWaiting(part)) {
      // Active on another instance's home partition while the home instance, alive, waits in line
      // (it reconnected after a network cut, typically): hand it over rather than keep it.
      void this.yieldPartition(part);
      return;
    }
    const count = Number(message.properties.headers?.['x-delivery-count'] ?? 0);
    part.consumer.dispatcher.push(item.key, {
      item,
      message,
      channel,
      partition: part,
      epoch,
      priorDeliveries: Number.isFinite(count) && count > 0 ? count : 0,
      countedFailures: 0,
      released: (part.release ??= new AbortController()).signal,
    });
  }

  private isLive(d: Delivery): boolean {
    return !this.options.isStopped() && d.partition.epoch === d.epoch && d.partition.status === 'subscribed';
  }

  private async runDelivery(d: Delivery): Promise<void> {
    const part = d.partition;
    part.inFlight += 1;
    try {
      await d.partition.consumer.handler(d.item, d.released);
      // Ack individually (never `allUpTo`): deliveries of other keys finish in any order.
      if (part.epoch === d.epoch) safely(() => d.channel.ack(d.message));
      // Else the channel is gone: the broker delivers the item again, and the handler, finding
      // the work done in the store, returns at once (at least once).
    } finally {
      part.inFlight -= 1;
      if (part.inFlight === 0 && part.onIdle) {
        const onIdle = part.onIdle;
        part.onIdle = undefined;
        onIdle();
      }
    }
  }

  private onHandlerFailure(d: Delivery, error: unknown, failures: number): { retryInMs: number } | 'drop' {
    // A dead delivery (channel closed, hand-over, stop) is not retried here: the broker has it.
    if (!this.isLive(d)) return 'drop';
    // The delivery limit is for items that fail by themselves (poison). An unreachable store (a
    // PostgreSQL restart or failover) fails every item alike: counted, a store outage longer than
    // the limit's backoffs (~6 min) would dead-letter all the work in flight while the store still
    // has it queued. Such items wait, holding their key, as on the embedded bus.
    if (!isTransient(error)) d.countedFailures += 1;
    const attempts = d.priorDeliveries + d.countedFailures;
    const meta = { queue: d.partition.queueName, messageId: d.item.id, attempts, error: errorText(error) };
    if (attempts >= this.options.deliveryLimit) {
      this.options.logger?.error('bus dead-lettered a work item after its delivery limit', meta);
      safely(() => d.channel.nack(d.message, false, false));
      return 'drop';
    }
    const retryInMs = Math.min(this.options.maxRetryDelayMs, this.options.retryDelayMs * 2 ** Math.min(failures - 1, 20));
    this.options.logger?.warn('bus handler failed; retrying the item', { ...meta, retryInMs });
    return { retryInMs };
  }
}

/** An error of a class that passes by itself (the store unreachable, a timeout), by its code. */
function isTransient(error: unknown): boolean {
  return isOspreyError(error) && ErrorCodes[error.code as ErrorCode]?.class === 'transient';
}
