// SPDX-License-Identifier: Apache-2.0
/**
 * Nothing acknowledged is lost on a kill -9, and nothing is done twice in effect.
 *
 * The engine runs as a CHILD process (`node bin/osprey.js start --config <temp yaml>`: SQLite in a
 * temp dir, local bus, the real sample channels and lookups, sandbox off), delivering to a real HTTP
 * stand-in in this process. A sender streams generated ADT messages over 4 MLLP connections, the
 * engine is killed with SIGKILL, started again on the same data dir, and the sender resends every
 * message it has no ACK for — as a real sender does, reconnecting as soon as the port accepts
 * (possibly before the restarted engine has finished recovering). Then everything is counted.
 *
 * What "order" means here. Each generated message carries its patient's sequence number in its
 * control id (K<run>P<patient>S<seq>); the stand-in maps every payload back to its message through
 * `sourceEventId` (the canonical event id, derived from MSH-3/MSH-4/MSH-10). Per patient and per
 * destination, the sequence numbers of ALL arrivals at the stand-in, in arrival order, must never
 * decrease. A resend of an idempotency key that was already applied (the engine died before it
 * recorded the answer) is allowed — the stand-in de-duplicates it — but only before any later
 * message of that patient has arrived at that destination: a late duplicate of an old key after a
 * newer event would mean per-key order was broken after the restart.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { deterministicId } from '../../engine/transform-sdk/index.ts';
import { Hl7Message } from '../../engine/message-formats/hl7v2/index.ts';
import { ENCOUNTER_EVENT } from '../../transforms/canonical-events/encounter-event.ts';
import { ErpStandIn, ok, type Arrival } from '../fixtures/erp-stand-in.ts';
import { embeddedEngineConfigYaml, EngineProcess, freePort } from '../helpers/engine-process.ts';
import { parseAck, RawMllpClient } from '../helpers/mllp-raw-client.ts';
import { destinationTargets, sampleCases } from '../helpers/samples.ts';
import { makeTempDir, REPO_ROOT, removeTempDirs } from '../helpers/test-engine.ts';
import { sleep, waitFor } from '../helpers/wait-for.ts';

const CHANNEL = 'adt-to-rcm-erp';
const CONNECTIONS = 4;
const PATIENTS = 50;
/** Triggers cycled per patient: every one has a hand-checked golden output (and A08 is filtered). */
const CYCLE = ['A01', 'A08', 'A03', 'A13', 'A11'] as const;
const TEMPLATE: Record<(typeof CYCLE)[number], string> = {
  A01: 'adt-a01-admit-inpatient',
  A08: 'adt-a08-update-inpatient',
  A03: 'adt-a03-discharge-inpatient',
  A13: 'adt-a13-cancel-discharge',
  A11: 'adt-a11-cancel-admit',
};
const PREFIX: Record<string, string> = { RCM_URL: '/rcm', ERP_URL: '/erp', WORKFORCE_URL: '/workforce' };

interface Generated {
  controlId: string;
  patient: number;
  seq: number;
  trigger: (typeof CYCLE)[number];
  text: string;
  /** Destinations that receive something (from the golden files of the template sample). */
  destinations: string[];
  /** `sourceEventId` of its payloads. */
  eventId: string;
}

const pad = (n: number, w: number): string => String(n).padStart(w, '0');

/** `perPatient` messages for each of {@link PATIENTS} patients, from the sample templates. */
function generate(run: number, perPatient: number): Generated[] {
  const cases = new Map(sampleCases(CHANNEL).map((c) => [c.stem, c]));
  const templates = new Map(
    CYCLE.map((t) => {
      const sample = cases.get(TEMPLATE[t])!;
      const text = sample.raw.toString('utf8');
      const hl7 = Hl7Message.parse(text);
      const destinations = Object.entries(sample.expect).filter(([, payloads]) => payloads.length > 0).map(([d]) => d);
      return [t, { text, controlId: hl7.get('MSH-10')!, mrn: hl7.get('PID-3.1')!, visit: hl7.get('PV1-19.1')!, destinations }] as const;
    }),
  );
  const out: Generated[] = [];
  for (let p = 0; p < PATIENTS; p++) {
    for (let seq = 0; seq < perPatient; seq++) {
      const trigger = CYCLE[seq % CYCLE.length]!;
      const t = templates.get(trigger)!;
      const controlId = `K${run}P${pad(p, 2)}S${pad(seq, 3)}`;
      const text = t.text.replaceAll(t.controlId, controlId).replaceAll(t.mrn, `E9${run}${pad(p, 5)}`).replaceAll(t.visit, `79${run}${pad(p, 7)}`);
      out.push({ controlId, patient: p, seq, trigger, text, destinations: t.destinations, eventId: deterministicId(ENCOUNTER_EVENT, 'CARESUITE', 'RVH', controlId) });
    }
  }
  return out;
}

