// SPDX-License-Identifier: Apache-2.0
/**
 * The conformance suite of the MessageStore contract, run against every implementation (SQLite,
 * PostgreSQL) by its own spec file. Each test gets fresh, empty storage.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { isOspreyError } from '../../../engine/errors/error-codes.ts';
import {
  DEFAULT_ATTEMPTS,
  MAX_ATTEMPTS,
  pendingWorkPages,
  type AttemptRecord,
  type BatchAttemptRecord,
  type BusinessKeys,
  type MessageStore,
  type NewMessage,
  type PendingDelivery,
  type PendingMessage,
  type ProcessingOutcome,
  type StoredDelivery,
} from '../../../engine/message-store/message-store.ts';

export interface StoreHarness {
  /** Creates fresh, empty storage (a file, a schema) and returns its handle. */
  newStorage(): Promise<string>;
  /** A new, unopened store on that storage: its own connection(s), as another engine process would have. */
  create(storage: string): MessageStore;
  /** Breaks the storage under a running store (drops the events table), so that every commit fails. */
  sabotage(storage: string): Promise<void>;
}

const MINUTE = 60_000;

/**
 * All unfinished work, read in pages of `pageSize` (3 by default, so that the tests that read it
 * cross page boundaries, also inside one message's deliveries).
 */
async function pendingWork(store: MessageStore, options: { changedSince?: number; pageSize?: number } = {}) {
  const all = { messages: [] as PendingMessage[], deliveries: [] as PendingDelivery[] };
  for await (const page of pendingWorkPages(store, { pageSize: 3, ...options })) {
    all.messages.push(...page.messages);
    all.deliveries.push(...page.deliveries);
  }
  return all;
}

/** Bytes a text codec would mangle: NUL, 0xFF, a lone Latin-1 é, CR separators. */
function rawFor(tag: string): Buffer {
  return Buffer.concat([
    Buffer.from(`MSH|^~\\&|EPIC|HOSP|OSPREY|ERP|20240101120000||ADT^A01|${tag}|P|2.5\r`, 'latin1'),
    Buffer.from([0x00, 0xff, 0xe9, 0x0d]),
    Buffer.from(`PID|1||MRN-${tag}\r`, 'latin1'),
  ]);
}

let seq = 0;
function newMessage(over: Partial<Omit<NewMessage, 'keys'>> & { keys?: Partial<BusinessKeys> } = {}): NewMessage {
  seq++;
  const { keys, ...rest } = over;
  return {
    id: `msg-${randomUUID()}`,
    channel: 'adt-in',
    receivedAt: Date.now(),
    raw: rawFor(String(seq)),
    encoding: 'ISO-8859-1',
    keys: { controlId: `CTRL-${seq}`, sender: 'EPIC|HOSP', messageType: 'ADT^A01', patientId: 'P-1', visitId: 'V-1', facility: 'HOSP', ...keys },
    orderKey: 'P-1',
    state: 'RECEIVED',
    dedupeWindowMs: 0,
    source: '10.0.0.7:40000',
    ...rest,
  };
}

function queued(destinations: string[], extra: Partial<Extract<ProcessingOutcome, { state: 'QUEUED' }>> = {}): ProcessingOutcome {
  return {
    state: 'QUEUED',
    canonical: { type: 'encounter.admitted', subject: { mrn: 'MRN-1' } },
    deliveries: destinations.map((destination) => ({ destination, outputIndex: 0, payload: { to: destination, b: 1, a: [1, 'x'] } })),
    ...extra,
  };
}

function attempt(deliveryId: string, outcome: AttemptRecord['outcome'], extra: Partial<AttemptRecord> = {}): AttemptRecord {
  return {
    deliveryId,
    startedAt: Date.now(),
    durationMs: 12.5,
    request: { method: 'POST', url: 'https://erp.example.org/v2/x', headers: { 'content-type': 'application/json', Authorization: 'Bearer s3cret' }, body: '{"a":1}' },
    response: outcome === 'SENT' ? { status: 200, body: '{"ok":true}' } : { status: 503, body: 'busy' },
    outcome,
    ...extra,
  };
}

async function rejectionOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

