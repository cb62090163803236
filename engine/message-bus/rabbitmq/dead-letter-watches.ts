// SPDX-License-Identifier: Apache-2.0
/**
 * Dead-letter watches: the items the bus (or the quorum queue's delivery limit) gave up on are
 * handed to a listener (the engine marks them in the store, replayable), on a channel of its own
 * per consumed queue. Every instance consumes the dead-letter queue (it has no single active
 * consumer: each item goes to one of them).
 */
import type { Channel, ConsumeMessage } from 'amqplib';
import type { Logger } from '../../observability/logger.ts';
import { errorText } from '../bus-errors.ts';
import type { WorkItem } from '../message-bus.ts';
import type { TopologyNames } from '../rabbitmq-topology.ts';
import { safely } from './amqplib-quirks.ts';
import type { BrokerConnection, Session } from './connection.ts';
import { parseWorkItem } from './work-item-content.ts';

/** Dead-lettered items a dead-letter consumer holds at once (see DeadLetterWatches.watch). */
const DEAD_LETTER_PREFETCH = 16;
/** Delay before a dead-lettered item the listener could not take is offered again. */
const DEAD_LETTER_RETRY_MS = 5_000;

/** Takes a dead-lettered item; the item leaves the dead-letter queue once it resolves. */
export type DeadLetterListener = (queue: string, item: WorkItem, reason: string) => Promise<void>;

/** What {@link DeadLetterWatches} works with. */
export interface DeadLetterWatchesOptions {
  connection: BrokerConnection;
  names: TopologyNames;
  logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
  isStopped(): boolean;
}

/** The dead-letter queues watched on each session; see the module comment. */
export class DeadLetterWatches {
  private listener?: DeadLetterListener;
  /** Logical queues whose dead-letter queue a session consumes. */
  private readonly watched = new WeakMap<Session, Set<string>>();

  constructor(private readonly options: DeadLetterWatchesOptions) {}

  /** Sets the listener; queues are watched from the next {@link watch}. */
  listen(listener: DeadLetterListener): void {
    this.listener = listener;
  }

  /**
   * Hands the dead-lettered items of `queue` to the listener, on a channel of its own. A watch
   * that ends while the connection lives (the queue deleted, a channel error) starts again a
   * little later, the queue declared again. Nothing without a listener, or when watched already.
   */
  async watch(session: Session, queue: string): Promise<void> {
    const { connection, names, logger, isStopped } = this.options;
    const listener = this.listener;
    let watched = this.watched.get(session);
    if (!watched) {
      watched = new Set();
      this.watched.set(session, watched);
    }
    if (!listener || session.closed || isStopped() || watched.has(queue)) return;
    watched.add(queue);
    const again = (): void => {
      watched.delete(queue);
      if (session.closed || isStopped()) return;
      setTimeout(() => {
        if (session.closed || isStopped()) return; // the next connection watches again
        session.declared.delete(queue);
        connection.ensureDeclared(session, queue).then(
          () => this.watch(session, queue),
          () => again(),
        );
      }, DEAD_LETTER_RETRY_MS).unref();
    };
    let channel: Channel;
    try {
      channel = await session.connection.createChannel();
    } catch {
      watched.delete(queue); // the connection is going: the next one watches again
      return;
    }
    channel.on('error', (err: Error) => logger?.warn('bus dead-letter channel error', { queue, error: errorText(err) }));
    channel.on('close', again);
    try {
      await channel.prefetch(DEAD_LETTER_PREFETCH);
      await channel.consume(names.deadLetterQueue(queue), (message) => {
        if (message) void this.onDeadLetter(channel, queue, message, listener);
        else void channel.close().catch(() => undefined); // cancelled by the broker (queue deleted)
      });
    } catch (err) {
      // The channel closes with the failure, and `again` runs.
      if (!session.closed) logger?.warn('bus cannot take the dead-lettered items of a queue', { queue, error: errorText(err) });
    }
  }

  private async onDeadLetter(channel: Channel, queue: string, message: ConsumeMessage, listener: DeadLetterListener): Promise<void> {
    const { logger } = this.options;
    const item = parseWorkItem(message.content);
    if (!item) {
      logger?.error('bus discarded a malformed dead-lettered item', { queue });
      safely(() => channel.ack(message));
      return;
    }
    // `rejected`: the bus gave up after its delivery limit; `delivery_limit`: the quorum queue did.
    const reason = String(message.properties.headers?.['x-first-death-reason'] ?? 'rejected');
    try {
      await listener(queue, item, reason);
      safely(() => channel.ack(message));
    } catch (err) {
      logger?.warn('bus could not hand over a dead-lettered item; offering it again later', { queue, messageId: item.id, error: errorText(err) });
      setTimeout(() => safely(() => channel.nack(message, false, true)), DEAD_LETTER_RETRY_MS).unref();
    }
  }
}
