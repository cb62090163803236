// SPDX-License-Identifier: Apache-2.0
/**
 * `npm run bench`: end-to-end throughput and latency of the engine on the sample channel
 * `adt-to-rcm-erp`, then the same load against a bare MLLP server that ACKs at once (the transport
 * limit on this machine). See bench/README.md for what is measured and how to read it.
 *
 *   npm run bench -- [--messages 20000] [--connections 8] [--window 1] [--warmup 500]
 *                    [--deadline 600] [--bus local|rabbitmq] [--store sqlite|postgres]
 *                    [--instances 1] [--patients 1000] [--cpu-prof DIR] [--no-transport]
 *                    [--log-level info] [--engine-node-args="<node flags for the engine>"]
 *
 * Processes: this driver (the MLLP senders), the sink (bench/sink-server.ts), the engine
 * (`node bin/osprey.js start --config <generated>`, one per instance) and, for the transport run, the
 * bare server (bench/bare-mllp-server.ts): each in its own process, so none shares another's event
 * loop. Every child is killed at the end and the temp folder removed, whatever happens.
 *
 * The LAST line of stdout is one JSON object with the figures (or `error` when the engine could not
 * run: no figure is ever made up). Progress goes to stderr.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generateAdt, type BenchMessage, type Destination } from './lib/adt-messages.ts';
import { BENCH_RATE_LIMIT, CHANNEL, EngineProcess, writeBenchConfig, type GeneratedConfig } from './lib/engine-process.ts';
import { cpuMsBetween, cpuMsByPid, machineBusyMs } from './lib/host-cpu.ts';
import { nowMs, runLoad, type LoadResult, type LoadTarget } from './lib/mllp-load.ts';
import { percentile, round, sorted } from './lib/stats.ts';
import { formatProfileSummary, summariseProfile } from './profile-summary.ts';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const benchDir = join(repoRoot, 'bench');

const options = {
  messages: { type: 'string', default: '20000' },
  connections: { type: 'string', default: '8' },
  window: { type: 'string', default: '1' },
  warmup: { type: 'string', default: '500' },
  deadline: { type: 'string', default: '600' },
  bus: { type: 'string', default: 'local' },
  store: { type: 'string', default: 'sqlite' },
  instances: { type: 'string', default: '1' },
  patients: { type: 'string', default: '1000' },
  'cpu-prof': { type: 'string' },
  'no-transport': { type: 'boolean', default: false },
  'log-level': { type: 'string', default: 'info' },
  /** Extra node flags for the engine child (diagnostics, e.g. "--import ./probe.mjs"), space-separated. */
  'engine-node-args': { type: 'string', default: '' },
} as const;

// Other scenarios run on their own and exit (their own options, the same JSON last line).
const scenarioAt = process.argv.indexOf('--scenario');
const scenario = scenarioAt >= 0 ? process.argv[scenarioAt + 1] : process.argv.find((a) => a.startsWith('--scenario='))?.slice('--scenario='.length);
if (scenario === 'sftp-835') {
  await import('./sftp-835.ts');
  await new Promise(() => undefined);
} else if (scenario !== undefined && scenario !== 'mllp') {
  process.stderr.write(`unknown --scenario ${scenario} (mllp, sftp-835)\n`);
  process.exit(2);
}

function parseBenchArgs() {
  try {
    return parseArgs({ options }).values;
  } catch (err) {
    return usage((err as Error).message);
  }
}
const args = parseBenchArgs();

const MESSAGES = int('messages', 1);
const CONNECTIONS = int('connections', 1);
const WINDOW = int('window', 1);
const WARMUP = int('warmup', 0);
const DEADLINE_S = int('deadline', 10);
const INSTANCES = int('instances', 1);
const PATIENTS = int('patients', 1);
const BUS = oneOf('bus', ['local', 'rabbitmq'] as const);
const STORE = oneOf('store', ['sqlite', 'postgres'] as const);
const LOG_LEVEL = oneOf('log-level', ['error', 'warn', 'info', 'debug'] as const);

function int(name: keyof typeof args, min: number): number {
  const v = Number(args[name]);
  if (!Number.isInteger(v) || v < min) usage(`--${name} must be an integer ≥ ${min}, got ${String(args[name])}`);
  return v;
}
function oneOf<T extends string>(name: keyof typeof args, allowed: readonly T[]): T {
  const v = args[name] as T;
  if (!allowed.includes(v)) usage(`--${name} must be one of ${allowed.join(', ')}, got ${String(v)}`);
  return v;
}
function usage(problem: string): never {
  process.stderr.write(`bench: ${problem}\n`);
  process.exit(2);
}
if (INSTANCES > 1 && (STORE !== 'postgres' || BUS !== 'rabbitmq')) {
  usage('--instances > 1 needs --store postgres --bus rabbitmq (SQLite and the local bus are one process)');
}

