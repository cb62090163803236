// SPDX-License-Identifier: Apache-2.0
/**
 * Embedded mode restarted on a backlog larger than the start-up recovery's page (5,000 items):
 * the engine (in this process: SQLite in a temp dir, the local bus, the real sample channel)
 * starts on a store that already holds 5,200 QUEUED deliveries, feeds them to the local bus a page
 * at a time as it drains, accepts and ACKs a new message of a backlog patient meanwhile, and
 * delivers every item once to a real HTTP stand-in, per patient in store order, the new message's
 * after all of its patient's recovered ones. The bound itself (items held) is measured in
 * test/unit/recovery/outbox-recovery.spec.ts.
 */
import { join } from 'node:path';
import { expect } from 'chai';
import { Engine } from '../../engine/engine.ts';
import { Hl7Message } from '../../engine/message-formats/hl7v2/index.ts';
import { PENDING_PAGE_SIZE } from '../../engine/message-store/message-store.ts';
import { SqliteStore } from '../../engine/message-store/sqlite-store.ts';
import { silentLogger, type Logger } from '../../engine/observability/logger.ts';
import { ErpStandIn } from '../fixtures/erp-stand-in.ts';
import { parseAck, sendOne } from '../helpers/mllp-raw-client.ts';
import { sampleCases } from '../helpers/samples.ts';
import { makeTempDir, REPO_ROOT, removeTempDirs, testEngineConfig } from '../helpers/test-engine.ts';
import { waitFor } from '../helpers/wait-for.ts';

const CHANNEL = 'adt-to-rcm-erp';
const DESTINATION = 'rcm-billing';
const BACKLOG = PENDING_PAGE_SIZE + 200;
const PATIENTS = 20;

describe('embedded start-up recovery of a backlog larger than a page', function () {
  this.timeout(180_000);
  let standIn: ErpStandIn | undefined;
  let engine: Engine | undefined;

  after(async () => {
    await engine?.stop().catch(() => undefined);
    await standIn?.close();
    removeTempDirs();
  });

  it('delivers every recovered item once, in order per patient, and a message received meanwhile after its patient’s backlog', async () => {
    const sample = sampleCases(CHANNEL).find((c) => (c.expect[DESTINATION]?.length ?? 0) > 0 && c.expectState === 'QUEUED')!;
    const text = sample.raw.toString('utf8');
    const mrn = Hl7Message.parse(text).get('PID-3.1')!;
    const keys = [mrn, ...Array.from({ length: PATIENTS - 1 }, (_, i) => `BACKLOG${i}`)];

    // The store an engine left behind: BACKLOG deliveries QUEUED, oldest first.
    const dataDir = makeTempDir('recovery-backlog');
    const config = testEngineConfig(dataDir, {
      sandbox: false,
      rateLimits: { 'rcm-api': { perSecond: 100_000, burst: 100_000 }, 'erp-api': { perSecond: 100_000, burst: 100_000 } },
    });
    const store = new SqliteStore({ path: (config.store as { path: string }).path });
    await store.open();
    const stored: Array<{ id: string; key: string }> = [];
    const writes: Array<Promise<unknown>> = [];
    for (let i = 0; i < BACKLOG; i++) {
      const id = `B${String(i).padStart(6, '0')}`;
      const key = keys[i % keys.length]!;
      stored.push({ id: `${id}:${DESTINATION}:0`, key });
      // Group-committed in submission order: the store numbers them in this order.
      writes.push(
        store.receive({
          id,
          channel: CHANNEL,
          receivedAt: Date.now(),
          raw: Buffer.from(`MSH|^~\\&|EHR|HOSP|||20240101||ADT^A01|${id}|P|2.5\r`),
          encoding: 'UTF-8',
          keys: { controlId: id, sender: 'BACKLOG|HOSP', patientId: key },
          orderKey: key,
          state: 'RECEIVED',
          dedupeWindowMs: 0,
          outcome: { state: 'QUEUED', canonical: {}, deliveries: [{ destination: DESTINATION, outputIndex: 0, payload: { backlog: id } }] },
        }),
      );
    }
    await Promise.all(writes);
    await store.close();

    standIn = await ErpStandIn.start();
    const logged: string[] = [];
    const silent = silentLogger();
    const logger = Object.assign(Object.create(silent) as Logger, {
      info: (message: string) => (logged.push(message), logger),
      child: () => logger,
    });
    engine = new Engine({
      config,
      projectRoot: REPO_ROOT,
      env: { ADT_MLLP_PORT: '0', SIU_MLLP_PORT: '0', RCM_URL: `${standIn.url}/rcm`, ERP_URL: `${standIn.url}/erp` },
      logger,
    });
    await engine.start();
    const port = engine.channel(CHANNEL)!.sourceAddress!.port;
    const ack = parseAck(await sendOne(port, text));
    expect(ack.code, 'a message arriving during the recovery is stored and ACKed').to.be.oneOf(['AA', 'CA']);

    const arrivals = (): string[] => standIn!.arrivals.filter((a) => a.path.startsWith('/rcm')).map((a) => a.idempotencyKey);
    await waitFor(() => arrivals().length >= BACKLOG + 1, { timeoutMs: 150_000, intervalMs: 100, what: 'every delivery at the stand-in' });
    // The rest came after the sources started. (Whether the new message waited in the store
    // depends on when it came: the unit test covers that path.)
    expect(logged).to.include('recovered the rest of the unfinished work from the store');

    const applied = standIn.applied.filter((a) => a.path.startsWith('/rcm')).map((a) => a.idempotencyKey);
    expect(applied, 'each item applied once').to.have.length(BACKLOG + 1);
    expect(new Set(applied)).to.include.members(stored.map((s) => s.id));
    const order = arrivals();
    for (const key of keys) {
      const expected = stored.filter((s) => s.key === key).map((s) => s.id);
      const seen = order.filter((k) => expected.includes(k));
      // A duplicate arrival is allowed only right after its original (a resend of the same key).
      expect(seen.filter((k, i) => i === 0 || k !== seen[i - 1]), `order of ${key}`).to.deep.equal(expected);
    }
    const fresh = order.findIndex((k) => !k.startsWith('B'));
    const lastOfMrn = order.lastIndexOf(stored.filter((s) => s.key === mrn).at(-1)!.id);
    expect(fresh, 'the new message after its patient’s recovered backlog').to.be.greaterThan(lastOfMrn);
  });
});
