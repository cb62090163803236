// SPDX-License-Identifier: Apache-2.0
/**
 * `GET /api/files` and `osprey files`: the files file sources took, with their progress counted
 * from the records stored, behind the API's bearer token. Real HTTP on 127.0.0.1 against a real
 * SQLite store.
 */
import { createHash, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { expect } from 'chai';
import type { FastifyInstance } from 'fastify';
import { filesCommand } from '../../engine/cli/commands/files.ts';
import { buildManagementApi } from '../../engine/management-api/server.ts';
import { SqliteStore } from '../../engine/message-store/sqlite-store.ts';
import type { Logger } from '../../engine/observability/logger.ts';
import { makeTempDir, removeTempDirs } from '../helpers/test-engine.ts';

const TOKEN = 'files-test-token';
const quiet = Object.fromEntries(['info', 'warn', 'error', 'debug'].map((level) => [level, () => {}])) as unknown as Logger;
const hashOf = (text: string): string => createHash('sha256').update(text).digest('hex');

describe('management API: files (GET /api/files, osprey files)', () => {
  let store: SqliteStore;
  let app: FastifyInstance;
  let base: string;
  let savedToken: string | undefined;

  beforeEach(async () => {
    store = new SqliteStore({ path: join(makeTempDir('api-files'), 'store.db') });
    await store.open();
    app = buildManagementApi({ store, channels: () => [], replay: () => Promise.resolve(undefined), ready: () => true, logger: quiet, apiTokens: [TOKEN] });
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    savedToken = process.env.OSPREY_API_TOKEN;
    process.env.OSPREY_API_TOKEN = TOKEN;
  });
  afterEach(async () => {
    if (savedToken === undefined) delete process.env.OSPREY_API_TOKEN;
    else process.env.OSPREY_API_TOKEN = savedToken;
    await app.close();
    await store.close();
  });
  after(() => removeTempDirs());

  /** A file of `total` records, `stored` of them stored (the first `errored` as ERROR). */
  async function fileWith(channel: string, name: string, total: number, stored: number, errored = 0) {
    const contentHash = hashOf(`${channel}/${name}`);
    const file = await store.files.begin({ channel, name, path: `/inbox/${name}`, contentHash, size: 100, mtimeMs: 1_767_225_600_000, state: 'PROCESSING' });
    await store.files.update(file.id, { recordsTotal: total });
    await Promise.all(
      Array.from({ length: stored }, (_, i) =>
        store.receive({
          id: randomUUID(),
          channel,
          receivedAt: Date.now(),
          raw: Buffer.from(`record ${i}`),
          encoding: 'UTF-8',
          format: 'csv-record',
          lineage: { file: name, fileHash: contentHash, recordIndex: i },
          keys: {},
          orderKey: String(i),
          state: i < errored ? 'ERROR' : 'RECEIVED',
          ...(i < errored ? { error: { code: 'OSPREY_ERR_INGEST_UNREADABLE' as const, detail: `line ${i + 2}: amount is not a number` } } : {}),
          dedupeWindowMs: 0,
        }),
      ),
    );
    return file;
  }

  const get = async (path: string, token = TOKEN) => {
    const res = await fetch(`${base}${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    return { status: res.status, body: (await res.json()) as any };
  };

  async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = '';
    let err = '';
    const [write, writeErr] = [process.stdout.write, process.stderr.write];
    process.stdout.write = ((chunk: string) => ((out += chunk), true)) as typeof process.stdout.write;
    process.stderr.write = ((chunk: string) => ((err += chunk), true)) as typeof process.stderr.write;
    try {
      return { code: await filesCommand(['--api', base, ...argv]), out, err };
    } finally {
      process.stdout.write = write;
      process.stderr.write = writeErr;
    }
  }

  it('answers the files newest first with state, counts, error, version, movedTo and ISO times', async () => {
    const done = await fileWith('sftp-835-to-erp', 'remit-1.835', 3, 3, 1);
    await store.files.update(done.id, { state: 'DONE', movedTo: '/inbox/archive/2026-01-01/remit-1.835', finishedAt: Date.parse('2026-01-01T00:05:00Z') });
    const bad = await store.files.begin({ channel: 'sftp-835-to-erp', name: 'remit-1.835', path: '/inbox/remit-1.835', contentHash: hashOf('corrected'), size: 90, mtimeMs: 0, state: 'PROCESSING' });
    await store.files.update(bad.id, { state: 'QUARANTINED', error: { code: 'OSPREY_ERR_X12_ENVELOPE', detail: 'IEA02 1 does not match ISA13 2' }, movedTo: '/inbox/error/remit-1.835' });
    await fileWith('sftp-charges-to-erp', 'charges.csv', 10, 4);

    const { status, body } = await get('/api/files');
    expect(status).to.equal(200);
    expect(body.files.map((f: any) => [f.name, f.state, f.version])).to.deep.equal([
      ['charges.csv', 'PROCESSING', 1],
      ['remit-1.835', 'QUARANTINED', 2],
      ['remit-1.835', 'DONE', 1],
    ]);
    const [charges, quarantined, archived] = body.files;
    expect(charges).to.include({ channel: 'sftp-charges-to-erp', recordsTotal: 10, recordsDone: 4, recordsErrored: 0 });
    expect(charges.finishedAt).to.equal(undefined);
    expect(charges.pickedAt).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(quarantined).to.deep.include({ error: { code: 'OSPREY_ERR_X12_ENVELOPE', detail: 'IEA02 1 does not match ISA13 2' }, movedTo: '/inbox/error/remit-1.835', recordsDone: 0 });
    expect(archived).to.include({ recordsTotal: 3, recordsDone: 3, recordsErrored: 1, movedTo: '/inbox/archive/2026-01-01/remit-1.835', finishedAt: '2026-01-01T00:05:00.000Z' });

    expect((await get('/api/files?channel=sftp-835-to-erp&state=DONE')).body.files.map((f: any) => f.id)).to.deep.equal([done.id]);
    expect((await get('/api/files?limit=1')).body.files.map((f: any) => f.name)).to.deep.equal(['charges.csv']);
  });

  it('refuses a bad state or limit with 400, and a request without the token with 401', async () => {
    for (const query of ['state=FINISHED', 'state=constructor', 'limit=0', 'limit=1001', 'limit=x']) {
      const { status, body } = await get(`/api/files?${query}`);
      expect(status, query).to.equal(400);
      expect(body.error.code).to.equal('OSPREY_ERR_API_BAD_REQUEST');
    }
    for (const token of ['', 'wrong']) {
      const { status, body } = await get('/api/files', token);
      expect(status).to.equal(401);
      expect(body.error.code).to.equal('OSPREY_ERR_API_UNAUTHORIZED');
    }
  });

  it('osprey files prints a table (name, channel, state, done/total, errors, picked at), filtered by channel and state', async () => {
    const done = await fileWith('sftp-835-to-erp', 'remit-1.835', 3, 3, 1);
    await store.files.update(done.id, { state: 'DONE' });
    await fileWith('sftp-charges-to-erp', 'charges.csv', 10, 4);

    const all = await cli([]);
    expect(all.code, all.err).to.equal(0);
    const lines = all.out.trimEnd().split('\n');
    expect(lines[0]).to.match(/^NAME\s+CHANNEL\s+STATE\s+DONE\/TOTAL\s+ERRORS\s+PICKED AT$/);
    expect(lines.slice(1).map((l) => l.split(/\s{2,}/).slice(0, 5))).to.deep.equal([
      ['charges.csv', 'sftp-charges-to-erp', 'PROCESSING', '4/10', '0'],
      ['remit-1.835', 'sftp-835-to-erp', 'DONE', '3/3', '1'],
    ]);

    const filtered = await cli(['--channel', 'sftp-835-to-erp', '--state', 'done']);
    expect(filtered.out.trimEnd().split('\n').slice(1).map((l) => l.split(/\s{2,}/)[0])).to.deep.equal(['remit-1.835']);

    const json = await cli(['--json', '--limit', '1']);
    expect(JSON.parse(json.out).map((f: { name: string }) => f.name)).to.deep.equal(['charges.csv']);
  });

  it('osprey files reports the API refusal and exits 1', async () => {
    const res = await cli(['--state', 'finished']);
    expect(res.code).to.equal(1);
    expect(res.err).to.match(/^OSPREY_ERR_API_BAD_REQUEST: state must be one of PROCESSING, DONE, QUARANTINED, DUPLICATE\n$/);
    process.env.OSPREY_API_TOKEN = 'wrong';
    const refused = await cli([]);
    expect(refused.code).to.equal(1);
    expect(refused.err).to.match(/^OSPREY_ERR_API_UNAUTHORIZED: /);
  });
});
