// SPDX-License-Identifier: Apache-2.0
/**
 * Deliveries this process is writing or has just written, for its own destination workers:
 *
 * - **Published while being written** (docs/design/0008-publish-while-committing.md): a worker that
 *   takes such an item waits here until the write is over — a delivery is never sent before its row
 *   is durable — and learns at once when the write stored nothing (it failed, or was a resend).
 * - **Handed over**: the delivery as just stored, so that the worker does not read back what was
 *   just written (measured before this module: those reads were part of ~7% of the engine's main
 *   thread on the embedded benchmark, and one PostgreSQL query per batch of deliveries in production
 *   mode). Given to the first item that asks, and only for {@link HANDOVER_FRESH_MS}: with several
 *   instances, the first item may have run on another one, and an old copy could be stale (sent
 *   there already, or replaced by a replay). The store stays the truth; everything here is bounded.
 */
import type { StoredDelivery } from '../message-store/message-store.ts';

/** What this process knows of a delivery's write. */
export type Written = { stored: false } | { stored: true; delivery?: StoredDelivery };

interface Ended {
  stored: boolean;
  at: number;
  delivery?: StoredDelivery;
}

/** How long a just-stored delivery is handed over rather than read from the store. */
export const HANDOVER_FRESH_MS = 2000;

export class PendingWrites {
  /** Writes under way: id → resolves when the write is over. */
  readonly #writing = new Map<string, Promise<void>>();
  /** Writes that ended recently; bounded, oldest dropped first. */
  readonly #ended = new Map<string, Ended>();
  /** Entries still holding a delivery, oldest first from `#payloadHead`: their payloads are dropped once stale. */
  readonly #withPayload: Ended[] = [];
  #payloadHead = 0;

  readonly #now: () => number;

  constructor(
    private readonly options: {
      remembered?: number;
      freshMs?: number;
      /** Reads the time the freshness is measured on: `Date.now` unless a test injects its own clock. */
      now?: () => number;
    } = {},
  ) {
    this.#now = options.now ?? Date.now;
  }

  /** Marks `ids` as being written; call the returned function once the write is over, with what it stored (nothing: undefined). */
  begin(ids: readonly string[]): (stored: readonly StoredDelivery[] | undefined) => void {
    let end!: () => void;
    const over = new Promise<void>((resolve) => (end = resolve));
    for (const id of ids) this.#writing.set(id, over);
    return (stored) => {
      for (const id of ids) if (this.#writing.get(id) === over) this.#writing.delete(id);
      if (stored) this.written(stored);
      else for (const id of ids) this.#remember(id, { stored: false, at: this.#now() });
      end();
    };
  }

  /** Deliveries just stored (a write that is over): handed to the first item that asks. */
  written(deliveries: readonly StoredDelivery[]): void {
    const at = this.#now();
    for (const delivery of deliveries) this.#remember(delivery.id, { stored: true, at, delivery });
  }

  /**
   * Waits for the write of `id` under way in this process, if any, then tells what it stored:
   * `undefined` when this process does not know (written elsewhere, or long ago).
   */
  async settled(id: string): Promise<Written | undefined> {
    const over = this.#writing.get(id);
    if (over) await over;
    const ended = this.#ended.get(id);
    if (!ended) return undefined;
    if (!ended.stored) return { stored: false };
    const delivery = ended.delivery;
    ended.delivery = undefined;
    return delivery && this.#now() - ended.at <= (this.options.freshMs ?? HANDOVER_FRESH_MS) ? { stored: true, delivery } : { stored: true };
  }

  #remember(id: string, ended: Ended): void {
    this.#ended.delete(id);
    this.#ended.set(id, ended);
    if (this.#ended.size > (this.options.remembered ?? 4096)) this.#ended.delete(this.#ended.keys().next().value as string);
    if (ended.delivery) this.#withPayload.push(ended);
    // A copy older than the handover window is never handed over: its payload is dropped now rather
    // than when the entry ages out (a backlog of large payloads, an 835 claim's text each, stayed in
    // memory for nothing). Entries are queued in the order they were written: the oldest first.
    const staleBefore = ended.at - (this.options.freshMs ?? HANDOVER_FRESH_MS);
    while (this.#payloadHead < this.#withPayload.length && this.#withPayload[this.#payloadHead]!.at < staleBefore) {
      this.#withPayload[this.#payloadHead++]!.delivery = undefined;
    }
    if (this.#payloadHead > 1024) {
      this.#withPayload.splice(0, this.#payloadHead);
      this.#payloadHead = 0;
    }
  }
}

/**
 * How long a worker waits for the row of an item another instance published ahead of its write:
 * re-reads after these pauses (~1 s in all), then takes the item as pointing at nothing. The
 * publishing instance puts the item on the bus again when its write took longer than
 * {@link AHEAD_REPUBLISH_AFTER_MS} — well inside that second — so a row committed late is never
 * left without an item. Short, because the key waits meanwhile, and a write that failed leaves a
 * row that never comes (ingest stops publishing ahead after a failure; see ingest.ts).
 */
export const AHEAD_ROW_WAITS_MS: readonly number[] = [2, 4, 8, 16, 32, 64, 128, 192, 256, 320];
export const AHEAD_REPUBLISH_AFTER_MS = 250;