/** Defines the conformance tests in the current `describe`. */
export function messageStoreSuite(harness: () => StoreHarness): void {
  const opened: MessageStore[] = [];

  /** Opens a store on fresh storage; `another()` opens one more instance on the same storage. */
  async function fresh(): Promise<{ store: MessageStore; another: () => Promise<MessageStore>; sabotage: () => Promise<void> }> {
    const h = harness();
    const storage = await h.newStorage();
    const another = async (): Promise<MessageStore> => {
      const s = h.create(storage);
      opened.push(s);
      await s.open();
      return s;
    };
    return { store: await another(), another, sabotage: () => h.sabotage(storage) };
  }

  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
  });

  describe('open', () => {
    it('is idempotent, and a second instance on the same storage finds the schema in place', async () => {
      const { store, another } = await fresh();
      await store.open();
      const [b, c] = await Promise.all([another(), another()]);
      const m = newMessage();
      await b.receive(m);
      expect((await c.loadForProcessing(m.id))?.id).to.equal(m.id);
      expect((await store.loadForProcessing(m.id))?.id).to.equal(m.id);
    });

    it('rejects writes before open and after close with OSPREY_ERR_STORE_UNAVAILABLE', async () => {
      const { store } = await fresh();
      await store.close();
      await store.close(); // idempotent
      const err = await rejectionOf(store.receive(newMessage()));
      expect(isOspreyError(err) && err.code).to.equal('OSPREY_ERR_STORE_UNAVAILABLE');
    });
  });

  describe('receive and load', () => {
    it('keeps the raw bytes, the keys and a RECEIVED event', async () => {
      const { store } = await fresh();
      const m = newMessage({ keys: { patientId: 'P-9' }, orderKey: 'P-9' });
      expect(await store.receive(m)).to.deep.equal({ id: m.id });

      const loaded = await store.loadForProcessing(m.id);
      expect(loaded).to.not.equal(undefined);
      expect(Buffer.compare(loaded!.raw, m.raw)).to.equal(0);
      expect(loaded).to.deep.include({ id: m.id, channel: 'adt-in', receivedAt: m.receivedAt, encoding: 'ISO-8859-1', orderKey: 'P-9', state: 'RECEIVED' });
      expect(loaded!.keys).to.deep.equal(m.keys);

      const detail = await store.getMessage(m.id);
      expect(detail!.source).to.equal('10.0.0.7:40000');
      expect(detail!.events.map((e) => e.event)).to.deep.equal(['RECEIVED']);
      expect(detail!.events[0]!.at).to.be.a('number');
      expect(detail!.deliveries).to.deep.equal([]);
      expect(await store.loadForProcessing('no-such-id')).to.equal(undefined);
      expect(await store.getMessage('no-such-id')).to.equal(undefined);
    });

    it('stores a message rejected at ingest as ERROR with its reason, and omits absent keys', async () => {
      const { store } = await fresh();
      const m = newMessage({ state: 'ERROR', error: { code: 'OSPREY_ERR_HL7_NO_MSH', detail: 'no MSH segment' }, keys: { controlId: undefined, sender: undefined } });
      delete m.keys.controlId;
      delete m.keys.sender;
      await store.receive(m);
      const detail = await store.getMessage(m.id);
      expect(detail).to.deep.include({ state: 'ERROR', error: { code: 'OSPREY_ERR_HL7_NO_MSH', detail: 'no MSH segment' } });
      expect(detail!.keys).to.not.have.any.keys('controlId', 'sender');
      expect(detail!.events.map((e) => e.event)).to.deep.equal(['ERROR']);
      expect((await pendingWork(store)).messages.map((p) => p.id)).to.not.include(m.id);
    });

    it('stores an empty message', async () => {
      const { store } = await fresh();
      const m = newMessage({ raw: Buffer.alloc(0) });
      await store.receive(m);
      expect((await store.loadForProcessing(m.id))!.raw.length).to.equal(0);
    });

    it('makes 1,000 concurrent receives durable, every one readable by a new instance', async () => {
      const { store, another } = await fresh();
      const messages = Array.from({ length: 1000 }, (_, i) => newMessage({ channel: 'bulk', orderKey: `K${i % 17}`, dedupeWindowMs: 24 * 60 * MINUTE }));
      const results = await Promise.all(messages.map((m) => store.receive(m)));
      expect(results.every((r, i) => r.id === messages[i]!.id && r.duplicateOf === undefined)).to.equal(true);
      await store.close();

      const reopened = await another();
      expect((await reopened.countByChannel()).bulk).to.deep.equal({ RECEIVED: 1000 });
      const pending = await pendingWork(reopened);
      expect(pending.messages.map((p) => p.id)).to.deep.equal(messages.map((m) => m.id));
      for (const i of [0, 1, 499, 998, 999]) {
        const loaded = await reopened.loadForProcessing(messages[i]!.id);
        expect(Buffer.compare(loaded!.raw, messages[i]!.raw)).to.equal(0);
      }
    });

    it('fails only the faulty write of a batch (a message id used twice)', async () => {
      const { store } = await fresh();
      const a = newMessage();
      await store.receive(a);
      // Same turn, so one batch: the reused id breaks the primary key in the database.
      const b = newMessage();
      const c = newMessage();
      const settled = await Promise.allSettled([store.receive(b), store.receive({ ...newMessage(), id: a.id }), store.receive(c)]);
      expect(settled.map((s) => s.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled']);
      expect(await store.loadForProcessing(b.id)).to.not.equal(undefined);
      expect(await store.loadForProcessing(c.id)).to.not.equal(undefined);
      expect(Buffer.compare((await store.loadForProcessing(a.id))!.raw, a.raw)).to.equal(0);

      // The same id twice within one batch.
      const d = newMessage();
      const twice = await Promise.allSettled([store.receive(d), store.receive({ ...newMessage(), id: d.id })]);
      expect(twice.map((s) => s.status)).to.deep.equal(['fulfilled', 'rejected']);
      expect(Buffer.compare((await store.loadForProcessing(d.id))!.raw, d.raw)).to.equal(0);
    });
  });

  describe('a failed commit', () => {
    it('rejects every write of the batch with OSPREY_ERR_STORE_UNAVAILABLE', async () => {
      const { store, sabotage } = await fresh();
      await store.receive(newMessage());
      await sabotage();
      const settled = await Promise.allSettled([store.receive(newMessage()), store.receive(newMessage()), store.receive(newMessage())]);
      for (const s of settled) {
        expect(s.status).to.equal('rejected');
        const reason = (s as PromiseRejectedResult).reason;
        expect(isOspreyError(reason) && reason.code).to.equal('OSPREY_ERR_STORE_UNAVAILABLE');
      }
    });
  });

  describe('dedupe', () => {
    const window = 60 * MINUTE;

    it('answers a resend inside the window with the original, without storing it', async () => {
      const { store } = await fresh();
      const first = newMessage({ dedupeWindowMs: window, keys: { controlId: 'DUP-1' } });
      await store.receive(first);
      const again = newMessage({ dedupeWindowMs: window, keys: { controlId: 'DUP-1' }, receivedAt: first.receivedAt + 5 * MINUTE });
      expect(await store.receive(again)).to.deep.equal({ id: again.id, duplicateOf: first.id });
      expect(await store.getMessage(again.id)).to.equal(undefined);
      const events = (await store.getMessage(first.id))!.events;
      expect(events.map((e) => e.event)).to.deep.equal(['RECEIVED', 'DUPLICATE']);
      expect(events[1]!.detail).to.include(again.id);
      expect((await store.countByChannel())['adt-in']).to.deep.equal({ RECEIVED: 1 });
    });

    it('stores a resend outside the window as a new message', async () => {
      const { store } = await fresh();
      const first = newMessage({ dedupeWindowMs: window, keys: { controlId: 'DUP-2' }, receivedAt: Date.now() - 2 * window });
      await store.receive(first);
      const later = newMessage({ dedupeWindowMs: window, keys: { controlId: 'DUP-2' } });
      expect(await store.receive(later)).to.deep.equal({ id: later.id });
      // A third one inside the window of the second is a duplicate of the second.
      const third = newMessage({ dedupeWindowMs: window, keys: { controlId: 'DUP-2' }, receivedAt: later.receivedAt + 1 });
      expect((await store.receive(third)).duplicateOf).to.equal(later.id);
    });

    it('sees a duplicate earlier in the same batch', async () => {
      const { store } = await fresh();
      const a = newMessage({ dedupeWindowMs: window, keys: { controlId: 'DUP-3' } });
      const b = newMessage({ dedupeWindowMs: window, keys: { controlId: 'DUP-3' } });
      const c = newMessage({ dedupeWindowMs: window, keys: { controlId: 'DUP-3' } });
      const [ra, rb, rc] = await Promise.all([store.receive(a), store.receive(b), store.receive(c)]);
      expect(ra).to.deep.equal({ id: a.id });
      expect(rb!.duplicateOf).to.equal(a.id);
      expect(rc!.duplicateOf).to.equal(a.id);
      expect((await store.getMessage(a.id))!.events.map((e) => e.event)).to.deep.equal(['RECEIVED', 'DUPLICATE', 'DUPLICATE']);
    });

    it('keys on channel + sender + control id, needs a window > 0, and never takes a rejected message as the original', async () => {
      const { store } = await fresh();
      const base = newMessage({ dedupeWindowMs: window, keys: { controlId: 'DUP-4' } });
      await store.receive(base);
      const others = [
        newMessage({ dedupeWindowMs: window, keys: { controlId: 'DUP-4' }, channel: 'other-channel' }),
        newMessage({ dedupeWindowMs: window, keys: { controlId: 'DUP-4', sender: 'CERNER|CLINIC' } }),
        newMessage({ dedupeWindowMs: 0, keys: { controlId: 'DUP-4' } }),
      ];
      for (const m of others) expect((await store.receive(m)).duplicateOf).to.equal(undefined);

      const rejected = newMessage({ dedupeWindowMs: 0, keys: { controlId: 'DUP-5' }, state: 'ERROR', error: { code: 'OSPREY_ERR_HL7_UNSUPPORTED_TYPE', detail: 'not accepted' } });
      await store.receive(rejected);
      const fixed = newMessage({ dedupeWindowMs: window, keys: { controlId: 'DUP-5' } });
      expect((await store.receive(fixed)).duplicateOf).to.equal(undefined);
    });

    it('lets only one of two instances store the same message received at the same moment', async () => {
      const { store, another } = await fresh();
      const other = await another();
      const a = newMessage({ dedupeWindowMs: window, keys: { controlId: 'DUP-6' } });
      const b = newMessage({ dedupeWindowMs: window, keys: { controlId: 'DUP-6' } });
      const [ra, rb] = await Promise.all([store.receive(a), other.receive(b)]);
      const stored = [ra, rb].filter((r) => r.duplicateOf === undefined);
      expect(stored).to.have.length(1);
      expect([ra, rb].find((r) => r.duplicateOf !== undefined)!.duplicateOf).to.equal(stored[0]!.id);
    });
  });

  describe('recordProcessing', () => {
    it('queues one delivery per output, with the events of the transform', async () => {
      const { store } = await fresh();
      const m = newMessage();
      await store.receive(m);
      const outcome = queued(['erp', 'workforce'], { filteredDestinations: [{ destination: 'rcm', reason: 'not billable' }] });
      const deliveries = await store.recordProcessing(m.id, outcome);
      expect(deliveries.map((d) => d.id)).to.deep.equal([`${m.id}:erp:0`, `${m.id}:workforce:0`]);
      const seq = (await store.findMessages({ controlId: m.keys.controlId }))[0]!.seq;
      expect(deliveries[0]).to.deep.equal({
        id: `${m.id}:erp:0`,
        messageId: m.id,
        channel: 'adt-in',
        destination: 'erp',
        outputIndex: 0,
        orderKey: 'P-1',
        payload: { to: 'erp', b: 1, a: [1, 'x'] },
        state: 'QUEUED',
        attempts: 0,
        seq,
      });
      expect(await store.loadDelivery(`${m.id}:erp:0`)).to.deep.equal(deliveries[0]);
      expect(await store.loadDelivery('nope')).to.equal(undefined);

      const detail = await store.getMessage(m.id);
      expect(detail!.state).to.equal('QUEUED');
      expect(detail!.canonical).to.deep.equal({ type: 'encounter.admitted', subject: { mrn: 'MRN-1' } });
      expect(detail!.events.map((e) => [e.event, e.destination])).to.deep.equal([
        ['RECEIVED', undefined],
        ['TRANSFORMED', undefined],
        ['FILTERED', 'rcm'],
        ['QUEUED', 'erp'],
        ['QUEUED', 'workforce'],
        ['QUEUED', undefined],
      ]);
      expect(detail!.deliveries.map((d) => [d.destination, d.attemptLog])).to.deep.equal([
        ['erp', []],
        ['workforce', []],
      ]);
    });

    it('keeps a payload JSON byte for byte (key order)', async () => {
      const { store } = await fresh();
      const m = newMessage();
      await store.receive(m);
      const payload = { z: 1, a: { y: 'é', b: null }, m: [3, 2, 1], s: 'nul\u0000byte' };
      const [d] = await store.recordProcessing(m.id, { state: 'QUEUED', canonical: {}, deliveries: [{ destination: 'erp', outputIndex: 0, payload }] });
      expect(JSON.stringify((await store.loadDelivery(d!.id))!.payload)).to.equal(JSON.stringify(payload));
    });

    it('records FILTERED, ERROR and BUSINESS_EXCEPTION', async () => {
      const { store } = await fresh();
      const [f, e, b] = [newMessage(), newMessage(), newMessage()];
      for (const m of [f, e, b]) await store.receive(m);
      expect(await store.recordProcessing(f.id, { state: 'FILTERED', reason: 'A02 not wanted' })).to.deep.equal([]);
      await store.recordProcessing(e.id, { state: 'ERROR', error: { code: 'OSPREY_ERR_TRANSFORM_FAILED', detail: 'TypeError at line 3' } });
      await store.recordProcessing(b.id, {
        state: 'BUSINESS_EXCEPTION',
        exception: { category: 'unmapped-department', detail: 'department CARD-3 is not mapped', tags: { facility: 'HOSP', department: 'CARD-3' } },
      });

      const fd = await store.getMessage(f.id);
      expect(fd).to.deep.include({ state: 'FILTERED', filterReason: 'A02 not wanted' });
      expect(fd!.events.map((x) => x.event)).to.deep.equal(['RECEIVED', 'FILTERED']);

      const ed = await store.getMessage(e.id);
      expect(ed).to.deep.include({ state: 'ERROR', error: { code: 'OSPREY_ERR_TRANSFORM_FAILED', detail: 'TypeError at line 3' } });
      expect(ed!.events.map((x) => x.event)).to.deep.equal(['RECEIVED', 'ERROR']);

      const bd = await store.getMessage(b.id);
      expect(bd).to.deep.include({ state: 'BUSINESS_EXCEPTION', exceptionCategory: 'unmapped-department' });
      expect(bd!.exception).to.deep.equal({ category: 'unmapped-department', detail: 'department CARD-3 is not mapped', tags: { facility: 'HOSP', department: 'CARD-3' } });
      expect(bd!.error!.code).to.equal('OSPREY_ERR_BUSINESS_EXCEPTION');
      expect(bd!.events.map((x) => x.event)).to.deep.equal(['RECEIVED', 'BUSINESS_EXCEPTION']);
    });

    it('makes a QUEUED outcome without deliveries FILTERED, keeping the canonical event', async () => {
      const { store } = await fresh();
      const m = newMessage();
      await store.receive(m);
      const deliveries = await store.recordProcessing(m.id, queued([], { filteredDestinations: [{ destination: 'erp', reason: 'no charge lines' }] }));
      expect(deliveries).to.deep.equal([]);
      const d = await store.getMessage(m.id);
      expect(d!.state).to.equal('FILTERED');
      expect(d!.filterReason).to.include('no charge lines');
      expect(d!.canonical).to.deep.equal({ type: 'encounter.admitted', subject: { mrn: 'MRN-1' } });
      expect(d!.events.map((x) => [x.event, x.destination])).to.deep.equal([
        ['RECEIVED', undefined],
        ['TRANSFORMED', undefined],
        ['FILTERED', 'erp'],
        ['FILTERED', undefined],
      ]);
    });

    it('rejects an unknown message with OSPREY_ERR_STORE_NOT_FOUND, and two outputs with one id as a bug', async () => {
      const { store } = await fresh();
      const err = await rejectionOf(store.recordProcessing('no-such-id', { state: 'FILTERED', reason: 'x' }));
      expect(isOspreyError(err) && err.code).to.equal('OSPREY_ERR_STORE_NOT_FOUND');

      const m = newMessage();
      await store.receive(m);
      const twoOutputsOneId: ProcessingOutcome = {
        state: 'QUEUED',
        canonical: {},
        deliveries: [
          { destination: 'erp', outputIndex: 0, payload: 1 },
          { destination: 'erp', outputIndex: 0, payload: 2 },
        ],
      };
      await rejectionOf(store.recordProcessing(m.id, twoOutputsOneId));
      expect((await store.getMessage(m.id))!.state).to.equal('RECEIVED');
    });

    it('changes nothing for a message processed already, and hands back its queued deliveries', async () => {
      const { store } = await fresh();
      const m = newMessage();
      await store.receive(m);
      const first = await store.recordProcessing(m.id, queued(['erp', 'rcm']));
      await store.recordAttempts([attempt(first[0]!.id, 'SENT')]);
      const again = await store.recordProcessing(m.id, { state: 'ERROR', error: { code: 'OSPREY_ERR_TRANSFORM_FAILED', detail: 'late' } });
      expect(again.map((d) => d.id)).to.deep.equal([first[1]!.id]);
      expect((await store.getMessage(m.id))!.state).to.equal('QUEUED');
    });
  });

  describe('receive with its outcome (ingest ran the pipeline)', () => {
    it('stores the message and its outcome in one write, with the same rows and history as receive + recordProcessing', async () => {
      const { store } = await fresh();
      const outcome = queued(['erp', 'workforce'], { filteredDestinations: [{ destination: 'rcm', reason: 'not billable' }] });
      const inline = newMessage({ outcome });
      const result = await store.receive(inline);
      expect(result.duplicateOf).to.equal(undefined);
      expect(result.deliveries!.map((d) => [d.id, d.state, d.seq])).to.deep.equal([
        [`${inline.id}:erp:0`, 'QUEUED', undefined],
        [`${inline.id}:workforce:0`, 'QUEUED', undefined],
      ]);

      const twoSteps = newMessage();
      await store.receive(twoSteps);
      await store.recordProcessing(twoSteps.id, outcome);

      const [a, b] = [(await store.getMessage(inline.id))!, (await store.getMessage(twoSteps.id))!];
      const comparable = (d: typeof a) => ({
        state: d.state,
        canonical: d.canonical,
        filterReason: d.filterReason,
        error: d.error,
        events: d.events.map((e) => [e.event, e.destination, e.detail?.replace(twoSteps.id, inline.id)]),
        deliveries: d.deliveries.map((x) => ({ ...x, id: x.id.replace(twoSteps.id, inline.id), messageId: '', seq: 0 })),
      });
      expect(comparable(a)).to.deep.equal(comparable(b));
      // The store numbered the message on commit; its deliveries carry that seq.
      const seqOf = async (id: string) => (await store.findMessages({ controlId: (id === inline.id ? inline : twoSteps).keys.controlId }))[0]!.seq;
      expect((await store.loadDelivery(`${inline.id}:erp:0`))!.seq).to.equal(await seqOf(inline.id));
      expect(a.deliveries[0]!.seq).to.be.below(b.deliveries[0]!.seq!);
      expect((await pendingWork(store)).deliveries.map((d) => d.id)).to.deep.equal([
        `${inline.id}:erp:0`,
        `${inline.id}:workforce:0`,
        `${twoSteps.id}:erp:0`,
        `${twoSteps.id}:workforce:0`,
      ]);
      await store.recordAttempts([attempt(`${inline.id}:erp:0`, 'SENT'), attempt(`${inline.id}:workforce:0`, 'SENT')]);
      expect((await store.getMessage(inline.id))!.state).to.equal('SENT');
    });

    it('stores FILTERED, ERROR and BUSINESS_EXCEPTION outcomes, and a QUEUED one without deliveries as FILTERED', async () => {
      const { store } = await fresh();
      const cases: Array<[ProcessingOutcome, string, string[]]> = [
        [{ state: 'FILTERED', reason: 'A02 not wanted' }, 'FILTERED', ['RECEIVED', 'FILTERED']],
        [{ state: 'ERROR', error: { code: 'OSPREY_ERR_TRANSFORM_FAILED', detail: 'TypeError at line 3' } }, 'ERROR', ['RECEIVED', 'ERROR']],
        [{ state: 'BUSINESS_EXCEPTION', exception: { category: 'unmapped-department', detail: 'CARD-3', tags: { department: 'CARD-3' } } }, 'BUSINESS_EXCEPTION', ['RECEIVED', 'BUSINESS_EXCEPTION']],
        [queued([]), 'FILTERED', ['RECEIVED', 'TRANSFORMED', 'FILTERED']],
      ];
      for (const [outcome, state, events] of cases) {
        const m = newMessage({ outcome });
        expect((await store.receive(m)).deliveries).to.deep.equal([]);
        const d = (await store.getMessage(m.id))!;
        expect(d.state).to.equal(state);
        expect(d.events.map((e) => e.event)).to.deep.equal(events);
        expect((await store.findMessages({ state: d.state })).map((x) => x.id)).to.include(m.id);
      }
      const b = (await store.findMessages({ state: 'BUSINESS_EXCEPTION' }))[0]!;
      expect((await store.getMessage(b.id))!.exception).to.deep.equal({ category: 'unmapped-department', detail: 'CARD-3', tags: { department: 'CARD-3' } });
      expect((await pendingWork(store)).messages).to.deep.equal([]);
    });

    it('stores neither a duplicate nor its outcome, in the same batch or later', async () => {
      const { store } = await fresh();
      const first = newMessage({ dedupeWindowMs: MINUTE, outcome: queued(['erp']) });
      const again = newMessage({ dedupeWindowMs: MINUTE, keys: { controlId: first.keys.controlId }, outcome: queued(['erp']) });
      const [r1, r2] = await Promise.all([store.receive(first), store.receive(again)]);
      expect(r1.deliveries!.map((d) => d.id)).to.deep.equal([`${first.id}:erp:0`]);
      expect(r2).to.deep.equal({ id: again.id, duplicateOf: first.id });
      const r3 = await store.receive({ ...again, id: `msg-${randomUUID()}`, receivedAt: Date.now() });
      expect(r3.duplicateOf).to.equal(first.id);
      expect(await store.loadDelivery(`${again.id}:erp:0`)).to.equal(undefined);
      expect((await pendingWork(store)).deliveries.map((d) => d.id)).to.deep.equal([`${first.id}:erp:0`]);
    });

    it('refuses an outcome on a message rejected at ingest, and a malformed outcome, failing only that write', async () => {
      const { store } = await fresh();
      const rejected = newMessage({ state: 'ERROR', error: { code: 'OSPREY_ERR_HL7_NO_MSH', detail: 'x' }, outcome: queued(['erp']) });
      expect(await rejectionOf(store.receive(rejected))).to.be.instanceOf(TypeError);
      const twoOutputsOneId = newMessage({
        outcome: { state: 'QUEUED', canonical: {}, deliveries: [{ destination: 'erp', outputIndex: 0, payload: 1 }, { destination: 'erp', outputIndex: 0, payload: 2 }] },
      });
      const good = newMessage({ outcome: queued(['erp']) });
      const [bad, ok] = await Promise.allSettled([store.receive(twoOutputsOneId), store.receive(good)]);
      expect(bad.status).to.equal('rejected');
      expect(ok.status).to.equal('fulfilled');
      expect(await store.getMessage(twoOutputsOneId.id)).to.equal(undefined);
      expect((await store.getMessage(good.id))!.state).to.equal('QUEUED');
    });

    it('lets a stored outcome be replayed through the pipeline like any other', async () => {
      const { store } = await fresh();
      const m = newMessage({ outcome: { state: 'ERROR', error: { code: 'OSPREY_ERR_TRANSFORM_FAILED', detail: 'boom' } } });
      await store.receive(m);
      const plan = await store.replay(m.id);
      expect(plan?.kind).to.equal('pipeline');
      const deliveries = await store.recordProcessing(m.id, queued(['erp']));
      expect(deliveries[0]!.seq).to.be.a('number');
      expect((await store.getMessage(m.id))!.state).to.equal('QUEUED');
    });
  });

  describe('recordAttempts', () => {
    async function queuedMessage(store: MessageStore, destinations: string[]): Promise<{ id: string; deliveries: StoredDelivery[] }> {
      const m = newMessage();
      await store.receive(m);
      return { id: m.id, deliveries: await store.recordProcessing(m.id, queued(destinations)) };
    }

    it('keeps a retried delivery QUEUED with its next attempt and error, and logs every attempt', async () => {
      const { store } = await fresh();
      const { id, deliveries } = await queuedMessage(store, ['erp']);
      const d = deliveries[0]!;
      const next = Date.now() + 30_000;
      await store.recordAttempts([attempt(d.id, 'RETRY', { nextAttemptAt: next, error: { code: 'OSPREY_ERR_DELIVERY_HTTP_TRANSIENT', detail: 'HTTP 503' } })]);
      expect(await store.loadDelivery(d.id)).to.deep.include({
        state: 'QUEUED',
        attempts: 1,
        nextAttemptAt: next,
        lastError: { code: 'OSPREY_ERR_DELIVERY_HTTP_TRANSIENT', detail: 'HTTP 503' },
      });
      await store.recordAttempts([attempt(d.id, 'SENT')]);
      const sent = await store.loadDelivery(d.id);
      expect(sent).to.deep.include({ state: 'SENT', attempts: 2 });
      expect(sent).to.not.have.any.keys('nextAttemptAt', 'lastError');

      const detail = await store.getMessage(id);
      expect(detail!.state).to.equal('SENT');
      const log = detail!.deliveries[0]!.attemptLog;
      expect(log.map((a) => a.outcome)).to.deep.equal(['RETRY', 'SENT']);
      expect(log[0]).to.deep.include({ durationMs: 12.5, response: { status: 503, body: 'busy' }, nextAttemptAt: next });
      expect(log[0]!.request.headers).to.deep.equal({ 'content-type': 'application/json', Authorization: '[redacted]' });
      expect(log[1]!.response).to.deep.equal({ status: 200, body: '{"ok":true}' });
      expect(detail!.events.map((e) => [e.event, e.destination])).to.deep.equal([
        ['RECEIVED', undefined],
        ['TRANSFORMED', undefined],
        ['QUEUED', 'erp'],
        ['QUEUED', undefined],
        ['ATTEMPT', 'erp'],
        ['ATTEMPT', 'erp'],
        ['SENT', 'erp'],
        ['SENT', undefined],
      ]);
      expect(detail!.events[4]!.detail).to.include('503');
    });

    it('tells when the current run of attempts began: the latest attempt #1, restarted by a replay', async () => {
      const { store } = await fresh();
      const { id, deliveries } = await queuedMessage(store, ['erp']);
      const d = deliveries[0]!;
      expect(await store.firstAttemptAt(d.id), 'before any attempt').to.equal(undefined);
      const first = Date.now() - 7_200_000;
      await store.recordAttempts([attempt(d.id, 'RETRY', { startedAt: first, nextAttemptAt: first + 1000 })]);
      await store.recordAttempts([attempt(d.id, 'DEAD_LETTERED', { startedAt: first + 5000, error: { code: 'OSPREY_ERR_DELIVERY_MAX_ELAPSED', detail: 'window' } })]);
      expect(await store.firstAttemptAt(d.id)).to.equal(first);
      await store.replay(id);
      expect(await store.firstAttemptAt(d.id), 'a replay keeps the log; the next attempt starts a new run').to.equal(first);
      const again = Date.now();
      await store.recordAttempts([attempt(d.id, 'RETRY', { startedAt: again, nextAttemptAt: again + 1000 })]);
      expect(await store.firstAttemptAt(d.id)).to.equal(again);
      expect(await store.firstAttemptAt('unknown:erp:0')).to.equal(undefined);
    });

    it('settles the message SENT only when every delivery is sent', async () => {
      const { store } = await fresh();
      const { id, deliveries } = await queuedMessage(store, ['erp', 'rcm']);
      await store.recordAttempts([attempt(deliveries[0]!.id, 'SENT')]);
      expect((await store.getMessage(id))!.state).to.equal('QUEUED');
      await store.recordAttempts([attempt(deliveries[1]!.id, 'SENT')]);
      expect((await store.getMessage(id))!.state).to.equal('SENT');
    });

    it('settles DEAD_LETTERED once all are final and one is dead-lettered', async () => {
      const { store } = await fresh();
      const { id, deliveries } = await queuedMessage(store, ['erp', 'rcm']);
      const error = { code: 'OSPREY_ERR_DELIVERY_HTTP_PERMANENT', detail: 'HTTP 422' } as const;
      await store.recordAttempts([attempt(deliveries[0]!.id, 'DEAD_LETTERED', { error, response: { status: 422, body: 'bad' } })]);
      expect((await store.getMessage(id))!.state).to.equal('QUEUED');
      expect(await store.loadDelivery(deliveries[0]!.id)).to.deep.include({ state: 'DEAD_LETTERED', lastError: error });
      await store.recordAttempts([attempt(deliveries[1]!.id, 'SENT')]);
      const detail = await store.getMessage(id);
      expect(detail!.state).to.equal('DEAD_LETTERED');
      expect(detail!.events.filter((e) => e.destination === undefined).map((e) => e.event).at(-1)).to.equal('DEAD_LETTERED');
    });

    it('records a batched request (several deliveries, several messages) in one call', async () => {
      const { store } = await fresh();
      const one = await queuedMessage(store, ['erp']);
      const two = await queuedMessage(store, ['erp']);
      await store.recordAttempts([attempt(one.deliveries[0]!.id, 'SENT'), attempt(two.deliveries[0]!.id, 'SENT')]);
      expect((await store.getMessage(one.id))!.state).to.equal('SENT');
      expect((await store.getMessage(two.id))!.state).to.equal('SENT');
    });

    it('settles a message whose deliveries finish in the same batch, even from two instances', async () => {
      const { store, another } = await fresh();
      const other = await another();
      const a = await queuedMessage(store, ['erp', 'rcm', 'wf']);
      await Promise.all([
        store.recordAttempts([attempt(a.deliveries[0]!.id, 'SENT')]),
        store.recordAttempts([attempt(a.deliveries[1]!.id, 'SENT')]),
        other.recordAttempts([attempt(a.deliveries[2]!.id, 'SENT')]),
      ]);
      const detail = await store.getMessage(a.id);
      expect(detail!.state).to.equal('SENT');
      expect(detail!.events.filter((e) => e.event === 'SENT' && e.destination === undefined)).to.have.length(1);
    });

    it('rejects an unknown delivery with OSPREY_ERR_STORE_NOT_FOUND and writes nothing of that call', async () => {
      const { store } = await fresh();
      const { deliveries } = await queuedMessage(store, ['erp']);
      const err = await rejectionOf(store.recordAttempts([attempt(deliveries[0]!.id, 'SENT'), attempt('no-such-delivery', 'SENT')]));
      expect(isOspreyError(err) && err.code).to.equal('OSPREY_ERR_STORE_NOT_FOUND');
      expect(await store.loadDelivery(deliveries[0]!.id)).to.deep.include({ state: 'QUEUED', attempts: 0 });
    });

    it('dead-letters a delivery the bus gave up on, without an attempt; settles the message; leaves a final one as it is', async () => {
      const { store } = await fresh();
      const { id, deliveries } = await queuedMessage(store, ['erp', 'rcm']);
      const [erp, rcm] = deliveries;
      await store.recordAttempts([attempt(rcm!.id, 'SENT')]);
      const error = { code: 'OSPREY_ERR_BUS_DEAD_LETTERED' as const, detail: 'the bus gave up after 20 deliveries' };
      await store.abandonDelivery(erp!.id, error);
      expect(await store.loadDelivery(erp!.id)).to.deep.include({ state: 'DEAD_LETTERED', attempts: 0, lastError: error });
      await store.abandonDelivery(rcm!.id, error);
      expect(await store.loadDelivery(rcm!.id), 'a sent delivery stays sent').to.deep.include({ state: 'SENT' });
      const detail = await store.getMessage(id);
      expect(detail!.state).to.equal('DEAD_LETTERED');
      expect(detail!.events.slice(-2).map((e) => [e.event, e.destination, e.detail])).to.deep.equal([
        ['DEAD_LETTERED', 'erp', 'OSPREY_ERR_BUS_DEAD_LETTERED'],
        ['DEAD_LETTERED', undefined, undefined],
      ]);
      expect((await pendingWork(store)).deliveries).to.deep.equal([]);
      const plan = await store.replay(id);
      expect(plan?.kind === 'deliveries' && plan.deliveries.map((d) => d.id)).to.deep.equal([erp!.id]);
      const err = await rejectionOf(store.abandonDelivery('unknown:erp:0', error));
      expect(isOspreyError(err) && err.code).to.equal('OSPREY_ERR_STORE_NOT_FOUND');
    });

    it('takes a SENT attempt on a delivery dead-lettered meanwhile as SENT (the receiver has it), and settles its message SENT', async () => {
      const { store } = await fresh();
      const { id, deliveries } = await queuedMessage(store, ['erp', 'rcm']);
      const [erp, rcm] = deliveries;
      await store.recordAttempts([attempt(rcm!.id, 'SENT')]);
      // The bus gave up on erp's item while its request was under way; the request then succeeded.
      await store.abandonDelivery(erp!.id, { code: 'OSPREY_ERR_BUS_DEAD_LETTERED', detail: 'delivery limit' });
      expect((await store.getMessage(id))!.state).to.equal('DEAD_LETTERED');
      await store.recordAttempts([attempt(erp!.id, 'SENT')]);
      const sent = await store.loadDelivery(erp!.id);
      expect(sent).to.deep.include({ state: 'SENT', attempts: 1 });
      expect(sent!.lastError, "the bus's error cleared").to.equal(undefined);
      const detail = await store.getMessage(id);
      expect(detail!.state).to.equal('SENT');
      expect(detail!.events.slice(-3).map((e) => [e.event, e.destination, e.detail])).to.deep.equal([
        ['ATTEMPT', 'erp', '#1 SENT 200'],
        ['SENT', 'erp', 'after it was dead-lettered'],
        ['SENT', undefined, undefined],
      ]);
      expect(await store.replay(id), 'nothing left to replay').to.equal(undefined);
      // A failed attempt on it now changes nothing.
      await store.recordAttempts([attempt(erp!.id, 'DEAD_LETTERED')]);
      expect(await store.loadDelivery(erp!.id)).to.deep.include({ state: 'SENT', attempts: 2 });
      expect((await store.getMessage(id))!.state).to.equal('SENT');
    });

    it('logs a late attempt on a final delivery without changing its state', async () => {
      const { store } = await fresh();
      const { deliveries } = await queuedMessage(store, ['erp']);
      await store.recordAttempts([attempt(deliveries[0]!.id, 'SENT')]);
      await store.recordAttempts([attempt(deliveries[0]!.id, 'DEAD_LETTERED')]);
      expect(await store.loadDelivery(deliveries[0]!.id)).to.deep.include({ state: 'SENT', attempts: 2 });
    });
  });

  describe('batched requests', () => {
    /** Three messages of three patients, each with one delivery, sent as one batch request. */
    async function batchOfThree(store: MessageStore) {
      const items: Array<{ id: string; delivery: StoredDelivery; element: string }> = [];
      for (const mrn of ['MRN-A', 'MRN-B', 'MRN-C']) {
        const m = newMessage({ keys: { patientId: mrn } });
        await store.receive(m);
        const [delivery] = await store.recordProcessing(m.id, queued(['erp']));
        items.push({ id: m.id, delivery: delivery!, element: JSON.stringify({ idempotencyKey: delivery!.id, payload: { mrn } }) });
      }
      return items;
    }

    function batchAttempt(size: number, outcome: AttemptRecord['outcome'], over: Partial<BatchAttemptRecord> = {}): BatchAttemptRecord {
      return {
        id: randomUUID(),
        key: 'batch-0123',
        size,
        startedAt: Date.now(),
        durationMs: 40,
        request: { method: 'POST', url: 'https://erp.example.org/v2/batch', headers: { 'content-type': 'application/json', 'x-api-key': 'k3y' } },
        response: outcome === 'SENT' ? { status: 200, body: '[{"mrn":"MRN-A"},{"mrn":"MRN-B"},{"mrn":"MRN-C"}]' } : { status: 503, body: 'MRN-A MRN-B MRN-C busy' },
        outcome,
        ...over,
      };
    }

    it("stores the batch once; each message's history shows its own element and the batch's metadata, never another's payload nor the batch's answer", async () => {
      const { store } = await fresh();
      const items = await batchOfThree(store);
      for (const outcome of ['RETRY', 'SENT'] as const) {
        const batch = batchAttempt(3, outcome, outcome === 'RETRY' ? { nextAttemptAt: Date.now() + MINUTE } : {});
        await store.recordAttempts(
          items.map((it) =>
            attempt(it.delivery.id, outcome, {
              request: { method: 'POST', url: 'https://erp.example.org/v2/batch', headers: { 'x-api-key': 'k3y' }, body: it.element },
              response: { status: outcome === 'SENT' ? 200 : 503 },
            }),
          ),
          batch,
        );
      }
      for (const [i, it] of items.entries()) {
        const detail = (await store.getMessage(it.id))!;
        expect(detail.state).to.equal('SENT');
        const [d] = detail.deliveries;
        expect(d!.attemptCount).to.equal(2);
        expect(d!.attemptLog.map((a) => a.outcome)).to.deep.equal(['RETRY', 'SENT']);
        for (const a of d!.attemptLog) {
          expect(a.request.body).to.equal(it.element);
          expect(a.request.headers['x-api-key']).to.equal('[redacted]');
          expect(a.response).to.deep.equal({ status: a.outcome === 'SENT' ? 200 : 503 });
          expect(a.batch).to.deep.include({ key: 'batch-0123', size: 3, outcome: a.outcome, status: a.outcome === 'SENT' ? 200 : 503, durationMs: 40 });
          expect(a.batch!.startedAt).to.be.a('number');
        }
        const text = JSON.stringify(detail);
        for (const [j, other] of items.entries()) if (j !== i) expect(text, 'no other patient').not.to.include(other.delivery.id);
        expect(text).not.to.include(['MRN-A', 'MRN-B', 'MRN-C'].filter((_, j) => j !== i)[0]);
      }
      const [a, b] = [(await store.getMessage(items[0]!.id))!, (await store.getMessage(items[1]!.id))!];
      expect(a.deliveries[0]!.attemptLog.map((x) => x.batch!.id), 'one batch attempt, shared').to.deep.equal(b.deliveries[0]!.attemptLog.map((x) => x.batch!.id));
    });

    it('reads a whole batch attempt back: the body as sent, the answer, its items in order', async () => {
      const { store } = await fresh();
      const items = await batchOfThree(store);
      const batch = batchAttempt(3, 'RETRY', { nextAttemptAt: Date.now() + MINUTE, error: { code: 'OSPREY_ERR_DELIVERY_HTTP_TRANSIENT', detail: 'HTTP 503' } });
      await store.recordAttempts(
        items.map((it) =>
          attempt(it.delivery.id, 'RETRY', { request: { method: 'POST', url: batch.request.url, headers: {}, body: it.element }, response: { status: 503 } }),
        ),
        batch,
      );
      const read = (await store.getBatchAttempt(batch.id))!;
      expect(read.request.body).to.equal(`[${items.map((it) => it.element).join(',')}]`);
      expect(JSON.parse(read.request.body)).to.have.length(3);
      expect(read.request.headers).to.deep.equal({ 'content-type': 'application/json', 'x-api-key': '[redacted]' });
      expect(read).to.deep.include({ id: batch.id, key: 'batch-0123', size: 3, outcome: 'RETRY', response: batch.response, error: batch.error, nextAttemptAt: batch.nextAttemptAt });
      expect(read.items).to.deep.equal(items.map((it) => ({ messageId: it.id, deliveryId: it.delivery.id })));
      expect(await store.getBatchAttempt('no-such-batch')).to.equal(undefined);
    });

    it('writes nothing of a batch whose items name an unknown delivery', async () => {
      const { store } = await fresh();
      const items = await batchOfThree(store);
      const batch = batchAttempt(2, 'SENT');
      const err = await rejectionOf(store.recordAttempts([attempt(items[0]!.delivery.id, 'SENT'), attempt('no-such-delivery', 'SENT')], batch));
      expect(isOspreyError(err) && err.code).to.equal('OSPREY_ERR_STORE_NOT_FOUND');
      await store.recordAttempts([attempt(items[0]!.delivery.id, 'SENT')], batch);
      expect((await store.getMessage(items[0]!.id))!.deliveries[0]!.attemptLog.map((x) => x.batch?.id), 'its id is free: nothing was written').to.deep.equal([batch.id]);
    });
  });

  describe('getMessage: the attempt log is bounded', () => {
    it('loads the newest attempts of each delivery with their count, and pages to older ones', async () => {
      const { store } = await fresh();
      const m = newMessage();
      await store.receive(m);
      const [erp, rcm] = await store.recordProcessing(m.id, queued(['erp', 'rcm']));
      for (let i = 1; i <= 7; i++) await store.recordAttempts([attempt(erp!.id, 'RETRY', { response: { status: 503, body: `try ${i}` } })]);
      await store.recordAttempts([attempt(rcm!.id, 'SENT')]);

      const first = (await store.getMessage(m.id, { limit: 3 }))!;
      const [e1, r1] = first.deliveries;
      expect(e1!.attemptCount).to.equal(7);
      expect(e1!.attemptLog.map((a) => a.response!.body), 'the newest three, oldest first').to.deep.equal(['try 5', 'try 6', 'try 7']);
      expect(e1!.attemptsBefore).to.equal(e1!.attemptLog[0]!.seq);
      expect(r1).to.deep.include({ attemptCount: 1 });
      expect(r1!.attemptsBefore, 'nothing older').to.equal(undefined);

      const second = (await store.getMessage(m.id, { limit: 3, before: e1!.attemptsBefore! }))!;
      expect(second.deliveries[0]!.attemptLog.map((a) => a.response!.body)).to.deep.equal(['try 2', 'try 3', 'try 4']);
      const third = (await store.getMessage(m.id, { limit: 3, before: second.deliveries[0]!.attemptsBefore! }))!;
      expect(third.deliveries[0]!.attemptLog.map((a) => a.response!.body)).to.deep.equal(['try 1']);
      expect(third.deliveries[0]!.attemptsBefore).to.equal(undefined);
      expect(third.deliveries[1]!.attemptLog, 'the cursor applies to every delivery').to.have.length(0);
    });

    it(`loads ${DEFAULT_ATTEMPTS} attempts by default and at most ${MAX_ATTEMPTS}`, async () => {
      const { store } = await fresh();
      const m = newMessage();
      await store.receive(m);
      const [erp] = await store.recordProcessing(m.id, queued(['erp']));
      const many = Array.from({ length: MAX_ATTEMPTS + 5 }, () => attempt(erp!.id, 'RETRY'));
      await store.recordAttempts(many);
      const byDefault = (await store.getMessage(m.id))!.deliveries[0]!;
      expect(byDefault.attemptLog).to.have.length(DEFAULT_ATTEMPTS);
      expect(byDefault.attemptCount).to.equal(MAX_ATTEMPTS + 5);
      const most = (await store.getMessage(m.id, { limit: 1e9 }))!.deliveries[0]!;
      expect(most.attemptLog).to.have.length(MAX_ATTEMPTS);
      expect(most.attemptsBefore).to.be.a('number');
    });
  });

  describe('replay', () => {
    it('sends ERROR, BUSINESS_EXCEPTION, FILTERED and RECEIVED messages back through the pipeline', async () => {
      const { store } = await fresh();
      const outcomes: Array<ProcessingOutcome | undefined> = [
        { state: 'ERROR', error: { code: 'OSPREY_ERR_TRANSFORM_FAILED', detail: 'bug' } },
        { state: 'BUSINESS_EXCEPTION', exception: { category: 'unmapped-department', detail: 'CARD-3', tags: {} } },
        { state: 'FILTERED', reason: 'not wanted' },
        undefined,
      ];
      for (const outcome of outcomes) {
        const m = newMessage();
        await store.receive(m);
        if (outcome) await store.recordProcessing(m.id, outcome);
        const plan = await store.replay(m.id);
        const seq = (await store.findMessages({ controlId: m.keys.controlId }))[0]!.seq;
        expect(plan).to.deep.equal({ kind: 'pipeline', message: { id: m.id, channel: 'adt-in', orderKey: 'P-1', seq } });
        const detail = await store.getMessage(m.id);
        expect(detail!.state).to.equal('RECEIVED');
        expect(detail).to.not.have.any.keys('error', 'exception', 'exceptionCategory', 'filterReason', 'canonical');
        expect(detail!.events.at(-1)!.event).to.equal('REPLAYED');
      }
      const pending = await pendingWork(store);
      expect(pending.messages).to.have.length(4);
    });

    it('lets a replayed message be processed again', async () => {
      const { store } = await fresh();
      const m = newMessage();
      await store.receive(m);
      await store.recordProcessing(m.id, { state: 'ERROR', error: { code: 'OSPREY_ERR_TRANSFORM_FAILED', detail: 'bug' } });
      await store.replay(m.id);
      const deliveries = await store.recordProcessing(m.id, queued(['erp']));
      expect(deliveries).to.have.length(1);
      expect((await store.getMessage(m.id))!.events.map((e) => e.event)).to.deep.equal([
        'RECEIVED',
        'ERROR',
        'REPLAYED',
        'TRANSFORMED',
        'QUEUED',
        'QUEUED',
      ]);
    });

    it('re-queues dead-lettered deliveries with their attempts reset, keeping their history', async () => {
      const { store } = await fresh();
      const m = newMessage();
      await store.receive(m);
      const [erp, rcm] = await store.recordProcessing(m.id, queued(['erp', 'rcm']));
      await store.recordAttempts([
        attempt(erp!.id, 'DEAD_LETTERED', { error: { code: 'OSPREY_ERR_DELIVERY_EXHAUSTED', detail: 'gave up' } }),
        attempt(rcm!.id, 'SENT'),
      ]);
      expect((await store.getMessage(m.id))!.state).to.equal('DEAD_LETTERED');

      const plan = await store.replay(m.id);
      expect(plan?.kind).to.equal('deliveries');
      const replayed = plan!.kind === 'deliveries' ? plan!.deliveries : [];
      expect(replayed.map((d) => d.id)).to.deep.equal([erp!.id]);
      expect(replayed[0]).to.deep.include({ state: 'QUEUED', attempts: 0, payload: { to: 'erp', b: 1, a: [1, 'x'] } });
      expect(replayed[0]).to.not.have.any.keys('lastError', 'nextAttemptAt');

      const detail = await store.getMessage(m.id);
      expect(detail!.state).to.equal('QUEUED');
      expect(detail!.deliveries.find((d) => d.id === erp!.id)!.attemptLog).to.have.length(1);
      expect(detail!.events.slice(-2).map((e) => [e.event, e.destination])).to.deep.equal([
        ['REPLAYED', undefined],
        ['QUEUED', 'erp'],
      ]);
      expect((await pendingWork(store)).deliveries.map((d) => d.id)).to.deep.equal([erp!.id]);

      await store.recordAttempts([attempt(erp!.id, 'SENT')]);
      const after = await store.getMessage(m.id);
      expect(after!.state).to.equal('SENT');
      expect(after!.deliveries.find((d) => d.id === erp!.id)!.attemptLog.map((a) => a.outcome)).to.deep.equal(['DEAD_LETTERED', 'SENT']);
    });

    it('returns undefined for a SENT, a QUEUED or an unknown message', async () => {
      const { store } = await fresh();
      const m = newMessage();
      await store.receive(m);
      const [d] = await store.recordProcessing(m.id, queued(['erp']));
      expect(await store.replay(m.id)).to.equal(undefined);
      await store.recordAttempts([attempt(d!.id, 'SENT')]);
      expect(await store.replay(m.id)).to.equal(undefined);
      expect(await store.replay('no-such-id')).to.equal(undefined);
      expect((await store.getMessage(m.id))!.events.map((e) => e.event)).to.not.include('REPLAYED');
    });
  });

  describe('queries', () => {
    it('finds by business keys, state, type and time, newest first, paged by seq', async () => {
      const { store } = await fresh();
      const t0 = Date.now() - 10 * MINUTE;
      const all: NewMessage[] = [];
      for (let i = 0; i < 25; i++) {
        const m = newMessage({
          channel: i % 2 === 0 ? 'q-even' : 'q-odd',
          receivedAt: t0 + i * 1000,
          keys: { patientId: `P-${i % 5}`, visitId: `V-${i % 3}`, messageType: i % 4 === 0 ? 'ADT^A08' : 'ADT^A01', controlId: `Q-${i}` },
        });
        all.push(m);
        await store.receive(m);
      }
      await store.recordProcessing(all[4]!.id, { state: 'FILTERED', reason: 'x' });
      const ids = (q: Parameters<MessageStore['findMessages']>[0]) => store.findMessages(q).then((r) => r.map((s) => s.id));
      const expected = (pred: (m: NewMessage, i: number) => boolean) => all.filter(pred).map((m) => m.id).reverse();

      expect(await ids({})).to.deep.equal(expected(() => true));
      expect(await ids({ channel: 'q-odd' })).to.deep.equal(expected((m) => m.channel === 'q-odd'));
      expect(await ids({ patientId: 'P-2' })).to.deep.equal(expected((m) => m.keys.patientId === 'P-2'));
      expect(await ids({ visitId: 'V-1' })).to.deep.equal(expected((m) => m.keys.visitId === 'V-1'));
      expect(await ids({ controlId: 'Q-7' })).to.deep.equal([all[7]!.id]);
      expect(await ids({ messageType: 'ADT^A08', channel: 'q-even' })).to.deep.equal(expected((m) => m.keys.messageType === 'ADT^A08'));
      expect(await ids({ state: 'FILTERED' })).to.deep.equal([all[4]!.id]);
      expect(await ids({ channel: 'q-even', state: 'RECEIVED' })).to.deep.equal(expected((m, i) => m.channel === 'q-even' && i !== 4));
      expect(await ids({ since: t0 + 10_000, until: t0 + 12_000 })).to.deep.equal([all[12]!.id, all[11]!.id, all[10]!.id]);

      const summary = (await store.findMessages({ controlId: 'Q-4' }))[0]!;
      expect(summary).to.deep.include({ id: all[4]!.id, channel: 'q-even', state: 'FILTERED', receivedAt: t0 + 4000, orderKey: 'P-1' });
      expect(summary.keys).to.deep.equal(all[4]!.keys);
      expect(summary.updatedAt).to.be.a('number');

      // Keyset paging: pages of 7 cover everything once, in order.
      const paged: string[] = [];
      let beforeSeq: number | undefined;
      for (;;) {
        const page = await store.findMessages({ limit: 7, beforeSeq });
        if (page.length === 0) break;
        expect(page.length).to.be.at.most(7);
        paged.push(...page.map((s) => s.id));
        beforeSeq = page.at(-1)!.seq;
      }
      expect(paged).to.deep.equal(expected(() => true));
      expect(await store.findMessages({ limit: 0 })).to.have.length(1);
    });

    it('counts per channel and state', async () => {
      const { store } = await fresh();
      const ms = [newMessage({ channel: 'c-a' }), newMessage({ channel: 'c-a' }), newMessage({ channel: 'c-b' })];
      for (const m of ms) await store.receive(m);
      await store.recordProcessing(ms[0]!.id, { state: 'ERROR', error: { code: 'OSPREY_ERR_TRANSFORM_FAILED', detail: 'x' } });
      expect(await store.countByChannel()).to.deep.equal({ 'c-a': { ERROR: 1, RECEIVED: 1 }, 'c-b': { RECEIVED: 1 } });
    });

    it('lists unfinished work oldest first, also after a reopen', async () => {
      const { store, another } = await fresh();
      const ms = Array.from({ length: 6 }, () => newMessage());
      for (const m of ms) await store.receive(m);
      // 0: queued to two destinations, one sent; 1: sent; 2: error; 3–5 still RECEIVED.
      const d0 = await store.recordProcessing(ms[0]!.id, queued(['erp', 'rcm']));
      const d1 = await store.recordProcessing(ms[1]!.id, queued(['erp']));
      await store.recordProcessing(ms[2]!.id, { state: 'ERROR', error: { code: 'OSPREY_ERR_TRANSFORM_FAILED', detail: 'x' } });
      await store.recordAttempts([attempt(d0[0]!.id, 'SENT'), attempt(d1[0]!.id, 'SENT')]);
      const waiting = await store.recordProcessing(ms[3]!.id, queued(['erp']));
      await store.recordAttempts([attempt(waiting[0]!.id, 'RETRY', { nextAttemptAt: Date.now() + 60_000 })]);
      await store.close();

      const reopened = await another();
      const pending = await pendingWork(reopened);
      expect(pending.messages.map((p) => p.id)).to.deep.equal([ms[4]!.id, ms[5]!.id]);
      expect(pending.messages[0]).to.have.keys('id', 'channel', 'orderKey', 'seq');
      expect(pending.deliveries.map((d) => d.id)).to.deep.equal([d0[1]!.id, waiting[0]!.id]);
      // Only what changed since a moment (around a broker outage), when asked.
      expect(await pendingWork(reopened, { changedSince: Date.now() + MINUTE })).to.deep.equal({ messages: [], deliveries: [] });
      expect((await pendingWork(reopened, { changedSince: Date.now() - MINUTE })).deliveries.map((d) => d.id)).to.deep.equal([d0[1]!.id, waiting[0]!.id]);
      // Work items only, no payloads: the worker reads the delivery (its retry time too) when it runs.
      expect(pending.deliveries[1]).to.have.keys('id', 'messageId', 'channel', 'destination', 'outputIndex', 'orderKey', 'seq');
      expect(pending.deliveries[1]).to.deep.include({ messageId: ms[3]!.id, destination: 'erp', orderKey: 'P-1' });
      expect((await reopened.loadDelivery(waiting[0]!.id))!.nextAttemptAt).to.be.a('number');
    });

    it('reads unfinished work in pages that cover it once, in order, whatever the page size', async () => {
      const { store } = await fresh();
      // A message split into 12 outputs for one destination (output 10 comes after 9, not after 1)
      // and one for another; then messages with one delivery; then messages still RECEIVED.
      const split = newMessage();
      await store.receive(split);
      const outputs = [
        ...Array.from({ length: 12 }, (_, i) => ({ destination: 'erp', outputIndex: i, payload: { i } })),
        { destination: 'rcm', outputIndex: 0, payload: {} },
      ];
      await store.recordProcessing(split.id, { state: 'QUEUED', canonical: {}, deliveries: outputs });
      const singles = Array.from({ length: 4 }, () => newMessage({ outcome: queued(['erp']) }));
      for (const m of singles) await store.receive(m);
      const received = Array.from({ length: 5 }, () => newMessage());
      for (const m of received) await store.receive(m);

      const deliveries = [...outputs.map((o) => `${split.id}:${o.destination}:${o.outputIndex}`), ...singles.map((m) => `${m.id}:erp:0`)];
      for (const pageSize of [1, 2, 5, 13, 17, 1000]) {
        const pages: Array<{ deliveries: PendingDelivery[]; messages: PendingMessage[] }> = [];
        for await (const page of pendingWorkPages(store, { pageSize })) pages.push(page);
        for (const page of pages) {
          expect(page.deliveries.length + page.messages.length, `page size ${pageSize}`).to.be.within(1, pageSize);
          expect(page.deliveries.length === 0 || page.messages.length === 0, 'a page holds one kind').to.equal(true);
        }
        expect(pages.flatMap((p) => p.deliveries.map((d) => d.id)), `page size ${pageSize}`).to.deep.equal(deliveries);
        expect(pages.flatMap((p) => p.messages.map((m) => m.id)), `page size ${pageSize}`).to.deep.equal(received.map((m) => m.id));
      }
    });
  });

  describe('close', () => {
    it('waits for queued writes before closing', async () => {
      const { store, another } = await fresh();
      const ms = Array.from({ length: 50 }, () => newMessage());
      const writes = ms.map((m) => store.receive(m));
      await store.close();
      await Promise.all(writes);
      const reopened = await another();
      expect((await reopened.countByChannel())['adt-in']).to.deep.equal({ RECEIVED: 50 });
    });
  });
}
