// SPDX-License-Identifier: Apache-2.0
/**
 * A batched destination under faults, in production mode: the sample SIU channel
 * (`channels/siu-to-workforce-erp.channel.yaml`, as shipped) on two engine instances (child
 * processes) sharing a PostgreSQL schema and a RabbitMQ prefix of their own, its ERP labour-plan
 * batch going to the ERP stand-in, which answers every batch 503 for a while (each answer 150 ms
 * after the request, so that overlapping requests can be seen).
 *
 * While the ERP refuses batches, instance A is killed with SIGKILL during its batches' retry wait:
 * B takes its partitions over, and its batch goes on failing until its next retry is ~32 s away.
 * Then A starts again: B hands A's partitions back at once — its batch members let go while they
 * wait (the bus's `released` signal), instead of holding the hand-over until the batch is done —
 * and the ERP recovers. Checked: every labour-plan line applied once per idempotency key, in order
 * per appointment, every message SENT; the hand-over well before B's pending retry was due; no
 * request carrying an item answered while another carrying the same item was under way (no two
 * instances send one batch side by side); a message's history shows its own line and the batch's
 * metadata only. Only the engine instances fail: the machine's PostgreSQL and RabbitMQ are never
 * restarted.
 *
 * Skipped with the reason when PostgreSQL, RabbitMQ or rabbitmqctl is absent; a failure instead
 * when OSPREY_REQUIRE_SERVICES=1 (CI).
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { partitionOf } from '../../engine/message-bus/rabbitmq-topology.ts';
import { ErpStandIn } from '../fixtures/erp-stand-in.ts';
import { EngineProcess, freePort } from '../helpers/engine-process.ts';
import { parseAck, sendOne } from '../helpers/mllp-raw-client.ts';
import { cleanUp, productionConfigYaml, type Cluster, type Instance } from '../helpers/production-cluster.ts';
import { consumerCounts, findServices, queryOnce, skipOrFail, uniqueNames, type Services } from '../helpers/production-services.ts';
import { makeTempDir, REPO_ROOT, removeTempDirs } from '../helpers/test-engine.ts';
import { waitFor } from '../helpers/wait-for.ts';

const CHANNEL = 'siu-to-workforce-erp';
const LABOUR = 'erp-labor-plan';
const LABOUR_PATH = '/erp/labor-plans/batch';
const PARTITIONS = 4;
/** Appointments per partition of the labour-plan queue: every partition has waiting work. */
const PER_PARTITION = 3;
/** Booking, reschedule, modification: three labour-plan lines per appointment, in this order. */
const EVENTS = ['siu-s12-book-colonoscopy', 'siu-s13-reschedule-colonoscopy', 'siu-s14-modify-colonoscopy'];
/** The stand-in answers each batch this long after it arrived: a request is "under way" meanwhile. */
const ANSWER_MS = 150;
/** Attempts of B's batch before A comes back: its next retry is then 32 s (± 20 %) away. */
const ATTEMPTS_BEFORE_RESTART = 6;

/** Appointment ids (SCH-2.1, the channel's orderBy) spread so that each partition has PER_PARTITION. */
function appointments(tag: string): string[] {
  const perPartition = new Map<number, string[]>();
  for (let n = 0; [...perPartition.values()].filter((l) => l.length >= PER_PARTITION).length < PARTITIONS; n++) {
    const id = `${tag}-AP${n}`;
    const p = partitionOf(id, PARTITIONS);
    const list = perPartition.get(p) ?? [];
    if (list.length < PER_PARTITION) perPartition.set(p, [...list, id]);
  }
  return [...perPartition.values()].flat();
}

