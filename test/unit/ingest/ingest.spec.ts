// SPDX-License-Identifier: Apache-2.0
/**
 * Ingest against a real SQLite store (a temp file): the pipeline's outcome is stored with the
 * message, and each key's work is published in the order the store committed its messages, also
 * when a resend's original needs finishing first.
 */
import { join } from 'node:path';
import { expect } from 'chai';
import { Ingest, type IngestChannel, type StoredForScheduling } from '../../../engine/ingest/ingest.ts';
import { Hl7Message } from '../../../engine/message-formats/hl7v2/index.ts';
import { SqliteStore } from '../../../engine/message-store/sqlite-store.ts';
import { silentLogger } from '../../../engine/observability/logger.ts';
import { adt } from '../../helpers/test-channel.ts';
import { makeTempDir, removeTempDirs } from '../../helpers/test-engine.ts';

function inbound(text: string) {
  return { raw: Buffer.from(text, 'utf8'), text, encoding: 'UTF-8', remote: '127.0.0.1:1', hl7: Hl7Message.parse(text) };
}

describe('ingest', () => {
  let store: SqliteStore;

  beforeEach(async () => {
    store = new SqliteStore({ path: join(makeTempDir('ingest'), 'store.db') });
    await store.open();
  });

  afterEach(async () => {
    await store.close();
  });

  after(() => removeTempDirs());

  /** A channel whose every message queues one delivery; `onStored` calls are recorded. */
  function channel(onStored: (s: StoredForScheduling) => Promise<void>): IngestChannel {
    return {
      name: 'adt',
      orderBy: 'PID-3.1',
      dedupeWindowMs: 60_000,
      process: (m) => ({ state: 'QUEUED', canonical: { id: m.id }, deliveries: [{ destination: 'erp', outputIndex: 0, payload: { id: m.id } }] }),
      onStored,
    };
  }

  it('stores the message with its outcome and hands the new deliveries over before the ACK', async () => {
    const seen: StoredForScheduling[] = [];
    const ingest = new Ingest(store, silentLogger());
    const outcome = await ingest.receive(channel(async (s) => void seen.push(s)), inbound(adt({ controlId: 'C1', patientId: 'P1' })));
    expect(outcome.ackCode).to.equal('AA');
    expect(seen.map((s) => s.deliveries?.map((d) => d.id))).to.deep.equal([[`${outcome.messageId}:erp:0`]]);
    expect((await store.getMessage(outcome.messageId!))!.state).to.equal('QUEUED');
  });

  it("publishes a key's work in commit order: a resend's unfinished original before the key's next message", async () => {
    const order: string[] = [];
    const ingest = new Ingest(store, silentLogger());
    const ch = channel(async (s) => {
      if (!s.deliveries) await new Promise((r) => setTimeout(r, 50)); // finishing an original reads and writes the store
      order.push(s.deliveries ? `new ${s.id}` : `original ${s.id}`);
    });
    // The original, stored QUEUED (its instance died before its deliveries reached the bus).
    const first = inbound(adt({ controlId: 'C1', patientId: 'P1' }));
    const original = await ingest.receive(channel(async () => undefined), first);
    // The sender resends it and, pipelining, the patient's next message right behind it.
    const [resend, next] = await Promise.all([ingest.receive(ch, first), ingest.receive(ch, inbound(adt({ controlId: 'C2', patientId: 'P1' })))]);
    expect(resend).to.deep.include({ ackCode: 'AA', messageId: original.messageId, duplicate: true });
    expect(order).to.deep.equal([`original ${original.messageId}`, `new ${next.messageId}`]);
  });

  it('does not hold back other keys behind a slow one', async () => {
    const order: string[] = [];
    const ingest = new Ingest(store, silentLogger());
    const ch = channel(async (s) => {
      if (!s.deliveries) await new Promise((r) => setTimeout(r, 50));
      order.push(s.deliveries ? 'other key' : 'original');
    });
    const first = inbound(adt({ controlId: 'C1', patientId: 'P1' }));
    await ingest.receive(channel(async () => undefined), first);
    await Promise.all([ingest.receive(ch, first), ingest.receive(ch, inbound(adt({ controlId: 'C2', patientId: 'P2' })))]);
    expect(order).to.deep.equal(['other key', 'original']);
  });
});
