// SPDX-License-Identifier: Apache-2.0
/**
 * The SFTP connection against a real OpenSSH server the test starts (test/helpers/throwaway-sshd.ts):
 * connect with a pinned host key, refusals (a wrong pin, a changed server key, a wrong user key,
 * nothing listening) with their codes and classes, listing, streaming, rename, and a server stopped
 * mid-download. Without /usr/sbin/sshd the suite is skipped with the reason printed, unless
 * OSPREY_REQUIRE_SERVICES=1, which makes that a failure.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { connectSftp, type SftpConnectOptions, type SftpConnection } from '../../../adapters/shared/sftp/sftp-connection.ts';
import { isOspreyError, type OspreyError } from '../../../engine/errors/error-codes.ts';
import { freePort } from '../../helpers/engine-process.ts';
import { skipOrFail } from '../../helpers/production-services.ts';
import { startThrowawaySshd, stopThrowawaySshds, throwawaySshdUnavailable, type ThrowawaySshd } from '../../helpers/throwaway-sshd.ts';
import { within } from '../../helpers/wait-for.ts';

const optionsOf = (s: ThrowawaySshd): SftpConnectOptions => ({ host: s.host, port: s.port, user: s.user, keyFile: s.keyFile, hostKey: s.hostKeyFingerprint });

async function refusal(p: Promise<unknown>): Promise<OspreyError> {
  try {
    await p;
  } catch (err) {
    if (isOspreyError(err)) return err;
    throw new Error(`expected an OspreyError, got ${String(err)}`);
  }
  throw new Error('expected a refusal, got success');
}

describe('SFTP connection (real OpenSSH)', function () {
  this.timeout(60_000);
  let sshd: ThrowawaySshd;
  let conn: SftpConnection;

  before(async function () {
    const missing = throwawaySshdUnavailable();
    if (missing) skipOrFail(this, missing);
    sshd = await startThrowawaySshd();
    conn = await connectSftp(optionsOf(sshd));
  });

  after(async () => {
    await conn?.end();
    await stopThrowawaySshds();
  });

  describe('connect', () => {
    it('connects by key with the pinned host key and lists a directory with name, size and mtime', async () => {
      writeFileSync(join(sshd.root, 'listed.txt'), 'twelve bytes');
      utimesSync(join(sshd.root, 'listed.txt'), 1_700_000_000, 1_700_000_000);
      const entry = (await conn.list(sshd.root)).find((e) => e.name === 'listed.txt');
      expect(entry).to.deep.equal({ name: 'listed.txt', type: 'file', size: 12, mtimeMs: 1_700_000_000_000 });
      expect(await conn.stat(join(sshd.root, 'listed.txt'))).to.include({ type: 'file', size: 12 });
      expect(await conn.exists(join(sshd.root, 'listed.txt'))).to.equal(true);
      expect(await conn.exists(join(sshd.root, 'absent.txt'))).to.equal(false);
    });

    it('takes the private key as PEM text too', async () => {
      const c = await connectSftp({ ...optionsOf(sshd), keyFile: undefined, privateKey: readFileSync(sshd.keyFile, 'utf8') });
      expect(c.closed).to.equal(false);
      await c.end();
      expect(c.closed).to.equal(true);
    });

    it('refuses a server whose key is not the pinned one, naming both fingerprints (permanent)', async () => {
      const pinned = `SHA256:${randomBytes(32).toString('base64').replace(/=+$/, '')}`;
      const err = await refusal(connectSftp({ ...optionsOf(sshd), hostKey: pinned }));
      expect(err.code).to.equal('OSPREY_ERR_SFTP_HOST_KEY');
      expect(err.errorClass).to.equal('permanent');
      expect(err.message).to.include(pinned).and.to.include(sshd.hostKeyFingerprint);
    });

    it('refuses a key the server was not given (AUTH, permanent)', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'osprey-test-key-'));
      try {
        execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'other')]);
        const err = await refusal(connectSftp({ ...optionsOf(sshd), keyFile: join(dir, 'other') }));
        expect(err.code).to.equal('OSPREY_ERR_SFTP_AUTH');
        expect(err.errorClass).to.equal('permanent');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('says BAD_KEY for an unreadable key file or a malformed pin (permanent)', async () => {
      expect((await refusal(connectSftp({ ...optionsOf(sshd), keyFile: join(sshd.root, 'no-such-key') }))).code).to.equal('OSPREY_ERR_SFTP_BAD_KEY');
      expect((await refusal(connectSftp({ ...optionsOf(sshd), hostKey: 'ssh-ed25519 AAAA' }))).code).to.equal('OSPREY_ERR_SFTP_BAD_KEY');
    });

    it('says UNREACHABLE when nothing listens (transient)', async () => {
      const err = await refusal(connectSftp({ ...optionsOf(sshd), port: await freePort() }));
      expect(err.code).to.equal('OSPREY_ERR_SFTP_UNREACHABLE');
      expect(err.errorClass).to.equal('transient');
    });
  });

  describe('files', () => {
    for (const [label, options] of [
      ['parallel reads', {}],
      ["ssh2's own stream", { concurrency: 1 }],
    ] as const) {
      it(`streams a 3 MB file byte for byte (${label}), and an empty one`, async () => {
        const content = randomBytes(3 * 1024 * 1024 + 123);
        writeFileSync(join(sshd.root, 'big.bin'), content);
        writeFileSync(join(sshd.root, 'empty.bin'), '');
        const chunks: Buffer[] = [];
        for await (const chunk of conn.createReadStream(join(sshd.root, 'big.bin'), options)) chunks.push(chunk as Buffer);
        expect(Buffer.concat(chunks).equals(content)).to.equal(true);
        let emptyBytes = 0;
        for await (const chunk of conn.createReadStream(join(sshd.root, 'empty.bin'), options)) emptyBytes += (chunk as Buffer).length;
        expect(emptyBytes).to.equal(0);
      });
    }

    it('says NO_SUCH_FILE (permanent) for a stat or a download of a missing file', async () => {
      const missing = join(sshd.root, 'missing.bin');
      expect((await refusal(conn.stat(missing))).code).to.equal('OSPREY_ERR_SFTP_NO_SUCH_FILE');
      const err = await refusal(
        (async () => {
          for await (const _ of conn.createReadStream(missing)) void _;
        })(),
      );
      expect(err.code).to.equal('OSPREY_ERR_SFTP_NO_SUCH_FILE');
      expect(err.errorClass).to.equal('permanent');
    });

    it('makes directories (-p), writes, renames without and with replace, deletes', async () => {
      const dir = join(sshd.root, 'a', 'b', 'c');
      await conn.mkdirp(dir);
      await conn.mkdirp(dir); // idempotent
      await conn.write(join(dir, 'one.tmp'), 'one');
      await conn.write(join(dir, 'two.tmp'), Buffer.from('two'));
      await conn.rename(join(dir, 'one.tmp'), join(dir, 'final.txt'));
      expect(readFileSync(join(dir, 'final.txt'), 'utf8')).to.equal('one');
      // A plain rename does not replace an existing file …
      const err = await refusal(conn.rename(join(dir, 'two.tmp'), join(dir, 'final.txt')));
      expect(err.code).to.equal('OSPREY_ERR_SFTP_FAILURE');
      expect(readFileSync(join(dir, 'final.txt'), 'utf8')).to.equal('one');
      // … posix-rename does, atomically.
      await conn.rename(join(dir, 'two.tmp'), join(dir, 'final.txt'), { overwrite: true });
      expect(readFileSync(join(dir, 'final.txt'), 'utf8')).to.equal('two');
      expect(existsSync(join(dir, 'two.tmp'))).to.equal(false);
      expect((await refusal(conn.write(join(dir, 'final.txt'), 'x', { exclusive: true }))).code).to.equal('OSPREY_ERR_SFTP_FAILURE');
      await conn.delete(join(dir, 'final.txt'));
      await conn.delete(join(dir, 'final.txt'), { missingOk: true });
      expect((await refusal(conn.delete(join(dir, 'final.txt')))).code).to.equal('OSPREY_ERR_SFTP_NO_SUCH_FILE');
    });

    it('says PERMISSION_DENIED (permanent) for a path the user may not write', async function () {
      // As root nothing is denied by file modes; /proc is read-only for everyone.
      const err = await refusal(conn.write('/proc/osprey-test', 'x'));
      expect(['OSPREY_ERR_SFTP_PERMISSION_DENIED', 'OSPREY_ERR_SFTP_NO_SUCH_FILE']).to.include(err.code);
      expect(err.errorClass).to.equal('permanent');
    });
  });

  describe('the server goes away', () => {
    it('a server stopped mid-download fails the stream with CONNECTION_LOST (transient), and the connection reports closed', async () => {
      const own = await startThrowawaySshd();
      try {
        writeFileSync(join(own.root, 'large.bin'), randomBytes(48 * 1024 * 1024));
        const c = await connectSftp(optionsOf(own));
        const stream = c.createReadStream(join(own.root, 'large.bin'), { concurrency: 2, chunkSize: 16_384 });
        let received = 0;
        let stopping: Promise<void> | undefined;
        const outcome = await within(
          new Promise<unknown>((resolve) => {
            stream.on('data', (chunk: Buffer) => {
              received += chunk.length;
              stopping ??= own.stopServer();
            });
            stream.once('end', () => resolve('end'));
            stream.once('error', resolve);
          }),
          30_000,
          'the download to fail',
        );
        await stopping;
        expect(outcome, `the download ended normally after ${received} bytes`).to.be.instanceOf(Error);
        expect(isOspreyError(outcome) && outcome.code).to.equal('OSPREY_ERR_SFTP_CONNECTION_LOST');
        expect((outcome as OspreyError).errorClass).to.equal('transient');
        expect(received).to.be.lessThan(48 * 1024 * 1024);
        expect(c.closed).to.equal(true);
        expect((await refusal(c.list(own.root))).code).to.equal('OSPREY_ERR_SFTP_CONNECTION_LOST');
        await c.end();
      } finally {
        await own.stop();
      }
    });

    it('a server whose host key changed is refused on the next connect, naming both fingerprints', async () => {
      const own = await startThrowawaySshd();
      try {
        const pinned = own.hostKeyFingerprint;
        const replaced = await own.replaceHostKey();
        expect(replaced).to.not.equal(pinned);
        const err = await refusal(connectSftp({ ...optionsOf(own), hostKey: pinned }));
        expect(err.code).to.equal('OSPREY_ERR_SFTP_HOST_KEY');
        expect(err.message).to.include(pinned).and.to.include(replaced);
        await (await connectSftp({ ...optionsOf(own), hostKey: replaced })).end();
      } finally {
        await own.stop();
      }
    });
  });
});
