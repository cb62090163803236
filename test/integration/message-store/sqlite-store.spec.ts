// SPDX-License-Identifier: Apache-2.0
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { expect } from 'chai';
import { isOspreyError } from '../../../engine/errors/error-codes.ts';
import { SqliteStore } from '../../../engine/message-store/sqlite-store.ts';
import { crashPayloadFor } from './fixtures/crash-payload.ts';
import { messageStoreSuite } from './message-store.suite.ts';

describe('SqliteStore', () => {
  let dir: string;
  let n = 0;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'osprey-sqlite-store-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const sabotage = async (path: string): Promise<void> => {
    const db = new Database(path);
    db.exec('DROP TABLE events');
    db.close();
  };

  describe('conformance (writes on the writer thread)', () => {
    messageStoreSuite(() => ({
      newStorage: async () => join(dir, `t${++n}`, 'store.db'),
      create: (path) => new SqliteStore({ path }),
      sabotage,
    }));
  });

  describe('conformance (writes on the main thread)', () => {
    messageStoreSuite(() => ({
      newStorage: async () => join(dir, `t${++n}`, 'store.db'),
      create: (path) => new SqliteStore({ path, writeThread: 'main' }),
      sabotage,
    }));
  });

  describe('options', () => {
    it('creates the parent directory and accepts synchronous: normal', async () => {
      const store = new SqliteStore({ path: join(dir, 'deep', 'er', 'normal.db'), synchronous: 'normal' });
      await store.open();
      await store.receive({
        id: 'm1', channel: 'c', receivedAt: Date.now(), raw: Buffer.from('x'), encoding: 'UTF-8', keys: {}, orderKey: 'k', state: 'RECEIVED', dedupeWindowMs: 0,
      });
      expect((await store.countByChannel()).c).to.deep.equal({ RECEIVED: 1 });
      await store.close();
    });

    it('refuses an unknown synchronous setting, and an in-memory database', () => {
      expect(() => new SqliteStore({ path: join(dir, 'x.db'), synchronous: 'off' as 'full' })).to.throw(TypeError);
      expect(() => new SqliteStore({ path: ':memory:' })).to.throw(TypeError);
    });

    it('fails open with OSPREY_ERR_STORE_UNAVAILABLE when the file cannot be a database', async () => {
      const path = join(dir, 'not-a-db', 'store.db');
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, 'this is not an SQLite file, just text that is long enough to have a header');
      const store = new SqliteStore({ path });
      const err = await store.open().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isOspreyError(err) && err.code).to.equal('OSPREY_ERR_STORE_UNAVAILABLE');
      await store.close();
    });

    it('does not keep the process alive while idle (the writer thread is unref’d)', async () => {
      const script = `
        import { SqliteStore } from ${JSON.stringify(new URL('../../../engine/message-store/sqlite-store.ts', import.meta.url).href)};
        const store = new SqliteStore({ path: ${JSON.stringify(join(dir, 'idle', 'store.db'))} });
        await store.open();
        await store.receive({ id: 'm1', channel: 'c', receivedAt: Date.now(), raw: Buffer.from('x'), encoding: 'UTF-8', keys: {}, orderKey: 'k', state: 'RECEIVED', dedupeWindowMs: 0 });
        console.log('stored');
      `;
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      expect(out.trim()).to.equal('stored');
      expect(code).to.equal(0);
    });
  });

  describe('crash safety (kill -9 while receiving)', function () {
    this.timeout(60_000);
    const child = fileURLToPath(new URL('./fixtures/crash-receiver.ts', import.meta.url));

    for (const synchronous of ['full', 'normal'] as const) {
      it(`keeps every message whose receive resolved (synchronous: ${synchronous})`, async () => {
        const path = join(dir, `crash-${synchronous}`, 'store.db');
        const proc = spawn(process.execPath, ['--import', 'tsx', child, path, synchronous], { stdio: ['ignore', 'pipe', 'pipe'] });
        const printed: string[] = [];
        let partial = '';
        let stderr = '';
        proc.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        const exited = new Promise<NodeJS.Signals | number | null>((resolve) => proc.on('exit', (code, signal) => resolve(signal ?? code)));
        await new Promise<void>((resolve, reject) => {
          proc.stdout.on('data', (chunk: Buffer) => {
            const lines = (partial + chunk.toString()).split('\n');
            partial = lines.pop()!;
            printed.push(...lines);
            // Mid-stream: well past start-up, with writes in flight.
            if (printed.length >= 1000) {
              proc.kill('SIGKILL');
              resolve();
            }
          });
          void exited.then((how) => reject(new Error(`the receiver exited early (${String(how)}): ${stderr.slice(0, 500)}`)));
          setTimeout(() => {
            proc.kill('SIGKILL');
            reject(new Error(`the receiver stalled after ${printed.length} messages: ${stderr.slice(0, 500)}`));
          }, 40_000).unref();
        });
        expect(await exited).to.equal('SIGKILL');

        const store = new SqliteStore({ path, synchronous });
        await store.open();
        try {
          for (const id of printed) {
            const loaded = await store.loadForProcessing(id);
            expect(loaded, `message ${id} was acknowledged but is missing`).to.not.equal(undefined);
            expect(Buffer.compare(loaded!.raw, crashPayloadFor(id)), `raw bytes of ${id}`).to.equal(0);
          }
          const stored = (await store.countByChannel()).crash?.RECEIVED ?? 0;
          expect(stored).to.be.at.least(printed.length);
        } finally {
          await store.close();
        }
      });
    }
  });
});