/** Connection `c` carries the patients p ≡ c (mod CONNECTIONS), interleaved, each patient's messages in order. */
function perConnection(messages: Generated[]): Generated[][] {
  const queues: Generated[][] = Array.from({ length: CONNECTIONS }, () => []);
  const sorted = [...messages].sort((a, b) => a.seq - b.seq || a.patient - b.patient);
  for (const m of sorted) queues[m.patient % CONNECTIONS]!.push(m);
  return queues;
}

/** Connects, retrying while the port refuses (the engine is starting); bounded. */
async function connectWithRetry(port: number, timeoutMs = 30_000): Promise<RawMllpClient> {
  return waitFor(async () => RawMllpClient.connect(port, '127.0.0.1', 1000), { timeoutMs, intervalMs: 10, what: `MLLP port ${port} to accept` });
}

/**
 * A sender on one connection: pipelines up to `window` messages, records each ACK (AA or CA with
 * MSA-2 = the message's MSH-10) and stops when the connection closes (the engine died) or all are
 * ACKed.
 */
async function stream(port: number, queue: Generated[], acked: Set<string>, onAck: () => void, window = 16): Promise<void> {
  if (queue.length === 0) return;
  const client = await connectWithRetry(port);
  let sent = 0;
  let seen = 0;
  const take = (): void => {
    while (seen < client.acks.length) {
      const m = queue[seen]!;
      const ack = parseAck(client.acks[seen]!);
      if (ack.ackedControlId !== m.controlId || (ack.code !== 'AA' && ack.code !== 'CA')) {
        throw new Error(`ACK ${seen} on this connection is ${ack.code} for ${ack.ackedControlId}, expected AA/CA for ${m.controlId}: ${ack.text}`);
      }
      acked.add(m.controlId);
      seen++;
      onAck();
    }
  };
  try {
    while (seen < queue.length) {
      while (sent < queue.length && sent - seen < window && !client.isClosed) {
        await client.sendFrame(queue[sent]!.text).catch(() => undefined);
        sent++;
      }
      try {
        await client.waitForAcks(seen + 1, 30_000);
      } catch {
        take();
        return; // closed: the rest is resent by the caller
      }
      take();
    }
  } finally {
    client.close();
  }
}

interface Run {
  dataDir: string;
  configFile: string;
  env: Record<string, string>;
  httpPort: number;
  adtPort: number;
  logFile: string;
}

async function prepareRun(name: string, standIn: ErpStandIn): Promise<Run> {
  const dir = makeTempDir(`crash-${name}`);
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir);
  const configFile = join(dir, 'osprey.yaml');
  writeFileSync(
    configFile,
    embeddedEngineConfigYaml({
      dbPath: join(dataDir, 'osprey.db'),
      channelsDir: 'channels',
      extra: ['contracts:', '  module: transforms/contracts/index.ts', 'rateLimits:', '  erp-api: { perSecond: 5000, burst: 5000 }', '  rcm-api: { perSecond: 5000, burst: 5000 }'],
    }),
  );
  const httpPort = await freePort();
  const adtPort = await freePort();
  const siuPort = await freePort();
  return {
    dataDir,
    configFile,
    httpPort,
    adtPort,
    logFile: join(dir, 'engine.log'),
    env: {
      OSPREY_HTTP_PORT: String(httpPort),
      ADT_MLLP_PORT: String(adtPort),
      SIU_MLLP_PORT: String(siuPort),
      RCM_URL: `${standIn.url}/rcm`,
      ERP_URL: `${standIn.url}/erp`,
      WORKFORCE_URL: `${standIn.url}/workforce`,
      OSPREY_LOG_LEVEL: 'warn',
    },
  };
}

const startEngine = (run: Run): Promise<EngineProcess> =>
  EngineProcess.start({ configFile: run.configFile, env: run.env, httpPort: run.httpPort, logFile: run.logFile });

/** Waits until every stored message of the channel is final (no RECEIVED, no QUEUED) and `total` are stored. */
async function waitUntilAllFinal(engine: EngineProcess, total: number, timeoutMs = 180_000): Promise<Record<string, number>> {
  return waitFor(
    async () => {
      const res = await engine.get('/api/channels');
      const counts = (res.body.channels.find((c: any) => c.name === CHANNEL)?.counts ?? {}) as Record<string, number>;
      const sum = Object.values(counts).reduce((a, b) => a + b, 0);
      return sum >= total && !counts.RECEIVED && !counts.QUEUED ? counts : undefined;
    },
    { timeoutMs, intervalMs: 250, what: `all ${total} messages of ${CHANNEL} to be final` },
  );
}

