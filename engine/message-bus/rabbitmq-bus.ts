// SPDX-License-Identifier: Apache-2.0
/**
 * The production bus: RabbitMQ through amqplib 2.x, for several engine instances sharing the work.
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
 * unbounded in-memory buffer, the store is the buffer — STYLE §3 rules 8 and 15).
 *
 * Failures: a handler that rejects is retried in process after a backoff, holding its key (a nack
 * with requeue would let the key's later items, already prefetched, overtake it); after
 * `deliveryLimit` attempts (broker redeliveries included; transient errors such as an unreachable
 * store not counted, see onHandlerFailure) the item is rejected without requeue and
 * the broker dead-letters it to `<prefix>.<queue>.dlq`. The quorum queue's own `x-delivery-limit`
 * dead-letters an item that kills its consumer again and again (a crash loop). Business retry delays
 * are not the bus's job: a destination worker waits inside its handler, holding its key.
 *
 * Connection loss (broker restart, network): exponential backoff reconnect, topology re-declared,
 * consumers re-subscribed; unacknowledged items come back from the broker (at least once). Nothing
 * here throws into the event loop: every amqplib event has a listener.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { connect, type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage } from 'amqplib';
import { ErrorCodes, isOspreyError, type ErrorCode } from '../errors/error-codes.ts';
import type { Logger } from '../observability/logger.ts';
import { BusError, BusErrorCode } from './bus-errors.ts';
import { KeyedDispatcher } from './keyed-dispatcher.ts';
import type { ConsumeOptions, MessageBus, WorkHandler, WorkItem } from './message-bus.ts';
import { declareExchanges, declareQueue, partitionOf, topologyNames, type TopologyNames } from './rabbitmq-topology.ts';

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
 * Longest wait for a broker's TCP connection and AMQP handshake: a node whose host is down answers
 * nothing (no refusal), and without a bound the next node would be tried only after the OS gives up
 * (minutes).
 */
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * The broker URLs of a `url` setting: one, or one per cluster node (a list, or comma-separated as an
 * environment variable gives it). A comma inside a URL (a password) must be percent-encoded, as in
 * any URL. Throws a RangeError on an empty list or a URL that is not amqp(s)://.
 */
export function brokerUrls(url: string | readonly string[]): string[] {
  const urls = (typeof url === 'string' ? url.split(',') : [...url]).map((u) => u.trim()).filter((u) => u !== '');
  if (urls.length === 0) throw new RangeError('url must name at least one broker');
  for (const u of urls) if (!/^amqps?:\/\//.test(u)) throw new RangeError(`not an amqp:// or amqps:// URL: ${brokerAddress(u)}`);
  return urls;
}

/**
 * AMQP heartbeat asked for when the URL does not set one (`?heartbeat=N`, seconds). A node whose
 * host dies without closing its connections (a crash, a network cut) is noticed after two missed
 * heartbeats: ~20 s, against two minutes with the server's default of 60 s, during which this
 * instance would neither consume nor publish (its work waits in the store) and `/readyz` would
 * still say ready. RabbitMQ advises 5–20 s.
 */
const DEFAULT_HEARTBEAT_S = 10;

/** `url` with `heartbeat=DEFAULT_HEARTBEAT_S` unless it sets its own. */
export function withDefaultHeartbeat(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.searchParams.has('heartbeat')) return url;
    parsed.searchParams.set('heartbeat', String(DEFAULT_HEARTBEAT_S));
    return parsed.toString();
  } catch {
    return url; // amqplib reports the unparsable URL
  }
}

