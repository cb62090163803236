// SPDX-License-Identifier: Apache-2.0
/**
 * The production bus: RabbitMQ through amqplib 2.x, for several engine instances sharing the work.
 * This class is its face ({@link MessageBus}); the work is done by the parts in `rabbitmq/`, one
 * concern each:
 *
 * - `connection.ts` (with `broker-nodes.ts` and `amqplib-quirks.ts`, where every amqplib internal
 *   this bus touches lives): one connection at a time, to a node of the list, re-opened with
 *   backoff; the topology declared on it.
 * - `confirm-publisher.ts`: publishing on a confirm channel, resolved on the broker's ack.
 * - `partition-consumers.ts`: a subscription per partition, the keyed dispatch, retries and the
 *   delivery limit, hand-over.
 * - `membership.ts`: the pure rules that spread partitions over the instances (this class carries
 *   the announcements over the members exchange and runs the rules' timers).
 * - `dead-letter-watches.ts`: dead-lettered items handed to the engine.
 *
 * Topology (rabbitmq-topology.ts): per logical queue, `partitions` quorum queues with
 * single-active-consumer; a key always hashes to the same partition, and only one consumer (across
 * every instance) takes from a partition at a time, so a key's order holds across instances while
 * the partitions spread over them. Within a partition the handler runs one key at a time, in order,
 * different keys concurrently (the same keyed dispatcher as the local bus).
 *
 * Spreading: single-active-consumer alone would give every partition to whichever instance
 * subscribed first. Instances announce themselves (and the partitions they are subscribed to) on a
 * fanout exchange; each partition has a "home" instance among those consuming its queue. An
 * instance subscribes to its home partitions at once and to the others later, as standby (failover
 * is the broker's: when an active consumer goes, the next waiting one takes over). An instance that
 * finds itself active on another's home partition lets its running handlers finish and closes that
 * partition's channel, which hands the partition, unstarted deliveries included, to the home
 * instance in order — but only once the home instance has announced, after this one became active,
 * a consumer waiting on it: a crashed home is never given its partitions back (docs/design/0005-bus.md,
 * "Spreading partitions").
 *
 * Publishing: confirm channel, persistent messages, resolve only on the broker's ack; reject on
 * nack, unroutable return or `publishTimeoutMs` (which also bounds waiting for a reconnection: no
 * unbounded in-memory buffer, the store is the buffer).
 *
 * Failures: a handler that rejects is retried in process after a backoff, holding its key; after
 * `deliveryLimit` attempts the item is dead-lettered to `<prefix>.<queue>.dlq`
 * (partition-consumers.ts).
 *
 * Connection loss (broker restart, network): exponential backoff reconnect, topology re-declared,
 * consumers re-subscribed; unacknowledged items come back from the broker (at least once). Nothing
 * here throws into the event loop: every amqplib event has a listener.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Channel, ConsumeMessage } from 'amqplib';
import type { Logger } from '../observability/logger.ts';
import { BusError, BusErrorCode, errorText } from './bus-errors.ts';
import type { ConsumeOptions, MessageBus, WorkHandler, WorkItem } from './message-bus.ts';
import { topologyNames, type TopologyNames } from './rabbitmq-topology.ts';
import { safely } from './rabbitmq/amqplib-quirks.ts';
import { ConfirmPublisher } from './rabbitmq/confirm-publisher.ts';
import { BrokerConnection, type Session } from './rabbitmq/connection.ts';
import { DeadLetterWatches } from './rabbitmq/dead-letter-watches.ts';
import { Membership, type MembershipChange } from './rabbitmq/membership.ts';
import { PartitionConsumers, type PartitionState } from './rabbitmq/partition-consumers.ts';

export { brokerAddress, brokerUrls, withDefaultHeartbeat } from './rabbitmq/broker-nodes.ts';

/** Options of {@link RabbitMqBus}. */
export interface RabbitMqBusOptions {
  /**
   * amqp:// or amqps:// URL (credentials from the environment, never a channel file); for a
   * cluster, one per node, as a list or comma-separated. A connection goes to one node at a time:
   * the next one in the list after a failed attempt or a lost connection (see {@link brokerUrls}).
   */
  url: string | readonly string[];
  /** Names every exchange and queue (`<prefix>.work`, `<prefix>.<queue>.p<N>` …); unique per environment or test run. */
  prefix: string;
  /**
   * Partition queues per logical queue. Part of the queues' identity: changing it needs new queues
   * (drain first, or use a new prefix).
   * @defaultValue 8
   */
  partitions?: number;
  /**
   * Unacknowledged deliveries per partition and instance. A key with more items waiting than this
   * fills its partition's window and holds back the other keys of that partition on this instance.
   * @defaultValue 64
   */
  prefetch?: number;
  /**
   * Attempts before an item whose handler keeps rejecting is dead-lettered; also the quorum queues'
   * `x-delivery-limit` (part of their identity, like `partitions`).
   * @defaultValue 20
   */
  deliveryLimit?: number;
  /**
   * Longest a publish waits for a connection and the broker's confirm before it rejects.
   * @defaultValue 30000
   */
  publishTimeoutMs?: number;
  /**
   * Default for {@link ConsumeOptions.concurrency}: keys in flight at once per queue on this instance.
   * @defaultValue 256
   */
  concurrency?: number;
  /**
   * First delay before retrying an item whose handler rejected; doubles up to `maxRetryDelayMs`.
   * @defaultValue 100
   */
  retryDelayMs?: number;
  /** @defaultValue 30000 */
  maxRetryDelayMs?: number;
  /** First reconnect delay; doubles (with ±20 % jitter) up to `maxReconnectDelayMs`. @defaultValue 100 */
  reconnectDelayMs?: number;
  /** @defaultValue 10000 */
  maxReconnectDelayMs?: number;
  /**
   * Spread partitions over the instances consuming a queue (see the module comment). When false,
   * every instance subscribes to every partition at once and the first subscriber keeps them all.
   * @defaultValue true
   */
  rebalance?: boolean;
  /**
   * Interval of the instances' presence announcements. A member silent for 3 intervals is gone, and
   * one silent for 2 intervals after this instance took over one of its home partitions (its
   * consumer went: a crash, typically). @defaultValue 5000
   */
  membershipIntervalMs?: number;
  /**
   * Delay before subscribing, as standby, to a partition homed on another instance, so the home
   * instance is first in the broker's line. @defaultValue 2 × membershipIntervalMs
   */
  standbyDelayMs?: number;
  /** This instance's identity among the members. @defaultValue `<hostname>-<pid>-<random>` */
  instanceId?: string;
  /** Connection events, retries and dead-letters are logged here; ids only, never content. */
  logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
}


