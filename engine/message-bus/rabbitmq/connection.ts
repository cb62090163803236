// SPDX-License-Identifier: Apache-2.0
/**
 * The bus's one connection to the broker: opened on a node of the list, re-opened with exponential
 * backoff (on the next node) when it fails or is lost, and the topology declared on it. The other
 * parts (publisher, partition consumers, membership, dead-letter watches) open their channels on
 * the current {@link Session} and are told, through {@link ConnectionEvents}, when one opens and
 * when one is lost. Nothing here throws into the event loop: every amqplib event has a listener.
 */
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import type { Logger } from '../../observability/logger.ts';
import { BusError, BusErrorCode, errorText } from '../bus-errors.ts';
import { declareExchanges, declareQueue, type TopologyNames } from '../rabbitmq-topology.ts';
import { closeConnection, openConnection } from './amqplib-quirks.ts';
import { brokerAddress, BrokerNodes } from './broker-nodes.ts';

/** One connection and what lives and dies with it. */
export interface Session {
  readonly connection: ChannelModel;
  /** The node connected to (`host:port`), for logs. */
  readonly node: string;
  /** Logical queue → its declaration in this session (topology is re-declared on every connection). */
  readonly declared: Map<string, Promise<void>>;
  closed: boolean;
}

/** What the other parts of the bus are told about the connection. */
export interface ConnectionEvents {
  /**
   * A connection opened, with the confirm channel its publishes go on: listen to it now, in the
   * turn it opened, before any of its events. The session is not current yet.
   */
  opened(session: Session, publisher: ConfirmChannel): void;
  /** The session became current: re-declare, re-subscribe. Awaited before `reconnected`. */
  connected(session: Session): Promise<void>;
  /** A session was lost (its channels with it): forget them. */
  lost(session: Session): void;
  /** Connected again after a loss (not at the first connect), with when it was lost (epoch ms). */
  reconnected(lostAt: number): void;
}

/** Options of {@link BrokerConnection}. */
export interface BrokerConnectionOptions {
  url: string | readonly string[];
  names: TopologyNames;
  instanceId: string;
  /** Part of every partition queue's identity (declareQueue). */
  partitions: number;
  deliveryLimit: number;
  reconnectDelayMs: number;
  maxReconnectDelayMs: number;
  logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
}

/** The connection loop and the current session; see the module comment. */
export class BrokerConnection {
  private readonly nodes: BrokerNodes;
  private session?: Session;
  private readonly sessionWaiters = new Set<{ resolve: (s: Session) => void; reject: (e: unknown) => void }>();
  private connecting = false;
  private reconnectTimer?: NodeJS.Timeout;
  private reconnectAttempt = 0;
  /** When the last connection was lost (epoch ms; 0: never, so a connect is the first one). */
  private lostAt = 0;
  private halted = false;

  constructor(
    private readonly options: BrokerConnectionOptions,
    private readonly events: ConnectionEvents,
  ) {
    this.nodes = new BrokerNodes(options.url);
  }

  /** The open session, if any. */
  get current(): Session | undefined {
    const session = this.session;
    return session && !session.closed ? session : undefined;
  }

  /** Starts connecting (in the background; see {@link waitForSession}). */
  start(): void {
    void this.connectLoop();
  }

