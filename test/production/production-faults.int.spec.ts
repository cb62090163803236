// SPDX-License-Identifier: Apache-2.0
/**
 * Production mode under faults, against the REAL RabbitMQ and PostgreSQL on 127.0.0.1.
 *
 * Two engine instances run as CHILD processes (`node bin/osprey.js start --config <temp yaml>`),
 * sharing one PostgreSQL schema and one RabbitMQ prefix that belong to this run only (both removed
 * afterwards), each with its own MLLP and HTTP ports (environment). Both run the same test channel
 * (ADT, orderBy PID-3.1, one REST destination: the ERP stand-in in this process, short fixed retry
 * backoff and enough attempts to outlast an outage). Senders stream 1,500 ADT messages (50 patients
 * × 30, unique MSH-10) over four MLLP connections, two per instance, each patient on one
 * connection; they resend anything not answered AA, as real senders do, and fail over to the other
 * instance when theirs is gone. Mid-stream, one fault:
 *
 *   (a) RabbitMQ restarts (`rabbitmqctl stop_app`, a few seconds, `start_app`); both instances
 *       report not-ready (`/readyz` 503) while it is down and ready again after;
 *   (b) one instance is killed with SIGKILL; its senders fail over to the other one;
 *   (c) the ERP answers 503 for a while, then recovers;
 *   (d) PostgreSQL restarts (`pg_ctlcluster … stop -m fast`, a few seconds, `start`): ingest
 *       answers AE while the store is away (the senders resend), deliveries wait, nothing is lost.
 *
 * After each: every message was acknowledged AA in the end and is stored once, in its final state;
 * each expected idempotency key (`<message id>:erp:0`) was applied by the stand-in exactly once
 * (repeats of an applied key are allowed, counted and printed); per patient, the keys applied at
 * the stand-in follow the patient's sequence (arrivals never go back in sequence, ignoring repeats
 * of an already-applied key — the crash spec's definition); and `GET /api/channels` on every
 * running instance shows the counts the stand-in saw. Figures are printed.
 *
 * Skipped with the reason when PostgreSQL, RabbitMQ, rabbitmqctl or pg_ctlcluster (Debian's
 * postgresql-common, for the database restart) is absent; a failure instead when
 * OSPREY_REQUIRE_SERVICES=1 (CI). The broker and database restarts affect every user of those
 * services: in CI nothing else runs at the same time.
 */
import { expect } from 'chai';
import { ok, unavailable } from '../fixtures/erp-stand-in.ts';
import type { EngineProcess } from '../helpers/engine-process.ts';
import {
  activeSplit,
  allMessages,
  channelCounts,
  cleanUp,
  CHANNEL,
  DESTINATION,
  diagnostics,
  PARTITIONS,
  PATH,
  prepareCluster,
  startInstances,
  waitForStandbys,
  type Cluster,
  type Instance,
} from '../helpers/production-cluster.ts';
import { findServices, restartPostgres, restartRabbitMq, skipOrFail, type Services } from '../helpers/production-services.ts';
import { ResilientSender } from '../helpers/resilient-sender.ts';
import { adt } from '../helpers/test-channel.ts';
import { removeTempDirs } from '../helpers/test-engine.ts';
import { sleep, waitFor } from '../helpers/wait-for.ts';

const PATIENTS = 50;
const PER_PATIENT = 30;
const CONNECTIONS = 4;
/** At most this many messages in flight per connection: fewer than its patients, so a window never holds two of one patient. */
const WINDOW = 10;
/** Per connection: 4 × 30/s ≈ 120 msgs/s, so the 1,500 messages take ~12 s and the faults land mid-stream. */
const RATE_PER_CONNECTION = 30;
/** A08 is filtered by the test transform; the others become one delivery each. */
const CYCLE = ['A01', 'A08', 'A03', 'A04'] as const;

interface Generated {
  controlId: string;
  patient: number;
  seq: number;
  delivered: boolean;
  text: string;
}

const pad = (n: number, w: number): string => String(n).padStart(w, '0');

