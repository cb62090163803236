// SPDX-License-Identifier: Apache-2.0
/**
 * The sandbox ERP/RCM receiver: in the default configuration the sample channels deliver here, on
 * the management port, so the quickstart needs no outside system. It behaves like a careful
 * receiver: it applies each Idempotency-Key once (a repeat is answered 200 with `duplicate: true`),
 * and it keeps what it received (bounded) so a newcomer can look at it: `GET /sandbox/received`.
 */
export interface SandboxRecord {
  at: string;
  system: string;
  path: string;
  idempotencyKey?: string;
  duplicate: boolean;
  body: unknown;
}

export class SandboxReceiver {
  private readonly records: SandboxRecord[] = [];
  private readonly seenKeys = new Set<string>();
  private counts = { received: 0, applied: 0, duplicates: 0 };

  /** @param capacity records kept for inspection; counts and de-duplication keys are not bounded by it. */
  constructor(private readonly capacity = 1000) {}

  accept(system: string, path: string, idempotencyKey: string | undefined, body: unknown): SandboxRecord {
    const duplicate = idempotencyKey !== undefined && this.seenKeys.has(idempotencyKey);
    if (idempotencyKey !== undefined) this.seenKeys.add(idempotencyKey);
    this.counts.received += 1;
    if (duplicate) this.counts.duplicates += 1;
    else this.counts.applied += 1;
    const record: SandboxRecord = { at: new Date().toISOString(), system, path, idempotencyKey, duplicate, body };
    this.records.push(record);
    if (this.records.length > this.capacity) this.records.shift();
    return record;
  }

  list(filter: { system?: string; limit?: number } = {}): { counts: SandboxReceiver['counts']; records: SandboxRecord[] } {
    const matching = filter.system ? this.records.filter((r) => r.system === filter.system) : this.records;
    return { counts: { ...this.counts }, records: matching.slice(-(filter.limit ?? 100)) };
  }

  clear(): void {
    this.records.length = 0;
    this.seenKeys.clear();
    this.counts = { received: 0, applied: 0, duplicates: 0 };
  }
}
