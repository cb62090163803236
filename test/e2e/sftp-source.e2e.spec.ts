// SPDX-License-Identifier: Apache-2.0
/**
 * The SFTP source end to end: a real OpenSSH server started by the test on 127.0.0.1
 * (test/helpers/throwaway-sshd.ts), a real engine (in this process, or as a child process where it
 * is killed with SIGKILL or its memory is measured), and the ERP as a real HTTP server
 * (test/fixtures/erp-stand-in.ts). Each case has its own channel (test/helpers/sftp-test-channel.ts:
 * no transform, so each claim payment reaches the ERP as `{ x12: <its text> }`), its own inbox and
 * its own engine, so the cases do not see each other's files.
 *
 * Files are written straight into the server's directory (the SFTP user sees it at the same path):
 * what the poller sees is what sshd serves. "Never taken early" is checked over polls the poller
 * reports (`lastPollAt` in the channel's API view advancing), not over a duration.
 */
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { ErpStandIn } from '../fixtures/erp-stand-in.ts';
import { embeddedEngineConfigYaml, EngineProcess, freePort } from '../helpers/engine-process.ts';
import { generate835 } from '../helpers/generate-835.ts';
import { claimIdOf, sftpTestChannelYaml, type SftpTestChannelOptions } from '../helpers/sftp-test-channel.ts';
import { channelsDir } from '../helpers/test-channel.ts';
import { makeTempDir, removeTempDirs, TestEngine } from '../helpers/test-engine.ts';
import { startThrowawaySshd, stopThrowawaySshds, throwawaySshdUnavailable, type ThrowawaySshd } from '../helpers/throwaway-sshd.ts';
import { waitFor } from '../helpers/wait-for.ts';

const PATH = '/erp/claims';

interface ApiLike {
  get<T = any>(path: string): Promise<{ status: number; body: T }>;
}

/** The channel's source view (`GET /api/channels`). */
async function sourceView(api: ApiLike, channel: string): Promise<any> {
  const res = await api.get('/api/channels');
  return res.body.channels.find((c: any) => c.name === channel)?.source;
}

/** The channel's ledger rows (`GET /api/files?channel=`), newest first. */
async function files(api: ApiLike, channel: string): Promise<any[]> {
  const res = await api.get(`/api/files?channel=${encodeURIComponent(channel)}`);
  expect(res.status).to.equal(200);
  return res.body.files;
}

/** Stored messages of the channel, by state (`GET /api/channels` counts). */
async function counts(api: ApiLike, channel: string): Promise<Record<string, number>> {
  const res = await api.get('/api/channels');
  return res.body.channels.find((c: any) => c.name === channel)?.counts ?? {};
}
const total = (c: Record<string, number>): number => Object.values(c).reduce((a, b) => a + b, 0);

/** Waits until the poller has finished `n` more polls than when called (each poll sets lastPollAt). */
async function polls(api: ApiLike, channel: string, n = 2): Promise<void> {
  const seen = new Set<string>();
  const first = (await sourceView(api, channel))?.lastPollAt;
  await waitFor(
    async () => {
      const at = (await sourceView(api, channel))?.lastPollAt;
      if (at && at !== first) seen.add(at);
      return seen.size >= n;
    },
    { timeoutMs: 10_000, intervalMs: 20, what: `${n} polls of ${channel}` },
  );
}

/**
 * Writes a generated 835 into `inbox` as the temp-name convention wants (`.name.filepart`, then a
 * rename), so the poller never sees it half written.
 */
async function drop835(inbox: string, name: string, options: Parameters<typeof generate835>[1]): Promise<Awaited<ReturnType<typeof generate835>>> {
  const temp = join(inbox, `.${name}.filepart`);
  const result = await generate835(temp, options);
  renameSync(temp, join(inbox, name));
  return result;
}

/** Copies a file into `inbox` under a temporary name, then renames it (a complete upload). */
function place(source: string, inbox: string, name: string): void {
  const temp = join(inbox, `${name}.tmp`);
  copyFileSync(source, temp);
  renameSync(temp, join(inbox, name));
}

/** Claim ids applied at the stand-in (first applications only), in order. */
const appliedClaims = (erp: ErpStandIn): string[] => erp.applied.filter((a) => a.path === PATH).map((a) => claimIdOf(a.payload) ?? '?');

/** Every claim id applied once, none twice. */
function expectEachOnce(erp: ErpStandIn, expected: number): void {
  const ids = appliedClaims(erp);
  const distinct = new Set(ids);
  expect(distinct.size, 'distinct claims at the ERP').to.equal(expected);
  expect(ids.length, 'claims applied (a claim applied twice under two keys would count twice)').to.equal(expected);
}