function generate(tag: string): Generated[] {
  const out: Generated[] = [];
  for (let p = 0; p < PATIENTS; p++) {
    for (let seq = 0; seq < PER_PATIENT; seq++) {
      const trigger = CYCLE[seq % CYCLE.length]!;
      const controlId = `${tag}P${pad(p, 2)}S${pad(seq, 3)}`;
      out.push({ controlId, patient: p, seq, delivered: trigger !== 'A08', text: adt({ controlId, patientId: `${tag}M${pad(p, 3)}`, trigger }) });
    }
  }
  return out;
}

/** Connection `c` carries patients p ≡ c (mod CONNECTIONS), interleaved by sequence. */
function perConnection(messages: Generated[]): Generated[][] {
  const queues: Generated[][] = Array.from({ length: CONNECTIONS }, () => []);
  for (const m of [...messages].sort((a, b) => a.seq - b.seq || a.patient - b.patient)) queues[m.patient % CONNECTIONS]!.push(m);
  return queues;
}

interface Stream {
  senders: ResilientSender[];
  messages: Generated[];
  startedAt: number;
  /** Resolves when every sender has every message acknowledged. */
  done: Promise<number>;
  ackCount: () => number;
}

/**
 * Starts the senders: connection c prefers instance c mod 2 and fails over to any running one.
 * `onProgress` sees the total of acknowledged messages after each ACK.
 */
function startStream(cluster: Cluster, tag: string, onProgress: (acked: number) => void): Stream {
  const messages = generate(tag);
  let acked = 0;
  const deadline = Date.now() + 150_000;
  const senders = perConnection(messages).map(
    (queue, c) =>
      new ResilientSender({
        name: `conn${c}`,
        messages: queue,
        window: WINDOW,
        ratePerSecond: RATE_PER_CONNECTION,
        target: () => {
          const preferred = cluster.instances[c % cluster.instances.length]!;
          if (preferred.alive) return preferred.mllpPort;
          return cluster.instances.find((i) => i.alive)?.mllpPort;
        },
        onAck: () => onProgress(++acked),
      }),
  );
  const startedAt = Date.now();
  const done = Promise.all(senders.map((s) => s.run(deadline))).then(() => Date.now());
  return { senders, messages, startedAt, done, ackCount: () => acked };
}

/**
 * When the stream ended. If it failed, the restarted service (`fault`, set mid-stream) is let come
 * back first, so the cleanup finds it up.
 */
async function streamEndAfterService(stream: Stream, fault: () => Promise<unknown> | undefined): Promise<number> {
  try {
    return await stream.done;
  } catch (err) {
    await fault()?.catch(() => undefined);
    throw err;
  }
}

interface Figures {
  messages: number;
  deliveries: number;
  framesSent: number;
  resent: number;
  rejected: string;
  reconnects: number;
  requests: number;
  duplicateArrivals: number;
  streamMs: number;
  drainMs: number;
  /** The longest time one patient waited between two of its deliveries at the stand-in. */
  longestPauseMs: number;
  /** Active partition queues per running instance once drained. */
  activeAfter: string;
}

/**
 * The checks common to every fault. `streamEnd` is when the last message was acknowledged;
 * `drainFrom` when both the stream and the fault were over: the time to drain is measured from there.
 */
