// SPDX-License-Identifier: Apache-2.0
/**
 * RabbitMQ names and the idempotent declaration of everything the bus uses. Run on every
 * (re)connect: a broker restart may have lost nothing (durable quorum queues) or everything (a new
 * node), and declaring what exists is a no-op (STYLE §3 rule 15).
 *
 * Per logical queue `q` (e.g. `deliver.adt.erp`) and prefix `P`:
 * - `P.work` (direct): routing key `q.p<N>` → quorum queue `P.q.p<N>`, N = hash(key) mod partitions.
 * - Each partition queue has `x-single-active-consumer` (one consumer at a time across every engine
 *   instance, so a key's order holds across instances), `x-delivery-limit` and dead-letters to
 *   `P.dlx` with routing key `q` → `P.q.dlq` (the poison-message backstop).
 * - `P.members` (fanout): instances announce themselves, to spread partitions (rabbitmq/membership.ts).
 *
 * @see docs/design/0005-bus.md
 */
import type { Channel } from 'amqplib';

/** The names derived from one prefix. */
export interface TopologyNames {
  readonly prefix: string;
  /** Direct exchange every work item is published to. */
  readonly workExchange: string;
  /** Direct exchange partition queues dead-letter to. */
  readonly deadLetterExchange: string;
  /** Fanout exchange of the instances' presence announcements. */
  readonly membersExchange: string;
  partitionQueue(queue: string, partition: number): string;
  routingKey(queue: string, partition: number): string;
  deadLetterQueue(queue: string): string;
}

export function topologyNames(prefix: string): TopologyNames {
  if (!/^[A-Za-z0-9_.:-]+$/.test(prefix)) throw new RangeError(`bus prefix must be [A-Za-z0-9_.:-]+, got "${prefix}"`);
  return {
    prefix,
    workExchange: `${prefix}.work`,
    deadLetterExchange: `${prefix}.dlx`,
    membersExchange: `${prefix}.members`,
    partitionQueue: (queue, partition) => `${prefix}.${queue}.p${partition}`,
    routingKey: (queue, partition) => `${queue}.p${partition}`,
    deadLetterQueue: (queue) => `${prefix}.${queue}.dlq`,
  };
}

/**
 * The partition of a key: FNV-1a (32-bit) of its UTF-8 bytes, modulo `partitions`. Every instance
 * must compute the same value, so this function must never change (a change would send a key's
 * next items to another partition while earlier ones are still queued in the old one).
 */
export function partitionOf(key: string, partitions: number): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(key, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % partitions;
}

/** Settings that are part of a partition queue's identity: changing them needs new queues. */
export interface QueueSettings {
  partitions: number;
  deliveryLimit: number;
}

/** Declares the exchanges shared by every logical queue. Idempotent. */
export async function declareExchanges(channel: Channel, names: TopologyNames): Promise<void> {
  await channel.assertExchange(names.workExchange, 'direct', { durable: true });
  await channel.assertExchange(names.deadLetterExchange, 'direct', { durable: true });
  // Presence messages are worthless after a restart: a transient exchange is enough.
  await channel.assertExchange(names.membersExchange, 'fanout', { durable: false });
}

/**
 * Declares one logical queue: its partition queues, bindings, dead-letter queue. Idempotent; a
 * queue that exists with other arguments (another partition count or delivery limit) makes the
 * broker close the channel with PRECONDITION_FAILED, which the caller reports.
 */
export async function declareQueue(channel: Channel, names: TopologyNames, queue: string, settings: QueueSettings): Promise<void> {
  const dlq = names.deadLetterQueue(queue);
  await channel.assertQueue(dlq, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  await channel.bindQueue(dlq, names.deadLetterExchange, queue);
  for (let p = 0; p < settings.partitions; p += 1) {
    const name = names.partitionQueue(queue, p);
    await channel.assertQueue(name, {
      durable: true,
      arguments: {
        'x-queue-type': 'quorum',
        'x-single-active-consumer': true,
        'x-delivery-limit': settings.deliveryLimit,
        'x-dead-letter-exchange': names.deadLetterExchange,
        'x-dead-letter-routing-key': queue,
      },
    });
    await channel.bindQueue(name, names.workExchange, names.routingKey(queue, p));
  }
}

/** Deletes a logical queue's partition and dead-letter queues (tests, decommissioning). */
export async function deleteQueue(channel: Channel, names: TopologyNames, queue: string, partitions: number): Promise<void> {
  for (let p = 0; p < partitions; p += 1) await channel.deleteQueue(names.partitionQueue(queue, p));
  await channel.deleteQueue(names.deadLetterQueue(queue));
}

/** Deletes the shared exchanges of a prefix (tests, decommissioning). */
export async function deleteExchanges(channel: Channel, names: TopologyNames): Promise<void> {
  await channel.deleteExchange(names.workExchange);
  await channel.deleteExchange(names.deadLetterExchange);
  await channel.deleteExchange(names.membersExchange);
}
