// SPDX-License-Identifier: Apache-2.0
/**
 * Message store benchmark: `receive` throughput with N concurrent producers (each awaits its own
 * receive, as an MLLP connection awaits its ACK), and the same with each message's whole life
 * (receive → recordProcessing with one delivery → recordAttempts SENT: the store's share of one
 * message end to end). Reports msgs/s and the latency of each promise (p50/p99/max).
 *
 *   node --import tsx bench/store-bench.ts [--seconds 10] [--producers 8] [--only sqlite|postgres]
 *
 * PostgreSQL: OSPREY_BENCH_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/test (skipped
 * when unreachable). A temporary schema is created and dropped.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pg from 'pg';
import type { MessageStore, NewMessage } from '../engine/message-store/message-store.ts';
import { PostgresStore } from '../engine/message-store/postgres-store.ts';
import { SqliteStore } from '../engine/message-store/sqlite-store.ts';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    producers: { type: 'string', default: '8' },
    only: { type: 'string' },
  },
});
const SECONDS = Number(args.seconds);
const PRODUCERS = Number(args.producers);
const PG_URL = process.env.OSPREY_BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A synthetic ADT^A01 of about 1 KB (no real patient data). */
function adt(controlId: string): Buffer {
  const segments = [
    `MSH|^~\\&|EPIC|HOSP|OSPREY|ERP|20240101120000||ADT^A01^ADT_A01|${controlId}|P|2.5|||AL|NE||8859/1`,
    'EVN|A01|20240101120000|||OP123^OPERATOR^ANNA',
    `PID|1||MRN${controlId.slice(-6)}^^^HOSP^MR||DOE^JANE^Q||19800101|F|||1 MAIN ST^^SPRINGFIELD^IL^62701^USA||(555)555-0100|||S||ACC${controlId.slice(-6)}`,
    'PV1|1|I|CARD^301^1^HOSP||||1234^SMITH^JOHN^^^DR|||CAR||||1|||1234^SMITH^JOHN^^^DR|IN||||||||||||||||||||||||||20240101120000',
    'NK1|1|DOE^JOHN|SPO|1 MAIN ST^^SPRINGFIELD^IL^62701^USA|(555)555-0101',
    'AL1|1|DA|PEN^PENICILLIN|SV|HIVES',
    'DG1|1|I10|I21.9^ACUTE MYOCARDIAL INFARCTION^I10||20240101120000|A',
    'IN1|1|BCBS^BLUE CROSS|BC123|BLUE CROSS BLUE SHIELD|PO BOX 1^^CHICAGO^IL^60601||(800)555-0199|GRP001',
    'OBX|1|NM|8867-4^HEART RATE^LN||88|/min|60-100|N|||F',
    'OBX|2|NM|8480-6^SYSTOLIC BP^LN||142|mm[Hg]|90-120|H|||F',
  ];
  return Buffer.from(segments.join('\r') + '\r', 'latin1');
}

function newMessage(): NewMessage {
  const id = randomUUID();
  return {
    id,
    channel: 'bench-adt',
    receivedAt: Date.now(),
    raw: adt(id),
    encoding: 'ISO-8859-1',
    keys: { controlId: id, sender: 'EPIC|HOSP', messageType: 'ADT^A01', patientId: `MRN${id.slice(-6)}`, visitId: `ACC${id.slice(-6)}`, facility: 'HOSP' },
    orderKey: `MRN${id.slice(-6)}`,
    state: 'RECEIVED',
    dedupeWindowMs: 24 * 3_600_000,
    source: '127.0.0.1:40000',
  };
}

type Scenario = 'receive' | 'lifecycle';

interface Result {
  count: number;
  seconds: number;
  latencies: number[];
  /** Share of the run the main thread's event loop was busy (the rest is free for MLLP, pipeline, HTTP). */
  eventLoopBusy: number;
}