const log = (line: string): void => void process.stderr.write(`${line}\n`);
const SENDERS =
  WINDOW === 1
    ? `${CONNECTIONS} MLLP connections, each sends one message and waits for its ACK before the next (no pipelining), as an EHR feed does`
    : `${CONNECTIONS} MLLP connections, each with up to ${WINDOW} messages awaiting their ACK (MLLP pipelining)`;

// ---------------------------------------------------------------------------------------------
// Children and cleanup

const runTag = randomBytes(4).readUInt32BE().toString(36).padStart(6, '0').slice(-6);
const tmp = mkdtempSync(join(tmpdir(), 'osprey-bench-'));
const engines: EngineProcess[] = [];
const forked: ChildProcess[] = [];
let generated: GeneratedConfig | undefined;
let cleaned = false;

async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  // Kill, then wait for the exits: a child still closing its files would keep the temp folder alive.
  await Promise.all([
    ...engines.map((e) => e.kill()),
    ...forked.map(
      (c) =>
        new Promise<void>((done) => {
          if (c.exitCode !== null || c.signalCode !== null) return done();
          const timer = setTimeout(done, 5000);
          c.once('exit', () => {
            clearTimeout(timer);
            done();
          });
          c.kill('SIGKILL');
        }),
    ),
  ]);
  try {
    rmSync(tmp, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  } catch (err) {
    log(`note: temp folder ${tmp} not removed (${(err as Error).message})`);
  }
  if (generated?.postgresSchema) await dropPostgresSchema(generated.postgresSchema).catch((e: Error) => log(`note: schema ${generated?.postgresSchema} not dropped (${e.message})`));
  if (generated?.rabbitPrefix) await deleteRabbitTopology(generated.rabbitPrefix).catch((e: Error) => log(`note: RabbitMQ queues ${generated?.rabbitPrefix}.* not deleted (${e.message})`));
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`bench: ${signal}, stopping`);
    void cleanup().finally(() => {
      process.stdout.write(`${JSON.stringify({ error: `interrupted (${signal})`, complete: false, messages: MESSAGES, connections: CONNECTIONS })}\n`);
      process.exit(130);
    });
  });
}