/**
 * {@link MessageBus} on RabbitMQ; see the module comment for the topology and the guarantees.
 *
 * @see docs/design/0005-bus.md
 */
export class RabbitMqBus implements MessageBus {
  private readonly names: TopologyNames;
  private readonly rebalance: boolean;
  private readonly membershipIntervalMs: number;
  /** This instance's member id. */
  readonly instanceId: string;

  private readonly connection: BrokerConnection;
  private readonly publisher: ConfirmPublisher;
  private readonly consumers: PartitionConsumers;
  private readonly membership: Membership;
  private readonly deadLetters: DeadLetterWatches;

  private readonly reconnectedListeners: Array<(lostAt: number) => void> = [];
  private readonly membersListeners: Array<(instances: number) => void> = [];
  private readonly memberLostListeners: Array<(lastHeardAt: number) => void> = [];
  private started = false;
  private stopped = false;
  private stopping?: Promise<void>;
  /** Logical queues published to or consumed: re-declared on every connection. */
  private readonly knownQueues = new Set<string>();
  private membershipTimer?: NodeJS.Timeout;
  /** Timers of the members suspected gone (Membership.tookOver). */
  private readonly suspectTimers = new Set<NodeJS.Timeout>();
  /** The members exchange's consumer of the session it was opened on. */
  private membersChannel?: { session: Session; channel: Channel };

