// SPDX-License-Identifier: Apache-2.0
/**
 * Delivery when the receiver misbehaves: transient errors retried under the same Idempotency-Key,
 * Retry-After honoured, a receiver that never answers, a permanent refusal dead-lettered and then
 * replayed, and per-key order while one key is retrying. The receiver is a real HTTP server
 * (test/fixtures/erp-stand-in.ts); the engine's channels are small test channels with fixed 50 ms
 * backoff and a 300 ms timeout, so faults play out quickly. Timing is asserted only on the attempt
 * timestamps the store recorded, never on wall-clock speed.
 */
import { expect } from 'chai';
import { badRequest, ErpStandIn, hang, ok, serverError, tooManyRequests, unavailable, type ReceivedRequest } from '../fixtures/erp-stand-in.ts';
import { frame, parseAck, RawMllpClient, sendOne } from '../helpers/mllp-raw-client.ts';
import { adt, channelsDir, testChannelYaml } from '../helpers/test-channel.ts';
import { removeTempDirs, TestEngine } from '../helpers/test-engine.ts';
import { waitFor } from '../helpers/wait-for.ts';

const FAULTS = 'faults';
const ORDERED = 'ordered';
const FAULTS_PATH = '/erp/faults';
const ORDERED_PATH = '/erp/ordered';
const TWO = 'two-destinations';
const TWO_ERP = '/erp/two';
const TWO_RCM = '/rcm/two';
const BATCHED = 'batched';
const BATCHED_PATH = '/erp/batch';
const LIMITED = ['limited-a', 'limited-b'] as const;
const LIMITED_PATH = '/erp/limited';
/** A named limit shared by both LIMITED channels, as channels share the ERP's. */
const RATE = { perSecond: 10, burst: 2 };
const LOAD = 'load';
const LOAD_PATH = '/erp/load';
const SLOW = 'slow-retry';
const SLOW_PATH = '/erp/slow';

