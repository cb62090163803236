// SPDX-License-Identifier: Apache-2.0
/**
 * The management API's bearer tokens (`http.apiToken`): every /api/ route needs one, the probes do
 * not, several tokens are accepted while one is rotated, and a refusal neither runs the route nor
 * logs what was presented. Real HTTP on 127.0.0.1 against a real SQLite store.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'chai';
import type { FastifyInstance } from 'fastify';
import { apiFetch } from '../../engine/cli/api-client.ts';
import { buildManagementApi } from '../../engine/management-api/server.ts';
import { SandboxReceiver } from '../../engine/management-api/sandbox-receiver.ts';
import { SqliteStore } from '../../engine/message-store/sqlite-store.ts';
import type { Logger } from '../../engine/observability/logger.ts';
import { Engine } from '../../engine/engine.ts';
import { silentLogger } from '../../engine/observability/logger.ts';
import { makeTempDir, REPO_ROOT, removeTempDirs, testEngineConfig } from '../helpers/test-engine.ts';

const CURRENT = 'current-token-0123456789abcdefghij';
const PREVIOUS = 'previous-token-0123456789abcdefghij';

describe('management API authentication (http.apiToken)', () => {
  let store: SqliteStore;
  let app: FastifyInstance;
  let base: string;
  const logged: Array<{ level: string; message: string; meta?: Record<string, unknown> }> = [];
  const logger = Object.fromEntries(
    ['info', 'warn', 'error', 'debug'].map((level) => [level, (message: string, meta?: Record<string, unknown>) => logged.push({ level, message, meta })]),
  ) as unknown as Logger;

  async function serve(apiTokens?: string[], sandbox?: SandboxReceiver): Promise<void> {
    app = buildManagementApi({ store, channels: () => [], replay: () => Promise.resolve(undefined), ready: () => true, logger, apiTokens, sandbox });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address() as { port: number };
    base = `http://127.0.0.1:${address.port}`;
  }

  const get = (path: string, authorization?: string) => fetch(`${base}${path}`, authorization ? { headers: { authorization } } : {});

  beforeEach(async () => {
    logged.length = 0;
    store = new SqliteStore({ path: join(makeTempDir('api-auth'), 'store.db') });
    await store.open();
  });
  afterEach(async () => {
    await app.close();
    await store.close();
  });
  after(() => removeTempDirs());

  it('refuses /api/ without a valid bearer token: 401, WWW-Authenticate, a JSON error, the route not run', async () => {
    await serve([CURRENT]);
    await store.receive({
      id: 'm1',
      channel: 'adt',
      receivedAt: Date.now(),
      raw: Buffer.from('MSH|^~\\&|EHR|HOSP|||20240101||ADT^A01|c1|P|2.5\r'),
      encoding: 'UTF-8',
      keys: { controlId: 'c1' },
      orderKey: 'P1',
      state: 'ERROR',
      error: { code: 'OSPREY_ERR_HL7_NO_MSH', detail: 'x' },
      dedupeWindowMs: 0,
    });
    const wrong = 'wrong-token-0123456789abcdefghijkl';
    for (const [path, authorization] of [
      ['/api/channels', undefined],
      ['/api/messages?controlId=c1', `Bearer ${wrong}`],
      ['/api/messages/m1', `Basic ${Buffer.from(`x:${CURRENT}`).toString('base64')}`],
      ['/api/messages/m1', `Bearer ${CURRENT}x`],
      ['/api/messages/m1', `Bearer ${CURRENT.slice(0, -1)}`],
      ['/api/messages/m1', 'Bearer'],
      ['/%61pi/messages/m1', undefined],
      ['/api//messages/m1', undefined],
    ] as const) {
      const res = await get(path, authorization);
      expect(res.status, `${path} with ${authorization ?? 'nothing'}`).to.equal(401);
      expect(res.headers.get('www-authenticate')).to.equal('Bearer realm="osprey"');
      expect(((await res.json()) as { error: { code: string } }).error.code).to.equal('OSPREY_ERR_API_UNAUTHORIZED');
    }
    const replay = await fetch(`${base}/api/messages/m1/replay`, { method: 'POST' });
    expect(replay.status).to.equal(401);
    expect((await store.getMessage('m1'))!.events.map((e) => e.event), 'not replayed').to.deep.equal(['ERROR']);
    expect(logged.filter((l) => l.message.includes('content viewed')), 'no content was served').to.deep.equal([]);

    const refusals = logged.filter((l) => l.meta?.code === 'OSPREY_ERR_API_UNAUTHORIZED');
    expect(refusals).to.have.length(9);
    expect(refusals[1]!.meta).to.deep.include({ remote: '127.0.0.1', method: 'GET', path: '/api/messages' });
    expect(JSON.stringify(logged), 'what was presented is never logged').to.not.include(wrong).and.not.include(CURRENT.slice(0, 10));
  });

  it('serves /api/ with any of the configured tokens (rotation), whatever the case of "Bearer"', async () => {
    await serve([CURRENT, PREVIOUS]);
    expect((await get('/api/channels', `Bearer ${CURRENT}`)).status).to.equal(200);
    expect((await get('/api/channels', `bearer ${PREVIOUS}`)).status).to.equal(200);
    expect((await get('/api/messages/none', `Bearer ${CURRENT}`)).status, 'a route answers as without tokens').to.equal(404);
    expect((await apiFetch(`${base}/api/channels`, {}, PREVIOUS)).status, 'the CLI sends the token it is given').to.equal(200);
  });

  it('lets `osprey messages` through with OSPREY_API_TOKEN from the environment, and shows the refusal without it', async function () {
    this.timeout(60_000);
    await serve([CURRENT]);
    const cli = (env: Record<string, string>) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, [join(REPO_ROOT, 'bin', 'osprey.js'), 'messages', '--api', base], { cwd: REPO_ROOT, env: { ...process.env, OSPREY_API_TOKEN: '', ...env }, timeout: 30_000 }, (err, stdout, stderr) =>
          resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stdout, stderr }),
        );
      });
    const without = await cli({});
    expect(without.code).to.equal(1);
    expect(without.stderr).to.contain('OSPREY_ERR_API_UNAUTHORIZED');
    const withToken = await cli({ OSPREY_API_TOKEN: `${CURRENT},${PREVIOUS}` });
    expect(withToken.code, withToken.stderr).to.equal(0);
  });

  it('keeps the probes open, for load balancers that call them without credentials', async () => {
    await serve([CURRENT]);
    for (const path of ['/livez', '/healthz', '/readyz']) expect((await get(path)).status, path).to.equal(200);
  });

  it('keeps what the sandbox received, and its DELETE, behind the token; its receiving routes stay open', async () => {
    const sandbox = new SandboxReceiver();
    await serve([CURRENT], sandbox);
    const post = (path: string) => fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': 'k1' }, body: JSON.stringify({ patient: 'synthetic' }) });
    expect((await post('/sandbox/erp/accruals')).status, 'a channel delivers without credentials').to.equal(200);
    for (const [method, path] of [['GET', '/sandbox/received'], ['GET', '/sandbox/received?system=erp'], ['DELETE', '/sandbox/received'], ['GET', '/%73andbox/received']] as const) {
      const res = await fetch(`${base}${path}`, { method });
      expect(res.status, `${method} ${path}`).to.equal(401);
      expect(JSON.stringify(await res.json()), 'no payload in a refusal').to.not.contain('synthetic');
    }
    expect(sandbox.list().counts.received, 'the refused DELETE cleared nothing').to.equal(1);
    const seen = await get('/sandbox/received', `Bearer ${CURRENT}`);
    expect(seen.status).to.equal(200);
    expect(((await seen.json()) as { records: Array<{ body: unknown }> }).records.map((r) => r.body)).to.deep.equal([{ patient: 'synthetic' }]);
    expect((await fetch(`${base}/sandbox/received`, { method: 'DELETE', headers: { authorization: `Bearer ${CURRENT}` } })).status).to.equal(204);
    expect(sandbox.list().counts.received).to.equal(0);
  });

  it('an engine configured in code with the sandbox on 0.0.0.0 refuses to start before opening anything', async () => {
    const dir = makeTempDir('sandbox-exposed');
    const base = testEngineConfig(dir);
    const engine = new Engine({ config: { ...base, http: { ...base.http, host: '0.0.0.0' } }, projectRoot: REPO_ROOT, logger: silentLogger() });
    const err = await engine.start().then(
      () => undefined,
      (e: unknown) => e as { code?: string; message: string },
    );
    expect(err?.code).to.equal('OSPREY_ERR_CONFIG_INVALID');
    expect(err?.message).to.contain('sandbox.allowRemote');
    expect(engine.httpAddress, 'no port opened').to.equal(undefined);
    const allowed = new Engine({ config: { ...base, http: { ...base.http, host: '0.0.0.0' }, sandbox: { enabled: true, allowRemote: true } }, projectRoot: REPO_ROOT, logger: silentLogger(), env: { ADT_MLLP_PORT: '0', SIU_MLLP_PORT: '0' } });
    try {
      await allowed.start();
      expect(allowed.httpAddress?.host).to.equal('0.0.0.0');
    } finally {
      await allowed.stop();
    }
  });

  it('asks for nothing when no token is configured (the default config listens on 127.0.0.1 only)', async () => {
    await serve(undefined);
    expect((await get('/api/channels')).status).to.equal(200);
  });
});