  /**
   * The current session, or the next one; rejects with OSPREY_ERR_BUS_PUBLISH_TIMEOUT at `deadline`
   * (epoch ms; infinite: never), or OSPREY_ERR_BUS_STOPPED once halted. `what` names the waiter in
   * the error.
   */
  waitForSession(deadline: number, what = 'connection'): Promise<Session> {
    if (this.halted) return Promise.reject(new BusError(BusErrorCode.OSPREY_ERR_BUS_STOPPED, `bus is stopped (${what})`));
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
  ensureDeclared(session: Session, queue: string): Promise<void> {
    let declared = session.declared.get(queue);
    if (!declared) {
      declared = (async () => {
        const channel = await session.connection.createChannel();
        let refusal: Error | undefined;
        channel.on('error', (err: Error) => {
          refusal = err;
        });
        try {
          await declareQueue(channel, this.options.names, queue, { partitions: this.options.partitions, deliveryLimit: this.options.deliveryLimit });
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

  /**
   * Ends a session that died (its connection closed, or its publish channel alone): its channels
   * are forgotten, and unless the bus is halting, the next node is connected to after a backoff.
   */
  sessionLost(session: Session): void {
    if (session.closed) return;
    session.closed = true;
    this.lostAt = Date.now();
    const wasCurrent = this.session === session;
    if (wasCurrent) this.session = undefined;
    this.events.lost(session);
    // Lost while being opened: the connect loop tries again (the next node).
    if (this.halted || !wasCurrent) return;
    // The node may be going away (a cluster node's restart or loss): the next one is tried first.
    this.options.logger?.warn('bus connection lost; reconnecting', { prefix: this.options.names.prefix, ...this.nodes.next() });
    const delay = this.nextReconnectDelay();
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.connectLoop();
    }, delay);
  }

  /** No reconnect from now on; sessions waited for reject with OSPREY_ERR_BUS_STOPPED. The session stays open (see close). */
  halt(): void {
    this.halted = true;
    clearTimeout(this.reconnectTimer);
    for (const waiter of this.sessionWaiters) waiter.reject(new BusError(BusErrorCode.OSPREY_ERR_BUS_STOPPED, 'bus stopped'));
    this.sessionWaiters.clear();
  }

  /** Closes the current session (after {@link halt}); bounded (amqplib-quirks.ts closeConnection). */
  async close(): Promise<void> {
    const session = this.session;
    this.session = undefined;
    if (session && !session.closed) {
      session.closed = true;
      await closeConnection(session.connection);
    }
  }

  private async connectLoop(): Promise<void> {
    if (this.connecting || this.halted) return;
    this.connecting = true;
    let session: Session | undefined;
    try {
      while (!this.halted && !session) {
        try {
          const opened = await this.openSession();
          if (this.halted) {
            await closeConnection(opened.connection);
            return;
          }
          if (!opened.closed) session = opened;
          else this.nodes.next(); // it died already: try the next node
        } catch (err) {
          const delay = this.nextReconnectDelay();
          this.options.logger?.warn('bus connection failed; retrying', { prefix: this.options.names.prefix, ...this.nodes.next(), delayMs: delay, error: errorText(err) });
          await new Promise<void>((resolve) => {
            this.reconnectTimer = setTimeout(resolve, delay);
          });
          this.reconnectTimer = undefined;
        }
      }
    } finally {
      // Cleared before `connected`: a connection lost during it must be able to start a new loop.
      this.connecting = false;
    }
    if (!session) return;
    this.session = session;
    this.reconnectAttempt = 0;
    this.options.logger?.info('bus connected', { prefix: this.options.names.prefix, instance: this.options.instanceId, node: session.node });
    for (const waiter of this.sessionWaiters) waiter.resolve(session);
    this.sessionWaiters.clear();
    await this.events.connected(session);
    if (this.lostAt > 0) this.events.reconnected(this.lostAt);
  }

  private nextReconnectDelay(): number {
    const { reconnectDelayMs, maxReconnectDelayMs } = this.options;
    const base = Math.min(maxReconnectDelayMs, reconnectDelayMs * 2 ** Math.min(this.reconnectAttempt, 30));
    this.reconnectAttempt += 1;
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  private async openSession(): Promise<Session> {
    const { names, instanceId, logger } = this.options;
    const url = this.nodes.current;
    const connection = await openConnection(url, `osprey ${names.prefix} ${instanceId}`);
    // An 'error' without a listener would crash the process; 'close' follows and drives recovery.
    connection.on('error', (err: Error) => logger?.warn('bus connection error', { error: errorText(err) }));
    connection.on('blocked', (reason: string) => logger?.warn('broker blocked publishing (resource alarm)', { reason }));
    connection.on('unblocked', () => logger?.info('broker unblocked publishing'));
    let session: Session | undefined;
    connection.on('close', () => {
      if (session) this.sessionLost(session);
    });
    try {
      const publisher = await connection.createConfirmChannel();
      session = { connection, node: brokerAddress(url), declared: new Map(), closed: false };
      this.events.opened(session, publisher);
      const admin = await connection.createChannel();
      admin.on('error', () => undefined);
      await declareExchanges(admin, names);
      await admin.close();
      return session;
    } catch (err) {
      await closeConnection(connection);
      throw err;
    }
  }
}