/** The sample message of `event` for appointment `appointment`, with its own control id. */
function siu(event: string, appointment: string, controlId: string): string {
  const text = readFileSync(join(REPO_ROOT, 'samples', 'hl7v2', 'siu', `${event}.hl7`), 'utf8')
    .replaceAll('SP-884210', appointment)
    .replaceAll('CS-PLC-30418', `CS-${appointment}`);
  const [msh, ...rest] = text.split('\r');
  const fields = msh!.split('|');
  fields[9] = controlId;
  return [fields.join('|'), ...rest].join('\r');
}

interface LogLine {
  message: string;
  timestamp: string;
  queue?: string;
}

/** The instance's JSON log lines so far (a line still being written is left for the next read). */
function logLines(instance: Instance): LogLine[] {
  const out: LogLine[] = [];
  for (const line of (instance.process?.log() ?? '').split('\n')) {
    try {
      if (line.startsWith('{')) out.push(JSON.parse(line) as LogLine);
    } catch {
      // incomplete
    }
  }
  return out;
}

describe('production mode: a batched destination (the sample SIU channel’s ERP labour batch) under faults', function () {
  this.timeout(300_000);
  let services: Services;
  let cluster: Cluster | undefined;

  before(async function () {
    this.timeout(60_000);
    const found = await findServices({ rabbitmqctl: true });
    if ('reason' in found) skipOrFail(this, found.reason);
    services = found as Services;
  });

  after(async function () {
    this.timeout(120_000);
    if (cluster) await cleanUp(cluster);
    removeTempDirs();
  });

  it('kill -9 during a batch retry wait, then a restart: the hand-over comes well before the retry, no batch goes out twice at once, every line once, in order', async () => {
    const { prefix, schema } = uniqueNames('batch');
    const standIn = await ErpStandIn.start();
    const dir = makeTempDir('production-batch');
    const channelsDir = join(dir, 'channels');
    mkdirSync(channelsDir);
    copyFileSync(join(REPO_ROOT, 'channels', `${CHANNEL}.channel.yaml`), join(channelsDir, `${CHANNEL}.channel.yaml`));
    const configFile = join(dir, 'osprey.yaml');
    // info: the bus's hand-overs are read from the engines' logs.
    writeFileSync(configFile, productionConfigYaml({ prefix, schema, channelsDir, partitions: PARTITIONS, rateLimits: { 'erp-api': { perSecond: 50, burst: 10 } }, logLevel: 'info' }));
    const instances: Instance[] = [];
    for (const name of ['A', 'B']) {
      const [httpPort, mllpPort] = [await freePort(), await freePort()];
      instances.push({
        name,
        httpPort,
        mllpPort,
        logFile: join(dir, `engine-${name}.log`),
        alive: false,
        env: {
          OSPREY_HTTP_PORT: String(httpPort),
          SIU_MLLP_PORT: String(mllpPort),
          WORKFORCE_URL: `${standIn.url}/workforce`,
          ERP_URL: `${standIn.url}/erp`,
          OSPREY_DATABASE_URL: services.databaseUrl,
          OSPREY_RABBITMQ_URL: services.rabbitmqUrl,
        },
      });
    }
    const c: Cluster = (cluster = { label: 'batch', prefix, schema, dir, configFile, services, standIn, instances });
    const [a, b] = instances as [Instance, Instance];
    const start = async (i: Instance): Promise<void> => {
      i.process = await EngineProcess.start({ configFile, env: i.env, httpPort: i.httpPort, logFile: i.logFile }, 60_000);
      i.alive = true;
    };
    const sql = <T>(text: string) => queryOnce<T>(services.databaseUrl, schema, text);

    let erpDown = true;
    standIn.setRule((r) => (r.path === LABOUR_PATH ? { status: erpDown ? 503 : 200, delayMs: ANSWER_MS } : undefined));

    await Promise.all(instances.map(start));
    // Each instance stands by on the other's partitions, so that B takes A's over at once.
    const queues = [`pipeline.${CHANNEL}`, `deliver.${CHANNEL}.${LABOUR}`, `deliver.${CHANNEL}.workforce-staffing`].flatMap((q) =>
      Array.from({ length: PARTITIONS }, (_, p) => `${prefix}.${q}.p${p}`),
    );
    await waitFor(async () => {
      const counts = await consumerCounts(prefix, services.rabbitmqctl);
      return queues.every((q) => counts.get(q) === 2);
    }, { timeoutMs: 60_000, intervalMs: 500, what: 'every partition queue to have a consumer from each instance' });

    // 1. The messages: each appointment's three events in order, appointments alternating between A and B.
    const tag = `B${Date.now().toString(36)}`;
    const appts = appointments(tag);
    const sent: Array<{ controlId: string; appointment: string; event: number }> = [];
    await Promise.all(
      appts.map(async (appointment, k) => {
        for (const [event, sample] of EVENTS.entries()) {
          const controlId = `${appointment}-E${event}`;
          const ack = parseAck(await sendOne(instances[k % 2]!.mllpPort, siu(sample, appointment, controlId), 15_000));
          // The samples ask for enhanced acknowledgment (MSH-15 AL): the commit ACK says stored.
          expect(ack.code, ack.text).to.equal('CA');
          sent.push({ controlId, appointment, event });
        }
      }),
    );

    // 2. Every appointment's first line has been refused once: both instances are in a batch retry wait. Kill A.
    await waitFor(async () => (await sql<{ n: number }>(`SELECT count(*)::int AS n FROM deliveries WHERE destination = '${LABOUR}' AND attempts >= 1`))[0]!.n >= appts.length, {
      timeoutMs: 60_000,
      intervalMs: 200,
      what: 'a refused attempt of every appointment’s first labour line',
    });
    a.alive = false;
    await a.process!.kill9();

    // 3. B, alone, has taken A's partitions, and its batch has failed until the next retry is far
    //    off (by then the killed A has long expired from B's membership: 3 intervals of 5 s).
    await waitFor(
      async () => (await sql<{ n: number }>(`SELECT coalesce(max(attempts), 0)::int AS n FROM deliveries WHERE destination = '${LABOUR}'`))[0]!.n >= ATTEMPTS_BEFORE_RESTART,
      { timeoutMs: 90_000, intervalMs: 200, what: `B's batch to reach attempt ${ATTEMPTS_BEFORE_RESTART}` },
    );

    // 4. A comes back. B must hand A's partitions back before its pending retry is due.
    const handOversBefore = logLines(b).filter((l) => l.message === 'bus partition handed over').length;
    const aStarting = Date.now();
    await start(a);
    const aReady = Date.now();
    const [pending] = await sql<{ due: number }>(
      `SELECT min(next_attempt_at)::float8 AS due FROM deliveries WHERE destination = '${LABOUR}' AND state = 'QUEUED' AND attempts >= ${ATTEMPTS_BEFORE_RESTART}`,
    );
    const due = pending!.due;
    expect(due, 'B has a batch waiting for its retry').to.be.greaterThan(aReady);
    const labourHandOver = await waitFor(
      () =>
        logLines(b)
          .filter((l) => l.message === 'bus partition handed over')
          .slice(handOversBefore)
          .find((l) => l.queue?.includes(`.deliver.${CHANNEL}.${LABOUR}.`)),
      { timeoutMs: Math.max(1000, due - Date.now() + 60_000), intervalMs: 100, what: 'B to hand a labour-plan partition back to A' },
    );
    const handedAt = Date.parse(labourHandOver.timestamp);
    console.log(
      `      [production batch] A restarted (ready in ${((aReady - aStarting) / 1000).toFixed(1)} s); B handed ${labourHandOver.queue!.slice(prefix.length + 1)} back ` +
        `${((handedAt - aStarting) / 1000).toFixed(1)} s after A's start, ` +
        `${((due - handedAt) / 1000).toFixed(1)} s before its batch's next retry was due`,
    );
    expect(due - handedAt, 'the hand-over comes well before the pending retry (it does not wait for the batch)').to.be.greaterThan(3000);

    // 5. The ERP recovers: everything drains.
    erpDown = false;
    const total = appts.length * EVENTS.length;
    await waitFor(
      async () => {
        const res = await b.process!.get('/api/channels');
        return (res.body.channels.find((x: any) => x.name === CHANNEL)?.counts?.SENT ?? 0) === total;
      },
      { timeoutMs: 120_000, intervalMs: 250, what: `all ${total} messages SENT` },
    );

    // 6. Every line applied once, under its own key; in order per appointment.
    const stored = (await b.process!.get(`/api/messages?channel=${CHANNEL}&limit=1000`)).body.messages as Array<{ id: string; keys: { controlId: string }; state: string }>;
    expect(stored.map((m) => m.state).filter((s) => s !== 'SENT')).to.deep.equal([]);
    const byControlId = new Map(stored.map((m) => [m.keys.controlId, m.id]));
    const expected = new Map(sent.map((s) => [`${byControlId.get(s.controlId)}:${LABOUR}:0`, s]));
    const applied = standIn.appliedTo(LABOUR_PATH).map((x) => x.idempotencyKey);
    expect(new Set(applied).size, 'no key applied twice').to.equal(applied.length);
    expect(applied.slice().sort()).to.deep.equal([...expected.keys()].sort());
    const last = new Map<string, number>();
    for (const arrival of standIn.arrivals.filter((x) => x.path === LABOUR_PATH && !x.duplicate)) {
      const s = expected.get(arrival.idempotencyKey)!;
      expect(s.event, `${s.controlId} after event ${last.get(s.appointment)} of its appointment`).to.be.greaterThan(last.get(s.appointment) ?? -1);
      last.set(s.appointment, s.event);
    }

    // 7. No item in two requests under way at once (answered ones: a killed sender's request is abandoned).
    const requests = standIn.requestsTo(LABOUR_PATH).filter((r) => r.status !== undefined);
    const keysOf = (r: (typeof requests)[number]) => new Set((r.body as Array<{ idempotencyKey: string }>).map((x) => x.idempotencyKey));
    const overlaps: string[] = [];
    for (const [i, r] of requests.entries()) {
      for (const q of requests.slice(i + 1)) {
        if (Math.abs(q.at - r.at) >= ANSWER_MS) continue;
        const shared = [...keysOf(r)].filter((k) => keysOf(q).has(k));
        if (shared.length > 0) overlaps.push(`requests ${r.n} and ${q.n} both carry ${shared[0]}`);
      }
    }
    expect(overlaps, 'an item in two requests under way at once').to.deep.equal([]);

    // 8. A message's history: its own line and the batch's metadata, never another appointment's line.
    const oneId = byControlId.get(sent[0]!.controlId)!;
    const history = (await b.process!.get(`/api/messages/${oneId}`)).body;
    const labour = history.deliveries.find((d: any) => d.destination === LABOUR);
    expect(labour.attemptLog.length, 'refused, then sent').to.be.greaterThan(1);
    for (const entry of labour.attemptLog) {
      expect(JSON.parse(entry.request.body).idempotencyKey).to.equal(labour.id);
      expect(entry.batch.size).to.be.a('number');
      expect(entry.response).to.deep.equal({ status: entry.outcome === 'SENT' ? 200 : 503 });
    }
    for (const other of expected.keys()) if (other !== labour.id) expect(JSON.stringify(history)).not.to.include(other);
    console.log(
      `      [production batch] ${total} messages, ${applied.length} labour lines applied once each in ${standIn.requestsTo(LABOUR_PATH).length} batch requests ` +
        `(${standIn.requestsTo(LABOUR_PATH).filter((r) => r.status === 503).length} refused); largest batch attempt in one history: ${Math.max(...labour.attemptLog.map((e: any) => e.batch.size))} items`,
    );
  });
});
