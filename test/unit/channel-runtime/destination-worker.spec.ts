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

describe('destination worker: a retry window across restarts', () => {
  let store: SqliteStore;
  after(() => removeTempDirs());
  afterEach(() => store.close());

  class UnavailableSender implements DeliverySender {
    readonly sent: string[] = [];
    async send(_body: unknown, idempotencyKey: string): Promise<OutboundResult> {
      this.sent.push(idempotencyKey);
      return {
        outcome: 'transient',
        status: 503,
        durationMs: 1,
        error: { code: 'OSPREY_ERR_DELIVERY_HTTP_TRANSIENT', detail: 'HTTP 503' },
        sentRequest: { method: 'POST', url: 'http://127.0.0.1/x', headers: {}, body: '{}' },
      };
    }
    close(): void {}
  }

  /** A delivery whose first attempt was `ago` ms back and whose retry is due now (as after a restart). */
  async function retriedDelivery(ago: number): Promise<string> {
    store = new SqliteStore({ path: join(makeTempDir('window'), 'store.db') });
    await store.open();
    const m: NewMessage = {
      id: 'm1',
      channel: 'adt',
      receivedAt: Date.now() - ago,
      raw: Buffer.from('MSH|^~\\&|EHR|HOSP|||20240101||ADT^A01|m1|P|2.5\r'),
      encoding: 'UTF-8',
      keys: { controlId: 'm1', sender: 'EHR|HOSP' },
      orderKey: 'P1',
      state: 'RECEIVED',
      dedupeWindowMs: 0,
      outcome: { state: 'QUEUED', canonical: {}, deliveries: [{ destination: 'erp', outputIndex: 0, payload: {} }] },
    };
    const [d] = (await store.receive(m)).deliveries!;
    await store.recordAttempts([
      {
        deliveryId: d!.id,
        startedAt: Date.now() - ago,
        durationMs: 1,
        request: { method: 'POST', url: 'http://127.0.0.1/x', headers: {}, body: '{}' },
        response: { status: 503, body: '' },
        error: { code: 'OSPREY_ERR_DELIVERY_HTTP_TRANSIENT', detail: 'HTTP 503' },
        outcome: 'RETRY',
        nextAttemptAt: Date.now(),
      },
    ]);
    return d!.id;
  }

  function workerWith(sender: DeliverySender): DestinationWorker {
    const retry = resolveRetryPolicy({ maxElapsedMs: 3_600_000, backoff: { initialMs: 60_000, maxMs: 60_000, jitter: 0 } });
    return new DestinationWorker({ channel: 'adt', name: 'erp', retry }, sender, store, silentLogger());
  }

  it('counts maxElapsed from the stored first attempt, so a restart does not open a new window', async () => {
    const id = await retriedDelivery(2 * 3_600_000);
    const sender = new UnavailableSender();
    const worker = workerWith(sender);
    await worker.handle({ id, key: 'P1' });
    await worker.stop();
    expect(sender.sent).to.deep.equal([id]);
    const d = await store.loadDelivery(id);
    expect(d).to.deep.include({ state: 'DEAD_LETTERED', attempts: 2 });
    expect(d!.lastError!.code).to.equal('OSPREY_ERR_DELIVERY_MAX_ELAPSED');
  });

  it('stops waiting for its next retry when the bus releases the item, leaving the delivery QUEUED for whoever gets it next', async () => {
    const id = await retriedDelivery(60_000);
    const sender = new UnavailableSender();
    const worker = workerWith(sender);
    const release = new AbortController();
    const handled = worker.handle({ id, key: 'P1' }, release.signal).then(
      () => 'resolved',
      (err: Error) => err.name,
    );
    await new Promise((r) => setTimeout(r, 200));
    release.abort();
    expect(await handled).to.equal('WorkReleased');
    await worker.stop();
    expect(sender.sent, 'no attempt after the release').to.deep.equal([id]);
    expect(await store.loadDelivery(id)).to.deep.include({ state: 'QUEUED', attempts: 2 });
  });

  it('keeps retrying a delivery whose window is still open after the restart', async () => {
    const id = await retriedDelivery(60_000);
    const sender = new UnavailableSender();
    const worker = workerWith(sender);
    const handled = worker.handle({ id, key: 'P1' }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 200));
    await worker.stop();
    await handled;
    expect(sender.sent).to.deep.equal([id]);
    const d = await store.loadDelivery(id);
    expect(d).to.deep.include({ state: 'QUEUED', attempts: 2 });
    expect(d!.nextAttemptAt).to.be.greaterThan(Date.now() + 50_000);
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