/** Every stored message of the channel (paged through the API). */
async function allMessages(engine: EngineProcess): Promise<any[]> {
  const out: any[] = [];
  let before: number | undefined;
  for (let page = 0; page < 100; page++) {
    const res = await engine.get(`/api/messages?channel=${CHANNEL}&limit=1000${before !== undefined ? `&before=${before}` : ''}`);
    expect(res.status).to.equal(200);
    const batch = res.body.messages as any[];
    out.push(...batch);
    if (batch.length < 1000) return out;
    before = Math.min(...batch.map((m) => m.seq as number));
  }
  throw new Error('more than 100 pages of messages');
}

/** The counting common to both scenarios; returns figures for the log. */
async function verify(engine: EngineProcess, standIn: ErpStandIn, messages: Generated[], acked: Set<string>): Promise<{ duplicates: number; deliveries: number }> {
  const targets = destinationTargets(CHANNEL);
  const pathOf = new Map(targets.map((t) => [t.destination, `${PREFIX[t.envVar]}${t.suffix}`]));
  const destOfPath = new Map(targets.map((t) => [`${PREFIX[t.envVar]}${t.suffix}`, t.destination]));
  const byEvent = new Map(messages.map((m) => [m.eventId, m]));

  // 1. Every message was acknowledged in the end, and every acknowledged one is stored, once, in its final state.
  expect(acked.size, 'every message ACKed (after resends)').to.equal(messages.length);
  const counts = await waitUntilAllFinal(engine, messages.length);
  const stored = await allMessages(engine);
  const byControlId = new Map<string, any[]>();
  for (const s of stored) byControlId.set(s.keys.controlId, [...(byControlId.get(s.keys.controlId) ?? []), s]);
  const missing = messages.filter((m) => !byControlId.has(m.controlId)).map((m) => m.controlId);
  expect(missing, 'ACKed but not in the store').to.deep.equal([]);
  const twice = [...byControlId].filter(([, list]) => list.length > 1).map(([id]) => id);
  expect(twice, 'stored more than once').to.deep.equal([]);
  expect(stored.length).to.equal(messages.length);
  const wrongState = messages.filter((m) => byControlId.get(m.controlId)![0].state !== (m.destinations.length > 0 ? 'SENT' : 'FILTERED'));
  expect(wrongState.map((m) => `${m.controlId}:${byControlId.get(m.controlId)![0].state}`), 'final states').to.deep.equal([]);

  // 2. Each (message, destination) reached the stand-in under exactly one idempotency key: the store's.
  const keys = new Map<string, Set<string>>();
  for (const a of standIn.arrivals) {
    const m = byEvent.get((a.payload as { sourceEventId?: string }).sourceEventId ?? '');
    expect(m, `payload at ${a.path} maps to a generated message`).to.exist;
    const k = `${m!.controlId}|${destOfPath.get(a.path)}`;
    keys.set(k, (keys.get(k) ?? new Set()).add(a.idempotencyKey));
  }
  let expectedDeliveries = 0;
  for (const m of messages) {
    const messageId = byControlId.get(m.controlId)![0].id as string;
    for (const d of m.destinations) {
      expectedDeliveries++;
      const seen = keys.get(`${m.controlId}|${d}`);
      expect(seen, `${m.controlId} delivered to ${d}`).to.exist;
      expect([...seen!], `${m.controlId} → ${d}: one idempotency key`).to.deep.equal([`${messageId}:${d}:0`]);
    }
  }
  expect(keys.size, 'nothing delivered that was not expected').to.equal(expectedDeliveries);
  expect(standIn.applied.length, 'applied once each').to.equal(expectedDeliveries);

  // 3. Per patient and destination, arrivals (duplicates included) never go back in sequence.
  const lastSeq = new Map<string, { seq: number; arrival: Arrival }>();
  for (const a of standIn.arrivals) {
    const m = byEvent.get((a.payload as { sourceEventId: string }).sourceEventId)!;
    const k = `${m.patient}|${a.path}`;
    const prev = lastSeq.get(k);
    if (prev) expect(m.seq, `patient ${m.patient} at ${a.path}: ${m.controlId} (dup: ${a.duplicate}) arrived after seq ${prev.seq}`).to.be.at.least(prev.seq);
    lastSeq.set(k, { seq: m.seq, arrival: a });
  }

  // 4. The channel's counts match what the stand-in saw.
  const sentAtStandIn = new Set(standIn.applied.map((a) => (a.payload as { sourceEventId: string }).sourceEventId));
  expect(counts.SENT, 'SENT = messages applied at the receiver').to.equal(sentAtStandIn.size);
  expect(counts.FILTERED ?? 0, 'FILTERED = the A08s').to.equal(messages.filter((m) => m.destinations.length === 0).length);
  expect(Object.keys(counts).sort(), 'no other state').to.deep.equal(['FILTERED', 'SENT']);
  for (const [d, path] of pathOf) {
    expect(standIn.appliedTo(path).length, `applied at ${path}`).to.equal(messages.filter((m) => m.destinations.includes(d)).length);
  }
  return { duplicates: standIn.arrivals.filter((a) => a.duplicate).length, deliveries: expectedDeliveries };
}