describe('SFTP source end to end (real OpenSSH server, real engine, ERP stand-in)', function () {
  this.timeout(240_000);
  let sshd: ThrowawaySshd;
  let erp: ErpStandIn;
  let engine: TestEngine | undefined;
  let seq = 0;

  before(async function () {
    const missing = throwawaySshdUnavailable();
    if (missing) {
      if (process.env.CI) throw new Error(missing);
      this.skip();
    }
    sshd = await startThrowawaySshd();
  });
  beforeEach(async () => {
    erp = await ErpStandIn.start();
  });
  afterEach(async () => {
    await engine?.stop();
    engine = undefined;
    await erp.close();
  });
  after(async () => {
    await stopThrowawaySshds();
    removeTempDirs();
  });

  /** A fresh inbox on the shared server and an in-process engine running one channel on it. */
  async function channel(extra: Partial<SftpTestChannelOptions> = {}, server: ThrowawaySshd = sshd): Promise<{ name: string; inbox: string; base: string }> {
    const name = `sftp-e2e-${++seq}`;
    const base = join(server.root, name);
    const inbox = join(base, 'inbox');
    mkdirSync(inbox, { recursive: true });
    const dir = channelsDir({ [`${name}.channel.yaml`]: sftpTestChannelYaml({ name, sshd: server, directory: inbox, url: `${erp.url}${PATH}`, ...extra }) });
    engine = await TestEngine.start({ channelsDir: dir });
    return { name, inbox, base };
  }

  describe('safe pickup', () => {
    it('takes a file uploaded in pieces under a temporary name only after its rename', async () => {
      const { name, inbox, base } = await channel();
      const complete = join(makeTempDir('sftp-gen'), 'claims.835');
      await generate835(complete, { claims: 40, seed: 11 });
      const bytes = readFileSync(complete);
      const tempNames = [join(inbox, '.claims.835.filepart'), join(inbox, 'claims2.835.tmp')];
      for (const temp of tempNames) {
        // Four pieces, each followed by two polls that must take nothing.
        for (let i = 0; i < 4; i++) {
          appendFileSync(temp, bytes.subarray(Math.floor((i * bytes.length) / 4), Math.floor(((i + 1) * bytes.length) / 4)));
          await polls(engine!, name);
          expect(await files(engine!, name), `nothing taken while ${temp} is uploading`).to.deep.equal([]);
        }
      }
      expect(erp.applied).to.have.length(0);
      renameSync(tempNames[0]!, join(inbox, 'claims.835'));
      const [done] = await waitFor(async () => (await files(engine!, name)).filter((f) => f.state === 'DONE').length === 1 && files(engine!, name), { timeoutMs: 15_000, what: 'claims.835 DONE' });
      expect(done).to.include({ name: 'claims.835', recordsTotal: 40, recordsDone: 40, recordsErrored: 0, version: 1 });
      await waitFor(() => erp.applied.length >= 40, { timeoutMs: 15_000, what: '40 claims at the ERP' });
      expectEachOnce(erp, 40);
      // Archived under a dated folder beside the inbox; the other upload is still untouched.
      expect(done.movedTo).to.match(new RegExp(`^${base}/archive/\\d{4}-\\d{2}-\\d{2}/claims\\.835$`));
      expect(existsSync(done.movedTo)).to.equal(true);
      expect(readdirSync(inbox)).to.deep.equal(['claims2.835.tmp']);
    });

    it('takes a file once its marker file is dropped, and deletes the marker', async () => {
      const { name, inbox } = await channel({ pickup: 'marker' });
      await generate835(join(inbox, 'remit.835'), { claims: 12, seed: 12 });
      await polls(engine!, name);
      expect(await files(engine!, name), 'no marker yet: not taken').to.deep.equal([]);
      writeFileSync(join(inbox, 'remit.835.done'), '');
      await waitFor(async () => (await files(engine!, name))[0]?.state === 'DONE', { timeoutMs: 15_000, what: 'remit.835 DONE' });
      await waitFor(() => erp.applied.length >= 12, { timeoutMs: 15_000, what: '12 claims at the ERP' });
      expectEachOnce(erp, 12);
      expect(readdirSync(inbox), 'file archived and marker deleted').to.deep.equal([]);
    });
  });

  describe('structural check', () => {
    it('quarantines a truncated 835 under error/ with a .reason file and stores nothing of it', async () => {
      const { name, inbox, base } = await channel();
      const result = await drop835(inbox, 'cut.835', { claims: 30, seed: 13, truncateAfterClaims: 17 });
      expect(result.truncated).to.equal(true);
      const [file] = await waitFor(async () => (await files(engine!, name)).filter((f) => f.state === 'QUARANTINED').length === 1 && files(engine!, name), { timeoutMs: 15_000, what: 'cut.835 QUARANTINED' });
      expect(file.error.code).to.equal('OSPREY_ERR_X12_ENVELOPE');
      expect(file.movedTo).to.equal(join(base, 'error', 'cut.835'));
      expect(existsSync(file.movedTo)).to.equal(true);
      const reason = readFileSync(`${file.movedTo}.reason`, 'utf8');
      expect(reason).to.include('code: OSPREY_ERR_X12_ENVELOPE').and.include('file: cut.835');
      expect(readdirSync(inbox)).to.deep.equal([]);
      await polls(engine!, name);
      expect(total(await counts(engine!, name)), 'no record of a refused file is stored').to.equal(0);
      expect(erp.requests).to.have.length(0);
    });
  });

  describe('exactly once per record', () => {
    it('recognises a re-drop of the same content (ledger DUPLICATE) and processes nothing again', async () => {
      const { name, inbox } = await channel();
      const gen = join(makeTempDir('sftp-gen'), 'a.835');
      await generate835(gen, { claims: 25, seed: 14 });
      place(gen, inbox, 'a.835');
      await waitFor(() => erp.applied.length >= 25, { timeoutMs: 15_000, what: '25 claims at the ERP' });
      await waitFor(async () => (await files(engine!, name))[0]?.state === 'DONE', { timeoutMs: 15_000, what: 'a.835 DONE' });
      place(gen, inbox, 'a.835');
      const rows = await waitFor(async () => {
        const r = await files(engine!, name);
        return r.length === 2 && r[0].state !== 'PROCESSING' && r;
      }, { timeoutMs: 15_000, what: 'the re-drop recorded' });
      expect(rows.map((r: any) => r.state)).to.deep.equal(['DUPLICATE', 'DONE']);
      expect(rows[0].contentHash).to.equal(rows[1].contentHash);
      expect(readdirSync(inbox), 'the re-drop is archived too').to.deep.equal([]);
      await polls(engine!, name);
      expect(total(await counts(engine!, name)), 'records stored once').to.equal(25);
      expectEachOnce(erp, 25);
    });

    it('takes a corrected re-drop under the same name as a new version: posted claims deduplicated, new ones processed', async () => {
      const { name, inbox } = await channel();
      // The same seed gives the same claims (CLP01) under the same payer and TRN02; the corrected
      // file holds 10 more.
      await drop835(inbox, 'b.835', { claims: 20, seed: 15 });
      await waitFor(() => erp.applied.length >= 20, { timeoutMs: 15_000, what: '20 claims at the ERP' });
      await waitFor(async () => (await files(engine!, name))[0]?.state === 'DONE', { timeoutMs: 15_000, what: 'b.835 DONE' });
      const gen = join(makeTempDir('sftp-gen'), 'b.835');
      await generate835(gen, { claims: 30, seed: 15 });
      place(gen, inbox, 'b.835');
      const rows = await waitFor(async () => {
        const r = await files(engine!, name);
        return r.length === 2 && r[0].state === 'DONE' && r;
      }, { timeoutMs: 15_000, what: 'the corrected b.835 DONE' });
      expect(rows[0]).to.include({ name: 'b.835', version: 2, recordsTotal: 30 });
      expect(rows[0].contentHash).to.not.equal(rows[1].contentHash);
      await waitFor(() => erp.applied.length >= 30, { timeoutMs: 15_000, what: '30 claims at the ERP' });
      await polls(engine!, name);
      expectEachOnce(erp, 30);
      // A duplicate record is acknowledged with the original's id and not stored again: 20 messages
      // of the first version and the 10 new claims of the second.
      expect(total(await counts(engine!, name))).to.equal(30);
      const [latest] = await files(engine!, name);
      expect(latest.recordsDone, 'records of version 2 stored as messages of their own').to.equal(10);
    });
  });

  describe('connection', () => {
    it('refuses a changed host key, naming both fingerprints, and takes nothing', async () => {
      const own = await startThrowawaySshd();
      try {
        const pinned = own.hostKeyFingerprint;
        const { name, inbox } = await channel({}, own);
        await polls(engine!, name, 1);
        const presented = await own.replaceHostKey();
        await drop835(inbox, 'c.835', { claims: 5, seed: 16 });
        const view = await waitFor(async () => {
          const v = await sourceView(engine!, name);
          return typeof v?.lastError === 'string' && v.lastError.startsWith('OSPREY_ERR_SFTP_HOST_KEY') && v;
        }, { timeoutMs: 15_000, what: 'the host key refusal in the channel view' });
        expect(view.lastError).to.include(pinned).and.include(presented);
        expect(await files(engine!, name)).to.deep.equal([]);
        expect(readdirSync(inbox)).to.deep.equal(['c.835']);
        expect(erp.requests).to.have.length(0);
      } finally {
        await engine?.stop();
        engine = undefined;
        await own.stop();
      }
    });
  });

  describe('CSV and progress', () => {
    it('stores a CSV row that fails validation as an ERROR of its own and delivers the rest; GET /api/files shows state and counts', async () => {
      const { name, inbox } = await channel({
        format: 'csv',
        globs: ['*.csv'],
        sourceExtra: ['    csv: { required: [charge_id, amount], types: { amount: decimal }, keys: { id: charge_id }, kind: charge, sender: e2e }'],
      });
      const rows = ['charge_id,mrn,amount', 'CH1,M1,10.00', 'CH2,M2,not-a-number', 'CH3,M3,12.50', 'CH4,M4,7'];
      writeFileSync(join(inbox, 'charges.csv'), `${rows.join('\n')}\n`);
      const [file] = await waitFor(async () => {
        const r = await files(engine!, name);
        return r[0]?.state === 'DONE' && r;
      }, { timeoutMs: 15_000, what: 'charges.csv DONE' });
      expect(file).to.include({ recordsTotal: 4, recordsDone: 4, recordsErrored: 1 });
      await waitFor(() => erp.applied.length >= 3, { timeoutMs: 15_000, what: '3 rows at the ERP' });
      const c = await counts(engine!, name);
      expect(c.ERROR, JSON.stringify(c)).to.equal(1);
      const errored = (await engine!.get(`/api/messages?channel=${name}&state=ERROR`)).body.messages;
      expect(errored).to.have.length(1);
      const detail = await engine!.message(errored[0].id);
      expect(detail.error.detail).to.match(/line 3/i);
      expect(detail.error.detail).to.not.include('M2');
      await polls(engine!, name);
      expect(erp.applied).to.have.length(3);
    });
  });
});

