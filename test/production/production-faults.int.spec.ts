// SPDX-License-Identifier: Apache-2.0
/**
 * Production mode under faults, against a REAL RabbitMQ node and a REAL PostgreSQL of the test's
 * own on 127.0.0.1 (test/helpers/own-services.ts: started for this file, restarted by its faults,
 * stopped and removed afterwards; the machine's services are not touched).
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
 *   (a) RabbitMQ restarts (`rabbitmqctl stop_app`, a few seconds, `start_app`, on the test's node); both instances
 *       report not-ready (`/readyz` 503) while it is down and ready again after;
 *   (b) one instance is killed with SIGKILL; its senders fail over to the other one;
 *   (c) the ERP answers 503 for a while, then recovers;
 *   (d) PostgreSQL restarts (a fast shutdown as `pg_ctl stop -m fast` does, a few seconds, a new
 *       postmaster on the same data): ingest
 *       answers AE while the store is away (the senders resend), deliveries wait, nothing is lost;
 *   (e) the ERP is down while RabbitMQ restarts.
 *
 * (f), a RabbitMQ cluster losing a node, is in rabbitmq-cluster.int.spec.ts. The stream and the
 * checks below are test/helpers/fault-stream.ts.
 *
 * After each: every message was acknowledged AA in the end and is stored once, in its final state;
 * each expected idempotency key (`<message id>:erp:0`) was applied by the stand-in exactly once
 * (repeats of an applied key are allowed, counted and printed); per patient, the keys applied at
 * the stand-in follow the patient's sequence (arrivals never go back in sequence, ignoring repeats
 * of an already-applied key — the crash spec's definition); and `GET /api/channels` on every
 * running instance shows the counts the stand-in saw. Figures are printed.
 *
 * Skipped with the reason when PostgreSQL's server programs (initdb, postgres) or RabbitMQ's scripts
 * are absent; a failure instead when OSPREY_REQUIRE_SERVICES=1 (CI).
 */
import { expect } from 'chai';
import { ok, unavailable } from '../fixtures/erp-stand-in.ts';
import { CONNECTIONS, readyStatus, report, startStream, streamEndAfterService, verify } from '../helpers/fault-stream.ts';
import { cleanUp, PARTITIONS, PATH, prepareCluster, startInstances, waitForStandbys, type Cluster, type Instance } from '../helpers/production-cluster.ts';
import { ownServicesUnavailable, startOwnServices, stopAllOwnServices, type OwnServices } from '../helpers/own-services.ts';
import { restartRabbitMq, skipOrFail, type Services } from '../helpers/production-services.ts';
import { removeTempDirs } from '../helpers/test-engine.ts';
import { sleep, waitFor } from '../helpers/wait-for.ts';

describe('production mode under faults (two engine instances, real RabbitMQ and PostgreSQL)', function () {
  this.timeout(300_000);
  let services: Services;
  let own: OwnServices | undefined;
  let cluster: Cluster | undefined;

  before(async function () {
    this.timeout(180_000);
    const missing = ownServicesUnavailable({ postgres: true, rabbitmq: true });
    if (missing) skipOrFail(this, missing);
    const started = Date.now();
    own = await startOwnServices({ postgres: true, rabbitmq: true });
    services = own.services;
    console.log(`      [production faults] PostgreSQL and a RabbitMQ node of the test's own up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });

  afterEach(async function () {
    this.timeout(120_000);
    const c = cluster;
    cluster = undefined;
    if (c) await cleanUp(c);
  });

  after(async function () {
    this.timeout(120_000);
    await own?.stop();
    await stopAllOwnServices(); // one still starting when `before` timed out
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
      fault = restartRabbitMq(own!.rabbitmq!, 5000, async () => {
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
        .then(() => restartRabbitMq(own!.rabbitmq!, 5000))
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
      fault = own!.postgres!.restart(4000);
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
