// SPDX-License-Identifier: Apache-2.0
/**
 * How a destination worker finds the delivery an item points at (docs/design/0008): a write of
 * this process still under way is waited for, a just-stored delivery is handed over, a write that
 * stored nothing drops its ahead items, and an ahead item written by another instance waits a
 * moment for its row. A batched destination stores each batch attempt once, shows each message
 * only its own element, and lets members the bus releases go. Against a real SQLite store (a
 * temp file) and a recording sender.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import type { OutboundResult } from '../../../engine/adapter-sdk/index.ts';
import { DestinationWorker, type DeliverySender } from '../../../engine/channel-runtime/destination-worker.ts';
import { PendingWrites } from '../../../engine/channel-runtime/pending-writes.ts';
import { resolveRetryPolicy } from '../../../engine/delivery/retry-policy.ts';
import type { NewMessage, StoredDelivery } from '../../../engine/message-store/message-store.ts';
import { SqliteStore } from '../../../engine/message-store/sqlite-store.ts';
import { silentLogger } from '../../../engine/observability/logger.ts';
import { FakeClock } from '../../helpers/fake-clock.ts';
import { makeTempDir, removeTempDir } from '../../helpers/test-engine.ts';
import { waitFor } from '../../helpers/wait-for.ts';

/** This file's temp dirs: each test removes its own once its store is closed, never another suite's. */
const dirs: string[] = [];
function tempDir(prefix: string): string {
  const dir = makeTempDir(prefix);
  dirs.push(dir);
  return dir;
}
function removeDirs(): void {
  for (const dir of dirs.splice(0)) removeTempDir(dir);
}

/** The process's timers, recording the duration of every wait the worker sets. */
function recordingTimers() {
  const armed: number[] = [];
  return {
    armed,
    setTimer: (fn: () => void, ms: number): unknown => {
      armed.push(ms);
      return setTimeout(fn, ms);
    },
    clearTimer: (handle: unknown): void => clearTimeout(handle as NodeJS.Timeout),
  };
}

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
  let timers: ReturnType<typeof recordingTimers>;
  let n = 0;

  beforeEach(async () => {
    store = new SqliteStore({ path: join(tempDir('worker'), 'store.db') });
    await store.open();
    sender = new RecordingSender();
    pending = new PendingWrites();
    timers = recordingTimers();
    worker = new DestinationWorker({ channel: 'adt', name: 'erp', retry: resolveRetryPolicy({}), timers }, sender, store, silentLogger(), pending);
  });

  afterEach(async () => {
    await worker.stop();
    await store.close();
    removeDirs();
  });

  /** Resolves when the worker asks `pending` about an item (it then waits for the write, if one is under way). */
  function askedPending(): Promise<void> {
    const settled = pending.settled.bind(pending);
    return new Promise((resolve) => {
      pending.settled = (id) => {
        resolve();
        return settled(id);
      };
    });
  }

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
    const asked = askedPending();
    const handled = worker.handle({ id: deliveryOf(m), key: 'P1', ahead: true });
    await asked;
    const { deliveries } = await store.receive(m);
    // The row is there, the write not over: the worker waits on a promise only end() settles, so
    // this cannot fail wrongly however slow the machine is.
    await new Promise((r) => setImmediate(r));
    expect(sender.sent, 'nothing is sent before the write is over').to.deep.equal([]);
    end(deliveries);
    await handled;
    expect(sender.sent).to.deep.equal([deliveryOf(m)]);
    expect((await store.getMessage(m.id))!.state).to.equal('SENT');
    expect(timers.armed, 'it waited for the write, not for the row').to.deep.equal([]);
  });

  it('drops an ahead item at once when the write of this process stored nothing (a failed write, a resend)', async () => {
    const m = message();
    const end = pending.begin([deliveryOf(m)]);
    const handled = worker.handle({ id: deliveryOf(m), key: 'P1', ahead: true });
    end(undefined);
    await handled;
    expect(timers.armed, 'no wait for a row that never comes').to.deep.equal([]);
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
    // Time is the subject: the worker's waits run on a clock the test advances.
    const clock = new FakeClock();
    await worker.stop();
    worker = new DestinationWorker({ channel: 'adt', name: 'erp', retry: resolveRetryPolicy({}), timers: clock }, sender, store, silentLogger(), pending);
    const m = message();
    const handled = worker.handle({ id: deliveryOf(m), key: 'P1', ahead: true });
    await waitFor(() => clock.pending === 1, { what: 'the worker waiting for the row' });
    expect(sender.sent, 'no row, nothing sent').to.deep.equal([]);
    await store.receive(m);
    clock.advance(clock.nextAt! - clock.now());
    await handled;
    expect(sender.sent).to.deep.equal([deliveryOf(m)]);
  });

  it('takes an item without the mark whose row is missing as pointing at nothing, at once', async () => {
    await worker.handle({ id: 'gone:erp:0', key: 'P1' });
    expect(timers.armed, 'no wait for its row').to.deep.equal([]);
    expect(sender.sent).to.deep.equal([]);
  });
});