/**
 * The cases that need the engine as a child process: killed with SIGKILL mid-file, and a 50 MB file
 * whose peak RSS is read from /proc/<pid>/status.
 */
describe('SFTP source end to end, engine as a child process', function () {
  this.timeout(300_000);
  let sshd: ThrowawaySshd;
  let erp: ErpStandIn;
  let engine: EngineProcess | undefined;

  before(async function () {
    const missing = throwawaySshdUnavailable();
    if (missing) {
      if (process.env.CI) throw new Error(missing);
      this.skip();
    }
    sshd = await startThrowawaySshd();
  });
  beforeEach(async () => {
    erp = await ErpStandIn.start();
  });
  afterEach(async () => {
    await engine?.kill9();
    engine = undefined;
    await erp.close();
  });
  after(async () => {
    await stopThrowawaySshds();
    removeTempDirs();
  });

  interface Run {
    name: string;
    inbox: string;
    start(): Promise<EngineProcess>;
  }

  async function prepare(name: string, extra: Partial<SftpTestChannelOptions> = {}): Promise<Run> {
    const dir = makeTempDir(`sftp-${name}`);
    const inbox = join(sshd.root, name, 'inbox');
    mkdirSync(inbox, { recursive: true });
    const channels = channelsDir({ [`${name}.channel.yaml`]: sftpTestChannelYaml({ name, sshd, directory: inbox, url: `${erp.url}${PATH}`, ...extra }) });
    const configFile = join(dir, 'osprey.yaml');
    writeFileSync(configFile, embeddedEngineConfigYaml({ dbPath: join(dir, 'osprey.db'), channelsDir: channels }));
    const httpPort = await freePort();
    const start = async () => {
      engine = await EngineProcess.start({ configFile, env: { OSPREY_HTTP_PORT: String(httpPort), OSPREY_LOG_LEVEL: 'warn' }, httpPort, logFile: join(dir, 'engine.log') });
      return engine;
    };
    return { name, inbox, start };
  }

  it('kill -9 mid-file, then a restart: every claim delivered once, none lost', async () => {
    const CLAIMS = 30_000;
    const run = await prepare('sftp-kill9');
    let p = await run.start();
    await drop835(run.inbox, 'big.835', { claims: CLAIMS, seed: 21, payers: 2 });
    // Killed while records of the file are being stored (some stored, not all).
    let seen: unknown;
    const at = await waitFor(async () => {
      const [f] = await files(p, run.name);
      seen = f ?? (await sourceView(p, run.name));
      return f?.state === 'PROCESSING' && f.recordsDone >= 2_000 && f.recordsDone;
    }, { timeoutMs: 60_000, intervalMs: 10, what: 'big.835 part-way through' }).catch((err: Error) => {
      throw new Error(`${err.message}; last seen ${JSON.stringify(seen)}\n${p.log().slice(-3000)}`);
    });
    await p.kill9();
    expect(at).to.be.lessThan(CLAIMS);
    p = await run.start();
    await waitFor(async () => (await files(p, run.name))[0]?.state === 'DONE', { timeoutMs: 120_000, intervalMs: 100, what: 'big.835 DONE after the restart' });
    await waitFor(() => new Set(appliedClaims(erp)).size >= CLAIMS, { timeoutMs: 120_000, intervalMs: 100, what: `${CLAIMS} claims at the ERP` });
    const c = await waitFor(async () => {
      const x = await counts(p, run.name);
      return !x.RECEIVED && !x.QUEUED && x;
    }, { timeoutMs: 60_000, intervalMs: 100, what: 'every message final' });
    expect(total(c), `one message per record (${JSON.stringify(c)})`).to.equal(CLAIMS);
    expectEachOnce(erp, CLAIMS);
    const [file] = await files(p, run.name);
    expect(file).to.include({ recordsTotal: CLAIMS, recordsDone: CLAIMS, version: 1 });
  });

  it('a 50 MB 835 with the server stopped mid-download: reconnects with backoff, takes the file later, peak RSS under 300 MB', async () => {
    const run = await prepare('sftp-big', { batch: { maxItems: 200, maxWait: '50ms' } });
    const gen = join(makeTempDir('sftp-gen'), 'fifty.835');
    const made = await generate835(gen, { claims: 118_000, seed: 22, payers: 3 });
    expect(made.bytes).to.be.greaterThan(50 * 1024 * 1024);
    const p = await run.start();
    copyFileSync(gen, join(run.inbox, 'fifty.835.tmp'));
    const remote = join(run.inbox, 'fifty.835');
    renameSync(join(run.inbox, 'fifty.835.tmp'), remote);
    // The moment sshd has the file open for the download (its session process holds an fd on it).
    await waitFor(() => openedBySomeone(remote), { timeoutMs: 30_000, intervalMs: 2, maxPolls: 100_000, what: 'sshd to open fifty.835 for the download' });
    const stoppedAt = Date.now();
    await sshd.stopServer();
    const view = await waitFor(async () => {
      const v = await sourceView(p, run.name);
      return v?.state === 'reconnecting' && v;
    }, { timeoutMs: 30_000, what: 'the poller to report reconnecting' });
    expect(view.lastError).to.match(/^OSPREY_ERR_SFTP_/);
    expect(await files(p, run.name), 'nothing recorded of a file not downloaded').to.deep.equal([]);
    expect(Date.now() - stoppedAt).to.be.lessThan(30_000);
    await sshd.startServer();
    await waitFor(async () => (await files(p, run.name))[0]?.state === 'DONE', { timeoutMs: 240_000, intervalMs: 200, what: 'fifty.835 DONE' });
    await waitFor(() => new Set(appliedClaims(erp)).size >= made.claims, { timeoutMs: 240_000, intervalMs: 200, what: `${made.claims} claims at the ERP` });
    expectEachOnce(erp, made.claims);
    const hwm = peakRssMb(p.pid!);
    console.log(`      50 MB 835 (${(made.bytes / 1048576).toFixed(1)} MB, ${made.claims} claims): engine peak RSS ${hwm.toFixed(0)} MB`);
    expect(hwm).to.be.lessThan(300);
  });
});

/** Whether any process has `path` open (Linux /proc). */
function openedBySomeone(path: string): boolean {
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === path) return true;
      } catch {
        // closed meanwhile
      }
    }
  }
  return false;
}

/** VmHWM (peak resident set) of a process, MB. */
function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmHWM for ${pid}`);
  return Number(m[1]) / 1024;
}

