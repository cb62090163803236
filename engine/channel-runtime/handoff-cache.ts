// SPDX-License-Identifier: Apache-2.0
/**
 * Hands what one stage just stored to the next stage in the same process, so that the pipeline
 * does not read back (and re-parse) the message ingest has just written, nor the destination
 * worker the delivery the pipeline has just written. Measured on the benchmark: those reads and the
 * second parse were ~7% of the engine's main thread.
 *
 * It is only an optimisation: an entry is taken once (a redelivered work item reads the store),
 * the store stays the truth, and entries are bounded (oldest dropped first). The engine uses it with
 * the local bus only: with RabbitMQ the next stage may run on another instance, and a stale entry
 * could make an instance redo work another one finished.
 */
import type { Hl7Message } from '../message-formats/hl7v2/index.ts';
import type { MessageStore, StoredDelivery } from '../message-store/message-store.ts';

export type StoredMessageForProcessing = NonNullable<Awaited<ReturnType<MessageStore['loadForProcessing']>>> & {
  /** The message as ingest parsed it. */
  hl7?: Hl7Message;
};

class BoundedTakeOnce<V> {
  private readonly entries = new Map<string, V>();

  constructor(private readonly capacity: number) {}

  set(id: string, value: V): void {
    this.entries.set(id, value);
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as string);
  }

  take(id: string): V | undefined {
    const value = this.entries.get(id);
    if (value !== undefined) this.entries.delete(id);
    return value;
  }
}

export class HandoffCache {
  readonly messages: BoundedTakeOnce<StoredMessageForProcessing>;
  readonly deliveries: BoundedTakeOnce<StoredDelivery>;

  /** @param capacity entries kept per kind; beyond it the oldest go (their stage reads the store). */
  constructor(capacity = 10_000) {
    this.messages = new BoundedTakeOnce(capacity);
    this.deliveries = new BoundedTakeOnce(capacity);
  }
}