async function verify(cluster: Cluster, stream: Stream, streamEnd: number, drainFrom = streamEnd): Promise<Figures> {
  const { standIn } = cluster;
  const running = cluster.instances.filter((i) => i.alive).map((i) => i.process!);
  const api = running[0]!;
  const messages = stream.messages;
  const total = messages.length;

  // 1. Every message was acknowledged AA in the end (after resends).
  const acked = new Set(stream.senders.flatMap((s) => [...s.acked]));
  expect(acked.size, 'every message acknowledged AA').to.equal(total);

  // 2. The work drains: every message final (no RECEIVED, no QUEUED), bounded.
  let counts: Record<string, number>;
  try {
    counts = await waitFor(
      async () => {
        const c = await channelCounts(api);
        const sum = Object.values(c).reduce((a, b) => a + b, 0);
        return sum >= total && !c.RECEIVED && !c.QUEUED ? c : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 250, what: `all ${total} messages of ${CHANNEL} to be final` },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${await diagnostics(cluster)}`);
  }
  const drainMs = Date.now() - drainFrom;

  // 3. Stored once each, in its final state.
  const stored = await allMessages(api);
  const byControlId = new Map<string, any[]>();
  for (const s of stored) byControlId.set(s.keys.controlId, [...(byControlId.get(s.keys.controlId) ?? []), s]);
  expect(messages.filter((m) => !byControlId.has(m.controlId)).map((m) => m.controlId), 'ACKed but not stored').to.deep.equal([]);
  expect([...byControlId].filter(([, list]) => list.length > 1).map(([id]) => id), 'stored more than once').to.deep.equal([]);
  expect(stored.length, 'stored messages').to.equal(total);
  const wrongState = messages.filter((m) => byControlId.get(m.controlId)![0].state !== (m.delivered ? 'SENT' : 'FILTERED'));
  expect(wrongState.map((m) => `${m.controlId}:${byControlId.get(m.controlId)![0].state}`), 'final states').to.deep.equal([]);

  // 4. Each expected idempotency key applied exactly once at the stand-in; nothing else applied.
  const expectedKeys = new Map<string, Generated>();
  for (const m of messages) if (m.delivered) expectedKeys.set(`${byControlId.get(m.controlId)![0].id}:${DESTINATION}:0`, m);
  const applied = standIn.appliedTo(PATH);
  const appliedKeys = applied.map((a) => a.idempotencyKey);
  expect(appliedKeys.filter((k) => !expectedKeys.has(k)), 'applied keys that were not expected').to.deep.equal([]);
  expect(new Set(appliedKeys).size, 'no key applied twice').to.equal(appliedKeys.length);
  expect(
    [...expectedKeys].filter(([k]) => !standIn.isApplied(k)).map(([, m]) => m.controlId),
    'ACKed, delivered messages whose key never reached the stand-in',
  ).to.deep.equal([]);
  expect(applied.length, 'applied = expected deliveries').to.equal(expectedKeys.size);
  for (const a of applied) {
    const m = expectedKeys.get(a.idempotencyKey)!;
    expect((a.payload as { controlId?: string }).controlId, `payload under ${a.idempotencyKey}`).to.equal(m.controlId);
  }

  // 5. Per patient, arrivals never go back in sequence, ignoring repeats of an already-applied key.
  const lastSeq = new Map<number, { seq: number; controlId: string }>();
  const outOfOrder: string[] = [];
  for (const a of standIn.arrivals) {
    if (a.path !== PATH || a.duplicate) continue;
    const m = expectedKeys.get(a.idempotencyKey)!;
    const prev = lastSeq.get(m.patient);
    if (prev && m.seq < prev.seq) outOfOrder.push(`patient ${m.patient}: ${m.controlId} applied after ${prev.controlId}`);
    lastSeq.set(m.patient, { seq: m.seq, controlId: m.controlId });
  }
  expect(outOfOrder, 'per-patient order at the stand-in').to.deep.equal([]);

  // 6. Every running instance's API shows the counts the stand-in saw.
  for (const instance of running) {
    const c = await channelCounts(instance);
    expect(c, `GET /api/channels on ${instance.baseUrl}`).to.deep.equal(counts);
  }
  expect(counts.SENT, 'SENT = messages applied at the stand-in').to.equal(applied.length);
  expect(counts.FILTERED ?? 0, 'FILTERED = the A08s').to.equal(messages.filter((m) => !m.delivered).length);
  expect(Object.keys(counts).sort(), 'no other state').to.deep.equal(['FILTERED', 'SENT']);

  const lastAt = new Map<number, number>();
  let longestPauseMs = 0;
  for (const a of applied) {
    const patient = expectedKeys.get(a.idempotencyKey)!.patient;
    const prev = lastAt.get(patient);
    if (prev !== undefined) longestPauseMs = Math.max(longestPauseMs, a.at - prev);
    lastAt.set(patient, a.at);
  }

  // Every fault here lasts seconds and ends before the stream does: the backlog must drain soon
  // after (a 98 s stall of a patient after a 6 s PostgreSQL restart went unnoticed once).
  expect(drainMs, 'drained within 30 s of the stream and the fault being over').to.be.lessThan(30_000);

  const rejected = new Map<string, number>();
  for (const s of stream.senders) for (const [code, n] of s.rejected) rejected.set(code, (rejected.get(code) ?? 0) + n);
  return {
    messages: total,
    deliveries: expectedKeys.size,
    framesSent: stream.senders.reduce((n, s) => n + s.framesSent, 0),
    resent: stream.senders.reduce((n, s) => n + s.resent, 0),
    rejected: rejected.size === 0 ? 'none' : [...rejected].map(([code, n]) => `${n} ${code}`).join(', '),
    reconnects: stream.senders.reduce((n, s) => n + s.reconnects, 0),
    requests: standIn.requestsTo(PATH).length,
    duplicateArrivals: standIn.arrivals.filter((a) => a.path === PATH && a.duplicate).length,
    streamMs: streamEnd - stream.startedAt,
    drainMs,
    longestPauseMs,
    activeAfter: await activeSplit(cluster),
  };
}

function report(label: string, f: Figures, extra: string): void {
  console.log(
    `      [production ${label}] ${f.messages} messages (${f.framesSent} frames, ${f.resent} resent, ${f.reconnects} reconnects, rejected: ${f.rejected}), ` +
      `${f.deliveries} deliveries applied once each (${f.requests} requests, ${f.duplicateArrivals} duplicate arrivals of applied keys), ` +
      `stream ${(f.streamMs / 1000).toFixed(1)} s, drained ${(f.drainMs / 1000).toFixed(1)} s after the stream and the fault were over, longest pause of a patient at the ERP ${(f.longestPauseMs / 1000).toFixed(1)} s, active partitions after: ${f.activeAfter}; ${extra}`,
  );
}

async function readyStatus(i: Instance): Promise<number> {
  try {
    return (await fetch(`http://127.0.0.1:${i.httpPort}/readyz`, { signal: AbortSignal.timeout(2000) })).status;
  } catch {
    return 0;
  }
}

describe('production mode under faults (two engine instances, real RabbitMQ and PostgreSQL)', function () {
  this.timeout(300_000);
  let services: Services;
  let cluster: Cluster | undefined;

  before(async function () {
    this.timeout(60_000);
    const found = await findServices({ rabbitmqctl: true, pgCtlCluster: true });
    if ('reason' in found) skipOrFail(this, found.reason);
    services = found as Services;
  });

  afterEach(async function () {
    this.timeout(120_000);
    const c = cluster;
    cluster = undefined;
    if (c) await cleanUp(c);
  });

  after(() => {
    removeTempDirs();
  });

  async function setUp(label: string, bus: { deliveryLimit?: number } = {}): Promise<Cluster> {
    cluster = await prepareCluster(services, label, undefined, undefined, bus);
    const started = Date.now();
    await startInstances(cluster);
    const ready = Date.now();
    const spread = await waitForStandbys(cluster);
    console.log(`      [production ${label}] two instances ready in ${((ready - started) / 1000).toFixed(1)} s; every partition with a standby ${((Date.now() - ready) / 1000).toFixed(1)} s later (active of ${2 * PARTITIONS}: ${spread})`);
    return cluster;
  }

  it('(a) RabbitMQ restarts mid-stream: /readyz 503 while it is down, nothing ACKed is lost, each key applied once, per-patient order', async function () {
    const c = await setUp('rabbit');
    let fault: Promise<{ stoppedAt: number; startedAt: number; upAt: number }> | undefined;
    let ackedAtStop = 0;
    let ackedAtStart = 0;
    let readyAgainAt = 0;
    const notReady = new Map<string, number>();
    let notReadyAfter = 0;
    const stream = startStream(c, 'RB', (n) => {
      if (fault || n < 300) return;
      fault = restartRabbitMq(5000, async () => {
        const stoppedAt = Date.now();
        ackedAtStop = stream.ackCount();
        // While the broker is down every instance says it is not ready (the bus is disconnected).
        await Promise.all(
          c.instances.map(async (i) => {
            const status = await waitFor(async () => ((await readyStatus(i)) === 503 ? 503 : undefined), { timeoutMs: 15_000, intervalMs: 100, what: `instance ${i.name} /readyz to answer 503` });
            notReady.set(i.name, status);
            notReadyAfter = Math.max(notReadyAfter, Date.now() - stoppedAt);
          }),
        );
      }).then(async (times) => {
        ackedAtStart = stream.ackCount();
        await Promise.all(
          c.instances.map((i) => waitFor(async () => (await readyStatus(i)) === 200, { timeoutMs: 60_000, intervalMs: 100, what: `instance ${i.name} /readyz to answer 200 again` })),
        );
        readyAgainAt = Date.now();
        return times;
      });
      fault.catch(() => undefined); // awaited below; the broker is started again in any case
    });
    const streamEnd = await streamEndAfterService(stream, () => fault);
    expect(fault, 'the broker was restarted mid-stream').to.exist;
    const times = await fault!;
    expect(Object.fromEntries(notReady), '/readyz while RabbitMQ is down').to.deep.equal({ A: 503, B: 503 });
    if (ackedAtStop < stream.messages.length) {
      // The store is the buffer: senders are still acknowledged while the broker is away.
      expect(ackedAtStart, 'messages ACKed while RabbitMQ was down').to.be.greaterThan(ackedAtStop);
    }
    const figures = await verify(c, stream, streamEnd, Math.max(streamEnd, readyAgainAt));
    report(
      'a: RabbitMQ restart',
      figures,
      `broker down ${((times.upAt - times.stoppedAt) / 1000).toFixed(1)} s (stop_app → AMQP back), both /readyz 503 within ${(notReadyAfter / 1000).toFixed(1)} s of stop_app returning, ${ackedAtStart - ackedAtStop} messages ACKed meanwhile, ` +
        `both /readyz 200 ${((readyAgainAt - times.upAt) / 1000).toFixed(1)} s after the broker was back`,
    );
  });

  it('(b) one of two instances is killed with SIGKILL mid-stream: its senders fail over, nothing ACKed is lost, each key applied once, per-patient order', async function () {
    const c = await setUp('kill');
    const [a, b] = c.instances as [Instance, Instance];
    let killed: Promise<void> | undefined;
    let ackedAtKill = 0;
    const stream = startStream(c, 'KL', (n) => {
      if (killed || n < 500) return;
      ackedAtKill = n;
      a.alive = false; // senders fail over from now on
      killed = a.process!.kill9();
    });
    const streamEnd = await stream.done;
    expect(killed, 'instance A was killed mid-stream').to.exist;
    await killed;
    expect((await a.process!.exited).signal).to.equal('SIGKILL');
    expect(ackedAtKill, 'killed before the stream ended').to.be.lessThan(stream.messages.length);
    const failedOver = stream.senders.filter((s) => s.ports.includes(a.mllpPort) && s.ports.at(-1) === b.mllpPort).length;
    expect(failedOver, 'senders of A failed over to B').to.equal(CONNECTIONS / 2);
    const figures = await verify(c, stream, streamEnd);
    report('b: kill -9 of one instance', figures, `killed after ${ackedAtKill} ACKs`);
  });

  it('(c) the ERP answers 503 for a while: deliveries wait and resume, each key applied once, per-patient order', async function () {
    const c = await setUp('erp503');
    let outage: Promise<void> | undefined;
    let outageMs = 0;
    const stream = startStream(c, 'EO', (n) => {
      if (outage || n < 300) return;
      const started = Date.now();
      c.standIn.setDefault(unavailable);
      outage = sleep(6000).then(() => {
        c.standIn.setDefault(ok);
        outageMs = Date.now() - started;
      });
    });
    const streamEnd = await stream.done;
    expect(outage, 'the ERP outage started mid-stream').to.exist;
    await outage;
    const answered503 = c.standIn.requestsTo(PATH).filter((r) => r.status === 503).length;
    expect(answered503, 'requests answered 503 during the outage').to.be.greaterThan(0);
    const figures = await verify(c, stream, streamEnd, Math.max(streamEnd, Date.now()));
    report('c: ERP 503 outage', figures, `ERP answered 503 for ${(outageMs / 1000).toFixed(1)} s (${answered503} requests), no dead letters`);
  });

  it('(e) the ERP is down while RabbitMQ restarts: retrying deliveries are let go with their channels and resume after the reconnect, each key applied once, per-patient order', async function () {
    const c = await setUp('erpbroker');
    let fault: Promise<{ stoppedAt: number; startedAt: number; upAt: number }> | undefined;
    let erpDownAt = 0;
    let erpBackAt = 0;
    const stream = startStream(c, 'EB', (n) => {
      if (fault || n < 300) return;
      c.standIn.setDefault(unavailable);
      erpDownAt = Date.now();
      // The deliveries are retrying (200 ms apart) when the broker goes; the ERP stays down a
      // little after it is back, so redelivered items meet a 503 first.
      fault = sleep(1000)
        .then(() => restartRabbitMq(5000))
        .then(async (times) => {
          await sleep(2000);
          c.standIn.setDefault(ok);
          erpBackAt = Date.now();
          return times;
        });
      fault.catch(() => c.standIn.setDefault(ok)); // awaited below; the broker is started again in any case
    });
    const streamEnd = await streamEndAfterService(stream, () => fault);
    expect(fault, 'the fault happened mid-stream').to.exist;
    const times = await fault!;
    const answered503 = c.standIn.requestsTo(PATH).filter((r) => r.status === 503).length;
    expect(answered503, 'requests answered 503 during the outage').to.be.greaterThan(0);
    const figures = await verify(c, stream, streamEnd, Math.max(streamEnd, erpBackAt));
    report(
      'e: ERP outage across a RabbitMQ restart',
      figures,
      `ERP answered 503 for ${((erpBackAt - erpDownAt) / 1000).toFixed(1)} s (${answered503} requests), broker down ${((times.upAt - times.stoppedAt) / 1000).toFixed(1)} s, no dead letters`,
    );
  });

  it('(d) PostgreSQL restarts mid-stream: senders get AE and resend, nothing ACKed is lost, each key applied once, per-patient order', async function () {
    // A delivery limit of 3: the handlers' failures while the store is away must not count (0a88870);
    // counted, the outage's ~6 retries would dead-letter them, and the check of the final states fails.
    const c = await setUp('pgrestart', { deliveryLimit: 3 });
    let fault: Promise<{ stoppedAt: number; upAt: number }> | undefined;
    let ackedAtStop = 0;
    const stream = startStream(c, 'PG', (n) => {
      if (fault || n < 300) return;
      ackedAtStop = n;
      fault = restartPostgres(services.databaseUrl, 4000);
      fault.catch(() => undefined); // awaited below; the database is started again in any case
    });
    const streamEnd = await streamEndAfterService(stream, () => fault);
    expect(fault, 'PostgreSQL was restarted mid-stream').to.exist;
    const times = await fault!;
    const refused = stream.senders.reduce((n, s) => n + (s.rejected.get('AE') ?? 0), 0);
    const figures = await verify(c, stream, streamEnd, Math.max(streamEnd, times.upAt));
    report('d: PostgreSQL restart', figures, `database down ${((times.upAt - times.stoppedAt) / 1000).toFixed(1)} s after ${ackedAtStop} ACKs, ${refused} messages answered AE meanwhile (resent)`);
  });
});