function forkChild(script: string): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(join(benchDir, script), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  forked.push(child);
  return new Promise((resolvePort, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start within 30 s`)), 30_000);
    child.once('exit', (code) => reject(new Error(`${script} exited during start (code ${code})`)));
    child.on('message', (m: { type?: string; port?: number }) => {
      if (m.type === 'ready') {
        clearTimeout(timer);
        resolvePort({ child, port: m.port ?? 0 });
      }
    });
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(timer);
      done();
    });
    child.send({ type: 'stop' });
  });
}

async function dropPostgresSchema(schema: string): Promise<void> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: process.env.OSPREY_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres' });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

async function deleteRabbitTopology(prefix: string): Promise<void> {
  const amqp = await import('amqplib');
  const { deleteExchanges, deleteQueue, topologyNames } = await import('../engine/message-bus/rabbitmq-topology.ts');
  const { queueNames } = await import('../engine/message-bus/message-bus.ts');
  const conn = await amqp.connect(process.env.OSPREY_RABBITMQ_URL || 'amqp://guest:guest@127.0.0.1:5672');
  try {
    const ch = await conn.createChannel();
    const names = topologyNames(prefix);
    for (const q of [queueNames.pipeline(CHANNEL), queueNames.delivery(CHANNEL, 'rcm-billing'), queueNames.delivery(CHANNEL, 'erp-accruals')]) {
      await deleteQueue(ch, names, q, 16);
    }
    await deleteExchanges(ch, names);
    await ch.close();
  } finally {
    await conn.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Delivery tracking (fed by the sink over IPC)

const DEST_BIT: Record<Destination, number> = { rcm: 1, erp: 2 };

class Phase {
  readonly index = new Map<string, number>();
  readonly want: Uint8Array;
  readonly got: Uint8Array;
  readonly lastDeliveryAt: Float64Array;
  expectedDeliveries = 0;
  deliveries = 0;
  duplicates = 0;
  fullyDelivered = 0;
  lastFullAt = NaN;

  constructor(readonly messages: readonly BenchMessage[]) {
    this.want = new Uint8Array(messages.length);
    this.got = new Uint8Array(messages.length);
    this.lastDeliveryAt = new Float64Array(messages.length).fill(NaN);
    messages.forEach((m, i) => {
      this.index.set(m.sourceEventId, i);
      for (const d of m.expected) this.want[i] = (this.want[i] as number) | DEST_BIT[d];
      this.expectedDeliveries += m.expected.length;
    });
  }

  arrive(i: number, destination: Destination, at: number): void {
    const bit = DEST_BIT[destination];
    if (((this.got[i] as number) & bit) !== 0) {
      this.duplicates++;
      return;
    }
    this.got[i] = (this.got[i] as number) | bit;
    this.deliveries++;
    if (!(at <= (this.lastDeliveryAt[i] as number))) this.lastDeliveryAt[i] = at;
    if (this.got[i] === this.want[i]) {
      this.fullyDelivered++;
      if (!(at <= this.lastFullAt)) this.lastFullAt = at;
    }
  }

  get complete(): boolean {
    return this.deliveries >= this.expectedDeliveries;
  }
}

let phase: Phase | undefined;
let unmatched = 0;
let unparsableRequests = 0;

function onSinkMessage(m: { type?: string; items?: Array<[string, string, number]>; unparsable?: number }): void {
  if (m.type !== 'arrivals' || !m.items) return;
  unparsableRequests = m.unparsable ?? unparsableRequests;
  for (const [id, dest, at] of m.items) {
    const i = phase?.index.get(id);
    if (i === undefined || (dest !== 'rcm' && dest !== 'erp')) {
      unmatched++;
      continue;
    }
    phase!.arrive(i, dest, at);
  }
}

/** Waits until every expected delivery of the phase arrived, the deadline passed, or an engine died. */
async function waitDelivered(p: Phase, deadlineAt: number, label: string): Promise<void> {
  let lastReport = nowMs();
  while (!p.complete && nowMs() < deadlineAt) {
    const dead = engines.find((e) => !e.running);
    if (dead) throw new Error(`the engine (pid ${dead.pid}) exited during the ${label}\n    ${dead.tail.join('\n    ')}`);
    await new Promise((r) => setTimeout(r, 25));
    if (nowMs() - lastReport > 5000) {
      lastReport = nowMs();
      log(`  ${label}: ${p.deliveries}/${p.expectedDeliveries} deliveries at the sink`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The run

interface LoadFigures {
  ackP50: number;
  ackP95: number;
  ackP99: number;
  ackMax: number;
  firstSend: number;
  lastAck: number;
  ackRate: number;
}

function loadFigures(r: LoadResult): LoadFigures {
  const lat: number[] = [];
  let firstSend = Infinity;
  let lastAck = -Infinity;
  for (let i = 0; i < r.sentAt.length; i++) {
    const s = r.sentAt[i] as number;
    const a = r.ackAt[i] as number;
    if (s < firstSend) firstSend = s;
    if (Number.isFinite(a)) {
      lat.push(a - s);
      if (a > lastAck) lastAck = a;
    }
  }
  const sl = sorted(lat);
  return {
    ackP50: percentile(sl, 50),
    ackP95: percentile(sl, 95),
    ackP99: percentile(sl, 99),
    ackMax: percentile(sl, 100),
    firstSend,
    lastAck,
    ackRate: lat.length / ((lastAck - firstSend) / 1000),
  };
}

async function main(): Promise<Record<string, unknown>> {
  // Other work on the machine skews every figure: the 1-minute load average before the run says how much.
  const loadAvgAtStart = loadavg()[0] as number;
  const startedAt = nowMs();
  const deadlineAt = startedAt + DEADLINE_S * 1000;
  // The transport run is short (seconds); it keeps this much of the deadline for itself.
  const engineDeadlineAt = deadlineAt - Math.min(60_000, DEADLINE_S * 100);
  const base = {
    messages: MESSAGES,
    connections: CONNECTIONS,
    window: WINDOW,
    senders: SENDERS,
    channel: CHANNEL,
    store: STORE,
    bus: BUS,
    instances: INSTANCES,
    ...(STORE === 'sqlite' ? { synchronous: 'full' } : {}),
  };

  log(`bench: ${MESSAGES} ADT messages (A01/A03 inpatient, ${PATIENTS} patients, 1.5 deliveries each) over ${SENDERS}`);
  log(`bench: engine ×${INSTANCES} (${STORE} store, ${BUS} bus), rate limits raised to ${BENCH_RATE_LIMIT}/s; deadline ${DEADLINE_S} s; temp ${tmp}`);

  const sink = await forkChild('sink-server.ts');
  sink.child.on('message', onSinkMessage);
  const sinkBase = `http://127.0.0.1:${sink.port}`;

  generated = writeBenchConfig({ repoRoot, dir: tmp, store: STORE, bus: BUS, runTag, logLevel: LOG_LEVEL });
  const profileDir = args['cpu-prof'] ? resolve(args['cpu-prof']) : undefined;
  try {
    for (let k = 0; k < INSTANCES; k++) {
      engines.push(
        await EngineProcess.start({
          repoRoot,
          configFile: generated.file,
          env: { ADT_MLLP_PORT: '0', OSPREY_HTTP_PORT: '0', RCM_URL: `${sinkBase}/rcm`, ERP_URL: `${sinkBase}/erp` },
          nodeArgs: [...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []), ...(args['engine-node-args'] ?? '').split(' ').filter(Boolean)],
        }),
      );
    }
  } catch (err) {
    throw new Error(`the engine could not be started in this mode (${STORE} store, ${BUS} bus): ${(err as Error).message}`);
  }
  const targets: LoadTarget[] = engines.map((e) => ({ host: '127.0.0.1', port: e.mllpPort }));
  log(`bench: engine${INSTANCES > 1 ? 's' : ''} up (pid ${engines.map((e) => e.pid).join(', ')}, MLLP :${targets.map((t) => t.port).join(', :')}); sink ${sinkBase}`);

  // Warm-up: JIT, connection pools, the store's first pages. Its own messages (prefix W); excluded.
  if (WARMUP > 0) {
    const warm = new Phase(generateAdt({ messages: WARMUP, patients: Math.min(PATIENTS, 200), runTag, prefix: 'W', seed: 7 }));
    phase = warm;
    const r = await runLoad({ targets, connections: CONNECTIONS, window: WINDOW, messages: warm.messages, deadlineAt: Math.min(engineDeadlineAt, nowMs() + 120_000) });
    await waitDelivered(warm, Math.min(engineDeadlineAt, nowMs() + 120_000), 'warm-up');
    log(`bench: warm-up ${warm.messages.length} messages: ${r.acked} ACKed, ${warm.fullyDelivered} fully delivered`);
    // An engine that cannot deliver the warm-up will not deliver the run: say why now, not after the deadline.
    if (!warm.complete || r.acked !== warm.messages.length) {
      throw new Error(
        `the engine did not handle the warm-up (${r.acked}/${warm.messages.length} ACKed, ${warm.deliveries}/${warm.expectedDeliveries} deliveries at the sink${r.firstError ? `; ${r.firstError}` : ''})\n  last lines of the engine:\n    ${engines.flatMap((e) => e.tail).slice(-8).join('\n    ')}`,
      );
    }
  }

  // The measured run.
  const measured = new Phase(generateAdt({ messages: MESSAGES, patients: PATIENTS, runTag, prefix: 'B' }));
  phase = measured;
  let acks = 0;
  let lastProgress = nowMs();
  const cpuAtStart = engines.map((e) => e.cpuMs());
  const servicesAtStart = { postgres: cpuMsByPid('postgres'), rabbitmq: cpuMsByPid('beam.smp'), machine: machineBusyMs() };
  const load = await runLoad({
    targets,
    connections: CONNECTIONS,
    window: WINDOW,
    messages: measured.messages,
    deadlineAt: engineDeadlineAt,
    onAck: () => {
      acks++;
      if (nowMs() - lastProgress > 5000) {
        lastProgress = nowMs();
        log(`  measured: ${acks}/${measured.messages.length} ACKed, ${measured.deliveries}/${measured.expectedDeliveries} deliveries at the sink`);
      }
    },
  });
  await waitDelivered(measured, engineDeadlineAt, 'measured run');
  // Late arrivals of the last IPC batch.
  await new Promise((r) => setTimeout(r, 100));
  const complete = measured.complete && load.unsent === 0 && load.failed === 0 && load.nacked === 0;
  if (!complete) log(`bench: the run is incomplete; last lines of the engine:\n    ${engines.flatMap((e) => e.tail).slice(-8).join('\n    ')}`);
  const peakRss = engines.map((e) => e.peakRssMb());
  // CPU of the engine process(es) over the measured run (from the first send to the last delivery, roughly).
  const engineCpuMs = engines.reduce((sum, e, k) => sum + e.cpuMs() - (cpuAtStart[k] as number), 0);
  // Where the rest went, over the same run: the services on this machine (null when not visible
  // from here) and the whole machine (the senders, the sink and the kernel included).
  const perMessage = (ms: number | null): number | null => (ms === null ? null : round(ms / Math.max(1, measured.fullyDelivered)));
  const cpuMsPerMessage = {
    engine: perMessage(engineCpuMs),
    postgres: STORE === 'postgres' ? perMessage(cpuMsBetween(servicesAtStart.postgres, cpuMsByPid('postgres'))) : null,
    rabbitmq: BUS === 'rabbitmq' ? perMessage(cpuMsBetween(servicesAtStart.rabbitmq, cpuMsByPid('beam.smp'))) : null,
    machine: perMessage(machineBusyMs() - servicesAtStart.machine),
  };
  // What this machine could reach if the engine itself cost no CPU: its cores over the CPU per
  // message of everything else (PostgreSQL, RabbitMQ, the senders, the sink, the kernel). A target
  // above it cannot be met on this machine by the engine's code alone.
  const othersMs = cpuMsPerMessage.machine !== null && cpuMsPerMessage.engine !== null ? cpuMsPerMessage.machine - cpuMsPerMessage.engine : null;
  const ceilingWithoutEngine = othersMs !== null && othersMs > 0 ? round((cpus().length * 1000) / othersMs) : null;
  for (const e of engines) await e.stop();
  const engineWarnings = engines.reduce((n, e) => n + e.warnings, 0);
  const warningKinds: Record<string, number> = {};
  for (const e of engines) for (const [k, n] of e.warningKinds) warningKinds[k] = (warningKinds[k] ?? 0) + n;

  const lf = loadFigures(load);
  const e2e: number[] = [];
  for (let i = 0; i < measured.messages.length; i++) {
    if (measured.got[i] === measured.want[i]) e2e.push((measured.lastDeliveryAt[i] as number) - (load.sentAt[i] as number));
  }
  const se = sorted(e2e);
  const spanMs = (Number.isFinite(measured.lastFullAt) ? measured.lastFullAt : engineDeadlineAt) - lf.firstSend;
  const msgsPerSec = measured.fullyDelivered / (spanMs / 1000);

  // The transport limit: the same messages, connections and window against a server that ACKs at once.
  let transport: LoadFigures | undefined;
  if (!args['no-transport']) {
    const bare = await forkChild('bare-mllp-server.ts');
    const tTargets = [{ host: '127.0.0.1', port: bare.port }];
    if (WARMUP > 0) {
      await runLoad({ targets: tTargets, connections: CONNECTIONS, window: WINDOW, messages: measured.messages.slice(0, WARMUP), deadlineAt });
    }
    const tr = await runLoad({ targets: tTargets, connections: CONNECTIONS, window: WINDOW, messages: measured.messages, deadlineAt });
    await stopChild(bare.child);
    if (tr.acked === measured.messages.length) transport = loadFigures(tr);
    else log(`bench: transport run incomplete (${tr.acked}/${measured.messages.length} ACKed${tr.firstError ? `, ${tr.firstError}` : ''})`);
  }
  await stopChild(sink.child);

  if (profileDir) {
    // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: thread 0 is the engine's main thread (the
    // others are tsx's loader worker, idle after start).
    for (const f of readdirSync(profileDir).filter((n) => /\.0\.\d+\.cpuprofile$/.test(n))) {
      log(`\nCPU profile ${join(profileDir, f)}:\n${formatProfileSummary(summariseProfile(JSON.parse(readFileSync(join(profileDir, f), 'utf8')), 20))}`);
    }
  }

  const result = {
    ...base,
    complete,
    msgsPerSec: round(msgsPerSec),
    ackP50Ms: round(lf.ackP50),
    ackP95Ms: round(lf.ackP95),
    ackP99Ms: round(lf.ackP99),
    ackMaxMs: round(lf.ackMax),
    e2eP50Ms: round(percentile(se, 50)),
    e2eP95Ms: round(percentile(se, 95)),
    e2eP99Ms: round(percentile(se, 99)),
    peakRssMb: round(Math.max(...peakRss)),
    ...(INSTANCES > 1 ? { peakRssMbPerInstance: peakRss.map(round) } : {}),
    engineCpuPercentOfOneCore: round((engineCpuMs / spanMs) * 100),
    engineCpuMsPerMessage: round(engineCpuMs / Math.max(1, measured.fullyDelivered)),
    cpuMsPerMessage,
    ceilingWithoutEngineMsgsPerSec: ceilingWithoutEngine,
    transportMsgsPerSec: transport ? round(transport.ackRate) : null,
    transportAckP50Ms: transport ? round(transport.ackP50) : null,
    transportAckP99Ms: transport ? round(transport.ackP99) : null,
    ratioToTransport: transport ? round(msgsPerSec / transport.ackRate) : null,
    ackedMsgsPerSec: round(lf.ackRate),
    fullyDelivered: measured.fullyDelivered,
    deliveries: measured.deliveries,
    expectedDeliveries: measured.expectedDeliveries,
    duplicateDeliveries: measured.duplicates,
    nacked: load.nacked,
    noAck: load.failed,
    unsent: load.unsent,
    unmatchedSinkItems: unmatched,
    unparsableSinkRequests: unparsableRequests,
    engineWarnings,
    ...(engineWarnings > 0 ? { engineWarningKinds: warningKinds } : {}),
    warmupMessages: WARMUP,
    rateLimitPerSecond: BENCH_RATE_LIMIT,
    measuredSeconds: round(spanMs / 1000),
    cpus: cpus().length,
    loadAvgAtStart: round(loadAvgAtStart),
    node: process.version,
  };

  const line = (label: string, value: string): string => `  ${label.padEnd(30)} ${value}`;
  const ms = (v: number | null): string => (v === null ? '—' : `${v} ms`);
  process.stdout.write(
    [
      `Osprey benchmark — ${CHANNEL} → RCM + ERP (local HTTP sink), ${STORE} store, ${BUS} bus, ${INSTANCES} engine instance${INSTANCES > 1 ? 's' : ''}`,
      line('senders', SENDERS),
      line('messages', `${MESSAGES} measured (after ${WARMUP} warm-up), ${measured.expectedDeliveries} deliveries expected`),
      line('rate limits', `raised to ${BENCH_RATE_LIMIT}/s (erp-api, rcm-api) so they do not cap the run`),
      line('complete', complete ? 'yes' : `NO (${measured.fullyDelivered} fully delivered, ${load.unsent} unsent, ${load.nacked} NAKed, ${load.failed} without ACK)`),
      line('end to end', `${result.msgsPerSec} msgs/s (first send → last delivery)`),
      line('ACK latency', `p50 ${ms(result.ackP50Ms)}, p95 ${ms(result.ackP95Ms)}, p99 ${ms(result.ackP99Ms)}, max ${ms(result.ackMaxMs)}`),
      line('send → last delivery', `p50 ${ms(result.e2eP50Ms)}, p95 ${ms(result.e2eP95Ms)}, p99 ${ms(result.e2eP99Ms)}`),
      line('engine peak RSS (VmHWM)', `${result.peakRssMb} MB`),
      line('engine CPU', `${result.engineCpuPercentOfOneCore}% of one core, ${result.engineCpuMsPerMessage} ms per message (all threads)`),
      line('CPU per message', Object.entries(cpuMsPerMessage).map(([k, v]) => `${k} ${v === null ? '—' : `${v} ms`}`).join(', ')),
      line('ceiling, engine at zero CPU', ceilingWithoutEngine === null ? '—' : `${ceilingWithoutEngine} msgs/s (${cpus().length} cores / CPU per message of everything else)`),
      line('transport limit (bare ACK)', transport ? `${result.transportMsgsPerSec} msgs/s, ACK p50 ${ms(result.transportAckP50Ms)}, p99 ${ms(result.transportAckP99Ms)}` : 'not measured'),
      line('engine / transport', result.ratioToTransport === null ? '—' : String(result.ratioToTransport)),
      '',
    ].join('\n'),
  );
  return result;
}

let exitCode = 0;
let final: Record<string, unknown>;
try {
  final = await main();
  if (final.complete !== true) exitCode = 1;
} catch (err) {
  const error = (err as Error).message;
  process.stderr.write(`bench: ${error}\n`);
  final = { error: error.split('\n')[0], complete: false, messages: MESSAGES, connections: CONNECTIONS, store: STORE, bus: BUS, instances: INSTANCES };
  exitCode = 1;
} finally {
  if (!cleaned) await cleanup();
  // else: a signal arrived; its handler cleans up, prints the last line and exits.
  else await new Promise(() => undefined);
}
process.stdout.write(`${JSON.stringify(final!)}\n`);
process.exit(exitCode);
