// SPDX-License-Identifier: Apache-2.0
/**
 * The message stream of the production fault tests and the checks after each fault: senders stream
 * 1,500 ADT messages (50 patients × 30, unique MSH-10) over four MLLP connections, two per instance,
 * each patient on one connection; they resend anything not answered AA, as real senders do, and
 * fail over to another instance when theirs is gone. `verify` then checks that every message was
 * acknowledged and stored once in its final state, each expected idempotency key applied once at
 * the ERP stand-in, per-patient order at the stand-in, the API's counts on every running instance,
 * and a drain within 30 s; it returns the figures `report` prints.
 */
import { expect } from 'chai';
import { activeSplit, allMessages, channelCounts, CHANNEL, DESTINATION, diagnostics, PATH, type Cluster, type Instance } from './production-cluster.ts';
import { ResilientSender } from './resilient-sender.ts';
import { adt } from './test-channel.ts';
import { waitFor } from './wait-for.ts';

export const PATIENTS = 50;
const PER_PATIENT = 30;
export const CONNECTIONS = 4;
/** At most this many messages in flight per connection: fewer than its patients, so a window never holds two of one patient. */
const WINDOW = 10;
/** Per connection: 4 × 30/s ≈ 120 msgs/s, so the 1,500 messages take ~12 s and the faults land mid-stream. */
const RATE_PER_CONNECTION = 30;
/** A08 is filtered by the test transform; the others become one delivery each. */
const CYCLE = ['A01', 'A08', 'A03', 'A04'] as const;

export interface Generated {
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

export interface Stream {
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
export function startStream(cluster: Cluster, tag: string, onProgress: (acked: number) => void): Stream {
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
export async function streamEndAfterService(stream: Stream, fault: () => Promise<unknown> | undefined): Promise<number> {
  try {
    return await stream.done;
  } catch (err) {
    await fault()?.catch(() => undefined);
    throw err;
  }
}

export interface Figures {
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
export async function verify(cluster: Cluster, stream: Stream, streamEnd: number, drainFrom = streamEnd): Promise<Figures> {
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
  if (outOfOrder.length > 0) {
    // The first such patient's arrivals (all of them, repeats included), for the failure's reader.
    const patient = Number(/^patient (\d+)/.exec(outOfOrder[0]!)![1]);
    const timeline = standIn.arrivals
      .filter((a) => a.path === PATH && expectedKeys.get(a.idempotencyKey)?.patient === patient)
      .map((a) => `${expectedKeys.get(a.idempotencyKey)!.controlId}${a.duplicate ? ' (repeat)' : ''} +${a.at - stream.startedAt} ms`);
    console.log(`      patient ${patient} at the stand-in: ${timeline.join(', ')}`);
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

export function report(label: string, f: Figures, extra: string): void {
  console.log(
    `      [production ${label}] ${f.messages} messages (${f.framesSent} frames, ${f.resent} resent, ${f.reconnects} reconnects, rejected: ${f.rejected}), ` +
      `${f.deliveries} deliveries applied once each (${f.requests} requests, ${f.duplicateArrivals} duplicate arrivals of applied keys), ` +
      `stream ${(f.streamMs / 1000).toFixed(1)} s, drained ${(f.drainMs / 1000).toFixed(1)} s after the stream and the fault were over, longest pause of a patient at the ERP ${(f.longestPauseMs / 1000).toFixed(1)} s, active partitions after: ${f.activeAfter}; ${extra}`,
  );
}

export async function readyStatus(i: Instance): Promise<number> {
  try {
    return (await fetch(`http://127.0.0.1:${i.httpPort}/readyz`, { signal: AbortSignal.timeout(2000) })).status;
  } catch {
    return 0;
  }
}

/** The instance's bus connection as `/healthz` shows it (undefined when it does not answer). */
export async function busOf(i: Instance): Promise<{ connected: boolean; node?: string } | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${i.httpPort}/healthz`, { signal: AbortSignal.timeout(2000) });
    return ((await res.json()) as { bus?: { connected: boolean; node?: string } }).bus;
  } catch {
    return undefined;
  }
}
