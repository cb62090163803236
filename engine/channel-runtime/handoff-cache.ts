// SPDX-License-Identifier: Apache-2.0
/**
 * Hands the deliveries ingest (or the pipeline worker) has just stored to their destination worker
 * in the same process, so that the worker does not read back what was just written. Measured on
 * the benchmark: those reads were part of ~7% of the engine's main thread (with the message
 * read-back and second parse the pipeline stage used to need, before the pipeline ran at ingest).
 *
 * It is only an optimisation: an entry is taken once (a redelivered work item reads the store),
 * the store stays the truth, and entries are bounded (oldest dropped first). The engine uses it with
 * the local bus only: with RabbitMQ the next stage may run on another instance, and a stale entry
 * could make an instance redo work another one finished.
 */
import type { StoredDelivery } from '../message-store/message-store.ts';

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
  readonly deliveries: BoundedTakeOnce<StoredDelivery>;

  /** @param capacity entries kept; beyond it the oldest go (their worker reads the store). */
  constructor(capacity = 10_000) {
    this.deliveries = new BoundedTakeOnce(capacity);
  }
}