describe('crash recovery (kill -9 of the engine process)', function () {
  this.timeout(300_000);

  const engines: EngineProcess[] = [];
  const standIns: ErpStandIn[] = [];

  afterEach(async function () {
    for (const e of engines.splice(0)) await e.stop().catch(() => undefined);
    for (const s of standIns.splice(0)) await s.close().catch(() => undefined);
  });

  after(function () {
    removeTempDirs();
  });

  describe('killed mid-stream while messages arrive', function () {
    it('keeps every ACKed message, delivers each once in effect under one key, in per-patient order, after the sender resends what was not ACKed', async function () {
      const standIn = await ErpStandIn.start();
      standIns.push(standIn);
      const run = await prepareRun('stream', standIn);
      const messages = generate(1, 40); // 2,000 messages
      const queues = perConnection(messages);
      const acked = new Set<string>();
      const killAt = Math.round(messages.length / 3);

      const first = await startEngine(run);
      engines.push(first);
      let killed: Promise<void> | undefined;
      let ackCount = 0;
      const onAck = (): void => {
        ackCount++;
        if (!killed && ackCount >= killAt) killed = first.kill9();
      };
      await Promise.all(queues.map((q) => stream(run.adtPort, q, acked, onAck)));
      expect(killed, 'the engine was killed mid-stream').to.exist;
      await killed;
      const exit = await first.exited;
      expect(exit.signal).to.equal('SIGKILL');
      const ackedBeforeKill = acked.size;
      expect(ackedBeforeKill, 'killed before the stream ended').to.be.lessThan(messages.length);
      expect(ackedBeforeKill).to.be.at.least(killAt);

      // Restart on the same data dir; the sender reconnects as soon as the port accepts and resends,
      // in order, everything it has no ACK for.
      const resend = queues.map((q) => q.filter((m) => !acked.has(m.controlId)));
      const [second] = await Promise.all([startEngine(run), ...resend.map((q) => stream(run.adtPort, q, acked, () => undefined))]);
      engines.push(second);
      // A connection that the engine closed while starting: resend again (bounded).
      for (let round = 0; round < 5 && acked.size < messages.length; round++) {
        await Promise.all(queues.map((q) => stream(run.adtPort, q.filter((m) => !acked.has(m.controlId)), acked, () => undefined)));
      }

      const figures = await verify(second, standIn, messages, acked);
      console.log(`      [crash-recovery] ${messages.length} messages, ${ackedBeforeKill} ACKed before the kill, ${figures.deliveries} deliveries, ${figures.duplicates} duplicate arrivals (de-duplicated by key)`);
    });
  });

  describe('killed while deliveries are in flight', function () {
    it('resumes the unfinished deliveries after the restart: each once in effect, in per-patient order', async function () {
      const standIn = await ErpStandIn.start();
      standIns.push(standIn);
      // A slow receiver that commits first and answers later: at the kill, many requests are
      // applied but their answers never reach the engine.
      standIn.setDefault({ status: 200, delayMs: 150, applyBeforeDelay: true });
      const run = await prepareRun('inflight', standIn);
      const messages = generate(2, 10); // 500 messages
      const expected = messages.reduce((n, m) => n + m.destinations.length, 0);
      const acked = new Set<string>();

      const first = await startEngine(run);
      engines.push(first);
      await Promise.all(perConnection(messages).map((q) => stream(run.adtPort, q, acked, () => undefined)));
      expect(acked.size, 'all ACKed before the kill').to.equal(messages.length);
      await waitFor(() => standIn.applied.length >= expected / 3, { timeoutMs: 120_000, intervalMs: 5, what: 'a third of the deliveries' });
      await first.kill9();
      const appliedAtKill = standIn.applied.length;
      const inFlightAtKill = standIn.requests.filter((r) => r.status === undefined).length;
      expect(appliedAtKill, 'killed before every delivery was made').to.be.lessThan(expected);

      standIn.setDefault(ok);
      await sleep(50); // let the stand-in notice the dead connections (nothing is asserted on time)
      const second = await startEngine(run);
      engines.push(second);
      const figures = await verify(second, standIn, messages, acked);
      console.log(`      [crash-recovery] ${messages.length} messages, ${expected} deliveries, ${appliedAtKill} applied and ${inFlightAtKill} unanswered at the kill, ${figures.duplicates} duplicate arrivals after the restart`);
    });
  });
});