  constructor(private readonly options: RabbitMqBusOptions) {
    this.names = topologyNames(options.prefix);
    const partitions = options.partitions ?? 8;
    const prefetch = options.prefetch ?? 64;
    const deliveryLimit = options.deliveryLimit ?? 20;
    const reconnectDelayMs = options.reconnectDelayMs ?? 100;
    const maxReconnectDelayMs = options.maxReconnectDelayMs ?? 10_000;
    this.rebalance = options.rebalance ?? true;
    this.membershipIntervalMs = options.membershipIntervalMs ?? 5000;
    this.instanceId = options.instanceId ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    if (!Number.isInteger(partitions) || partitions < 1) throw new RangeError(`partitions must be a positive integer, got ${partitions}`);
    if (!Number.isInteger(prefetch) || prefetch < 1) throw new RangeError(`prefetch must be a positive integer, got ${prefetch}`);
    if (!Number.isInteger(deliveryLimit) || deliveryLimit < 1) throw new RangeError(`deliveryLimit must be a positive integer, got ${deliveryLimit}`);
    const { logger } = options;
    const isStopped = (): boolean => this.stopped;
    this.connection = new BrokerConnection(
      { url: options.url, names: this.names, instanceId: this.instanceId, partitions, deliveryLimit, reconnectDelayMs, maxReconnectDelayMs, logger },
      {
        opened: (session, channel) => this.publisher.attach(session, channel),
        connected: (session) => this.afterConnect(session),
        lost: () => this.consumers.dropAll(),
        reconnected: (lostAt) => this.callEach(this.reconnectedListeners, lostAt),
      },
    );
    this.publisher = new ConfirmPublisher({
      connection: this.connection,
      names: this.names,
      partitions,
      publishTimeoutMs: options.publishTimeoutMs ?? 30_000,
      instanceId: this.instanceId,
      logger,
      isStopped,
    });
    this.membership = new Membership({ self: this.instanceId, intervalMs: this.membershipIntervalMs, rebalance: this.rebalance, now: Date.now });
    this.consumers = new PartitionConsumers({
      connection: this.connection,
      membership: this.membership,
      names: this.names,
      instanceId: this.instanceId,
      partitions,
      prefetch,
      deliveryLimit,
      concurrency: options.concurrency ?? 256,
      retryDelayMs: options.retryDelayMs ?? 100,
      maxRetryDelayMs: options.maxRetryDelayMs ?? 30_000,
      maxReconnectDelayMs,
      standbyDelayMs: options.standbyDelayMs ?? 2 * this.membershipIntervalMs,
      logger,
      isStopped,
      announce: () => this.announce(),
      activated: (part) => this.onActivated(part),
    });
    this.deadLetters = new DeadLetterWatches({ connection: this.connection, names: this.names, logger, isStopped });
  }

  onReconnected(listener: (lostAt: number) => void): void {
    this.reconnectedListeners.push(listener);
  }

  onMembersChanged(listener: (instances: number) => void): void {
    this.membersListeners.push(listener);
    // The other instances may have been seen already (they announce themselves at connect).
    listener(this.membership.count);
  }

  onMemberLost(listener: (lastHeardAt: number) => void): void {
    this.memberLostListeners.push(listener);
  }

  onDeadLettered(listener: (queue: string, item: WorkItem, reason: string) => Promise<void>): void {
    this.deadLetters.listen(listener);
    const session = this.connection.current;
    if (session) for (const queue of this.consumers.queues()) void this.deadLetters.watch(session, queue);
  }

  /** True while a connection (with its confirm channel) is open: for `/readyz`. */
  get connected(): boolean {
    return this.connection.current !== undefined;
  }

  get node(): string | undefined {
    return this.connection.current?.node;
  }

  /** The topology names of this bus's prefix (dead-letter queues for operators and tests). */
  get topology(): TopologyNames {
    return this.names;
  }

  /** Logical queues this bus has declared (published to or consumed). */
  declaredQueues(): string[] {
    return [...this.knownQueues];
  }

