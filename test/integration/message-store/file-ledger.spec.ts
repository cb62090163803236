// SPDX-License-Identifier: Apache-2.0
/**
 * The file ledger (`store.files`) on both stores, and the single-active lease (`store.singleActive`):
 * in-process on SQLite, a PostgreSQL advisory lock across two PostgresStore instances. PostgreSQL
 * as in postgres-store.spec.ts: 127.0.0.1:5432 (OSPREY_TEST_POSTGRES_URL overrides), a schema per
 * test, all dropped at the end; skipped with the reason when unreachable, unless
 * OSPREY_REQUIRE_SERVICES=1.
 */
import { createHash, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { expect } from 'chai';
import pg from 'pg';
import type { NewInboundFile } from '../../../engine/adapter-sdk/file-source-services.ts';
import type { MessageStore, NewMessage } from '../../../engine/message-store/message-store.ts';
import { PostgresStore } from '../../../engine/message-store/postgres-store.ts';
import { SqliteStore } from '../../../engine/message-store/sqlite-store.ts';
import { makeTempDir, removeTempDirs } from '../../helpers/test-engine.ts';
import { waitFor } from '../../helpers/wait-for.ts';

const CANDIDATES = process.env.OSPREY_TEST_POSTGRES_URL
  ? [process.env.OSPREY_TEST_POSTGRES_URL]
  : ['postgres://postgres@127.0.0.1:5432/test', 'postgres://postgres@127.0.0.1:5432/postgres'];

async function reachable(): Promise<{ url: string } | { reason: string }> {
  const reasons: string[] = [];
  for (const url of CANDIDATES) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
    client.on('error', () => {});
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

const hashOf = (text: string): string => createHash('sha256').update(text).digest('hex');

function pickup(over: Partial<NewInboundFile> = {}): NewInboundFile {
  const name = over.name ?? 'remit-0001.835';
  return { channel: 'remit', name, path: `/inbox/${name}`, contentHash: hashOf(name), size: 1234, mtimeMs: 1_767_225_600_000, state: 'PROCESSING', ...over };
}

/** A record of a file, as the poller stores it: its lineage carries the file's hash and its index. */
function record(channel: string, fileHash: string, recordIndex: number, over: Partial<NewMessage> = {}): NewMessage {
  return {
    id: randomUUID(),
    channel,
    receivedAt: Date.now(),
    raw: Buffer.from(`CLP*CLAIM${recordIndex}*1*100*80~`),
    encoding: 'UTF-8',
    format: 'x12',
    lineage: { file: 'remit-0001.835', fileHash, recordIndex },
    keys: { controlId: `CLAIM${recordIndex}` },
    orderKey: `CLAIM${recordIndex}`,
    state: 'RECEIVED',
    dedupeWindowMs: 0,
    ...over,
  };
}

/** The ledger's behaviour, the same on both stores. */
function fileLedgerSuite(create: () => Promise<MessageStore>): void {
  let store: MessageStore;
  beforeEach(async () => {
    store = await create();
    await store.open();
  });
  afterEach(async () => {
    await store.close();
  });

  it('records a pickup PROCESSING with its file, version 1, and finds it by content hash on its channel only', async () => {
    const before = Date.now();
    const file = await store.files.begin(pickup());
    expect(file).to.include({ channel: 'remit', name: 'remit-0001.835', path: '/inbox/remit-0001.835', size: 1234, mtimeMs: 1_767_225_600_000, version: 1, state: 'PROCESSING', recordsDone: 0, recordsErrored: 0 });
    expect(file.pickedAt).to.be.within(before, Date.now());
    expect(file.recordsTotal).to.equal(undefined);
    expect(await store.files.findByHash('remit', hashOf('remit-0001.835'))).to.deep.equal(file);
    expect(await store.files.findByHash('charges', hashOf('remit-0001.835'))).to.equal(undefined);
    expect(await store.files.findByHash('remit', hashOf('other'))).to.equal(undefined);
  });

  it('numbers versions per name: a corrected file is the next version, a re-drop of the same bytes keeps its version', async () => {
    const first = await store.files.begin(pickup());
    await store.files.update(first.id, { state: 'DONE', finishedAt: Date.now() });
    const corrected = await store.files.begin(pickup({ contentHash: hashOf('corrected') }));
    expect(corrected.version).to.equal(2);
    const redrop = await store.files.begin(pickup({ state: 'DUPLICATE' }));
    expect(redrop).to.include({ version: 1, state: 'DUPLICATE' });
    const otherName = await store.files.begin(pickup({ name: 'remit-0002.835' }));
    expect(otherName.version).to.equal(1);
    const otherChannel = await store.files.begin(pickup({ channel: 'charges' }));
    expect(otherChannel.version).to.equal(1);
    // The newest pickup of those bytes: the duplicate.
    expect((await store.files.findByHash('remit', hashOf('remit-0001.835')))!.id).to.equal(redrop.id);
  });

  it('updates only the fields given, and refuses an unknown id', async () => {
    const file = await store.files.begin(pickup());
    await store.files.update(file.id, { recordsTotal: 3 });
    await store.files.update(file.id, { state: 'QUARANTINED', error: { code: 'OSPREY_ERR_X12_ENVELOPE', detail: 'IEA02 does not match ISA13' }, movedTo: '/inbox/error/remit-0001.835', finishedAt: 1_767_225_700_000 });
    await store.files.update(file.id, {});
    const [listed] = await store.files.list({ channel: 'remit' });
    expect(listed).to.deep.include({
      id: file.id,
      state: 'QUARANTINED',
      recordsTotal: 3,
      error: { code: 'OSPREY_ERR_X12_ENVELOPE', detail: 'IEA02 does not match ISA13' },
      movedTo: '/inbox/error/remit-0001.835',
      finishedAt: 1_767_225_700_000,
    });
    for (const update of [{ state: 'DONE' as const }, {}]) {
      const err = await store.files.update('no-such-file', update).then(() => undefined, (e: unknown) => e);
      expect(err, JSON.stringify(update)).to.have.property('code', 'OSPREY_ERR_STORE_NOT_FOUND');
    }
    const bad = await store.files.update(file.id, { state: 'FINISHED' as never }).then(() => undefined, (e: unknown) => e);
    expect(bad).to.be.instanceOf(TypeError);
  });

  it('reads the checkpoint from the records stored: their indexes, and done / errored counts', async () => {
    const hash = hashOf('remit-0001.835');
    const file = await store.files.begin(pickup());
    await store.files.update(file.id, { recordsTotal: 5 });
    await Promise.all([
      store.receive(record('remit', hash, 0)),
      store.receive(record('remit', hash, 1, { state: 'ERROR', error: { code: 'OSPREY_ERR_INGEST_UNREADABLE', detail: 'CLP01 missing' } })),
      store.receive(record('remit', hash, 3, { outcome: { state: 'BUSINESS_EXCEPTION', exception: { category: 'no-payer', detail: 'no payer N1', tags: {} } } })),
      // Another channel's records of the same bytes, and another file's, are not this file's.
      store.receive(record('other', hash, 2)),
      store.receive(record('remit', hashOf('another file'), 2)),
      // A message that is not a record of a file.
      store.receive(record('remit', hash, 0, { lineage: undefined })),
    ]);
    expect([...(await store.files.storedRecords('remit', hash))].sort()).to.deep.equal([0, 1, 3]);
    expect(await store.files.storedRecords('remit', hashOf('nothing'))).to.deep.equal(new Set());
    const [listed] = await store.files.list({ channel: 'remit' });
    expect(listed).to.include({ id: file.id, recordsTotal: 5, recordsDone: 3, recordsErrored: 2 });
    expect((await store.files.findByHash('remit', hash))!.recordsDone).to.equal(3);
    // A duplicate pickup stored nothing of its own: the records of its bytes are the original's.
    await store.files.update(file.id, { state: 'DONE' });
    const duplicate = await store.files.begin(pickup({ state: 'DUPLICATE' }));
    expect(duplicate).to.include({ recordsDone: 0, recordsErrored: 0 });
  });

  it('gives the files left PROCESSING, oldest first, and lists newest first by channel, state and limit', async () => {
    const a = await store.files.begin(pickup({ name: 'a.835' }));
    const b = await store.files.begin(pickup({ name: 'b.835' }));
    const c = await store.files.begin(pickup({ name: 'c.835' }));
    const d = await store.files.begin(pickup({ channel: 'charges', name: 'd.csv' }));
    await store.files.update(b.id, { state: 'DONE' });
    expect((await store.files.unfinished('remit')).map((f) => f.name)).to.deep.equal(['a.835', 'c.835']);
    expect((await store.files.unfinished('charges')).map((f) => f.id)).to.deep.equal([d.id]);
    expect((await store.files.list({})).map((f) => f.name)).to.deep.equal(['d.csv', 'c.835', 'b.835', 'a.835']);
    expect((await store.files.list({ channel: 'remit', state: 'PROCESSING' })).map((f) => f.id)).to.deep.equal([c.id, a.id]);
    expect((await store.files.list({ limit: 2 })).map((f) => f.name)).to.deep.equal(['d.csv', 'c.835']);
    for (const limit of [0, 1001, 1.5]) {
      const err = await store.files.list({ limit }).then(() => undefined, (e: unknown) => e);
      expect(err, String(limit)).to.be.instanceOf(RangeError);
    }
  });

  it('refuses a pickup that does not begin PROCESSING or DUPLICATE, or lacks its hash', async () => {
    for (const bad of [pickup({ state: 'DONE' as never }), pickup({ contentHash: '' }), pickup({ size: -1 })]) {
      const err = await store.files.begin(bad).then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(TypeError);
    }
    expect(await store.files.list({})).to.deep.equal([]);
  });

  it('keeps the ledger across a close and open (a restart resumes what was PROCESSING)', async () => {
    const file = await store.files.begin(pickup());
    await store.close();
    await store.open();
    expect((await store.files.unfinished('remit')).map((f) => f.id)).to.deep.equal([file.id]);
  });

  it('is usable only while the store is open', async () => {
    await store.close();
    const err = await store.files.list({}).then(() => undefined, (e: unknown) => e);
    expect(err).to.have.property('code', 'OSPREY_ERR_STORE_UNAVAILABLE');
    const lease = await store.singleActive.tryAcquire('x').then(() => undefined, (e: unknown) => e);
    expect(lease).to.have.property('code', 'OSPREY_ERR_STORE_UNAVAILABLE');
    await store.open();
  });
}

describe('file ledger and single-active lease', () => {
  after(() => removeTempDirs());

  describe('SQLite', () => {
    let dir = '';
    beforeEach(() => {
      dir = makeTempDir('file-ledger');
    });
    fileLedgerSuite(async () => new SqliteStore({ path: join(dir, 'store.db') }));

    describe('single-active (one per process)', () => {
      let store: SqliteStore;
      beforeEach(async () => {
        store = new SqliteStore({ path: join(dir, 'store.db') });
        await store.open();
      });
      afterEach(async () => {
        await store.close();
      });

      it('gives a lease to one holder at a time, per key, and again after its release', async () => {
        const first = await store.singleActive.tryAcquire('channel:remit');
        expect(first).to.not.equal(undefined);
        expect(await store.singleActive.tryAcquire('channel:remit')).to.equal(undefined);
        const other = await store.singleActive.tryAcquire('channel:charges');
        expect(other).to.not.equal(undefined);
        await first!.release();
        await first!.release(); // idempotent: it does not free the next holder's lease
        const second = await store.singleActive.tryAcquire('channel:remit');
        expect(second).to.not.equal(undefined);
        await first!.release();
        expect(await store.singleActive.tryAcquire('channel:remit')).to.equal(undefined);
      });

      it("loses the leases still held when the store closes (a released one's lost never resolves)", async () => {
        const held = (await store.singleActive.tryAcquire('channel:remit'))!;
        const released = (await store.singleActive.tryAcquire('channel:charges'))!;
        await released.release();
        let releasedLost = false;
        void released.lost.then(() => (releasedLost = true));
        await store.close();
        await held.lost;
        await store.open();
        expect(releasedLost).to.equal(false);
        expect(await store.singleActive.tryAcquire('channel:remit')).to.not.equal(undefined);
      });
    });
  });

  describe('PostgreSQL', function () {
    let url = '';
    const prefix = `osprey_test_files_${process.pid}_${Date.now().toString(36)}`;
    const schemas: string[] = [];
    const newSchema = (): string => {
      const schema = `${prefix}_${schemas.length + 1}`;
      schemas.push(schema);
      return schema;
    };

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

    let schema = '';
    beforeEach(() => {
      schema = newSchema();
    });
    fileLedgerSuite(async () => new PostgresStore({ connectionString: url, schema, poolSize: 2 }));

    describe('single-active across two instances (advisory lock)', () => {
      let a: PostgresStore;
      let b: PostgresStore;
      beforeEach(async () => {
        a = new PostgresStore({ connectionString: url, schema, poolSize: 2 });
        b = new PostgresStore({ connectionString: url, schema, poolSize: 2 });
        await a.open();
        await b.open();
      });
      afterEach(async () => {
        await Promise.all([a.close(), b.close()]);
      });

      /** Runs one statement on a connection of the test's own. */
      async function sql<T extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<T[]> {
        const client = new pg.Client({ connectionString: url });
        client.on('error', () => {});
        await client.connect();
        try {
          return (await client.query<T>(text, params)).rows;
        } finally {
          await client.end();
        }
      }

      it('lets one instance hold a key; the other gets it after the release', async () => {
        const key = `channel:remit:${randomUUID()}`;
        const held = await a.singleActive.tryAcquire(key);
        expect(held).to.not.equal(undefined);
        expect(await b.singleActive.tryAcquire(key)).to.equal(undefined);
        expect(await a.singleActive.tryAcquire(key)).to.equal(undefined, 'a second holder in the same instance too');
        const other = await b.singleActive.tryAcquire(`channel:charges:${randomUUID()}`);
        expect(other).to.not.equal(undefined);
        await held!.release();
        const taken = await b.singleActive.tryAcquire(key);
        expect(taken).to.not.equal(undefined);
        expect(await a.singleActive.tryAcquire(key)).to.equal(undefined);
      });

      it("loses the lease when its session is killed (pg_terminate_backend), and the other instance takes it", async () => {
        const key = `channel:remit:${randomUUID()}`;
        const held = (await a.singleActive.tryAcquire(key))!;
        expect(held).to.not.equal(undefined);
        // The lease's own session, by the application_name it shows in pg_stat_activity.
        const sessions = await sql<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [`osprey lease ${key}`]);
        expect(sessions).to.have.length(1);
        await sql('SELECT pg_terminate_backend($1)', [sessions[0]!.pid]);
        await held.lost;
        const taken = await waitFor(() => b.singleActive.tryAcquire(key), { timeoutMs: 5000, what: 'the second instance to take the freed lease' });
        expect(taken).to.not.equal(undefined);
        await held.release(); // after the loss: nothing to free, and no error
        expect(await a.singleActive.tryAcquire(key)).to.equal(undefined);
      });

      it('loses the leases still held when the store closes, and frees them for the other instance', async () => {
        const key = `channel:remit:${randomUUID()}`;
        const held = (await a.singleActive.tryAcquire(key))!;
        await a.close();
        await held.lost;
        expect(await b.singleActive.tryAcquire(key)).to.not.equal(undefined);
      });

      it('keeps the leases of stores in other schemas apart', async () => {
        const elsewhere = new PostgresStore({ connectionString: url, schema: newSchema(), poolSize: 1 });
        await elsewhere.open();
        try {
          const key = `channel:remit:${randomUUID()}`;
          expect(await a.singleActive.tryAcquire(key)).to.not.equal(undefined);
          expect(await elsewhere.singleActive.tryAcquire(key)).to.not.equal(undefined);
        } finally {
          await elsewhere.close();
        }
      });
    });
  });
});
