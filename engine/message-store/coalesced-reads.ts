// SPDX-License-Identifier: Apache-2.0
/**
 * Reads of single rows by id, asked in the same turn of the event loop, answered by ONE query
 * (`… WHERE id = ANY($1)`). The pipeline and the destination workers ask for several rows at once
 * (work items arrive several per socket read, within the consumer's prefetch), and on PostgreSQL
 * each statement costs the server a parse, a plan and a wake-up, and the engine a socket write.
 *
 * A read is sent in the turn after it was asked (`setImmediate`), so it still sees everything
 * committed before it was asked. A failed query rejects every read it carried.
 */
export class CoalescedReads<T> {
  readonly #load: (ids: string[]) => Promise<Map<string, T>>;
  #waiting = new Map<string, Array<{ resolve: (row: T | undefined) => void; reject: (err: unknown) => void }>>();
  #scheduled = false;

  /** `load` returns the rows found, by id; an id it leaves out resolves to undefined. */
  constructor(load: (ids: string[]) => Promise<Map<string, T>>) {
    this.#load = load;
  }

  get(id: string): Promise<T | undefined> {
    return new Promise((resolve, reject) => {
      const waiters = this.#waiting.get(id);
      if (waiters) waiters.push({ resolve, reject });
      else this.#waiting.set(id, [{ resolve, reject }]);
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#run());
      }
    });
  }

  #run(): void {
    this.#scheduled = false;
    const batch = this.#waiting;
    this.#waiting = new Map();
    this.#load([...batch.keys()]).then(
      (rows) => {
        for (const [id, waiters] of batch) for (const w of waiters) w.resolve(rows.get(id));
      },
      (err: unknown) => {
        for (const waiters of batch.values()) for (const w of waiters) w.reject(err);
      },
    );
  }
}
