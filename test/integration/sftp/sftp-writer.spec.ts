// SPDX-License-Identifier: Apache-2.0
/**
 * The SFTP destination (adapters/outbound/sftp/) against a real OpenSSH server the test starts:
 * a reader polling the directory never sees a partial final file; retries of one delivery make one
 * file (after a lost answer, a lost marker, a temp file left by a dead attempt); a taken name is
 * refused or replaced as configured; outcomes are classified. Skipped without /usr/sbin/sshd
 * (failed under OSPREY_REQUIRE_SERVICES=1).
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { toSftpWriterConfig, type SftpWriterSettings } from '../../../adapters/outbound/sftp/sftp-writer.config.ts';
import { fileNameTokens, renderFileName, SftpFileWriter } from '../../../adapters/outbound/sftp/sftp-writer.ts';
import { skipOrFail } from '../../helpers/production-services.ts';
import { startThrowawaySshd, stopThrowawaySshds, throwawaySshdUnavailable, type ThrowawaySshd } from '../../helpers/throwaway-sshd.ts';

/** A delivery id as the engine makes them: `<ULID message id>:<destination>:<output>`. */
const key = (n: number): string => `01HZX3NDEKTSV4RRFFQ69G5F${String(n).padStart(2, '0').replace(/[ILOU]/g, '0')}:erp-journal:0`;

