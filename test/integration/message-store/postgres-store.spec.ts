// SPDX-License-Identifier: Apache-2.0
/**
 * Runs the conformance suite on PostgreSQL (127.0.0.1:5432, user postgres, trust auth, database
 * `test`, else `postgres`; OSPREY_TEST_POSTGRES_URL overrides). Every test gets its own schema,
 * all dropped at the end. Without a reachable server the tests are skipped with the reason
 * printed, unless OSPREY_REQUIRE_SERVICES=1, which makes that a failure.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import pg from 'pg';
import type { AttemptRecord, NewMessage } from '../../../engine/message-store/message-store.ts';
import { PostgresStore, unreachableAsUnavailable } from '../../../engine/message-store/postgres-store.ts';
import { arrayLiteral } from '../../../engine/message-store/postgres-batch.ts';
import { startTcpRelay } from '../../helpers/tcp-relay.ts';
import { messageStoreSuite } from './message-store.suite.ts';

const CANDIDATES = process.env.OSPREY_TEST_POSTGRES_URL
  ? [process.env.OSPREY_TEST_POSTGRES_URL]
  : ['postgres://postgres@127.0.0.1:5432/test', 'postgres://postgres@127.0.0.1:5432/postgres'];

async function reachable(): Promise<{ url: string } | { reason: string }> {
  const reasons: string[] = [];
  for (const url of CANDIDATES) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return { url };
    } catch (err) {
      reasons.push(`${url.replace(/\/\/[^@]*@/, '//')}: ${(err as Error).message}`);
    } finally {
      await client.end().catch(() => {});
    }
  }
  return { reason: reasons.join('; ') };
}

describe('PostgresStore', function () {
  let url = '';
  const prefix = `osprey_test_${process.pid}_${Date.now().toString(36)}`;
  const schemas: string[] = [];

  before(async function () {
    const found = await reachable();
    if ('reason' in found) {
      if (process.env.OSPREY_REQUIRE_SERVICES === '1') throw new Error(`PostgreSQL is required (OSPREY_REQUIRE_SERVICES=1) but unreachable: ${found.reason}`);
      console.log(`    skipped: PostgreSQL unreachable (${found.reason})`);
      this.skip();
    }
    url = found.url;
  });

  after(async () => {
    if (!url || schemas.length === 0) return;
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      for (const s of schemas) await client.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
    } finally {
      await client.end();
    }
  });

  describe('conformance', () => {
    messageStoreSuite(() => ({
      newStorage: async () => {
        const schema = `${prefix}_${schemas.length + 1}`;
        schemas.push(schema);
        return schema;
      },
      create: (schema) => new PostgresStore({ connectionString: url, schema, poolSize: 4 }),
      sabotage: async (schema) => {
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          await client.query(`DROP TABLE "${schema}".events`);
        } finally {
          await client.end();
        }
      },
    }));
  });

  /**
   * The batch runs as two pipelines of statements (postgres-batch.ts), receives have a group
   * committer of their own, and point reads of one turn share a query: these race several store
   * instances (each with its own pool, as engine processes would have) on one schema.
   */
  describe('pipelined batches under concurrent writers', () => {
    const opened: PostgresStore[] = [];
    async function instances(n: number, tag: string): Promise<PostgresStore[]> {
      const schema = `${prefix}_${tag}`;
      schemas.push(schema);
      const stores = Array.from({ length: n }, () => new PostgresStore({ connectionString: url, schema, poolSize: 4 }));
      opened.push(...stores);
      for (const s of stores) await s.open();
      return stores;
    }
    afterEach(async () => {
      for (const s of opened.splice(0)) await s.close();
    });

    function message(over: Partial<NewMessage> = {}): NewMessage {
      const id = `m-${randomUUID()}`;
      return {
        id,
        channel: 'adt-in',
        receivedAt: Date.now(),
        raw: Buffer.from(`MSH|^~\\&|EPIC|HOSP|OSPREY|ERP|20240101||ADT^A01|${id}|P|2.5\r`, 'latin1'),
        encoding: 'ISO-8859-1',
        keys: { controlId: id, sender: 'EPIC|HOSP', messageType: 'ADT^A01' },
        orderKey: 'K',
        state: 'RECEIVED',
        dedupeWindowMs: 3_600_000,
        ...over,
      };
    }
    const sent = (deliveryId: string): AttemptRecord => ({
      deliveryId,
      startedAt: Date.now(),
      durationMs: 1,
      request: { method: 'POST', url: 'https://erp.example.org/x', headers: {}, body: '{}' },
      response: { status: 200, body: 'ok' },
      outcome: 'SENT',
    });

    it('keeps the raw bytes of every message of a batch, whatever their sizes (one binary parameter, sliced per row)', async () => {
      const [store] = await instances(1, 'raw');
      const sizes = [0, 1, 7, 1024, 100_000, 0, 3];
      const messages = sizes.map((n, i) => message({ raw: Buffer.from(Array.from({ length: n }, (_, k) => (k * 31 + i) % 256)) }));
      await Promise.all(messages.map((m) => store!.receive(m)));
      for (const m of messages) expect(Buffer.compare((await store!.loadForProcessing(m.id))!.raw, m.raw)).to.equal(0);
    });

    it('stores each control id once when three instances receive the same 40 messages at the same moment', async () => {
      const stores = await instances(3, 'dedupe_race');
      const controlIds = Array.from({ length: 40 }, (_, i) => `RACE-${i}`);
      const results = await Promise.all(
        stores.flatMap((s) => controlIds.map((c) => s.receive(message({ keys: { controlId: c, sender: 'EPIC|HOSP' } })).then((r) => ({ c, r })))),
      );
      for (const c of controlIds) {
        const mine = results.filter((x) => x.c === c);
        const stored = mine.filter((x) => x.r.duplicateOf === undefined);
        expect(stored, c).to.have.length(1);
        for (const x of mine) if (x !== stored[0]) expect(x.r.duplicateOf).to.equal(stored[0]!.r.id);
      }
      expect((await stores[0]!.countByChannel())['adt-in']).to.deep.equal({ RECEIVED: 40 });
    });

    it('settles each message once when three instances record the attempts of its three deliveries at the same moment', async () => {
      const stores = await instances(3, 'settle_race');
      const [a] = stores;
      const queued: string[][] = [];
      for (let i = 0; i < 30; i++) {
        const m = message();
        await a!.receive(m);
        const ds = await a!.recordProcessing(m.id, {
          state: 'QUEUED',
          canonical: { i },
          deliveries: ['erp', 'rcm', 'wf'].map((destination) => ({ destination, outputIndex: 0, payload: { i } })),
        });
        queued.push(ds.map((d) => d.id));
      }
      // Instance k records delivery k of every message; receives keep flowing at the same time.
      await Promise.all([
        ...stores.flatMap((s, k) => queued.map((ids) => s.recordAttempts([sent(ids[k]!)]))),
        ...stores.map((s) => s.receive(message())),
      ]);
      for (const ids of queued) {
        const detail = await a!.getMessage(ids[0]!.split(':')[0]!);
        expect(detail!.state).to.equal('SENT');
        expect(detail!.events.filter((e) => e.event === 'SENT' && e.destination === undefined)).to.have.length(1);
        expect(detail!.deliveries.map((d) => [d.state, d.attempts])).to.deep.equal([
          ['SENT', 1],
          ['SENT', 1],
          ['SENT', 1],
        ]);
      }
    });

    it('writes on index scans only, with plans made while the tables were empty (WRITER_PLANNING)', async () => {
      // The migrations' index builds scan the tables: let that session end (and report) first.
      const [migrated] = await instances(1, 'plans');
      await migrated!.close();
      const schema = `${prefix}_plans`;
      const store = new PostgresStore({ connectionString: url, schema, poolSize: 4 });
      opened.push(store);
      await store.open();
      const seqScans = async (): Promise<Record<string, number>> => {
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          const { rows } = await client.query('SELECT relname, seq_scan, idx_scan FROM pg_stat_user_tables WHERE schemaname = $1', [schema]);
          return Object.fromEntries(rows.filter((r) => r.relname !== 'schema_migrations').map((r) => [r.relname as string, Number(r.seq_scan)]));
        } finally {
          await client.end();
        }
      };
      const before = await seqScans();
      // Every kind of batch, twice: first on empty tables (where the generic plans are made), then
      // on tables that have grown. Only writes: the reads have a pool (and custom plans) of their own.
      for (let round = 0; round < 2; round++) {
        const messages = Array.from({ length: 40 * (1 + round * 5) }, () => message());
        await Promise.all(messages.map((m) => store.receive(m)));
        await store.receive(message({ keys: messages[0]!.keys })); // a resend: the careful path, with its dedupe lookup
        const queued = await Promise.all(
          messages.map((m, i) =>
            store.recordProcessing(m.id, { state: 'QUEUED', canonical: { i }, deliveries: ['erp', 'rcm'].map((destination) => ({ destination, outputIndex: 0, payload: { i } })) }),
          ),
        );
        await Promise.all(queued.map(([erp]) => store.recordAttempts([{ ...sent(erp!.id), outcome: 'RETRY', response: { status: 503, body: '' }, nextAttemptAt: Date.now() }])));
        await Promise.all(queued.flat().map((d) => store.recordAttempts([sent(d.id)])));
        await store.replay(messages[1]!.id);
      }
      // Closing ends the sessions, which report their statistics as they go.
      await store.close();
      let after = await seqScans();
      for (let i = 0; i < 50 && Object.keys(after).length === 0; i++) after = await seqScans();
      expect(Object.keys(after)).to.include.members(['messages', 'deliveries', 'attempts', 'events']);
      for (const [table, n] of Object.entries(after)) expect(n - (before[table] ?? 0), `sequential scans of ${table}`).to.equal(0);
    });

    it('answers reads of one turn from one query, each with its own row, and sees what was committed before', async () => {
      const [store] = await instances(1, 'reads');
      const messages = Array.from({ length: 5 }, () => message());
      await Promise.all(messages.map((m) => store!.receive(m)));
      const loaded = await Promise.all([...messages.map((m) => store!.loadForProcessing(m.id)), store!.loadForProcessing('no-such-message'), store!.loadForProcessing(messages[0]!.id)]);
      expect(loaded.map((l) => l?.id)).to.deep.equal([...messages.map((m) => m.id), undefined, messages[0]!.id]);
      const [d] = await store!.recordProcessing(messages[1]!.id, { state: 'QUEUED', canonical: {}, deliveries: [{ destination: 'erp', outputIndex: 0, payload: {} }] });
      const [first, none] = await Promise.all([store!.loadDelivery(d!.id), store!.loadDelivery('no-such-delivery')]);
      expect(first).to.deep.include({ id: d!.id, state: 'QUEUED', attempts: 0 });
      expect(none).to.equal(undefined);
      await store!.recordAttempts([sent(d!.id)]);
      expect(await store!.loadDelivery(d!.id)).to.deep.include({ state: 'SENT', attempts: 1 });
      expect((await store!.loadForProcessing(messages[1]!.id))!.state).to.equal('SENT');
    });
  });

  describe('array parameters (arrayLiteral)', () => {
    it('round-trips every kind of text, number, boolean and null as pg would send them', async () => {
      const texts = [
        '',
        'NULL',
        'plain',
        '{"a":"b","c":[1,2],"d":"quote \\" and backslash \\\\"}',
        'comma, braces {} and spaces  ',
        'back\\slash only',
        'line\nbreak\ttab\u0001control',
        'emoji \u{1F3E5} and accents é ü',
        'lone surrogate \ud800 here',
        null,
      ];
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        const { rows } = await client.query('SELECT $1::text[] AS t, $2::bigint[] AS n, $3::boolean[] AS b', [
          arrayLiteral(texts),
          arrayLiteral([0, -1, 1_700_000_000_123, null]),
          arrayLiteral([true, false, null]),
        ]);
        const expected = texts.map((t) => (t === null ? null : Buffer.from(t, 'utf8').toString('utf8'))); // a lone surrogate travels as U+FFFD, as with pg's own encoding
        expect(rows[0].t).to.deep.equal(expected);
        expect(rows[0].n).to.deep.equal(['0', '-1', '1700000000123', null]);
        expect(rows[0].b).to.deep.equal([true, false, null]);
      } finally {
        await client.end();
      }
    });
  });

  describe('an unreachable server', () => {
    it('fails reads with OSPREY_ERR_STORE_UNAVAILABLE (transient: the bus retries without counting them), and a bad statement as it is', async () => {
      const schema = `${prefix}_unreachable`;
      schemas.push(schema);
      const target = new URL(url);
      const relay = await startTcpRelay({ host: target.hostname, port: Number(target.port || 5432) });
      const store = new PostgresStore({ connectionString: relay.via(url), schema, poolSize: 2 });
      await store.open();
      try {
        expect(await store.loadDelivery('none:erp:0')).to.equal(undefined);
        await relay.cut();
        for (const read of [() => store.loadDelivery('none:erp:0'), () => store.getMessage('none'), () => store.firstAttemptAt('none:erp:0')]) {
          const err = await read().then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(err, 'rejected').to.be.instanceOf(Error);
          expect((err as { code?: string }).code).to.equal('OSPREY_ERR_STORE_UNAVAILABLE');
        }
      } finally {
        await store.close().catch(() => undefined);
      }
      expect(unreachableAsUnavailable(Object.assign(new Error('relation "x" does not exist'), { code: '42P01' })), 'a statement the server refused').to.not.have.property('code', 'OSPREY_ERR_STORE_UNAVAILABLE');
      for (const code of ['57P01', '08006', '53300', 'ECONNREFUSED']) {
        expect(unreachableAsUnavailable(Object.assign(new Error('x'), { code })), code).to.have.property('code', 'OSPREY_ERR_STORE_UNAVAILABLE');
      }
    });
  });

  describe('options', () => {
    it('refuses a schema name that is not a plain identifier', () => {
      expect(() => new PostgresStore({ connectionString: 'postgres://x', schema: 'a"; DROP TABLE x; --' })).to.throw(TypeError);
    });

    it('records the migrations once, even when instances open at the same moment', async () => {
      const schema = `${prefix}_migrations`;
      schemas.push(schema);
      const stores = Array.from({ length: 4 }, () => new PostgresStore({ connectionString: url, schema, poolSize: 1 }));
      try {
        await Promise.all(stores.map((s) => s.open()));
      } finally {
        for (const s of stores) await s.close();
      }
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        const { rows } = await client.query(`SELECT version, name FROM "${schema}".schema_migrations ORDER BY version`);
        expect(rows).to.deep.equal([
          { version: 1, name: '0001-initial' },
          { version: 2, name: '0002-no-foreign-key-checks' },
          { version: 3, name: '0003-duplicate-guard' },
          { version: 4, name: '0004-history-keys' },
          { version: 5, name: '0005-batch-attempts' },
          { version: 6, name: '0006-message-format' },
          { version: 7, name: '0007-inbound-files' },
        ]);
      } finally {
        await client.end();
      }
    });
  });
});