describe('delivery faults', function () {
  this.timeout(30_000);

  let standIn: ErpStandIn;
  let osprey: TestEngine;
  let n = 0;
  const nextId = (tag: string): string => `DF-${tag}-${++n}`;

  /** Sends one ADT message to a channel, expects AA, returns the stored message id. */
  async function send(channel: string, controlId: string, patientId: string, trigger = 'A01'): Promise<string> {
    const ack = parseAck(await sendOne(osprey.port(channel), adt({ controlId, patientId, trigger })));
    expect(ack.code, ack.text).to.equal('AA');
    const [m] = await osprey.byControlId(controlId, channel);
    return m.id as string;
  }

  const requestsFor = (controlId: string, path: string): ReceivedRequest[] =>
    standIn.requestsTo(path).filter((r) => (r.body as { controlId?: string } | undefined)?.controlId === controlId);

  before(async function () {
    standIn = await ErpStandIn.start();
    const dir = channelsDir({
      [`${FAULTS}.channel.yaml`]: testChannelYaml({
        name: FAULTS,
        destinations: [{ name: 'erp', url: `${standIn.url}${FAULTS_PATH}`, maxAttempts: 4, backoff: '50ms', timeout: '300ms' }],
      }),
      // Enough attempts to stay QUEUED (retrying) for as long as the ordering test holds the key.
      [`${ORDERED}.channel.yaml`]: testChannelYaml({
        name: ORDERED,
        destinations: [{ name: 'erp', url: `${standIn.url}${ORDERED_PATH}`, maxAttempts: 200, backoff: '50ms', timeout: '300ms' }],
      }),
      [`${TWO}.channel.yaml`]: testChannelYaml({
        name: TWO,
        destinations: [
          { name: 'erp', url: `${standIn.url}${TWO_ERP}`, maxAttempts: 200, backoff: '50ms' },
          { name: 'rcm', url: `${standIn.url}${TWO_RCM}`, maxAttempts: 200, backoff: '50ms' },
        ],
      }),
      // One attempt only: any attempt recorded as failed dead-letters the delivery at once. The test
      // holds the receiver's answers across the start of a restart: no timeout may cut that short.
      [`${LOAD}.channel.yaml`]: testChannelYaml({
        name: LOAD,
        destinations: [{ name: 'erp', url: `${standIn.url}${LOAD_PATH}`, maxAttempts: 1, timeout: '60s' }],
      }),
      // A retry far enough away that a restart happens while the delivery waits for it.
      [`${SLOW}.channel.yaml`]: testChannelYaml({
        name: SLOW,
        destinations: [{ name: 'erp', url: `${standIn.url}${SLOW_PATH}`, maxAttempts: 5, backoff: '1500ms' }],
      }),
      ...Object.fromEntries(
        LIMITED.map((name) => [
          `${name}.channel.yaml`,
          testChannelYaml({ name, destinations: [{ name: 'erp', url: `${standIn.url}${LIMITED_PATH}`, rateLimit: 'test-erp' }] }),
        ]),
      ),
      [`${BATCHED}.channel.yaml`]: testChannelYaml({
        name: BATCHED,
        destinations: [{ name: 'erp', url: `${standIn.url}${BATCHED_PATH}`, maxAttempts: 4, backoff: '50ms', batch: { maxItems: 3, maxWait: '10s' } }],
      }),
    });
    osprey = await TestEngine.start({
      channelsDir: dir,
      rateLimits: { 'erp-api': { perSecond: 200, burst: 200 }, 'rcm-api': { perSecond: 200, burst: 200 }, 'test-erp': RATE },
    });
  });

  afterEach(function () {
    standIn.resetProgramming();
  });

  after(async function () {
    await osprey?.stop();
    await standIn?.close();
    removeTempDirs();
  });

  describe('500, 500, then 200', function () {
    it('is SENT after 3 attempts, each stored with its response, all under the same Idempotency-Key', async function () {
      standIn.program(FAULTS_PATH, serverError, serverError, ok);
      const controlId = nextId('500');
      const id = await send(FAULTS, controlId, 'P-500');
      const m = await osprey.waitForState(id, 'SENT');

      const [d] = m.deliveries;
      expect(d.state).to.equal('SENT');
      expect(d.attempts).to.equal(3);
      expect(d.attemptLog.map((a: any) => a.outcome)).to.deep.equal(['RETRY', 'RETRY', 'SENT']);
      expect(d.attemptLog.map((a: any) => a.response?.status)).to.deep.equal([500, 500, 200]);
      expect(d.attemptLog[0].error.code).to.equal('OSPREY_ERR_DELIVERY_HTTP_TRANSIENT');
      expect(JSON.parse(d.attemptLog[0].response.body)).to.deep.equal({ error: 'internal error (stand-in)' });
      for (const a of d.attemptLog.slice(0, 2)) expect(Date.parse(a.nextAttemptAt)).to.be.greaterThan(Date.parse(a.startedAt));
      const keysSent = d.attemptLog.map((a: any) => a.request.headers['Idempotency-Key']);
      expect(keysSent).to.deep.equal([d.id, d.id, d.id]);

      const received = requestsFor(controlId, FAULTS_PATH);
      expect(received.map((r) => r.status)).to.deep.equal([500, 500, 200]);
      expect(new Set(received.map((r) => r.idempotencyKey))).to.deep.equal(new Set([d.id]));
      expect(standIn.applied.filter((a) => a.idempotencyKey === d.id), 'applied once').to.have.lengthOf(1);
      expect(m.events.filter((e: any) => e.event === 'ATTEMPT')).to.have.lengthOf(3);
    });
  });

  describe('429 with Retry-After: 1', function () {
    it('waits at least the Retry-After before the next attempt (by the stored attempt times)', async function () {
      standIn.program(FAULTS_PATH, tooManyRequests('1'), ok);
      const id = await send(FAULTS, nextId('429'), 'P-429');
      const m = await osprey.waitForState(id, 'SENT');
      const log = m.deliveries[0].attemptLog;
      expect(log.map((a: any) => a.response?.status)).to.deep.equal([429, 200]);
      const first = Date.parse(log[0].startedAt);
      const second = Date.parse(log[1].startedAt);
      // The backoff alone is 50 ms: only Retry-After explains a gap of a second.
      expect(second - first, 'gap between attempt starts').to.be.at.least(900);
      expect(second - (first + log[0].durationMs), 'gap after the 429 answer').to.be.at.least(900);
      expect(Date.parse(log[0].nextAttemptAt) - first).to.be.at.least(900);
    });
  });

  describe('a receiver that never answers, then recovers', function () {
    it('records timeout attempts and is SENT once the receiver answers, under one key', async function () {
      standIn.program(FAULTS_PATH, hang, hang, ok);
      const controlId = nextId('HANG');
      const id = await send(FAULTS, controlId, 'P-HANG');
      const m = await osprey.waitForState(id, 'SENT');
      const [d] = m.deliveries;
      expect(d.attemptLog.map((a: any) => a.outcome)).to.deep.equal(['RETRY', 'RETRY', 'SENT']);
      for (const a of d.attemptLog.slice(0, 2)) {
        expect(a.error.code).to.equal('OSPREY_ERR_DELIVERY_TIMEOUT');
        expect(a.response).to.equal(undefined);
      }
      expect(d.attemptLog[2].response.status).to.equal(200);
      const received = requestsFor(controlId, FAULTS_PATH);
      expect(received).to.have.lengthOf(3);
      expect(new Set(received.map((r) => r.idempotencyKey))).to.deep.equal(new Set([d.id]));
      expect(received.map((r) => r.status), 'the first two were never answered').to.deep.equal([undefined, undefined, 200]);
    });

    it('dead-letters after maxAttempts when it never recovers (OSPREY_ERR_DELIVERY_EXHAUSTED)', async function () {
      standIn.program(FAULTS_PATH, unavailable, unavailable, hang, unavailable);
      const id = await send(FAULTS, nextId('EXHAUST'), 'P-EXHAUST');
      const m = await osprey.waitForState(id, 'DEAD_LETTERED');
      const [d] = m.deliveries;
      expect(d.state).to.equal('DEAD_LETTERED');
      expect(d.attempts).to.equal(4);
      expect(d.attemptLog.map((a: any) => a.outcome)).to.deep.equal(['RETRY', 'RETRY', 'RETRY', 'DEAD_LETTERED']);
      expect(d.lastError.code).to.equal('OSPREY_ERR_DELIVERY_EXHAUSTED');
    });
  });

  describe('400 (a permanent refusal), then replay', function () {
    it('is DEAD_LETTERED after 1 attempt, and SENT after POST /api/messages/:id/replay with the receiver fixed', async function () {
      standIn.setDefault(FAULTS_PATH, badRequest);
      const controlId = nextId('400');
      const id = await send(FAULTS, controlId, 'P-400');
      const dead = await osprey.waitForState(id, 'DEAD_LETTERED');
      const [d] = dead.deliveries;
      expect(d.state).to.equal('DEAD_LETTERED');
      expect(d.attempts).to.equal(1);
      expect(d.lastError.code).to.equal('OSPREY_ERR_DELIVERY_HTTP_PERMANENT');
      expect(d.attemptLog).to.have.lengthOf(1);
      expect(d.attemptLog[0].response.status).to.equal(400);
      expect(requestsFor(controlId, FAULTS_PATH)).to.have.lengthOf(1);
      const dlq = await osprey.get(`/api/messages?channel=${FAULTS}&state=DEAD_LETTERED`);
      expect(dlq.body.messages.map((x: any) => x.id)).to.include(id);

      standIn.setDefault(FAULTS_PATH, ok);
      const replay = await osprey.post(`/api/messages/${id}/replay`);
      expect(replay.status).to.equal(202);
      expect(replay.body).to.deep.include({ id, replayed: 'deliveries', deliveries: [d.id] });

      const m = await osprey.waitForState(id, 'SENT');
      const after = m.deliveries[0];
      expect(after.id, 'same delivery, same key').to.equal(d.id);
      expect(after.state).to.equal('SENT');
      expect(after.attemptLog.map((a: any) => a.response?.status), 'the refused attempt is kept').to.deep.equal([400, 200]);
      expect(m.events.map((e: any) => e.event)).to.include('REPLAYED');
      const received = requestsFor(controlId, FAULTS_PATH);
      expect(received.map((r) => r.status)).to.deep.equal([400, 200]);
      expect(new Set(received.map((r) => r.idempotencyKey))).to.deep.equal(new Set([d.id]));

      const again = await osprey.post(`/api/messages/${id}/replay`);
      expect(again.status, 'nothing left to replay').to.equal(409);
    });
  });

  describe('per-key order while a key is retrying', function () {
    it('delivers patient B meanwhile, and patient A’s second message only after A’s first', async function () {
      const a1 = nextId('A1');
      const a2 = nextId('A2');
      const b1 = nextId('B1');
      let holdA1 = true;
      standIn.setRule((r) => ((r.body as { controlId?: string } | undefined)?.controlId === a1 && holdA1 ? unavailable : undefined));

      const a1Id = await send(ORDERED, a1, 'P-A');
      await waitFor(() => requestsFor(a1, ORDERED_PATH).length >= 2, { what: 'A1 to be retrying' });
      const a2Id = await send(ORDERED, a2, 'P-A', 'A03');
      const b1Id = await send(ORDERED, b1, 'P-B');

      // B is not held back by A's retries.
      await osprey.waitForState(b1Id, 'SENT');
      const a1Meanwhile = await osprey.message(a1Id);
      expect(a1Meanwhile.state, 'A1 still retrying when B1 is sent').to.equal('QUEUED');
      expect(a1Meanwhile.deliveries[0].attempts).to.be.at.least(2);
      expect(requestsFor(a2, ORDERED_PATH), 'A2 waits behind A1').to.deep.equal([]);
      const a2Meanwhile = await osprey.waitForState(a2Id, 'QUEUED');
      expect(a2Meanwhile.deliveries[0].attempts).to.equal(0);

      holdA1 = false;
      await osprey.waitForState(a1Id, 'SENT');
      await osprey.waitForState(a2Id, 'SENT');

      const applied = standIn.appliedTo(ORDERED_PATH).map((x) => (x.payload as { controlId: string }).controlId);
      const pos = (c: string): number => applied.indexOf(c);
      expect(pos(b1), 'B1 before A1').to.be.lessThan(pos(a1));
      expect(pos(a1), 'A1 before A2').to.be.lessThan(pos(a2));
      const a1Applied = standIn.requestsTo(ORDERED_PATH).find((r) => r.status === 200 && (r.body as any)?.controlId === a1)!;
      for (const r of requestsFor(a2, ORDERED_PATH)) expect(r.n, 'no A2 request before A1 succeeded').to.be.greaterThan(a1Applied.n);
    });
  });

  describe('one destination down', function () {
    it('holds back only its own queue: the other destination of the same message is delivered meanwhile', async function () {
      let erpDown = true;
      standIn.setRule((r) => (r.path === TWO_ERP && erpDown ? unavailable : undefined));
      const controlId = nextId('TWO');
      const id = await send(TWO, controlId, 'P-TWO');
      await waitFor(() => standIn.appliedTo(TWO_RCM).some((a) => (a.payload as any).controlId === controlId), { what: 'the RCM delivery' });
      await waitFor(() => requestsFor(controlId, TWO_ERP).length >= 2, { what: 'the ERP delivery to be retrying' });
      const meanwhile = await osprey.message(id);
      expect(meanwhile.state, 'the message waits for its last destination').to.equal('QUEUED');
      const byDest = new Map<string, any>(meanwhile.deliveries.map((d: any) => [d.destination, d]));
      expect(byDest.get('rcm').state).to.equal('SENT');
      expect(byDest.get('erp').state).to.equal('QUEUED');
      expect(byDest.get('erp').lastError.code).to.equal('OSPREY_ERR_DELIVERY_HTTP_TRANSIENT');

      erpDown = false;
      const m = await osprey.waitForState(id, 'SENT');
      expect(m.deliveries.map((d: any) => d.state)).to.deep.equal(['SENT', 'SENT']);
      expect(standIn.appliedTo(TWO_RCM).filter((a) => (a.payload as any).controlId === controlId), 'RCM applied once').to.have.lengthOf(1);
    });
  });

  describe('a batched destination answering 500 then 200', function () {
    it('retries the same batch (same members, same batch key, each item its own key) and SENDs every member', async function () {
      standIn.program(BATCHED_PATH, serverError, ok);
      const ids = [nextId('BATCH'), nextId('BATCH'), nextId('BATCH')];
      const messageIds: string[] = [];
      for (const [i, controlId] of ids.entries()) messageIds.push(await send(BATCHED, controlId, `P-BATCH-${i}`));
      for (const id of messageIds) await osprey.waitForState(id, 'SENT');

      const requests = standIn.requestsTo(BATCHED_PATH);
      expect(requests.map((r) => r.status)).to.deep.equal([500, 200]);
      expect(requests[0]!.idempotencyKey).to.match(/^batch-[0-9a-f]{64}$/);
      expect(requests[1]!.idempotencyKey, 'the retried batch keeps its key').to.equal(requests[0]!.idempotencyKey);
      expect(requests[1]!.body, 'and its members').to.deep.equal(requests[0]!.body);
      const itemKeys = (requests[1]!.body as Array<{ idempotencyKey: string; payload: { controlId: string } }>).map((i) => i.idempotencyKey);
      const deliveryIds: string[] = [];
      const batchAttempts = new Set<string>();
      for (const id of messageIds) {
        const m = await osprey.message(id);
        const log = m.deliveries[0].attemptLog;
        expect(log.map((a: any) => a.outcome)).to.deep.equal(['RETRY', 'SENT']);
        // Its own element of the batch, the answer's status, the batch's metadata: nothing of the others.
        for (const a of log) {
          expect(JSON.parse(a.request.body).idempotencyKey).to.equal(m.deliveries[0].id);
          expect(a.response).to.deep.equal({ status: a.outcome === 'SENT' ? 200 : 500 });
          expect(a.batch).to.deep.include({ key: requests[0]!.idempotencyKey, size: 3, outcome: a.outcome });
          batchAttempts.add(a.batch.id);
        }
        deliveryIds.push(m.deliveries[0].id);
      }
      expect(batchAttempts.size, 'one record per batch attempt, shared by its items').to.equal(2);
      expect(itemKeys).to.have.members(deliveryIds);
      expect(standIn.payloadsAt(BATCHED_PATH).map((p: any) => p.controlId)).to.have.members(ids);
    });
  });

  describe('a delivery waiting for its retry across a clean restart', function () {
    it('resumes after the restart, not before its stored nextAttemptAt, under the same key', async function () {
      let down = true;
      standIn.setRule((r) => (r.path === SLOW_PATH && down ? unavailable : undefined));
      const controlId = nextId('RESTART');
      const id = await send(SLOW, controlId, 'P-RESTART');
      const waiting = await waitFor(async () => {
        const m = await osprey.message(id);
        return m.deliveries[0]?.attempts === 1 ? m : undefined;
      }, { what: 'the first failed attempt' });
      const nextAt = Date.parse(waiting.deliveries[0].nextAttemptAt);
      expect(waiting.state).to.equal('QUEUED');

      // The receiver comes back while no engine runs: the new one may retry as soon as it starts
      // (its retry is due if the restart took longer than the backoff), before restart() returns.
      await osprey.restart(() => {
        down = false;
      });
      const m = await osprey.waitForState(id, 'SENT');
      const [d] = m.deliveries;
      expect(d.id).to.equal(waiting.deliveries[0].id);
      expect(d.attemptLog.map((a: any) => a.outcome)).to.deep.equal(['RETRY', 'SENT']);
      expect(Date.parse(d.attemptLog[1].startedAt), 'the retry waited for its time').to.be.at.least(nextAt);
      const received = requestsFor(controlId, SLOW_PATH);
      expect(received.map((r) => r.status)).to.deep.equal([503, 200]);
      expect(new Set(received.map((r) => r.idempotencyKey))).to.deep.equal(new Set([d.id]));
    });
  });

  describe('a clean restart under load', function () {
    it('records no attempt for work it did not send: every delivery is SENT on its one allowed attempt', async function () {
      const total = 300;
      const ids = Array.from({ length: total }, () => nextId('LOAD'));
      // The receiver answers 20 requests, then holds its answers (up to one request per patient
      // key in flight) until the restart is under way: the restart comes while deliveries are
      // still to do, however fast the receiver or slow the machine.
      let answer: () => void = () => {};
      const held = new Promise<void>((resolve) => (answer = resolve));
      standIn.setRule((r) => (r.path === LOAD_PATH && standIn.requestsTo(LOAD_PATH).length > 20 ? { status: 200, until: held } : undefined));
      const client = await RawMllpClient.connect(osprey.port(LOAD));
      try {
        await client.write(Buffer.concat(ids.map((id, i) => frame(adt({ controlId: id, patientId: `P-LOAD-${i % 30}` })))));
        const acks = (await client.waitForAcks(total, 20_000)).map(parseAck);
        expect(acks.every((a) => a.code === 'AA')).to.equal(true);
      } finally {
        client.close();
      }
      await waitFor(() => standIn.requestsTo(LOAD_PATH).length > 20, { what: 'deliveries under way, answers held' });
      let appliedAtRestart = 0;
      const restarted = osprey.restart(() => {
        appliedAtRestart = standIn.appliedTo(LOAD_PATH).length;
      });
      // The channel stops its listener, then (in the same turn) its delivery worker: from then on
      // no request starts, and the clean stop waits for those in flight, so they are answered now.
      await waitFor(() => osprey.engine.channel(LOAD)?.sourceAddress === undefined, { intervalMs: 5, what: `channel ${LOAD} to stop` });
      answer();
      await restarted;
      expect(appliedAtRestart, 'the restart came while deliveries were still to do').to.be.lessThan(total);

      const counts = await waitFor(async () => {
        const res = await osprey.get('/api/channels');
        const c = res.body.channels.find((x: any) => x.name === LOAD).counts as Record<string, number>;
        return !c.RECEIVED && !c.QUEUED && Object.values(c).reduce((a, b) => a + b, 0) === total ? c : undefined;
      }, { timeoutMs: 30_000, what: `all ${total} messages final` });
      expect(counts, `after a restart with ${appliedAtRestart} of ${total} delivered`).to.deep.equal({ SENT: total });
      const dead = await osprey.get(`/api/messages?channel=${LOAD}&state=DEAD_LETTERED`);
      expect(dead.body.messages).to.deep.equal([]);
      expect(standIn.requestsTo(LOAD_PATH).every((r) => r.status === 200)).to.equal(true);
      expect(standIn.appliedTo(LOAD_PATH).map((a) => (a.payload as any).controlId)).to.have.members(ids);
      for (const id of ids.filter((_, i) => i % 25 === 0)) {
        const [m] = await osprey.byControlId(id, LOAD);
        const detail = await osprey.message(m.id);
        expect(detail.deliveries[0].attemptLog.map((a: any) => a.outcome), id).to.deep.equal(['SENT']);
      }
    });
  });

  describe('a rate limit shared by two channels', function () {
    it('keeps the requests the receiver sees within burst + perSecond × t, over both channels together (by arrival times)', async function () {
      const perChannel = 10;
      const ids: string[] = [];
      await Promise.all(
        LIMITED.map(async (channel, c) => {
          const client = await RawMllpClient.connect(osprey.port(channel));
          try {
            const mine = Array.from({ length: perChannel }, () => nextId(`RATE${c}`));
            ids.push(...mine);
            await client.write(Buffer.concat(mine.map((id, i) => frame(adt({ controlId: id, patientId: `P-RATE-${c}-${i}` })))));
            expect((await client.waitForAcks(perChannel)).map((a) => parseAck(a).code)).to.deep.equal(Array(perChannel).fill('AA'));
          } finally {
            client.close();
          }
        }),
      );
      const total = perChannel * LIMITED.length;
      await waitFor(() => standIn.appliedTo(LIMITED_PATH).length >= total, { timeoutMs: 15_000, what: `${total} rate-limited deliveries` });
      expect(standIn.payloadsAt(LIMITED_PATH).map((p: any) => p.controlId)).to.have.members(ids);
      // Lower bounds only: a slow machine can only spread the arrivals further apart. The 100 ms
      // slack covers requests overtaking each other on separate keep-alive connections.
      const at = standIn.requestsTo(LIMITED_PATH).map((r) => r.at).sort((a, b) => a - b);
      for (let i = 0; i < at.length; i++) {
        for (let j = i + RATE.burst; j < at.length; j++) {
          const minimum = ((j - i + 1 - RATE.burst) / RATE.perSecond) * 1000 - 100;
          expect(at[j]! - at[i]!, `requests ${i + 1}..${j + 1}`).to.be.at.least(minimum);
        }
      }
    });
  });
});
