// SPDX-License-Identifier: Apache-2.0
/**
 * The SFTP source in production mode: two engine instances (child processes) on the machine's
 * PostgreSQL and RabbitMQ (a schema and a bus prefix of the test's own) run the same SFTP channel
 * against a real OpenSSH server started by the test (test/helpers/throwaway-sshd.ts), delivering to
 * the ERP stand-in (a real HTTP server). The channel has no transform step
 * (test/helpers/sftp-test-channel.ts), so each claim payment reaches the ERP as `{ x12: <its text> }`
 * and its claim id (CLP01) is read back from there.
 *
 * 1. Several files dropped: one instance holds the channel's lease (a PostgreSQL advisory lock,
 *    engine/message-store/single-active.ts) and polls, the other stands by; each file is taken by
 *    exactly one instance (one ledger row per file, one "sftp file taken" log line over both
 *    instances' logs) and every claim is applied at the ERP once.
 * 2. The active instance killed with SIGKILL mid-file: the server frees the lock with the killed
 *    session, the other instance takes the lease, resumes the file after its stored records and
 *    finishes it; every claim applied once, none lost, the ledger shows the file DONE.
 *
 * Figures printed: takeover time (kill → the survivor's source polling or processing) and claims/s
 * (drop → last claim applied). Skipped with the reason when PostgreSQL, RabbitMQ or sshd is absent;
 * a failure with OSPREY_REQUIRE_SERVICES=1.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { ErpStandIn } from '../fixtures/erp-stand-in.ts';
import { EngineProcess, freePort } from '../helpers/engine-process.ts';
import { generate835 } from '../helpers/generate-835.ts';
import { cleanUp, diagnostics, productionConfigYaml, type Cluster, type Instance } from '../helpers/production-cluster.ts';
import { findServices, skipOrFail, uniqueNames, type Services } from '../helpers/production-services.ts';
import { claimIdOf, sftpTestChannelYaml } from '../helpers/sftp-test-channel.ts';
import { makeTempDir, removeTempDirs } from '../helpers/test-engine.ts';
import { startThrowawaySshd, stopThrowawaySshds, throwawaySshdUnavailable, type ThrowawaySshd } from '../helpers/throwaway-sshd.ts';
import { waitFor } from '../helpers/wait-for.ts';

const PATH = '/erp/claims';
/** The poller's states that mean "holds the lease and works the inbox". */
const ACTIVE_STATES: readonly string[] = ['connecting', 'polling', 'processing'];

/** The channel's source view (`GET /api/channels`) on one instance. */
async function sourceView(p: EngineProcess, channel: string): Promise<any> {
  const res = await p.get('/api/channels');
  return res.body.channels.find((c: any) => c.name === channel)?.source;
}

/** The channel's ledger rows (`GET /api/files?channel=`) as one instance shows them, newest first. */
async function files(p: EngineProcess, channel: string): Promise<any[]> {
  const res = await p.get(`/api/files?channel=${encodeURIComponent(channel)}`);
  expect(res.status).to.equal(200);
  return res.body.files;
}

/** Stored messages of the channel per state (`GET /api/channels` counts). */
async function counts(p: EngineProcess, channel: string): Promise<Record<string, number>> {
  const res = await p.get('/api/channels');
  return res.body.channels.find((c: any) => c.name === channel)?.counts ?? {};
}
const total = (c: Record<string, number>): number => Object.values(c).reduce((a, b) => a + b, 0);

/** Writes a generated 835 under the temp-name convention (`.name.filepart`, then renamed), so no poll sees it half written. */
async function drop835(inbox: string, name: string, options: Parameters<typeof generate835>[1]): Promise<Awaited<ReturnType<typeof generate835>>> {
  const temp = join(inbox, `.${name}.filepart`);
  const result = await generate835(temp, options);
  renameSync(temp, join(inbox, name));
  return result;
}