describe('destination worker: a retry window across restarts', () => {
  let store: SqliteStore;
  afterEach(async () => {
    await store.close();
    removeDirs();
  });

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
    store = new SqliteStore({ path: join(tempDir('window'), 'store.db') });
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

  function workerWith(sender: DeliverySender, timers?: FakeClock): DestinationWorker {
    const retry = resolveRetryPolicy({ maxElapsedMs: 3_600_000, backoff: { initialMs: 60_000, maxMs: 60_000, jitter: 0 } });
    return new DestinationWorker({ channel: 'adt', name: 'erp', retry, ...(timers ? { timers } : {}) }, sender, store, silentLogger());
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
    const clock = new FakeClock();
    const worker = workerWith(sender, clock);
    const release = new AbortController();
    const handled = worker.handle({ id, key: 'P1' }, release.signal).then(
      () => 'resolved',
      (err: Error) => err.name,
    );
    await waitFor(() => clock.pending === 1, { what: 'the worker in its wait for the next retry' });
    release.abort();
    expect(await handled).to.equal('WorkReleased');
    expect(clock.pending, 'its retry timer cleared').to.equal(0);
    await worker.stop();
    expect(sender.sent, 'no attempt after the release').to.deep.equal([id]);
    expect(await store.loadDelivery(id)).to.deep.include({ state: 'QUEUED', attempts: 2 });
  });

  it('keeps retrying a delivery whose window is still open after the restart', async () => {
    const id = await retriedDelivery(60_000);
    const sender = new UnavailableSender();
    const clock = new FakeClock();
    const worker = workerWith(sender, clock);
    const started = Date.now();
    const handled = worker.handle({ id, key: 'P1' }).then(
      () => 'resolved',
      (err: Error) => err.name,
    );
    await waitFor(() => clock.pending === 1, { what: 'the worker in its wait for the next retry' });
    await worker.stop();
    expect(await handled).to.equal('EngineStopping');
    expect(sender.sent).to.deep.equal([id]);
    const d = await store.loadDelivery(id);
    expect(d).to.deep.include({ state: 'QUEUED', attempts: 2 });
    expect(d!.nextAttemptAt, 'stored a backoff after the attempt').to.be.at.least(started + 60_000);
  });
});