describe('SFTP destination (real OpenSSH)', function () {
  this.timeout(60_000);
  let sshd: ThrowawaySshd;
  const writers: SftpFileWriter[] = [];

  const settings = (dir: string, extra: Partial<SftpWriterSettings> = {}): SftpWriterSettings => ({
    host: sshd.host,
    port: sshd.port,
    user: sshd.user,
    keyFile: sshd.keyFile,
    hostKey: sshd.hostKeyFingerprint,
    directory: join(sshd.root, dir),
    ...extra,
  });
  const writer = (dir: string, extra: Partial<SftpWriterSettings> = {}): SftpFileWriter => {
    const w = new SftpFileWriter(toSftpWriterConfig(settings(dir, extra)));
    writers.push(w);
    return w;
  };

  before(async function () {
    const missing = throwawaySshdUnavailable();
    if (missing) skipOrFail(this, missing);
    sshd = await startThrowawaySshd();
  });

  after(async () => {
    await Promise.all(writers.map((w) => w.close()));
    await stopThrowawaySshds();
  });

  it('names files from the delivery: {date}/{time} are the message’s receipt time, not the attempt’s', () => {
    const tokens = fileNameTokens('01ARZ3NDEKTSV4RRFFQ69G5FAV:erp:0', () => 0);
    expect(renderFileName('journal-{date}-{time}-{messageId}.json', tokens)).to.equal('journal-2016-07-30-235410-01ARZ3NDEKTSV4RRFFQ69G5FAV.json');
    expect(renderFileName('{idempotencyKey}.json', tokens)).to.equal('01ARZ3NDEKTSV4RRFFQ69G5FAV_erp_0.json');
  });

  it('toSftpWriterConfig fills defaults and refuses settings with no credential or a temp name equal to the final one', () => {
    const base = { host: 'h', user: 'u', hostKey: 'SHA256:x', directory: '/out' };
    expect(toSftpWriterConfig({ ...base, keyFile: 'k' }, (p) => `/root/${p}`)).to.include({ port: 22, keyFile: '/root/k', format: 'json', tempSuffix: '.tmp', ifExists: 'fail', connectTimeoutMs: 20_000 });
    expect(() => toSftpWriterConfig(base)).to.throw(TypeError, /keyFile, privateKey or password/);
    expect(() => toSftpWriterConfig({ ...base, password: 'p', tempSuffix: '' })).to.throw(TypeError, /tempPrefix or tempSuffix/);
  });

  it('writes under the temporary name, renames into place, then writes the marker; a polling reader never sees a partial final file', async () => {
    const dir = join(sshd.root, 'atomic');
    const w = writer('atomic', { marker: '.done', tempPrefix: '.', tempSuffix: '.filepart' });
    const lines = Array.from({ length: 60_000 }, (_, i) => ({ line: i, account: `4000-${i % 97}`, amount: (i * 37) % 10_000 }));
    const expected = `${JSON.stringify(lines)}\n`;
    const final = w.finalPath(key(1));
    let done = false;
    const seen = { polls: 0, finalSeen: 0, partial: 0, markerBeforeFinal: 0, tempSeen: 0 };
    // The reader: polls the directory as fast as it can until the send has finished (bounded).
    const reader = (async () => {
      const deadline = Date.now() + 30_000;
      for (let i = 0; i < 1_000_000 && !done && Date.now() < deadline; i++) {
        seen.polls++;
        const names = existsSync(dir) ? readdirSync(dir) : [];
        if (names.some((n) => n.endsWith('.filepart'))) seen.tempSeen++;
        if (names.includes(`${final.split('/').pop()}.done`) && !existsSync(final)) seen.markerBeforeFinal++;
        if (existsSync(final)) {
          seen.finalSeen++;
          if (readFileSync(final, 'utf8') !== expected) seen.partial++;
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    const result = await w.send(lines, key(1));
    done = true;
    await reader;
    expect(result.outcome, JSON.stringify(result.error)).to.equal('success');
    expect(seen.partial, JSON.stringify(seen)).to.equal(0);
    expect(seen.markerBeforeFinal).to.equal(0);
    expect(seen.tempSeen, `the reader should have seen the temporary file at least once: ${JSON.stringify(seen)}`).to.be.greaterThan(0);
    expect(readFileSync(final, 'utf8')).to.equal(expected);
    expect(readdirSync(dir).sort()).to.deep.equal([final.split('/').pop(), `${final.split('/').pop()}.done`].sort());
    expect(result.sentRequest.url).to.equal(`sftp://${sshd.user}@${sshd.host}:${sshd.port}${final}`);
  });

  it('a retry of one delivery makes one file: after success, after a lost marker, over a temp file left by a dead attempt', async () => {
    const dir = join(sshd.root, 'retry');
    const w = writer('retry', { marker: '.done' });
    const body = { journal: 'J-1', lines: [{ account: '4000', amount: 125 }] };
    const final = w.finalPath(key(2));
    expect((await w.send(body, key(2))).outcome).to.equal('success');
    const again = await w.send(body, key(2));
    expect(again.outcome).to.equal('success');
    expect(again.responseBody).to.match(/already in place/);
    // The attempt died between the rename and the marker: the retry writes the marker.
    await import('node:fs').then((fs) => fs.rmSync(`${final}.done`));
    expect((await w.send(body, key(2))).outcome).to.equal('success');
    expect(existsSync(`${final}.done`)).to.equal(true);
    // The attempt died mid-write: its temp file is written over.
    const other = w.finalPath(key(3));
    writeFileSync(`${other}.tmp`, 'half a fi');
    expect((await w.send(body, key(3))).outcome).to.equal('success');
    expect(JSON.parse(readFileSync(other, 'utf8'))).to.deep.equal(body);
    expect(readdirSync(dir).sort()).to.deep.equal([`${final.split('/').pop()}`, `${final.split('/').pop()}.done`, `${other.split('/').pop()}`, `${other.split('/').pop()}.done`].sort());
  });

  it('refuses a name taken by other content (ifExists: fail, permanent) and replaces it with ifExists: replace', async () => {
    const failing = writer('taken');
    const final = failing.finalPath(key(4));
    expect((await failing.send({ v: 1 }, key(4))).outcome).to.equal('success');
    const refused = await failing.send({ v: 2 }, key(4));
    expect(refused.outcome).to.equal('permanent');
    expect(refused.error?.code).to.equal('OSPREY_ERR_SFTP_FILE_EXISTS');
    expect(JSON.parse(readFileSync(final, 'utf8'))).to.deep.equal({ v: 1 });
    const replacing = writer('taken', { ifExists: 'replace' });
    expect((await replacing.send({ v: 2 }, key(4))).outcome).to.equal('success');
    expect(JSON.parse(readFileSync(final, 'utf8'))).to.deep.equal({ v: 2 });
  });

  it('writes ndjson and text; a payload that does not fit the format is permanent (BAD_PAYLOAD)', async () => {
    const nd = writer('formats', { format: 'ndjson', fileName: '{messageId}.ndjson' });
    expect((await nd.send([{ a: 1 }, { a: 2 }], key(5))).outcome).to.equal('success');
    expect(readFileSync(nd.finalPath(key(5)), 'utf8')).to.equal('{"a":1}\n{"a":2}\n');
    const text = writer('formats', { format: 'text', fileName: '{messageId}.csv' });
    expect((await text.send('id,amount\n1,125\n', key(6))).outcome).to.equal('success');
    expect(readFileSync(text.finalPath(key(6)), 'utf8')).to.equal('id,amount\n1,125\n');
    const bad = await text.send({ not: 'text' }, key(7));
    expect(bad.outcome).to.equal('permanent');
    expect(bad.error?.code).to.equal('OSPREY_ERR_DELIVERY_BAD_PAYLOAD');
  });

  it('a server that is down is transient, and the same writer delivers once it is back; a changed host key is permanent', async () => {
    const own = await startThrowawaySshd();
    try {
      const w = new SftpFileWriter(
        toSftpWriterConfig({ host: own.host, port: own.port, user: own.user, keyFile: own.keyFile, hostKey: own.hostKeyFingerprint, directory: join(own.root, 'out') }),
      );
      writers.push(w);
      expect((await w.send({ n: 1 }, key(8))).outcome).to.equal('success');
      await own.stopServer();
      const down = await w.send({ n: 2 }, key(9));
      expect(down.outcome).to.equal('transient');
      expect(['OSPREY_ERR_SFTP_CONNECTION_LOST', 'OSPREY_ERR_SFTP_UNREACHABLE']).to.include(down.error?.code);
      const stillDown = await w.send({ n: 2 }, key(9));
      expect(stillDown.error?.code).to.equal('OSPREY_ERR_SFTP_UNREACHABLE');
      await own.startServer();
      expect((await w.send({ n: 2 }, key(9))).outcome).to.equal('success');
      expect(JSON.parse(readFileSync(w.finalPath(key(9)), 'utf8'))).to.deep.equal({ n: 2 });
      await own.replaceHostKey();
      const changed = await w.send({ n: 3 }, key(10));
      expect(changed.outcome).to.equal('permanent');
      expect(changed.error?.code).to.equal('OSPREY_ERR_SFTP_HOST_KEY');
      expect(existsSync(w.finalPath(key(10)))).to.equal(false);
    } finally {
      await own.stop();
    }
  });
});