/** The files an instance's log says it took ("sftp file taken"; the engine logs JSON lines at info). */
function filesTakenBy(instance: Instance): string[] {
  const out: string[] = [];
  for (const line of (instance.process?.log() ?? '').split('\n')) {
    if (!line.includes('sftp file taken')) continue;
    try {
      const entry = JSON.parse(line) as { message?: string; file?: string };
      if (entry.message === 'sftp file taken' && entry.file) out.push(entry.file);
    } catch {
      // a line that is not JSON (a stack trace) is not a pickup
    }
  }
  return out;
}

describe('production mode: SFTP source, two instances, one poller (real PostgreSQL, RabbitMQ and OpenSSH server)', function () {
  this.timeout(300_000);
  let services: Services;
  let sshd: ThrowawaySshd;
  let cluster: Cluster | undefined;
  let seq = 0;

  before(async function () {
    this.timeout(60_000);
    const found = await findServices();
    if ('reason' in found) skipOrFail(this, found.reason);
    const missing = throwawaySshdUnavailable();
    if (missing) skipOrFail(this, missing);
    services = found as Services;
    sshd = await startThrowawaySshd();
  });

  afterEach(async function () {
    this.timeout(120_000);
    const c = cluster;
    cluster = undefined;
    if (c) await cleanUp(c);
  });

  after(async function () {
    this.timeout(60_000);
    await stopThrowawaySshds();
    removeTempDirs();
  });

  /**
   * An SFTP channel on a fresh inbox, a production-mode config of its own (schema, bus prefix) and
   * two instances started together. Shaped as the production cluster helper's {@link Cluster} so
   * its cleanUp and diagnostics apply.
   */
  async function startPair(label: string): Promise<{ c: Cluster; channel: string; inbox: string }> {
    const channel = `sftp-prod-${++seq}`;
    const { prefix, schema } = uniqueNames(label);
    const standIn = await ErpStandIn.start();
    const dir = makeTempDir(`production-${label}`);
    const inbox = join(sshd.root, `${channel}-${prefix}`, 'inbox');
    mkdirSync(inbox, { recursive: true });
    const channelsDir = join(dir, 'channels');
    mkdirSync(channelsDir);
    // Attempts enough that no claim dead-letters while the partitions of a killed instance move.
    writeFileSync(join(channelsDir, `${channel}.channel.yaml`), sftpTestChannelYaml({ name: channel, sshd, directory: inbox, url: `${standIn.url}${PATH}`, pollInterval: '200ms', maxAttempts: 10_000 }));
    const configFile = join(dir, 'osprey.yaml');
    // Info level: the "sftp file taken" lines tell which instance took each file.
    writeFileSync(configFile, productionConfigYaml({ prefix, schema, channelsDir, partitions: 8, poolSize: 10, prefetch: 50, logLevel: 'info' }));
    const instances: Instance[] = [];
    for (const name of ['A', 'B']) {
      const httpPort = await freePort();
      instances.push({
        name,
        httpPort,
        mllpPort: 0,
        logFile: join(dir, `engine-${name}.log`),
        alive: false,
        env: { OSPREY_HTTP_PORT: String(httpPort), OSPREY_DATABASE_URL: services.databaseUrl, OSPREY_RABBITMQ_URL: services.rabbitmqUrl },
      });
    }
    const c: Cluster = { label, prefix, schema, dir, configFile, services, standIn, instances };
    cluster = c;
    await Promise.all(
      instances.map(async (i) => {
        i.process = await EngineProcess.start({ configFile, env: i.env, httpPort: i.httpPort, logFile: i.logFile }, 60_000);
        i.alive = true;
      }),
    );
    return { c, channel, inbox };
  }

  /** Waits until one instance's source is active and the other's standby; returns [active, standby]. */
  async function activeAndStandby(c: Cluster, channel: string, timeoutMs = 30_000): Promise<[Instance, Instance]> {
    return waitFor(
      async () => {
        const alive = c.instances.filter((i) => i.alive);
        const states = await Promise.all(alive.map(async (i) => (await sourceView(i.process!, channel))?.state as string | undefined));
        const active = alive.filter((_, k) => ACTIVE_STATES.includes(states[k] ?? ''));
        const standby = alive.filter((_, k) => states[k] === 'standby');
        return active.length === 1 && standby.length === alive.length - 1 && ([active[0]!, standby[0] ?? active[0]!] as [Instance, Instance]);
      },
      { timeoutMs, intervalMs: 50, what: 'one instance polling and the other standing by' },
    );
  }

  /** Claim ids first applied at the ERP (one per idempotency key). */
  const applied = (erp: ErpStandIn): string[] => erp.appliedTo(PATH).map((a) => claimIdOf(a.payload) ?? '?');

  /** Every claim applied once: as many distinct claim ids as claims, and no claim id applied twice (under two keys). */
  function expectEachOnce(erp: ErpStandIn, expected: number): void {
    const ids = applied(erp);
    expect(new Set(ids).size, 'distinct claims at the ERP').to.equal(expected);
    expect(ids.length, 'claims applied (one applied twice under two idempotency keys would count twice)').to.equal(expected);
  }

  it('several files: one instance polls, the other stands by; each file taken once, every claim applied once', async () => {
    const { c, channel, inbox } = await startPair('sftppair');
    const [active, standby] = await activeAndStandby(c, channel);
    const FILES = 5;
    const CLAIMS = 400;
    const droppedAt = Date.now();
    for (let f = 0; f < FILES; f++) await drop835(inbox, `remit-${f}.835`, { claims: CLAIMS, seed: 100 + f });
    try {
      await waitFor(async () => (await files(active.process!, channel)).filter((r) => r.state === 'DONE').length === FILES, { timeoutMs: 60_000, intervalMs: 100, what: `${FILES} files DONE` });
      await waitFor(() => new Set(applied(c.standIn)).size >= FILES * CLAIMS, { timeoutMs: 60_000, intervalMs: 100, what: `${FILES * CLAIMS} claims at the ERP` });
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${await diagnostics(c)}`);
    }
    const spanS = (Math.max(...c.standIn.appliedTo(PATH).map((a) => a.at)) - droppedAt) / 1000;

    // The ledger is shared: both instances show one pickup per file, each DONE with every record.
    for (const i of c.instances) {
      const rows = await files(i.process!, channel);
      expect(rows.map((r) => r.name).sort(), `ledger on ${i.name}`).to.deep.equal(Array.from({ length: FILES }, (_, f) => `remit-${f}.835`));
      for (const r of rows) expect(r, `${r.name} on ${i.name}`).to.include({ state: 'DONE', recordsTotal: CLAIMS, recordsDone: CLAIMS, version: 1 });
    }
    // Taken by the lease holder alone, each once; the other instance never held the lease.
    expect(filesTakenBy(active).sort(), `files taken by ${active.name}`).to.deep.equal(Array.from({ length: FILES }, (_, f) => `remit-${f}.835`));
    expect(filesTakenBy(standby), `files taken by ${standby.name}`).to.deep.equal([]);
    expect((await sourceView(standby.process!, channel)).state).to.equal('standby');
    expect(ACTIVE_STATES).to.include((await sourceView(active.process!, channel)).state);

    const c2 = await waitFor(async () => {
      const x = await counts(active.process!, channel);
      return !x.RECEIVED && !x.QUEUED && x;
    }, { timeoutMs: 30_000, intervalMs: 100, what: 'every message final' });
    expect(total(c2), `one message per claim (${JSON.stringify(c2)})`).to.equal(FILES * CLAIMS);
    expectEachOnce(c.standIn, FILES * CLAIMS);
    const redelivered = c.standIn.requestsTo(PATH).length - FILES * CLAIMS;
    console.log(`      [sftp pair] ${FILES} files × ${CLAIMS} claims by ${active.name} (${standby.name} standby): ${((FILES * CLAIMS) / spanS).toFixed(0)} claims/s drop → last applied, ${redelivered} request(s) beyond one per claim`);
  });

  it('kill -9 of the active instance mid-file: the other takes the lease, finishes the file; every claim applied once, the file DONE', async () => {
    const CLAIMS = 20_000;
    const { c, channel, inbox } = await startPair('sftpkill');
    const [active, survivor] = await activeAndStandby(c, channel);
    const droppedAt = Date.now();
    await drop835(inbox, 'big.835', { claims: CLAIMS, seed: 31, payers: 2 });
    // Killed while the file is being stored and delivered: some claims at the ERP, not all stored.
    let seen: unknown;
    const at = await waitFor(async () => {
      const [f] = await files(active.process!, channel);
      const delivered = c.standIn.appliedTo(PATH).length;
      seen = { file: f, delivered };
      return f?.state === 'PROCESSING' && f.recordsDone >= 4_000 && f.recordsDone < CLAIMS && delivered > 0 && { stored: f.recordsDone as number, delivered };
    }, { timeoutMs: 60_000, intervalMs: 10, what: 'big.835 part-way through' }).catch(async (err: Error) => {
      throw new Error(`${err.message}; last seen ${JSON.stringify(seen)}\n${await diagnostics(c)}`);
    });
    await active.process!.kill9();
    active.alive = false;
    const killedAt = Date.now();

    // The survivor's next try takes the lock the killed session held.
    await waitFor(async () => ACTIVE_STATES.includes((await sourceView(survivor.process!, channel))?.state), { timeoutMs: 30_000, intervalMs: 10, what: `${survivor.name} to take the lease` });
    const takeoverMs = Date.now() - killedAt;
    // Resumed: the survivor stores the file's next records (downloaded again, stored ones skipped).
    const storedAtKill = ((await files(survivor.process!, channel))[0]?.recordsDone as number | undefined) ?? 0;
    await waitFor(async () => (await files(survivor.process!, channel))[0]?.recordsDone > storedAtKill, { timeoutMs: 60_000, intervalMs: 20, what: `${survivor.name} to store records of big.835 again` });
    const resumeMs = Date.now() - killedAt;

    try {
      await waitFor(async () => (await files(survivor.process!, channel))[0]?.state === 'DONE', { timeoutMs: 120_000, intervalMs: 100, what: 'big.835 DONE on the survivor' });
      await waitFor(() => new Set(applied(c.standIn)).size >= CLAIMS, { timeoutMs: 120_000, intervalMs: 100, what: `${CLAIMS} claims at the ERP` });
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${await diagnostics(c)}`);
    }
    const spanS = (Math.max(...c.standIn.appliedTo(PATH).map((a) => a.at)) - droppedAt) / 1000;
    const final = await waitFor(async () => {
      const x = await counts(survivor.process!, channel);
      return !x.RECEIVED && !x.QUEUED && x;
    }, { timeoutMs: 60_000, intervalMs: 100, what: 'every message final' });
    expect(total(final), `one message per claim (${JSON.stringify(final)})`).to.equal(CLAIMS);
    expect(final.SENT ?? 0, JSON.stringify(final)).to.equal(CLAIMS);
    expectEachOnce(c.standIn, CLAIMS);
    const rows = await files(survivor.process!, channel);
    expect(rows, 'one pickup of big.835 (resumed, not taken again)').to.have.length(1);
    expect(rows[0]).to.include({ name: 'big.835', state: 'DONE', recordsTotal: CLAIMS, recordsDone: CLAIMS, version: 1 });
    expect(filesTakenBy(survivor), 'the survivor resumed big.835').to.deep.equal(['big.835']);
    const redelivered = c.standIn.requestsTo(PATH).length - CLAIMS;
    console.log(
      `      [sftp kill -9] killed ${active.name} at ${at.stored}/${CLAIMS} stored, ${at.delivered} applied; ${survivor.name} took the lease in ${takeoverMs} ms, stored again after ${resumeMs} ms; ` +
        `${(CLAIMS / spanS).toFixed(0)} claims/s drop → last applied (${spanS.toFixed(1)} s), ${redelivered} request(s) beyond one per claim`,
    );
  });
});