async function run(store: MessageStore, scenario: Scenario, seconds: number, producers: number): Promise<Result> {
  const latencies: number[] = [];
  let count = 0;
  const stopAt = performance.now() + seconds * 1000;
  async function producer(): Promise<void> {
    while (performance.now() < stopAt) {
      const m = newMessage();
      const t0 = performance.now();
      await store.receive(m);
      latencies.push(performance.now() - t0);
      if (scenario === 'lifecycle') {
        const t1 = performance.now();
        const [d] = await store.recordProcessing(m.id, {
          state: 'QUEUED',
          canonical: { type: 'encounter.admitted', id: m.id },
          deliveries: [{ destination: 'erp', outputIndex: 0, payload: { customerNumber: m.keys.patientId, event: 'admitted' } }],
        });
        const t2 = performance.now();
        await store.recordAttempts([
          {
            deliveryId: d!.id,
            startedAt: Date.now(),
            durationMs: 3,
            request: { method: 'PUT', url: 'https://erp.example.org/v2/customers/x', headers: { 'content-type': 'application/json' }, body: '{}' },
            response: { status: 200, body: '{"ok":true}' },
            outcome: 'SENT',
          },
        ]);
        latencies.push(t2 - t1, performance.now() - t2);
      }
      count++;
    }
  }
  const started = performance.now();
  const elu = performance.eventLoopUtilization();
  await Promise.all(Array.from({ length: producers }, producer));
  const busy = performance.eventLoopUtilization(elu).utilization;
  return { count, seconds: (performance.now() - started) / 1000, latencies, eventLoopBusy: busy };
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

function report(label: string, scenario: Scenario, r: Result): void {
  const sorted = [...r.latencies].sort((a, b) => a - b);
  const rate = r.count / r.seconds;
  console.log(
    `${label.padEnd(22)} ${scenario.padEnd(10)} ${String(PRODUCERS).padStart(3)} producers  ${rate.toFixed(0).padStart(6)} msgs/s` +
      `  write latency p50 ${pct(sorted, 50).toFixed(2)} ms  p99 ${pct(sorted, 99).toFixed(2)} ms  max ${sorted.at(-1)!.toFixed(1)} ms` +
      `  main thread busy ${(r.eventLoopBusy * 100).toFixed(0)}%  (${r.count} msgs)`,
  );
}

async function bench(label: string, make: () => Promise<{ store: MessageStore; cleanup: () => Promise<void> }>): Promise<void> {
  for (const scenario of ['receive', 'lifecycle'] as const) {
    const { store, cleanup } = await make();
    try {
      await store.open();
      await run(store, scenario, 1, PRODUCERS); // warm-up: JIT, page cache, pool connections
      report(label, scenario, await run(store, scenario, SECONDS, PRODUCERS));
    } finally {
      await store.close();
      await cleanup();
    }
  }
}

console.log(`node ${process.version}, ${SECONDS}s per run after 1s warm-up; latency = each store promise, submit → resolve`);

if (args.only === undefined || args.only === 'sqlite') {
  const variants = [
    { synchronous: 'full', writeThread: 'worker' },
    { synchronous: 'full', writeThread: 'main' },
    { synchronous: 'normal', writeThread: 'worker' },
  ] as const;
  for (const { synchronous, writeThread } of variants) {
    await bench(`sqlite ${synchronous}/${writeThread}`, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'osprey-store-bench-'));
      return {
        store: new SqliteStore({ path: join(dir, 'store.db'), synchronous, writeThread }),
        cleanup: () => rm(dir, { recursive: true, force: true }),
      };
    });
  }
}

if (args.only === undefined || args.only === 'postgres') {
  const probe = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
  let reachable = true;
  try {
    await probe.connect();
    await probe.end();
  } catch (err) {
    reachable = false;
    console.log(`postgres skipped: ${(err as Error).message}`);
  }
  if (reachable) {
    await bench('postgres', async () => {
      const schema = `osprey_bench_${process.pid}_${Date.now().toString(36)}`;
      return {
        store: new PostgresStore({ connectionString: PG_URL, schema }),
        cleanup: async () => {
          const c = new pg.Client({ connectionString: PG_URL });
          await c.connect();
          await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
          await c.end();
        },
      };
    });
  }
}
