// SPDX-License-Identifier: Apache-2.0
/**
 * Publishing: confirm channel, persistent messages, resolve only on the broker's ack; reject on
 * nack, unroutable return or `publishTimeoutMs` (which also bounds waiting for a reconnection: no
 * unbounded in-memory buffer, the store is the buffer — docs/design/0005-bus.md, "outbox").
 * A publish whose channel or connection went away before its confirm is published again on the
 * next one, within its deadline (at least once).
 */
import type { ConfirmChannel } from 'amqplib';
import type { Logger } from '../../observability/logger.ts';
import { BusError, BusErrorCode, errorText } from '../bus-errors.ts';
import type { WorkItem } from '../message-bus.ts';
import { partitionOf, type TopologyNames } from '../rabbitmq-topology.ts';
import { closeConnection, isNack } from './amqplib-quirks.ts';
import type { BrokerConnection, Session } from './connection.ts';
import { encodeWorkItem } from './work-item-content.ts';

/** The publish channel is replaced at most this often after nacks (see renew). */
const PUBLISHER_RENEW_MIN_MS = 1_000;

/** What {@link ConfirmPublisher} works with. */
export interface ConfirmPublisherOptions {
  connection: BrokerConnection;
  names: TopologyNames;
  partitions: number;
  publishTimeoutMs: number;
  /** Makes the publish tokens unique among instances. */
  instanceId: string;
  logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** True once the bus stops: a publish waiting for a connection then rejects with OSPREY_ERR_BUS_STOPPED. */
  isStopped(): boolean;
}

/** A session's publish channel. */
interface PublishChannel {
  /** The confirm channel publishes go on; replaced after a nack (see renew). */
  channel: ConfirmChannel;
  /** When the publish channel was last replaced (epoch ms). */
  renewedAt: number;
  /** Publish tokens the broker returned as unroutable; read when their confirm arrives. */
  readonly returned: Set<string>;
}

/** Publishes work items to their partitions, each confirmed by the broker; see the module comment. */
export class ConfirmPublisher {
  private readonly channels = new WeakMap<Session, PublishChannel>();
  private seq = 0;

  constructor(private readonly options: ConfirmPublisherOptions) {}

  /** Takes a new session's confirm channel (BrokerConnection's `opened` event). */
  attach(session: Session, channel: ConfirmChannel): void {
    this.channels.set(session, { channel, renewedAt: 0, returned: new Set() });
    this.watch(session, channel);
  }

  /** Resolves on the broker's confirm; rejects with a BusError (nack, unroutable, timeout, stopped). */
  async publish(queue: string, item: WorkItem): Promise<void> {
    const { connection, names, partitions } = this.options;
    const deadline = Date.now() + this.options.publishTimeoutMs;
    const content = encodeWorkItem(item);
    const routingKey = names.routingKey(queue, partitionOf(item.key, partitions));
    for (;;) {
      const session = await connection.waitForSession(deadline, `publish of ${item.id} to ${queue}`);
      let channel: ConfirmChannel | undefined;
      try {
        await connection.ensureDeclared(session, queue);
        channel = this.channels.get(session)!.channel;
        await this.publishOnce(session, channel, routingKey, content, deadline, item, queue);
        return;
      } catch (err) {
        if (err instanceof BusError) throw err;
        // The channel or connection went away before the confirm: the broker may or may not have
        // the item. Publish again on the next connection, or on the channel that replaced this one
        // (at least once; consumers de-duplicate through the store's state), as long as the
        // deadline allows.
        if (this.options.isStopped()) throw new BusError(BusErrorCode.OSPREY_ERR_BUS_STOPPED, `bus stopped before ${item.id} was confirmed on ${queue}`, { cause: err });
        if (!session.closed && this.channels.get(session)?.channel === channel) {
          throw new BusError(BusErrorCode.OSPREY_ERR_BUS_PUBLISH_REJECTED, `publish of ${item.id} to ${queue} failed: ${errorText(err)}`, { cause: err });
        }
      }
    }
  }

  /**
   * Listens to a confirm channel for the session's publishes (attached in the turn it opened, before
   * any event). Its closing (with its connection, or alone after a protocol error) ends the
   * session, unless it was replaced meanwhile (renew). Marked at once: this listener runs
   * right after amqplib failed the pending confirms, so their publishers see a closed session and
   * republish on the next one.
   */
  private watch(session: Session, channel: ConfirmChannel): void {
    const { logger } = this.options;
    channel.on('error', (err: Error) => logger?.warn('bus publish channel error', { error: errorText(err) }));
    channel.on('return', (message: { properties: { messageId?: unknown } }) => {
      if (typeof message.properties.messageId === 'string') this.channels.get(session)?.returned.add(message.properties.messageId);
    });
    channel.on('close', () => {
      if (session.closed || this.channels.get(session)?.channel !== channel) return;
      this.options.connection.sessionLost(session);
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
  private renew(session: Session, nacked: ConfirmChannel): void {
    const state = this.channels.get(session);
    if (!state || session.closed || state.channel !== nacked || Date.now() - state.renewedAt < PUBLISHER_RENEW_MIN_MS) return;
    state.renewedAt = Date.now();
    session.connection.createConfirmChannel().then(
      (fresh) => {
        this.watch(session, fresh);
        if (session.closed) return void fresh.close().catch(() => undefined);
        state.channel = fresh;
        this.options.logger?.warn('broker nacked a publish; publishing on a new channel', { prefix: this.options.names.prefix, node: session.node });
        void nacked.close().catch(() => undefined);
      },
      (err: unknown) => this.options.logger?.warn('bus publish channel not renewed', { error: errorText(err) }),
    );
  }

  private publishOnce(session: Session, channel: ConfirmChannel, routingKey: string, content: Buffer, deadline: number, item: WorkItem, queue: string): Promise<void> {
    const returned = this.channels.get(session)!.returned;
    return new Promise<void>((resolve, reject) => {
      this.seq += 1;
      const token = `${this.options.instanceId}:${this.seq}`;
      let settled = false;
      const timer = setTimeout(
        () => {
          if (settled) return;
          settled = true;
          returned.delete(token);
          reject(new BusError(BusErrorCode.OSPREY_ERR_BUS_PUBLISH_TIMEOUT, `no broker confirm for ${item.id} on ${queue} within ${this.options.publishTimeoutMs} ms`));
        },
        Math.max(0, deadline - Date.now()),
      );
      const settle = (err: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        const wasReturned = returned.delete(token);
        if (err) {
          if (isNack(err)) {
            this.renew(session, channel);
            reject(new BusError(BusErrorCode.OSPREY_ERR_BUS_PUBLISH_REJECTED, `the broker nacked ${item.id} on ${queue}`, { cause: err }));
          } else reject(err); // channel closed: the caller republishes on the next connection or channel
        } else if (wasReturned) {
          // Its partition queue is gone (deleted behind our back): declare again on the next publish.
          session.declared.delete(queue);
          reject(new BusError(BusErrorCode.OSPREY_ERR_BUS_PUBLISH_REJECTED, `${item.id} was unroutable on ${queue} (queue missing)`));
        } else resolve();
      };
      try {
        channel.publish(
          this.options.names.workExchange,
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
}
