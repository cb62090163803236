// SPDX-License-Identifier: Apache-2.0
/**
 * The deliveries this process has put on the bus while their rows were still being written
 * (docs/design/0008-publish-while-committing.md). A destination worker that takes one of them waits
 * here until the write is over and only then reads the store: a delivery is never sent before its
 * row is durable. A write that failed, or turned out to be a resend, leaves no row: the worker
 * learns that here, at once, rather than by waiting for a row that will never come.
 */
export class PendingWrites {
  /** Writes under way: id → resolves with whether the row was stored. */
  readonly #writing = new Map<string, Promise<boolean>>();
  /** Writes that ended recently, for items taken after the end; bounded, oldest dropped first. */
  readonly #ended = new Map<string, boolean>();

  constructor(private readonly remembered = 10_000) {}

  /** Marks `ids` as being written; call the returned function once the write is over. */
  begin(ids: readonly string[]): (stored: boolean) => void {
    let end!: (stored: boolean) => void;
    const over = new Promise<boolean>((resolve) => (end = resolve));
    for (const id of ids) this.#writing.set(id, over);
    return (stored) => {
      for (const id of ids) {
        if (this.#writing.get(id) === over) this.#writing.delete(id);
        this.#ended.set(id, stored);
        if (this.#ended.size > this.remembered) this.#ended.delete(this.#ended.keys().next().value as string);
      }
      end(stored);
    };
  }

  /**
   * Waits for the write of `id` begun in this process, if one is under way. Resolves with whether
   * it stored the row, or `undefined` when this process does not know (written elsewhere, or long ago).
   */
  async settled(id: string): Promise<boolean | undefined> {
    return this.#writing.get(id) ?? this.#ended.get(id);
  }
}

/**
 * How long a worker waits for the row of an item another instance published ahead of its write:
 * re-reads after these pauses (~5 s in all), then takes the item as pointing at nothing. The
 * publishing instance puts the item on the bus again when its write took longer than
 * {@link AHEAD_REPUBLISH_AFTER_MS} — well inside these 5 s — so a row committed late is never left
 * without an item.
 */
export const AHEAD_ROW_WAITS_MS: readonly number[] = [2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 1000, 1000, 1000];
export const AHEAD_REPUBLISH_AFTER_MS = 1000;
