// SPDX-License-Identifier: Apache-2.0
/**
 * The bus moves work items between stages. A work item only points at the store (the outbox
 * pattern): the store is the truth and the buffer, the bus is the signal. Two implementations:
 * the embedded local bus (in process, recovered from the store at start) and RabbitMQ.
 *
 * Ordering guarantee of every implementation: items of one `key` on one queue are handed to the
 * handler one at a time, in publish order; items of different keys run concurrently. A handler
 * that is still working on an item (for example waiting for a retry) holds back its key only.
 */
export interface WorkItem {
  /** Message id (pipeline queues) or delivery id (destination queues). */
  id: string;
  /** Ordering key (the channel's orderBy value). */
  key: string;
  /**
   * Published while the row it points at was still being written (docs/design/0008): a consumer
   * that does not find the row yet waits a moment for it instead of taking it as gone.
   */
  ahead?: true;
}

/**
 * Resolve when the item is done (its new state is stored): the bus then acknowledges it.
 * `released` aborts when the bus no longer holds the item (a networked bus whose channel closed or
 * was handed over: the broker delivers the item again, perhaps to another instance). A handler
 * waiting for something (a retry delay) should then give up, or it would race that new delivery.
 */
export type WorkHandler = (item: WorkItem, released?: AbortSignal) => Promise<void>;

export interface ConsumeOptions {
  /** Items of different keys in flight at once for this queue. */
  concurrency?: number;
}

/**
 * Delivery is at least once: an item may be handed to a handler again (after a crash, a broker
 * restart or a duplicate publish), so handlers check the store's state first. A handler that rejects
 * has its item retried by the bus after a short backoff, the item staying at the head of its key;
 * the bus does not implement business retry delays — a handler that must wait (a destination's
 * retry policy) waits inside the handler, holding its key (docs/design/0005-bus.md).
 */
export interface MessageBus {
  /** Connects (RabbitMQ) or does nothing (local). Idempotent. */
  start(): Promise<void>;
  /**
   * Resolves once the item is accepted by the bus (publisher-confirmed on RabbitMQ); rejects when
   * it could not be (timeout, broker nack, bus stopped): the caller still has it in the store.
   */
  publish(queue: string, item: WorkItem): Promise<void>;
  /** Subscribes one handler to a queue. Items published earlier are delivered too. */
  consume(queue: string, handler: WorkHandler, options?: ConsumeOptions): Promise<void>;
  /** Stops consuming; in-flight handlers finish. Idempotent. */
  stop(): Promise<void>;
  /**
   * Optional, for tests and orderly shutdown: resolves when the consumed queues are empty and no
   * handler runs or waits for a retry.
   */
  idle?(): Promise<void>;
  /**
   * Buses that hold their items in this process's memory (the local one): the items published to
   * queues that have a consumer and not finished yet. Absent: a broker holds them.
   */
  readonly heldItems?: number;
  /**
   * With {@link heldItems}: resolves once at most `limit` items are held (at once when that is so,
   * or when the bus stops). A recovery publishes the store's unfinished work a page at a time, each
   * page once the ones before have drained, so that a backlog waits in the store, not in memory.
   */
  whenHeldAtMost?(limit: number): Promise<void>;
  /** False while a networked bus is disconnected (for /readyz); absent: always connected. */
  readonly connected?: boolean;
  /** The broker node (`host:port`) a networked bus is connected to, for `/healthz`; absent otherwise. */
  readonly node?: string;
  /**
   * Networked buses: `listener` runs each time the bus is connected again after losing its
   * connection (not at the first connect), with when it was lost (epoch ms). Work other instances
   * stored while the broker was away may be waiting in the store with no one left to publish it
   * (docs/design/0006 §3).
   */
  onReconnected?(listener: (lostAt: number) => void): void;
  /**
   * Networked buses with several engine instances: `listener` gets the number of live instances
   * (this one included) at once, then each time it changes. Rate limits use it to take an equal
   * share each.
   */
  onMembersChanged?(listener: (instances: number) => void): void;
  /**
   * Networked buses with several engine instances: `listener` runs on ONE surviving instance when
   * another goes silent without saying goodbye (it died, or it lost the broker), with when it was
   * last heard (this instance's clock). It may have stored and ACKed messages it could not publish
   * (docs/design/0006 §3).
   */
  onMemberLost?(listener: (lastHeardAt: number) => void): void;
  /**
   * Networked buses (the local one retries without limit): `listener` gets each work item the bus
   * gave up on (dead-lettered after its delivery limit), with its queue and the broker's reason, on
   * one instance, so that the store shows what no stage will handle any more and a replay can
   * re-queue it. The item leaves the dead-letter queue once the listener resolves; when it rejects
   * (the store is down), it is offered again a little later.
   */
  onDeadLettered?(listener: (queue: string, item: WorkItem, reason: string) => Promise<void>): void;
}

const DELIVERY_QUEUE_PREFIX = 'deliver.';

/** Queue names, one per channel stage, so a slow destination holds back only itself. */
export const queueNames = {
  pipeline: (channel: string) => `pipeline.${channel}`,
  delivery: (channel: string, destination: string) => `${DELIVERY_QUEUE_PREFIX}${channel}.${destination}`,
  /** True for a destination's queue, false for a channel's pipeline queue. */
  isDelivery: (queue: string) => queue.startsWith(DELIVERY_QUEUE_PREFIX),
};