/** `host:port` of a broker URL, for logs: never the credentials or the rest. */
export function brokerAddress(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || (parsed.protocol === 'amqps:' ? 5671 : 5672)}`;
  } catch {
    return '(unparsable URL)';
  }
}

/** The publish channel is replaced at most this often after nacks (see renewPublisher). */
const PUBLISHER_RENEW_MIN_MS = 1_000;

/** Dead-lettered items a dead-letter consumer holds at once (see onDeadLettered). */
const DEAD_LETTER_PREFETCH = 16;
/** Delay before a dead-lettered item the listener could not take is offered again. */
const DEAD_LETTER_RETRY_MS = 5_000;

/** One connection and the channels that live and die with it. */
interface Session {
  readonly connection: ChannelModel;
  /** The node connected to (`host:port`), for logs. */
  readonly node: string;
  /** The confirm channel publishes go on; replaced after a nack (see renewPublisher). */
  publisher: ConfirmChannel;
  /** When the publish channel was last replaced (epoch ms). */
  publisherRenewedAt: number;
  /** Logical queue → its declaration in this session (topology is re-declared on every connection). */
  readonly declared: Map<string, Promise<void>>;
  /** Publish tokens the broker returned as unroutable; read when their confirm arrives. */
  readonly returned: Set<string>;
  membership?: Channel;
  /** Logical queues whose dead-letter queue this session consumes (see onDeadLettered). */
  readonly deadLettersWatched: Set<string>;
  closed: boolean;
}

type PartitionStatus = 'idle' | 'subscribing' | 'subscribed' | 'yielding';

interface PartitionState {
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

interface ConsumerState {
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

interface Member {
  lastSeen: number;
  /** Logical queue → partitions this member has a consumer registered on. */
  queues: Map<string, Set<number>>;
}

interface Announcement {
  id: string;
  bye?: boolean;
  queues: Record<string, number[]>;
}

/**
 * {@link MessageBus} on RabbitMQ; see the module comment for the topology and the guarantees.
 *
 * @see docs/design/0005-bus.md
 */
export class RabbitMqBus implements MessageBus {
  private readonly names: TopologyNames;
  /** The broker's nodes; {@link urlIndex} is the one to connect to next. */
  private readonly urls: string[];
  private urlIndex = 0;
  private readonly partitions: number;
  private readonly prefetch: number;
  private readonly deliveryLimit: number;
  private readonly publishTimeoutMs: number;
  private readonly concurrency: number;
  private readonly retryDelayMs: number;
  private readonly maxRetryDelayMs: number;
  private readonly reconnectDelayMs: number;
  private readonly maxReconnectDelayMs: number;
  private readonly rebalance: boolean;
  private readonly membershipIntervalMs: number;
  private readonly standbyDelayMs: number;
  /** This instance's member id. */
  readonly instanceId: string;

  private session?: Session;
  private sessionWaiters = new Set<{ resolve: (s: Session) => void; reject: (e: unknown) => void }>();
  private connecting = false;
  private reconnectTimer?: NodeJS.Timeout;
  private reconnectAttempt = 0;
  private readonly reconnectedListeners: Array<(lostAt: number) => void> = [];
  /** When the last connection was lost (epoch ms; 0: never, so a connect is the first one). */
  private lostAt = 0;
  private readonly membersListeners: Array<(instances: number) => void> = [];
  private readonly memberLostListeners: Array<(lastHeardAt: number) => void> = [];
  private deadLetterListener?: (queue: string, item: WorkItem, reason: string) => Promise<void>;
  /** The member count last reported to membersListeners (1: this instance alone). */
  private reportedMembers = 1;
  private started = false;
  private stopped = false;
  private stopping?: Promise<void>;
  private publishSeq = 0;
  private readonly consumers = new Map<string, ConsumerState>();
  /** Logical queues published to or consumed: re-declared on every connection. */
  private readonly knownQueues = new Set<string>();
  private readonly members = new Map<string, Member>();
  private membershipTimer?: NodeJS.Timeout;
  /** Members whose consumer lost a partition to this instance: forgotten unless heard from soon. */
  private readonly suspects = new Map<string, NodeJS.Timeout>();

  constructor(private readonly options: RabbitMqBusOptions) {
    this.names = topologyNames(options.prefix);
    this.urls = brokerUrls(options.url);
    this.partitions = options.partitions ?? 8;
    this.prefetch = options.prefetch ?? 64;
    this.deliveryLimit = options.deliveryLimit ?? 20;
    this.publishTimeoutMs = options.publishTimeoutMs ?? 30_000;
    this.concurrency = options.concurrency ?? 256;
    this.retryDelayMs = options.retryDelayMs ?? 100;
    this.maxRetryDelayMs = options.maxRetryDelayMs ?? 30_000;
    this.reconnectDelayMs = options.reconnectDelayMs ?? 100;
    this.maxReconnectDelayMs = options.maxReconnectDelayMs ?? 10_000;
    this.rebalance = options.rebalance ?? true;
    this.membershipIntervalMs = options.membershipIntervalMs ?? 5000;
    this.standbyDelayMs = options.standbyDelayMs ?? 2 * this.membershipIntervalMs;
    this.instanceId = options.instanceId ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    if (!Number.isInteger(this.partitions) || this.partitions < 1) throw new RangeError(`partitions must be a positive integer, got ${this.partitions}`);
    if (!Number.isInteger(this.prefetch) || this.prefetch < 1) throw new RangeError(`prefetch must be a positive integer, got ${this.prefetch}`);
    if (!Number.isInteger(this.deliveryLimit) || this.deliveryLimit < 1) throw new RangeError(`deliveryLimit must be a positive integer, got ${this.deliveryLimit}`);
  }

  /** True while a connection (with its confirm channel) is open: for `/readyz`. */
  onReconnected(listener: (lostAt: number) => void): void {
    this.reconnectedListeners.push(listener);
  }

  onMembersChanged(listener: (instances: number) => void): void {
    this.membersListeners.push(listener);
    // The other instances may have been seen already (they announce themselves at connect).
    listener(this.reportedMembers);
  }

  onMemberLost(listener: (lastHeardAt: number) => void): void {
    this.memberLostListeners.push(listener);
  }

  onDeadLettered(listener: (queue: string, item: WorkItem, reason: string) => Promise<void>): void {
    this.deadLetterListener = listener;
    const session = this.session;
    if (session && !session.closed) for (const queue of this.consumers.keys()) void this.watchDeadLetters(session, queue);
  }

  get connected(): boolean {
    return this.session !== undefined && !this.session.closed;
  }

  get node(): string | undefined {
    return this.connected ? this.session!.node : undefined;
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
   * Connects, retrying with exponential backoff until the broker answers (STYLE §3 rule 22), then
   * resolves. Idempotent.
   */
  async start(): Promise<void> {
    if (this.stopped) throw new BusError(BusErrorCode.OSPREY_ERR_BUS_STOPPED, 'bus is stopped');
    if (!this.started) {
      this.started = true;
      this.members.set(this.instanceId, { lastSeen: Date.now(), queues: new Map() });
      this.membershipTimer = setInterval(() => this.membershipTick(), this.membershipIntervalMs);
      void this.connectLoop();
    }
    await this.waitForSession(Number.POSITIVE_INFINITY);
  }

  async publish(queue: string, item: WorkItem): Promise<void> {
    if (this.stopped) throw new BusError(BusErrorCode.OSPREY_ERR_BUS_STOPPED, `bus is stopped; item ${item.id} not published to ${queue}`);
    if (!this.started) void this.start().catch(() => undefined);
    const deadline = Date.now() + this.publishTimeoutMs;
    this.knownQueues.add(queue);
    const content = Buffer.from(JSON.stringify(item.ahead ? { id: item.id, key: item.key, ahead: true } : { id: item.id, key: item.key }));
    const routingKey = this.names.routingKey(queue, partitionOf(item.key, this.partitions));
    for (;;) {
      const session = await this.waitForSession(deadline, `publish of ${item.id} to ${queue}`);
      let channel: ConfirmChannel | undefined;
      try {
        await this.ensureDeclared(session, queue);
        channel = session.publisher;
        await this.publishOnce(session, channel, routingKey, content, deadline, item, queue);
        return;
      } catch (err) {
        if (err instanceof BusError) throw err;
        // The channel or connection went away before the confirm: the broker may or may not have
        // the item. Publish again on the next connection, or on the channel that replaced this one
        // (at least once; consumers de-duplicate through the store's state), as long as the
        // deadline allows.
        if (this.stopped) throw new BusError(BusErrorCode.OSPREY_ERR_BUS_STOPPED, `bus stopped before ${item.id} was confirmed on ${queue}`, { cause: err });
        if (!session.closed && session.publisher === channel) {
          throw new BusError(BusErrorCode.OSPREY_ERR_BUS_PUBLISH_REJECTED, `publish of ${item.id} to ${queue} failed: ${errorText(err)}`, { cause: err });
        }
      }
    }
  }

  async consume(queue: string, handler: WorkHandler, options: ConsumeOptions = {}): Promise<void> {
    if (this.stopped) throw new BusError(BusErrorCode.OSPREY_ERR_BUS_STOPPED, `bus is stopped; cannot consume ${queue}`);
    if (this.consumers.has(queue)) throw new Error(`queue ${queue} already has a consumer on this bus instance`);
    const partitions: PartitionState[] = [];
    const consumer: ConsumerState = {
      queue,
      handler,
      partitions,
      dispatcher: new KeyedDispatcher<Delivery>({
        concurrency: options.concurrency ?? this.concurrency,
        isLive: (d) => this.isLive(d),
        run: (d) => this.runDelivery(d),
        onFailure: (d, error, failures) => this.onHandlerFailure(d, error, failures),
      }),
    };
    for (let p = 0; p < this.partitions; p += 1) {
      partitions.push({ consumer, index: p, queueName: this.names.partitionQueue(queue, p), epoch: 0, status: 'idle', role: 'home', inFlight: 0 });
    }
    this.consumers.set(queue, consumer);
    this.knownQueues.add(queue);
    if (!this.started) void this.start().catch(() => undefined);
    const session = this.session;
    if (!session || session.closed) return; // subscribed when the connection opens
    try {
      await this.ensureDeclared(session, queue);
    } catch (err) {
      // A refused topology is a configuration error; anything else is the connection going
      // away, and the consumer is subscribed on the next one.
      if (err instanceof BusError) {
        this.consumers.delete(queue);
        throw err;
      }
      return;
    }
    await this.subscribeConsumer(consumer);
    await this.watchDeadLetters(session, queue);
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
      const consumers = [...this.consumers.values()];
      await Promise.all(consumers.map((c) => c.dispatcher.idle()));
      if (this.stopped) return;
      const session = await this.waitForSession(Number.POSITIVE_INFINITY);
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

  // ---------------------------------------------------------------------------------------------
  // Connection

  private async connectLoop(): Promise<void> {
    if (this.connecting || this.stopped) return;
    this.connecting = true;
    let session: Session | undefined;
    try {
      while (!this.stopped && !session) {
        try {
          const opened = await this.openSession();
          if (this.stopped) {
            await closeConnection(opened.connection);
            return;
          }
          if (!opened.closed) session = opened;
          else this.nextNode(); // it died already: try the next node
        } catch (err) {
          const delay = this.nextReconnectDelay();
          this.options.logger?.warn('bus connection failed; retrying', { prefix: this.names.prefix, ...this.nextNode(), delayMs: delay, error: errorText(err) });
          await new Promise<void>((resolve) => {
            this.reconnectTimer = setTimeout(resolve, delay);
          });
          this.reconnectTimer = undefined;
        }
      }
    } finally {
      // Cleared before afterConnect: a connection lost during it must be able to start a new loop.
      this.connecting = false;
    }
    if (!session) return;
    this.session = session;
    this.reconnectAttempt = 0;
    this.options.logger?.info('bus connected', { prefix: this.names.prefix, instance: this.instanceId, node: session.node });
    for (const waiter of this.sessionWaiters) waiter.resolve(session);
    this.sessionWaiters.clear();
    await this.afterConnect(session);
    if (this.lostAt > 0) this.callEach(this.reconnectedListeners, this.lostAt);
  }

  /**
   * Moves on to the next node of a cluster (nothing changes with one URL), returning the addresses
   * of the one left and the next, for logs. After a failure there, the next is the likeliest to be
   * up; a node coming back takes its turn again once the others have had theirs.
   */
  private nextNode(): { node: string; next: string } {
    const node = brokerAddress(this.urls[this.urlIndex]!);
    this.urlIndex = (this.urlIndex + 1) % this.urls.length;
    return { node, next: brokerAddress(this.urls[this.urlIndex]!) };
  }

  private nextReconnectDelay(): number {
    const base = Math.min(this.maxReconnectDelayMs, this.reconnectDelayMs * 2 ** Math.min(this.reconnectAttempt, 30));
    this.reconnectAttempt += 1;
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  private async openSession(): Promise<Session> {
    const url = this.urls[this.urlIndex]!;
    const connection = await connect(withDefaultHeartbeat(url), {
      timeout: CONNECT_TIMEOUT_MS,
      // amqplib leaves Nagle's algorithm on: every publish confirm and ack then waits for the
      // delayed-ACK timer (measured: ACK p50 50 ms → 22 ms, 155 → 333 msgs/s end to end).
      noDelay: true,
      clientProperties: { connection_name: `osprey ${this.names.prefix} ${this.instanceId}` },
    });
    coalesceSocketWrites(connection);
    // An 'error' without a listener would crash the process; 'close' follows and drives recovery.
    connection.on('error', (err: Error) => this.options.logger?.warn('bus connection error', { error: errorText(err) }));
    connection.on('blocked', (reason: string) => this.options.logger?.warn('broker blocked publishing (resource alarm)', { reason }));
    connection.on('unblocked', () => this.options.logger?.info('broker unblocked publishing'));
    let session: Session | undefined;
    connection.on('close', () => {
      if (session) this.onSessionLost(session);
    });
    try {
      const publisher = await connection.createConfirmChannel();
      session = { connection, node: brokerAddress(url), publisher, publisherRenewedAt: 0, declared: new Map(), returned: new Set(), deadLettersWatched: new Set(), closed: false };
      this.watchPublisher(session, publisher);
      const admin = await connection.createChannel();
      admin.on('error', () => undefined);
      await declareExchanges(admin, this.names);
      await admin.close();
      return session;
    } catch (err) {
      await closeConnection(connection);
      throw err;
    }
  }

  /**
   * Listens to a confirm channel for the session's publishes (attached in the turn it opened, before
   * any event). Its closing (with its connection, or alone after a protocol error) ends the
   * session, unless it was replaced meanwhile (renewPublisher). Marked at once: this listener runs
   * right after amqplib failed the pending confirms, so their publishers see a closed session and
   * republish on the next one.
   */
  private watchPublisher(session: Session, publisher: ConfirmChannel): void {
    publisher.on('error', (err: Error) => this.options.logger?.warn('bus publish channel error', { error: errorText(err) }));
    publisher.on('return', (message: { properties: { messageId?: unknown } }) => {
      if (typeof message.properties.messageId === 'string') session.returned.add(message.properties.messageId);
    });
    publisher.on('close', () => {
      if (session.closed || session.publisher !== publisher) return;
      this.onSessionLost(session);
      void closeConnection(session.connection);
    });
  }

  /**
   * After a nack, publishes go on a new channel (at most one new channel a second). RabbitMQ 3.10
   * keeps nacking, on that channel only and for good, the publishes to a quorum queue whose first
   * publish on the channel came while the queue had no leader (a cluster node lost: its queues
   * elect new leaders on the others); a new channel publishes to the same queue at once. Reproduced
   * by test/production/rabbitmq-cluster.int.spec.ts. The old channel's unconfirmed publishes fail
   * when it closes and are published again on the new one.
   */
  private renewPublisher(session: Session, nacked: ConfirmChannel): void {
    if (session.closed || session.publisher !== nacked || Date.now() - session.publisherRenewedAt < PUBLISHER_RENEW_MIN_MS) return;
    session.publisherRenewedAt = Date.now();
    session.connection.createConfirmChannel().then(
      (fresh) => {
        this.watchPublisher(session, fresh);
        if (session.closed) return void fresh.close().catch(() => undefined);
        session.publisher = fresh;
        this.options.logger?.warn('broker nacked a publish; publishing on a new channel', { prefix: this.names.prefix, node: session.node });
        void nacked.close().catch(() => undefined);
      },
      (err: unknown) => this.options.logger?.warn('bus publish channel not renewed', { error: errorText(err) }),
    );
  }

  private async afterConnect(session: Session): Promise<void> {
    // Re-declare everything known (publish-only queues too: items published while the broker
    // was away must find their queues).
    for (const queue of this.knownQueues) {
      try {
        await this.ensureDeclared(session, queue);
      } catch (err) {
        this.options.logger?.error('bus topology declaration failed', { queue, error: errorText(err) });
      }
    }
    if (this.rebalance) await this.startMembership(session).catch((err: unknown) => this.options.logger?.warn('bus membership unavailable', { error: errorText(err) }));
    for (const consumer of this.consumers.values()) await this.subscribeConsumer(consumer);
    for (const queue of this.consumers.keys()) await this.watchDeadLetters(session, queue);
  }

  private onSessionLost(session: Session): void {
    if (session.closed) return;
    session.closed = true;
    this.lostAt = Date.now();
    const wasCurrent = this.session === session;
    if (wasCurrent) this.session = undefined;
    for (const consumer of this.consumers.values()) {
      for (const part of consumer.partitions) this.dropChannel(part);
    }
    // Lost while being opened: the connect loop tries again (the next node).
    if (this.stopped || !wasCurrent) return;
    // The node may be going away (a cluster node's restart or loss): the next one is tried first.
    this.options.logger?.warn('bus connection lost; reconnecting', { prefix: this.names.prefix, ...this.nextNode() });
    const delay = this.nextReconnectDelay();
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.connectLoop();
    }, delay);
  }

  private waitForSession(deadline: number, what = 'connection'): Promise<Session> {
    if (this.stopped) return Promise.reject(new BusError(BusErrorCode.OSPREY_ERR_BUS_STOPPED, `bus is stopped (${what})`));
    const current = this.session;
    if (current && !current.closed) return Promise.resolve(current);
    return new Promise<Session>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter = {
        resolve: (s: Session) => {
          clearTimeout(timer);
          resolve(s);
        },
        reject: (e: unknown) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.sessionWaiters.add(waiter);
      if (Number.isFinite(deadline)) {
        timer = setTimeout(
          () => {
            this.sessionWaiters.delete(waiter);
            reject(new BusError(BusErrorCode.OSPREY_ERR_BUS_PUBLISH_TIMEOUT, `no broker connection within the publish timeout (${what})`));
          },
          Math.max(0, deadline - Date.now()),
        );
      }
    });
  }

  /** Declares a logical queue once per session, on a channel of its own (a refusal closes that channel only). */
  private ensureDeclared(session: Session, queue: string): Promise<void> {
    let declared = session.declared.get(queue);
    if (!declared) {
      declared = (async () => {
        const channel = await session.connection.createChannel();
        let refusal: Error | undefined;
        channel.on('error', (err: Error) => {
          refusal = err;
        });
        try {
          await declareQueue(channel, this.names, queue, { partitions: this.partitions, deliveryLimit: this.deliveryLimit });
        } catch (err) {
          const cause = refusal ?? err;
          if (!session.closed && /PRECONDITION_FAILED|406/.test(errorText(cause))) {
            throw new BusError(BusErrorCode.OSPREY_ERR_BUS_TOPOLOGY, `RabbitMQ refused the topology of ${queue}: ${errorText(cause)}`, { cause });
          }
          throw cause;
        } finally {
          await channel.close().catch(() => undefined);
        }
      })();
      session.declared.set(queue, declared);
      declared.catch(() => {
        if (session.declared.get(queue) === declared) session.declared.delete(queue);
      });
    }
    return declared;
  }

  private publishOnce(session: Session, channel: ConfirmChannel, routingKey: string, content: Buffer, deadline: number, item: WorkItem, queue: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.publishSeq += 1;
      const token = `${this.instanceId}:${this.publishSeq}`;
      let settled = false;
      const timer = setTimeout(
        () => {
          if (settled) return;
          settled = true;
          session.returned.delete(token);
          reject(new BusError(BusErrorCode.OSPREY_ERR_BUS_PUBLISH_TIMEOUT, `no broker confirm for ${item.id} on ${queue} within ${this.publishTimeoutMs} ms`));
        },
        Math.max(0, deadline - Date.now()),
      );
      const settle = (err: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        const returned = session.returned.delete(token);
        if (err) {
          if (isNack(err)) {
            this.renewPublisher(session, channel);
            reject(new BusError(BusErrorCode.OSPREY_ERR_BUS_PUBLISH_REJECTED, `the broker nacked ${item.id} on ${queue}`, { cause: err }));
          } else reject(err); // channel closed: the caller republishes on the next connection or channel
        } else if (returned) {
          // Its partition queue is gone (deleted behind our back): declare again on the next publish.
          session.declared.delete(queue);
          reject(new BusError(BusErrorCode.OSPREY_ERR_BUS_PUBLISH_REJECTED, `${item.id} was unroutable on ${queue} (queue missing)`));
        } else resolve();
      };
      try {
        channel.publish(
          this.names.workExchange,
          routingKey,
          content,
          { persistent: true, mandatory: true, messageId: token, contentType: 'application/json', type: 'osprey.work-item' },
          (err: unknown) => settle(err),
        );
      } catch (err) {
        settle(err ?? new Error('publish failed'));
      }
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Consuming

  private async subscribeConsumer(consumer: ConsumerState): Promise<void> {
    // Home partitions first and awaited, so that announcing them (below) is true.
    const home: Array<Promise<void>> = [];
    for (const part of consumer.partitions) {
      if (this.isHome(part)) home.push(this.subscribe(part, 'home'));
    }
    await Promise.all(home);
    for (const part of consumer.partitions) this.reconcile(part);
    this.announce();
  }

  private async subscribe(part: PartitionState, role: 'home' | 'standby'): Promise<void> {
    const session = this.session;
    if (!session || session.closed || this.stopped || part.status !== 'idle') return;
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
      await this.ensureDeclared(session, part.consumer.queue);
      channel = await session.connection.createChannel();
      const ch = channel;
      ch.on('error', (err: Error) => {
        if (/acknowledgement timed out/i.test(errorText(err))) {
          // The broker's consumer_timeout (30 min by default) is shorter than a handler's wait (a
          // destination retrying through an outage): the deliveries come back, counted towards
          // the delivery limit. Operators must raise it (docs/design/0005-bus.md, "Operations").
          this.options.logger?.error('bus delivery outlived the broker consumer_timeout; raise consumer_timeout above the longest destination retry window', {
            queue: part.queueName,
            error: errorText(err),
          });
        } else this.options.logger?.warn('bus consumer channel error', { queue: part.queueName, error: errorText(err) });
      });
      ch.on('close', () => this.onPartitionChannelClosed(part, epoch));
      await ch.prefetch(this.prefetch);
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
        if (!session.closed && !this.stopped) {
          this.options.logger?.warn('bus subscribe failed; retrying', { queue: part.queueName, error: errorText(err) });
          this.scheduleSubscribe(part, this.nextPartitionRetryDelay());
        }
      }
      if (channel) await channel.close().catch(() => undefined);
    }
  }

  private nextPartitionRetryDelay(): number {
    return Math.round(Math.min(this.maxReconnectDelayMs, 1000) * (0.8 + Math.random() * 0.4));
  }

  private scheduleSubscribe(part: PartitionState, delayMs: number): void {
    clearTimeout(part.timer);
    part.timer = setTimeout(() => {
      part.timer = undefined;
      if (part.status !== 'idle') return;
      void this.subscribe(part, this.isHome(part) ? 'home' : 'standby').then(() => {
        // A home partition back in line: say so now, so that a standby holding it hands it back.
        if (part.role === 'home' && part.status === 'subscribed') this.announce();
        this.reconcile(part);
      });
    }, delayMs);
  }

  /** Brings one partition's subscription in line with the current membership. */
  private reconcile(part: PartitionState): void {
    if (this.stopped || !this.connected) return;
    const home = this.isHome(part);
    switch (part.status) {
      case 'idle':
        if (home) {
          if (part.timer) clearTimeout(part.timer);
          part.timer = undefined;
          void this.subscribe(part, 'home').then(() => this.announce());
        } else if (!part.timer) this.scheduleSubscribe(part, this.standbyDelayMs);
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
   * instance has announced a consumer on it ({@link homeIsWaiting}).
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
    this.options.logger?.info('bus partition handed over', { queue: part.queueName, instance: this.instanceId });
    const channel = part.channel;
    this.dropChannel(part);
    await channel?.close().catch(() => undefined);
    this.announce();
    // The home instance was already in line, so it is active now and a new standby subscription
    // goes behind it; soon, so that if the home went meanwhile the partition is not left without
    // a consumer for long.
    if (!this.stopped && this.connected) this.scheduleSubscribe(part, Math.min(this.standbyDelayMs, this.nextPartitionRetryDelay()));
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
    if (this.stopped || !this.connected) return; // a lost connection re-subscribes everything
    this.options.logger?.warn('bus consumer channel closed; re-subscribing', { queue: part.queueName });
    this.scheduleSubscribe(part, this.nextPartitionRetryDelay());
  }

  private onDelivery(part: PartitionState, epoch: number, channel: Channel, message: ConsumeMessage | null): void {
    if (message === null) {
      // The broker cancelled the consumer (queue deleted): declare and subscribe again.
      if (part.epoch !== epoch) return;
      this.session?.declared.delete(part.consumer.queue);
      this.dropChannel(part);
      void channel.close().catch(() => undefined);
      if (!this.stopped && this.connected) this.scheduleSubscribe(part, this.nextPartitionRetryDelay());
      return;
    }
    // An old channel's delivery, or one during a hand-over: it goes back to the broker when its
    // channel closes.
    if (part.epoch !== epoch || part.status !== 'subscribed') return;
    if (part.activeSince === undefined) {
      part.activeSince = Date.now();
      this.onActivated(part);
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
    return !this.stopped && d.partition.epoch === d.epoch && d.partition.status === 'subscribed';
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
    if (attempts >= this.deliveryLimit) {
      this.options.logger?.error('bus dead-lettered a work item after its delivery limit', meta);
      safely(() => d.channel.nack(d.message, false, false));
      return 'drop';
    }
    const retryInMs = Math.min(this.maxRetryDelayMs, this.retryDelayMs * 2 ** Math.min(failures - 1, 20));
    this.options.logger?.warn('bus handler failed; retrying the item', { ...meta, retryInMs });
    return { retryInMs };
  }

  /**
   * Hands the dead-lettered items of `queue` to the listener, on a channel of its own. Every
   * instance consumes the dead-letter queue (it has no single active consumer: each item goes to
   * one of them). A watch that ends while the connection lives (the queue deleted, a channel
   * error) starts again a little later, the queue declared again.
   */
  private async watchDeadLetters(session: Session, queue: string): Promise<void> {
    const listener = this.deadLetterListener;
    if (!listener || session.closed || this.stopped || session.deadLettersWatched.has(queue)) return;
    session.deadLettersWatched.add(queue);
    const again = (): void => {
      session.deadLettersWatched.delete(queue);
      if (session.closed || this.stopped) return;
      setTimeout(() => {
        if (session.closed || this.stopped) return; // the next connection watches again
        session.declared.delete(queue);
        this.ensureDeclared(session, queue).then(
          () => this.watchDeadLetters(session, queue),
          () => again(),
        );
      }, DEAD_LETTER_RETRY_MS).unref();
    };
    let channel: Channel;
    try {
      channel = await session.connection.createChannel();
    } catch {
      session.deadLettersWatched.delete(queue); // the connection is going: the next one watches again
      return;
    }
    channel.on('error', (err: Error) => this.options.logger?.warn('bus dead-letter channel error', { queue, error: errorText(err) }));
    channel.on('close', again);
    try {
      await channel.prefetch(DEAD_LETTER_PREFETCH);
      await channel.consume(this.names.deadLetterQueue(queue), (message) => {
        if (message) void this.onDeadLetter(channel, queue, message, listener);
        else void channel.close().catch(() => undefined); // cancelled by the broker (queue deleted)
      });
    } catch (err) {
      // The channel closes with the failure, and `again` runs.
      if (!session.closed) this.options.logger?.warn('bus cannot take the dead-lettered items of a queue', { queue, error: errorText(err) });
    }
  }

  private async onDeadLetter(channel: Channel, queue: string, message: ConsumeMessage, listener: (queue: string, item: WorkItem, reason: string) => Promise<void>): Promise<void> {
    const item = parseWorkItem(message.content);
    if (!item) {
      this.options.logger?.error('bus discarded a malformed dead-lettered item', { queue });
      safely(() => channel.ack(message));
      return;
    }
    // `rejected`: the bus gave up after its delivery limit; `delivery_limit`: the quorum queue did.
    const reason = String(message.properties.headers?.['x-first-death-reason'] ?? 'rejected');
    try {
      await listener(queue, item, reason);
      safely(() => channel.ack(message));
    } catch (err) {
      this.options.logger?.warn('bus could not hand over a dead-lettered item; offering it again later', { queue, messageId: item.id, error: errorText(err) });
      setTimeout(() => safely(() => channel.nack(message, false, true)), DEAD_LETTER_RETRY_MS).unref();
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Membership (spreading partitions over instances)

  private async startMembership(session: Session): Promise<void> {
    const channel = await session.connection.createChannel();
    channel.on('error', (err: Error) => this.options.logger?.warn('bus membership channel error', { error: errorText(err) }));
    const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
    await channel.bindQueue(queue, this.names.membersExchange, '');
    await channel.consume(queue, (message) => message && this.onAnnouncement(message.content), { noAck: true });
    session.membership = channel;
    this.announce();
  }

  private ownQueues(): Record<string, number[]> {
    const queues: Record<string, number[]> = {};
    for (const consumer of this.consumers.values()) {
      queues[consumer.queue] = consumer.partitions.filter((p) => p.status === 'subscribed' || p.status === 'yielding').map((p) => p.index);
    }
    return queues;
  }

  private announce(bye = false): void {
    if (!this.rebalance) return;
    const channel = this.session?.membership;
    if (!channel) return;
    const announcement: Announcement = { id: this.instanceId, queues: bye ? {} : this.ownQueues(), ...(bye ? { bye: true } : {}) };
    safely(() => channel.publish(this.names.membersExchange, '', Buffer.from(JSON.stringify(announcement)), { persistent: false }));
  }

  private onAnnouncement(content: Buffer): void {
    let a: Announcement;
    try {
      a = JSON.parse(content.toString('utf8')) as Announcement;
    } catch {
      return;
    }
    if (typeof a.id !== 'string' || a.id === this.instanceId) return;
    const before = this.assignmentSignature();
    if (a.bye) this.members.delete(a.id);
    else {
      const isNew = !this.members.has(a.id);
      const queues = new Map<string, Set<number>>();
      for (const [queue, parts] of Object.entries(a.queues ?? {})) {
        if (Array.isArray(parts)) queues.set(queue, new Set(parts.filter((p): p is number => typeof p === 'number')));
      }
      this.members.set(a.id, { lastSeen: Date.now(), queues });
      // A newcomer learns about us now rather than at our next tick.
      if (isNew) this.announce();
    }
    this.reportMembers();
    if (this.assignmentSignature() !== before) this.reconcileAll();
    else if (!a.bye) {
      // The homes are the same, but the announcer may now wait on partitions this instance still
      // holds as former home: hand those over.
      for (const consumer of this.consumers.values()) {
        for (const part of consumer.partitions) {
          if (part.status === 'subscribed' && part.role === 'home' && this.homeOf(part) === a.id) this.reconcile(part);
        }
      }
    }
  }

  /**
   * A subscription became active (first delivery). On another member's home partition, that
   * member's consumer is gone: a crash, a lost connection, or its partition channel alone. Unless
   * it announces itself again within 2 intervals (it reconnected), it is forgotten then, rather
   * than after the 3 silent intervals of the periodic expiry.
   */
  private onActivated(part: PartitionState): void {
    const home = this.homeOf(part);
    if (home === this.instanceId || !this.members.has(home)) return;
    this.options.logger?.info('bus partition taken over from its home instance', { queue: part.queueName, home, instance: this.instanceId });
    if (this.suspects.has(home)) return;
    const since = part.activeSince ?? Date.now();
    const timer = setTimeout(() => {
      this.suspects.delete(home);
      const member = this.members.get(home);
      if (this.stopped || !member || member.lastSeen > since) return;
      const before = this.assignmentSignature();
      this.forgetSilent(home, member);
      this.options.logger?.info('bus member gone (silent since it lost a partition)', { member: home, instance: this.instanceId });
      this.reportMembers();
      if (this.assignmentSignature() !== before) this.reconcileAll();
    }, 2 * this.membershipIntervalMs);
    this.suspects.set(home, timer);
  }

  private membershipTick(): void {
    const self = this.members.get(this.instanceId);
    if (self) self.lastSeen = Date.now();
    const before = this.assignmentSignature();
    const expiry = Date.now() - 3 * this.membershipIntervalMs;
    for (const [id, member] of this.members) {
      if (id !== this.instanceId && member.lastSeen < expiry) this.forgetSilent(id, member);
    }
    this.announce();
    this.reportMembers();
    if (this.assignmentSignature() !== before) this.reconcileAll();
  }

  /**
   * Forgets a member that went silent without saying goodbye: it died, or lost the broker while
   * this instance kept it. One survivor, the one with the smallest id, tells the onMemberLost
   * listeners (each survivor decides alone, from the same membership).
   */
  private forgetSilent(id: string, member: Member): void {
    this.members.delete(id);
    if ([...this.members.keys()].every((other) => other >= this.instanceId)) this.callEach(this.memberLostListeners, member.lastSeen);
  }

  /** Tells the listeners of onMembersChanged when the number of live instances changed. */
  private reportMembers(): void {
    const count = Math.max(1, this.members.size);
    if (count === this.reportedMembers) return;
    this.reportedMembers = count;
    this.callEach(this.membersListeners, count);
  }

  /** Calls every listener; one that throws is logged and does not stop the others or the bus. */
  private callEach<T>(listeners: ReadonlyArray<(value: T) => void>, value: T): void {
    for (const listener of listeners) {
      try {
        listener(value);
      } catch (err) {
        this.options.logger?.warn('bus listener failed', { error: errorText(err) });
      }
    }
  }

  /** Who consumes which queue: when it changes, partitions' homes may change. */
  private assignmentSignature(): string {
    return [...this.members.entries()]
      .map(([id, m]) => `${id}:${[...m.queues.keys()].sort().join(',')}`)
      .sort()
      .join('|');
  }

  private reconcileAll(): void {
    for (const consumer of this.consumers.values()) for (const part of consumer.partitions) this.reconcile(part);
  }

  /** The home instance of a partition: among members consuming its queue (this one included), by rank. */
  private homeOf(part: PartitionState): string {
    if (!this.rebalance) return this.instanceId;
    const queue = part.consumer.queue;
    const candidates = [...this.members.entries()]
      .filter(([id, m]) => id === this.instanceId || m.queues.has(queue))
      .map(([id]) => id)
      .sort();
    // Offset by the queue's hash so that instances do not all own partition 0 of every queue.
    const index = (part.index + partitionOf(queue, 1 << 16)) % candidates.length;
    return candidates[index] ?? this.instanceId;
  }

  private isHome(part: PartitionState): boolean {
    return this.homeOf(part) === this.instanceId;
  }

  /**
   * True when the partition's home is another instance that is alive and waits in line on it: its
   * latest announcement lists a consumer on the partition, and came after this instance became
   * active on it (or subscribed, before any delivery) and within the last 2 intervals. An
   * announcement from before is no proof: the broker made this subscription active because the
   * home's consumer went, and a crashed home still listed as a member (until it expires) must not
   * get the partition back — nobody would consume it.
   */
  private homeIsWaiting(part: PartitionState): boolean {
    const home = this.homeOf(part);
    if (home === this.instanceId) return false;
    const member = this.members.get(home);
    if (!member) return false;
    const since = part.activeSince ?? part.subscribedAt ?? Number.POSITIVE_INFINITY;
    if (member.lastSeen <= since || member.lastSeen < Date.now() - 2 * this.membershipIntervalMs) return false;
    return member.queues.get(part.consumer.queue)?.has(part.index) ?? false;
  }

  // ---------------------------------------------------------------------------------------------
  // Stop

  private async doStop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.membershipTimer);
    for (const timer of this.suspects.values()) clearTimeout(timer);
    this.suspects.clear();
    for (const waiter of this.sessionWaiters) waiter.reject(new BusError(BusErrorCode.OSPREY_ERR_BUS_STOPPED, 'bus stopped'));
    this.sessionWaiters.clear();
    for (const consumer of this.consumers.values()) {
      for (const part of consumer.partitions) {
        clearTimeout(part.timer);
        part.timer = undefined;
      }
    }
    // Tell the others first, so they take our home partitions as soon as our channels close.
    this.announce(true);
    await Promise.all([...this.consumers.values()].map((c) => c.dispatcher.stop()));
    const session = this.session;
    this.session = undefined;
    if (session && !session.closed) {
      session.closed = true;
      await closeConnection(session.connection);
    }
  }
}

/** Longest wait for a connection's orderly close before its socket is destroyed. */
const CLOSE_TIMEOUT_MS = 5_000;

/**
 * Closes a connection; never hangs. amqplib's `close()` never settles when the socket died just
 * before it (measured: a relay cut, then `close()`: still pending 5 s later, after the connection's
 * 'close' event), and a peer that went silent never answers it: so it also ends at that event, or
 * after CLOSE_TIMEOUT_MS by destroying the socket. Without this, `stop()` during a broker outage
 * and the connect loop after a half-opened connection hung for good.
 */
function closeConnection(connection: ChannelModel): Promise<void> {
  const socket = socketOf(connection);
  if (socket?.destroyed) return Promise.resolve(); // gone already, its 'close' event too
  return new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      connection.removeListener('close', done);
      resolve();
    };
    const timer = setTimeout(() => {
      socket?.destroy?.();
      done();
    }, CLOSE_TIMEOUT_MS);
    connection.once('close', done);
    connection.close().then(done, done);
  });
}

function parseWorkItem(content: Buffer): WorkItem | undefined {
  try {
    const value = JSON.parse(content.toString('utf8')) as { id?: unknown; key?: unknown; ahead?: unknown };
    if (typeof value.id === 'string' && typeof value.key === 'string') return value.ahead === true ? { id: value.id, key: value.key, ahead: true } : { id: value.id, key: value.key };
  } catch {
    // fall through
  }
  return undefined;
}

function isNack(err: unknown): boolean {
  return err instanceof Error && err.message === 'message nacked';
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** amqplib throws synchronously on a closed channel; an ack or nack there is moot (the broker redelivers). */
function safely(action: () => unknown): void {
  try {
    action();
  } catch {
    // channel closed: nothing to do
  }
}

/** An error of a class that passes by itself (the store unreachable, a timeout), by its code. */
function isTransient(error: unknown): boolean {
  return isOspreyError(error) && ErrorCodes[error.code as ErrorCode]?.class === 'transient';
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Makes the frames amqplib writes in one turn of the event loop leave in one socket write.
 * amqplib's multiplexer writes each channel's pending frames with its own `socket.write`: with
 * TCP_NODELAY, one system call and one packet each (a publish on the confirm channel, an ack on
 * each partition's channel …). On loopback the kernel also runs the receiving side of TCP inside
 * each of those calls; they were ~7% of the engine's busy time in production mode. Corked until
 * the end of the current turn, they go as one `writev`. amqplib has no public handle on its socket
 * (`connection.connection.stream`); without one this does nothing and every frame is written as before.
 */
/** What this module uses of the socket under an amqplib connection. */
type AmqpSocket = { write?: unknown; cork?: () => void; uncork?: () => void; destroyed?: boolean; destroy?: () => void };

/** amqplib's socket under a connection (not part of its API: every use checks what it finds). */
function socketOf(connection: ChannelModel): AmqpSocket | undefined {
  return (connection as unknown as { connection?: { stream?: AmqpSocket } }).connection?.stream;
}

function coalesceSocketWrites(connection: ChannelModel): void {
  const socket = socketOf(connection);
  if (!socket || typeof socket.write !== 'function' || typeof socket.cork !== 'function' || typeof socket.uncork !== 'function') return;
  const write = socket.write as (...args: unknown[]) => boolean;
  const cork = socket.cork.bind(socket);
  const uncork = socket.uncork.bind(socket);
  let corked = false;
  socket.write = function coalescedWrite(this: unknown, ...args: unknown[]): boolean {
    if (!corked) {
      corked = true;
      cork();
      process.nextTick(() => {
        corked = false;
        uncork();
      });
    }
    return write.apply(this, args);
  };
}