  /**
   * Connects, retrying with exponential backoff until the broker answers, then resolves.
   * Idempotent.
   */
  async start(): Promise<void> {
    if (this.stopped) throw new BusError(BusErrorCode.OSPREY_ERR_BUS_STOPPED, 'bus is stopped');
    if (!this.started) {
      this.started = true;
      this.membership.join();
      this.membershipTimer = setInterval(() => this.membershipTick(), this.membershipIntervalMs);
      this.connection.start();
    }
    await this.connection.waitForSession(Number.POSITIVE_INFINITY);
  }

  async publish(queue: string, item: WorkItem): Promise<void> {
    if (this.stopped) throw new BusError(BusErrorCode.OSPREY_ERR_BUS_STOPPED, `bus is stopped; item ${item.id} not published to ${queue}`);
    if (!this.started) void this.start().catch(() => undefined);
    this.knownQueues.add(queue);
    return this.publisher.publish(queue, item);
  }

  async consume(queue: string, handler: WorkHandler, options: ConsumeOptions = {}): Promise<void> {
    if (this.stopped) throw new BusError(BusErrorCode.OSPREY_ERR_BUS_STOPPED, `bus is stopped; cannot consume ${queue}`);
    if (this.consumers.has(queue)) throw new Error(`queue ${queue} already has a consumer on this bus instance`);
    const consumer = this.consumers.add(queue, handler, options);
    this.knownQueues.add(queue);
    if (!this.started) void this.start().catch(() => undefined);
    const session = this.connection.current;
    if (!session) return; // subscribed when the connection opens
    try {
      await this.connection.ensureDeclared(session, queue);
    } catch (err) {
      // A refused topology is a configuration error; anything else is the connection going
      // away, and the consumer is subscribed on the next one.
      if (err instanceof BusError) {
        this.consumers.remove(queue);
        throw err;
      }
      return;
    }
    await this.consumers.subscribe(consumer);
    await this.deadLetters.watch(session, queue);
  }

  /**
   * Stops consuming: no new handler starts, running handlers finish and are acknowledged, then the
   * connection closes (unstarted deliveries go back to the broker). Pending publishes reject.
   * Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  /**
   * For tests: resolves when this instance runs no handler, has nothing queued, and the broker
   * holds no ready item in the consumed queues' partitions. Checked twice, a little apart, because
   * a delivery can be on the wire when both sides look empty.
   */
  async idle(): Promise<void> {
    let quietChecks = 0;
    while (quietChecks < 2) {
      const consumers = this.consumers.all();
      await Promise.all(consumers.map((c) => c.dispatcher.idle()));
      if (this.stopped) return;
      const session = await this.connection.waitForSession(Number.POSITIVE_INFINITY);
      let ready = 0;
      try {
        const channel = await session.connection.createChannel();
        channel.on('error', () => undefined);
        try {
          for (const c of consumers) {
            for (const p of c.partitions) ready += (await channel.checkQueue(p.queueName)).messageCount;
          }
        } finally {
          await channel.close().catch(() => undefined);
        }
      } catch {
        ready = 1; // connection trouble: look again
      }
      const busy = consumers.some((c) => c.dispatcher.size > 0 || c.dispatcher.active > 0);
      quietChecks = ready === 0 && !busy ? quietChecks + 1 : 0;
      await sleep(50);
    }
  }

  private async afterConnect(session: Session): Promise<void> {
    // Re-declare everything known (publish-only queues too: items published while the broker
    // was away must find their queues).
    for (const queue of this.knownQueues) {
      try {
        await this.connection.ensureDeclared(session, queue);
      } catch (err) {
        this.options.logger?.error('bus topology declaration failed', { queue, error: errorText(err) });
      }
    }
    if (this.rebalance) await this.openMembersChannel(session).catch((err: unknown) => this.options.logger?.warn('bus membership unavailable', { error: errorText(err) }));
    await this.consumers.subscribeAll();
    for (const queue of this.consumers.queues()) await this.deadLetters.watch(session, queue);
  }

