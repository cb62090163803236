// SPDX-License-Identifier: Apache-2.0
/**
 * How a destination worker finds the delivery an item points at (docs/design/0008): a write of
 * this process still under way is waited for, a just-stored delivery is handed over, a write that
 * stored nothing drops its ahead items, and an ahead item written by another instance waits a
 * moment for its row. Against a real SQLite store (a temp file) and a recording sender.
 */
import { join } from 'node:path';
import { expect } from 'chai';
import type { OutboundResult } from '../../../engine/adapter-sdk/index.ts';
import { DestinationWorker, type DeliverySender } from '../../../engine/channel-runtime/destination-worker.ts';
import { PendingWrites } from '../../../engine/channel-runtime/pending-writes.ts';
import { resolveRetryPolicy } from '../../../engine/delivery/retry-policy.ts';
import type { NewMessage, StoredDelivery } from '../../../engine/message-store/message-store.ts';
import { SqliteStore } from '../../../engine/message-store/sqlite-store.ts';
import { silentLogger } from '../../../engine/observability/logger.ts';
import { makeTempDir, removeTempDirs } from '../../helpers/test-engine.ts';

class RecordingSender implements DeliverySender {
  readonly sent: string[] = [];
  async send(_body: unknown, idempotencyKey: string): Promise<OutboundResult> {
    this.sent.push(idempotencyKey);
    return { outcome: 'success', status: 200, durationMs: 1, sentRequest: { method: 'POST', url: 'http://127.0.0.1/x', headers: {}, body: '{}' } };
  }
  close(): void {}
}

describe('destination worker: finding the delivery', () => {
  let store: SqliteStore;
  let sender: RecordingSender;
  let pending: PendingWrites;
  let worker: DestinationWorker;
  let n = 0;

  beforeEach(async () => {
    store = new SqliteStore({ path: join(makeTempDir('worker'), 'store.db') });
    await store.open();
    sender = new RecordingSender();
    pending = new PendingWrites();
    worker = new DestinationWorker({ channel: 'adt', name: 'erp', retry: resolveRetryPolicy({}) }, sender, store, silentLogger(), pending);
  });

  afterEach(async () => {
    await worker.stop();
    await store.close();
  });

  after(() => removeTempDirs());

  function message(): NewMessage {
    const id = `m${++n}`;
    return {
      id,
      channel: 'adt',
      receivedAt: Date.now(),
      raw: Buffer.from(`MSH|^~\\&|EHR|HOSP|||20240101||ADT^A01|${id}|P|2.5\r`),
      encoding: 'UTF-8',
      keys: { controlId: id, sender: 'EHR|HOSP' },
      orderKey: 'P1',
      state: 'RECEIVED',
      dedupeWindowMs: 0,
      outcome: { state: 'QUEUED', canonical: {}, deliveries: [{ destination: 'erp', outputIndex: 0, payload: { id } }] },
    };
  }
  const deliveryOf = (m: NewMessage) => `${m.id}:erp:0`;

  it('waits for a write of this process under way, then sends the delivery it stored', async () => {
    const m = message();
    const end = pending.begin([deliveryOf(m)]);
    const handled = worker.handle({ id: deliveryOf(m), key: 'P1', ahead: true });
    await new Promise((r) => setTimeout(r, 20));
    expect(sender.sent, 'nothing is sent before the write is over').to.deep.equal([]);
    const { deliveries } = await store.receive(m);
    end(deliveries);
    await handled;
    expect(sender.sent).to.deep.equal([deliveryOf(m)]);
    expect((await store.getMessage(m.id))!.state).to.equal('SENT');
  });

  it('drops an ahead item at once when the write of this process stored nothing (a failed write, a resend)', async () => {
    const m = message();
    const end = pending.begin([deliveryOf(m)]);
    const started = Date.now();
    const handled = worker.handle({ id: deliveryOf(m), key: 'P1', ahead: true });
    end(undefined);
    await handled;
    expect(Date.now() - started).to.be.lessThan(1000);
    expect(sender.sent).to.deep.equal([]);
  });

  it('reads the store for an item published again after such a write (its answer may have been lost while it committed)', async () => {
    const m = message();
    pending.begin([deliveryOf(m)])(undefined);
    await store.receive(m);
    await worker.handle({ id: deliveryOf(m), key: 'P1' });
    expect(sender.sent).to.deep.equal([deliveryOf(m)]);
  });

  it('waits for the row of an ahead item another instance is still writing', async () => {
    const m = message();
    const handled = worker.handle({ id: deliveryOf(m), key: 'P1', ahead: true });
    await new Promise((r) => setTimeout(r, 40));
    await store.receive(m);
    await handled;
    expect(sender.sent).to.deep.equal([deliveryOf(m)]);
  });

  it('takes an item without the mark whose row is missing as pointing at nothing, at once', async () => {
    const started = Date.now();
    await worker.handle({ id: 'gone:erp:0', key: 'P1' });
    expect(Date.now() - started).to.be.lessThan(500);
    expect(sender.sent).to.deep.equal([]);
  });
});

describe('pending writes', () => {
  const delivery = (id: string): StoredDelivery => ({ id, messageId: 'm', channel: 'adt', destination: 'erp', outputIndex: 0, orderKey: 'P1', payload: {}, state: 'QUEUED', attempts: 0 });

  it('hands a stored delivery to the first item that asks, and only while it is fresh', async () => {
    const writes = new PendingWrites({ freshMs: 30 });
    writes.begin(['a'])([delivery('a')]);
    writes.written([delivery('b')]);
    expect(await writes.settled('a')).to.deep.equal({ stored: true, delivery: delivery('a') });
    expect(await writes.settled('a'), 'the copy is given once').to.deep.equal({ stored: true });
    await new Promise((r) => setTimeout(r, 60));
    expect(await writes.settled('b'), 'an old copy could be stale').to.deep.equal({ stored: true });
    expect(await writes.settled('c')).to.equal(undefined);
  });

  it('forgets the oldest writes beyond its bound', async () => {
    const writes = new PendingWrites({ remembered: 2 });
    for (const id of ['a', 'b', 'c']) writes.begin([id])(undefined);
    expect(await writes.settled('a')).to.equal(undefined);
    expect(await writes.settled('c')).to.deep.equal({ stored: false });
  });
});
