// SPDX-License-Identifier: Apache-2.0
/**
 * `GET /api/messages/:id` shows a bounded attempt log (`?attempts=N&attemptsBefore=SEQ`, with each
 * delivery's count and cursor), and for an item of a batched request its own element and the
 * batch's metadata only. Real HTTP on 127.0.0.1 against a real SQLite store.
 */
import { join } from 'node:path';
import { expect } from 'chai';
import type { FastifyInstance } from 'fastify';
import { messagesCommand } from '../../engine/cli/commands/messages.ts';
import { buildManagementApi } from '../../engine/management-api/server.ts';
import type { AttemptRecord, StoredDelivery } from '../../engine/message-store/message-store.ts';
import { SqliteStore } from '../../engine/message-store/sqlite-store.ts';
import type { Logger } from '../../engine/observability/logger.ts';
import { makeTempDir, removeTempDirs } from '../helpers/test-engine.ts';

describe('management API: a message history', () => {
  let store: SqliteStore;
  let app: FastifyInstance;
  let base: string;
  const audit: Array<Record<string, unknown>> = [];
  const batchAudit: Array<Record<string, unknown>> = [];
  const logger = Object.fromEntries(
    ['info', 'warn', 'error', 'debug'].map((level) => [
      level,
      (message: string, meta?: Record<string, unknown>) => {
        if (message === 'message content viewed') audit.push(meta ?? {});
        if (message === 'batch content viewed') batchAudit.push(meta ?? {});
      },
    ]),
  ) as unknown as Logger;

  beforeEach(async () => {
    audit.length = 0;
    batchAudit.length = 0;
    store = new SqliteStore({ path: join(makeTempDir('api-history'), 'store.db') });
    await store.open();
    app = buildManagementApi({ store, channels: () => [], replay: () => Promise.resolve(undefined), ready: () => true, logger });
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  });
  afterEach(async () => {
    await app.close();
    await store.close();
  });
  after(() => removeTempDirs());

  async function queued(id: string, mrn: string): Promise<StoredDelivery> {
    const { deliveries } = await store.receive({
      id,
      channel: 'siu',
      receivedAt: Date.now(),
      raw: Buffer.from(`MSH|^~\\&|SCHED|HOSP|||20240101||SIU^S12|${id}|P|2.5\r`),
      encoding: 'UTF-8',
      keys: { controlId: id, patientId: mrn },
      orderKey: id,
      state: 'RECEIVED',
      dedupeWindowMs: 0,
      outcome: { state: 'QUEUED', canonical: {}, deliveries: [{ destination: 'erp', outputIndex: 0, payload: { mrn } }] },
    });
    return deliveries![0]!;
  }

  const attempt = (deliveryId: string, body: string, over: Partial<AttemptRecord> = {}): AttemptRecord => ({
    deliveryId,
    startedAt: Date.now(),
    durationMs: 5,
    request: { method: 'POST', url: 'http://erp.example.org/x', headers: {}, body },
    response: { status: 503, body: 'busy' },
    outcome: 'RETRY',
    nextAttemptAt: Date.now() + 60_000,
    ...over,
  });

  const get = async (path: string) => {
    const res = await fetch(`${base}${path}`);
    return { status: res.status, body: (await res.json()) as any };
  };

  it('answers the newest N attempts of each delivery with their count, and pages back with attemptsBefore', async () => {
    const d = await queued('m1', 'MRN-1');
    for (let i = 1; i <= 5; i++) await store.recordAttempts([attempt(d.id, `{"try":${i}}`)]);

    const first = await get('/api/messages/m1?attempts=2');
    expect(first.status).to.equal(200);
    const [d1] = first.body.deliveries;
    expect(d1.attemptCount).to.equal(5);
    expect(d1.attemptLog.map((a: any) => a.request.body)).to.deep.equal(['{"try":4}', '{"try":5}']);
    expect(d1.attemptsBefore).to.be.a('number');
    const second = await get(`/api/messages/m1?attempts=2&attemptsBefore=${d1.attemptsBefore}`);
    expect(second.body.deliveries[0].attemptLog.map((a: any) => a.request.body)).to.deep.equal(['{"try":2}', '{"try":3}']);
    const all = await get('/api/messages/m1');
    expect(all.body.deliveries[0].attemptLog, 'the default page holds them all').to.have.length(5);
    expect(all.body.deliveries[0].attemptsBefore).to.equal(undefined);

    for (const bad of ['attempts=0', 'attempts=100000', 'attempts=x', 'attemptsBefore=1.5']) {
      const res = await get(`/api/messages/m1?${bad}`);
      expect(res.status, bad).to.equal(400);
      expect(res.body.error.code).to.equal('OSPREY_ERR_API_BAD_REQUEST');
    }
    expect(audit.map((a) => a.messageId)).to.deep.equal(['m1', 'm1', 'm1']);
  });

  it('osprey messages --id passes --attempts and --attempts-before to the API', async () => {
    const d = await queued('m1', 'MRN-1');
    for (let i = 1; i <= 3; i++) await store.recordAttempts([attempt(d.id, `{"try":${i}}`)]);
    const run = async (...argv: string[]) => {
      let out = '';
      const write = process.stdout.write;
      process.stdout.write = ((chunk: string) => ((out += chunk), true)) as typeof process.stdout.write;
      try {
        expect(await messagesCommand(['--api', base, '--id', 'm1', ...argv])).to.equal(0);
      } finally {
        process.stdout.write = write;
      }
      return JSON.parse(out).deliveries[0];
    };
    const newest = await run('--attempts', '1');
    expect(newest.attemptLog.map((a: any) => a.request.body)).to.deep.equal(['{"try":3}']);
    const older = await run('--attempts', '1', '--attempts-before', String(newest.attemptsBefore));
    expect(older.attemptLog.map((a: any) => a.request.body)).to.deep.equal(['{"try":2}']);
  });

  it("shows an item of a batch its own element and the batch's metadata, not the batch's answer", async () => {
    const [a, b] = [await queued('ma', 'MRN-A'), await queued('mb', 'MRN-B')];
    const element = (d: StoredDelivery) => JSON.stringify({ idempotencyKey: d.id, payload: d.payload });
    const startedAt = Date.now();
    await store.recordAttempts(
      [a, b].map((d) => attempt(d.id, element(d), { startedAt, response: { status: 200 }, outcome: 'SENT', nextAttemptAt: undefined })),
      {
        id: 'batch-attempt-1',
        key: 'batch-abc',
        size: 2,
        startedAt,
        durationMs: 30,
        request: { method: 'POST', url: 'http://erp.example.org/batch', headers: {} },
        response: { status: 200, body: '[{"mrn":"MRN-A"},{"mrn":"MRN-B"}]' },
        outcome: 'SENT',
      },
    );
    const { body } = await get('/api/messages/ma');
    const [log] = body.deliveries[0].attemptLog;
    expect(log.request.body).to.equal(element(a));
    expect(log.response).to.deep.equal({ status: 200 });
    expect(log.batch).to.deep.equal({ id: 'batch-attempt-1', key: 'batch-abc', size: 2, outcome: 'SENT', status: 200, startedAt: new Date(startedAt).toISOString(), durationMs: 30 });
    expect(JSON.stringify(body)).not.to.include('MRN-B');
    expect(JSON.stringify(body)).not.to.include(b.id);

    // The whole batch, for an operator: the body as sent and the answer; the audit names every message.
    const whole = await get('/api/batches/batch-attempt-1');
    expect(whole.status).to.equal(200);
    expect(whole.body.request.body).to.equal(`[${element(a)},${element(b)}]`);
    expect(whole.body.response).to.deep.equal({ status: 200, body: '[{"mrn":"MRN-A"},{"mrn":"MRN-B"}]' });
    expect(whole.body.items).to.deep.equal([
      { messageId: 'ma', deliveryId: a.id },
      { messageId: 'mb', deliveryId: b.id },
    ]);
    expect(batchAudit).to.have.length(1);
    expect(batchAudit[0]).to.deep.include({ batchAttemptId: 'batch-attempt-1', messageIds: ['ma', 'mb'], audit: true });
    expect((await get('/api/batches/none')).status).to.equal(404);
    expect(batchAudit, 'nothing viewed, nothing audited').to.have.length(1);
  });
});