  // ---------------------------------------------------------------------------------------------
  // Membership: the rules are in rabbitmq/membership.ts; here, their announcements and timers.

  /** Listens to the members exchange on a queue of this connection's own, then announces. */
  private async openMembersChannel(session: Session): Promise<void> {
    const channel = await session.connection.createChannel();
    channel.on('error', (err: Error) => this.options.logger?.warn('bus membership channel error', { error: errorText(err) }));
    const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
    await channel.bindQueue(queue, this.names.membersExchange, '');
    await channel.consume(queue, (message: ConsumeMessage | null) => message && this.onAnnouncement(message.content), { noAck: true });
    this.membersChannel = { session, channel };
    this.announce();
  }

  /** Publishes this instance's subscriptions (or its goodbye) to the other instances. */
  private announce(bye = false): void {
    if (!this.rebalance) return;
    const members = this.membersChannel;
    if (!members || members.session !== this.connection.current) return;
    const announcement = this.membership.announcement(this.consumers.ownPartitions(), bye);
    safely(() => members.channel.publish(this.names.membersExchange, '', Buffer.from(JSON.stringify(announcement)), { persistent: false }));
  }

  private onAnnouncement(content: Buffer): void {
    const received = this.membership.receive(content);
    if (!received) return;
    // A newcomer learns about us now rather than at our next tick.
    if (received.newcomer) this.announce();
    this.apply(received);
    // The homes are the same, but the announcer may now wait on partitions this instance still
    // holds as former home: hand those over.
    if (!received.reassigned && !received.bye) this.consumers.reconcileHomesOf(received.from);
  }

  /** A subscription became active (first delivery): on another member's home partition, suspect it. */
  private onActivated(part: PartitionState): void {
    const since = part.activeSince ?? Date.now();
    const takeOver = this.membership.tookOver(part.consumer.queue, part.index, since);
    if (!takeOver) return;
    const { home, suspectForMs } = takeOver;
    this.options.logger?.info('bus partition taken over from its home instance', { queue: part.queueName, home, instance: this.instanceId });
    if (suspectForMs === undefined) return;
    const timer = setTimeout(() => {
      this.suspectTimers.delete(timer);
      if (this.stopped) return;
      const due = this.membership.suspectDue(home, since);
      if (!due.forgotten) return;
      this.callEach(this.memberLostListeners, ...due.lost);
      this.options.logger?.info('bus member gone (silent since it lost a partition)', { member: home, instance: this.instanceId });
      this.apply({ ...due, lost: [] });
    }, suspectForMs);
    this.suspectTimers.add(timer);
  }

  private membershipTick(): void {
    const change = this.membership.tick();
    this.callEach(this.memberLostListeners, ...change.lost);
    this.announce();
    this.apply({ ...change, lost: [] });
  }

  /** Acts on a membership change: listeners told, partitions reconciled when homes may have moved. */
  private apply(change: MembershipChange): void {
    this.callEach(this.memberLostListeners, ...change.lost);
    if (change.members !== undefined) this.callEach(this.membersListeners, change.members);
    if (change.reassigned) this.consumers.reconcileAll();
  }

  /** Calls every listener with each value; one that throws is logged and does not stop the others or the bus. */
  private callEach<T>(listeners: ReadonlyArray<(value: T) => void>, ...values: T[]): void {
    for (const value of values) {
      for (const listener of listeners) {
        try {
          listener(value);
        } catch (err) {
          this.options.logger?.warn('bus listener failed', { error: errorText(err) });
        }
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Stop

  private async doStop(): Promise<void> {
    this.stopped = true;
    this.connection.halt();
    clearInterval(this.membershipTimer);
    for (const timer of this.suspectTimers) clearTimeout(timer);
    this.suspectTimers.clear();
    this.membership.clearSuspects();
    this.consumers.clearTimers();
    // Tell the others first, so they take our home partitions as soon as our channels close.
    this.announce(true);
    await this.consumers.stopDispatchers();
    await this.connection.close();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