describe('pending writes', () => {
  const delivery = (id: string): StoredDelivery => ({ id, messageId: 'm', channel: 'adt', destination: 'erp', outputIndex: 0, orderKey: 'P1', payload: {}, state: 'QUEUED', attempts: 0 });

  it('hands a stored delivery to the first item that asks, and only while it is fresh', async () => {
    const clock = new FakeClock();
    const writes = new PendingWrites({ freshMs: 30, now: () => clock.now() });
    writes.begin(['a'])([delivery('a')]);
    writes.written([delivery('b')]);
    clock.advance(30);
    expect(await writes.settled('a'), 'fresh for freshMs').to.deep.equal({ stored: true, delivery: delivery('a') });
    expect(await writes.settled('a'), 'the copy is given once').to.deep.equal({ stored: true });
    clock.advance(1);
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

describe('destination worker: batched deliveries', () => {
  let store: SqliteStore;
  let path: string;
  let n = 0;
  beforeEach(async () => {
    path = join(tempDir('batch'), 'store.db');
    store = new SqliteStore({ path });
    await store.open();
  });
  afterEach(async () => {
    await store.close();
    removeDirs();
  });

  /**
   * Answers each batch with `status` (200 first, then what `next` says), echoing every member's
   * key (an answer that names every patient of the batch), or waits for `gate` first.
   */
  class BatchSender implements DeliverySender {
    readonly sent: Array<{ key: string; members: string[]; bodyLength: number }> = [];
    gate: Promise<void> | undefined;
    status = 200;
    async send(body: unknown, idempotencyKey: string): Promise<OutboundResult> {
      const members = (body as Array<{ idempotencyKey: string }>).map((e) => e.idempotencyKey);
      this.sent.push({ key: idempotencyKey, members, bodyLength: JSON.stringify(body).length });
      await this.gate;
      const ok = this.status < 300;
      return {
        outcome: ok ? 'success' : 'transient',
        status: this.status,
        responseBody: JSON.stringify(members.map((k) => ({ k, ok }))),
        durationMs: 3,
        ...(ok ? {} : { error: { code: 'OSPREY_ERR_DELIVERY_HTTP_TRANSIENT' as const, detail: `HTTP ${this.status}` } }),
        sentRequest: { method: 'POST', url: 'http://127.0.0.1/batch', headers: { 'idempotency-key': idempotencyKey, authorization: 'Bearer t0k3n' }, body: JSON.stringify(body) },
      };
    }
    close(): void {}
  }

  function workerWith(sender: DeliverySender, maxItems: number): DestinationWorker {
    const retry = resolveRetryPolicy({ maxAttempts: 10, backoff: { initialMs: 60_000, maxMs: 60_000, jitter: 0 } });
    return new DestinationWorker({ channel: 'siu', name: 'erp', retry, batch: { maxItems, maxWaitMs: 60_000 } }, sender, store, silentLogger());
  }

  /** `count` messages of distinct patients, each with one ERP delivery of ~`size` bytes. */
  async function deliveries(count: number, size = 200): Promise<StoredDelivery[]> {
    const out: StoredDelivery[] = [];
    for (let i = 0; i < count; i++) {
      const id = `b${++n}`;
      const { deliveries: stored } = await store.receive({
        id,
        channel: 'siu',
        receivedAt: Date.now(),
        raw: Buffer.from(`MSH|^~\\&|SCHED|HOSP|||20240101||SIU^S12|${id}|P|2.5\r`),
        encoding: 'UTF-8',
        keys: { controlId: id, sender: 'SCHED|HOSP', patientId: `MRN-${id}` },
        orderKey: `A-${id}`,
        state: 'RECEIVED',
        dedupeWindowMs: 0,
        outcome: { state: 'QUEUED', canonical: {}, deliveries: [{ destination: 'erp', outputIndex: 0, payload: { mrn: `MRN-${id}`, note: 'x'.repeat(size) } }] },
      });
      out.push(stored![0]!);
    }
    return out;
  }

  /** Bytes the attempt log holds (requests and answers, items and batches), read from the file. */
  function attemptBytes(): number {
    const db = new Database(path, { readonly: true });
    try {
      const sum = (table: string) =>
        (db.prepare(`SELECT coalesce(sum(length(request) + coalesce(length(response_body), 0)), 0) AS b FROM ${table}`).get() as { b: number }).b;
      return sum('attempts') + sum('batch_attempts');
    } finally {
      db.close();
    }
  }

  it('stores a batch attempt once: the bytes grow with the batch size, not with its square', async () => {
    const bytes: Record<number, number> = {};
    let last!: BatchSender['sent'][number];
    for (const size of [10, 100]) {
      const before = attemptBytes();
      const sender = new BatchSender();
      const worker = workerWith(sender, size);
      const batch = await deliveries(size);
      await Promise.all(batch.map((d) => worker.handle({ id: d.id, key: d.orderKey })));
      await worker.stop();
      expect(sender.sent).to.have.length(1);
      last = sender.sent[0]!;
      bytes[size] = attemptBytes() - before;
    }
    if (process.env.OSPREY_TEST_VERBOSE) console.log('attempt-log bytes per batch attempt', bytes);
    // The body once: the items' elements add up to the 100-item body as sent (less its brackets and commas).
    const db = new Database(path, { readonly: true });
    try {
      const rows = db
        .prepare(`SELECT batch_attempt_id AS id, sum(length(json_extract(request, '$.body'))) AS bytes, count(*) AS n FROM attempts GROUP BY batch_attempt_id ORDER BY n`)
        .all() as Array<{ id: string; bytes: number; n: number }>;
      expect(rows.map((r) => r.n)).to.deep.equal([10, 100]);
      expect(rows[1]!.bytes + 2 + 99).to.equal(last.bodyLength);
      const batchRow = db.prepare('SELECT length(request) AS bytes FROM batch_attempts WHERE id = ?').get(rows[1]!.id) as { bytes: number };
      expect(batchRow.bytes, 'the batch row holds no body').to.be.below(300);
    } finally {
      db.close();
    }
    // Linear: ×10 items, ~×10 bytes (the old log, the whole batch per item, grew ~×100).
    expect(bytes[100]! / bytes[10]!).to.be.within(8, 12);
    // One 100-item attempt holds each ~240-byte element once, plus a bounded overhead per item.
    expect(bytes[100]).to.be.below(100 * 600);
  });

  it("shows in each message's history its own element and the batch's metadata, never the others' payloads or the batch's answer", async () => {
    const sender = new BatchSender();
    const worker = workerWith(sender, 3);
    const batch = await deliveries(3, 10);
    await Promise.all(batch.map((d) => worker.handle({ id: d.id, key: d.orderKey })));
    await worker.stop();
    for (const d of batch) {
      const detail = (await store.getMessage(d.messageId))!;
      const [a] = detail.deliveries[0]!.attemptLog;
      expect(JSON.parse(a!.request.body)).to.deep.equal({ idempotencyKey: d.id, payload: d.payload });
      expect(a!.request.headers.authorization).to.equal('[redacted]');
      expect(a!.response).to.deep.equal({ status: 200 });
      expect(a!.batch).to.deep.include({ key: sender.sent[0]!.key, size: 3, outcome: 'SENT', status: 200 });
      const text = JSON.stringify(detail);
      for (const other of batch) if (other !== d) expect(text).not.to.include(other.messageId);
    }
  });

  it('lets a member the bus releases go at its next wait, never during a request; the others wait on; all released ends the batch', async () => {
    const sender = new BatchSender();
    const worker = workerWith(sender, 2);
    const [a, b] = await deliveries(2);
    const [ra, rb] = [new AbortController(), new AbortController()];
    let openGate!: () => void;
    sender.gate = new Promise((resolve) => (openGate = resolve));
    sender.status = 503;
    const outcome = (p: Promise<void>) => p.then(() => 'resolved', (err: Error) => err.name);
    const handledA = outcome(worker.handle({ id: a!.id, key: a!.orderKey }, ra.signal));
    const handledB = outcome(worker.handle({ id: b!.id, key: b!.orderKey }, rb.signal));
    await waitFor(() => sender.sent.length === 1, { what: 'the batch request' });

    ra.abort();
    const early = await Promise.race([handledA, new Promise((r) => setImmediate(() => setImmediate(() => r('pending'))))]);
    expect(early, 'A stays while the request holding it is under way').to.equal('pending');
    openGate();
    expect(await handledA).to.equal('WorkReleased');
    expect(await store.loadDelivery(a!.id)).to.deep.include({ state: 'QUEUED', attempts: 1 });
    expect(await store.loadDelivery(b!.id)).to.deep.include({ state: 'QUEUED', attempts: 1 });

    rb.abort();
    expect(await handledB).to.equal('WorkReleased');
    // The batch is over: the next one goes out at once.
    sender.status = 200;
    const [c] = await deliveries(1);
    const handledC = worker.handle({ id: c!.id, key: c!.orderKey });
    const [c2] = await deliveries(1);
    await Promise.all([handledC, worker.handle({ id: c2!.id, key: c2!.orderKey })]);
    await worker.stop();
    expect(sender.sent.map((s) => s.members)).to.deep.equal([[a!.id, b!.id], [c!.id, c2!.id]]);
  });

  it('lets a member queued behind a batch in its retry wait go at once when released (a hand-over does not wait for the batches ahead)', async () => {
    const sender = new BatchSender();
    sender.status = 503;
    const worker = workerWith(sender, 1);
    const [a, b] = await deliveries(2);
    const rb = new AbortController();
    const handledA = worker.handle({ id: a!.id, key: a!.orderKey }).then(() => 'resolved', (err: Error) => err.name);
    await waitFor(async () => (await store.loadDelivery(a!.id))?.attempts === 1, { what: "the first batch's attempt stored" });
    const handledB = worker.handle({ id: b!.id, key: b!.orderKey }, rb.signal).then(() => 'resolved', (err: Error) => err.name);
    rb.abort();
    expect(await handledB).to.equal('WorkReleased');
    expect(sender.sent.map((x) => x.members), 'B never went out').to.deep.equal([[a!.id]]);
    await worker.stop();
    expect(await handledA).to.equal('EngineStopping');
  });

  it('retries the members left after a release as a batch of their own', async () => {
    const sender = new BatchSender();
    const retry = resolveRetryPolicy({ maxAttempts: 10, backoff: { initialMs: 300, maxMs: 300, jitter: 0 } });
    const worker = new DestinationWorker({ channel: 'siu', name: 'erp', retry, batch: { maxItems: 2, maxWaitMs: 60_000 } }, sender, store, silentLogger());
    const [a, b] = await deliveries(2);
    const ra = new AbortController();
    sender.status = 503;
    const handledA = worker.handle({ id: a!.id, key: a!.orderKey }, ra.signal).then(() => 'resolved', (err: Error) => err.name);
    const handledB = worker.handle({ id: b!.id, key: b!.orderKey });
    await waitFor(async () => (await store.loadDelivery(a!.id))?.attempts === 1, { what: 'the first attempt stored' });
    sender.status = 200;
    ra.abort();
    expect(await handledA).to.equal('WorkReleased');
    await handledB;
    await worker.stop();
    expect(sender.sent.map((s) => s.members)).to.deep.equal([[a!.id, b!.id], [b!.id]]);
    expect(await store.loadDelivery(a!.id)).to.deep.include({ state: 'QUEUED', attempts: 1 });
    expect(await store.loadDelivery(b!.id)).to.deep.include({ state: 'SENT', attempts: 2 });
  });
});
