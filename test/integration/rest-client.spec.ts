// SPDX-License-Identifier: Apache-2.0
/**
 * The REST client against a real node:http server on 127.0.0.1 (port 0) standing in for the ERP
 * and its identity provider. No timing assertions: only outcomes, headers, counts and order.
 */
import { expect } from 'chai';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RestClient, MAX_RESPONSE_BODY_BYTES, type RestClientConfig } from '../../adapters/outbound/rest/index.ts';

interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

interface TestServer {
  url: string;
  requests: SeenRequest[];
  /** Sockets accepted so far. */
  connections: number;
  close(): Promise<void>;
}

type Handler = (req: SeenRequest, res: ServerResponse) => void;

async function startServer(handler: Handler): Promise<TestServer> {
  const requests: SeenRequest[] = [];
  const state = { connections: 0 };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      requests.push(seen);
      handler(seen, res);
    });
  });
  server.on('connection', () => {
    state.connections += 1;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get connections() {
      return state.connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

describe('adapters/outbound/rest RestClient (real HTTP server)', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  async function erp(handler: Handler): Promise<TestServer> {
    const server = await startServer(handler);
    cleanup.push(() => server.close());
    return server;
  }

  function client(config: RestClientConfig, options?: ConstructorParameters<typeof RestClient>[1]): RestClient {
    const c = new RestClient(config, options);
    cleanup.push(() => c.close());
    return c;
  }

  describe('classification', () => {
    it('200: success, JSON body, Idempotency-Key and content type sent, response captured', async () => {
      const server = await erp((_req, res) => json(res, 200, { id: 'erp-1' }));
      const c = client({ url: `${server.url}/labor-plans?x=1`, headers: { 'X-Source': 'osprey' } });
      const result = await c.send({ appointment: 'A1', hours: 2 }, 'msg-1:erp:0');
      expect(result.outcome).to.equal('success');
      expect(result.status).to.equal(200);
      expect(result.error).to.equal(undefined);
      expect(JSON.parse(result.responseBody ?? '')).to.deep.equal({ id: 'erp-1' });
      expect(result.durationMs).to.be.a('number');
      const [seen] = server.requests;
      expect(seen?.method).to.equal('POST');
      expect(seen?.url).to.equal('/labor-plans?x=1');
      expect(seen?.headers['content-type']).to.equal('application/json');
      expect(seen?.headers['idempotency-key']).to.equal('msg-1:erp:0');
      expect(seen?.headers['x-source']).to.equal('osprey');
      expect(JSON.parse(seen?.body ?? '')).to.deep.equal({ appointment: 'A1', hours: 2 });
      expect(result.sentRequest).to.include({ method: 'POST', url: `${server.url}/labor-plans?x=1` });
      expect(result.sentRequest.body).to.equal(seen?.body);
      expect(result.sentRequest.headers['Idempotency-Key']).to.equal('msg-1:erp:0');
    });

    it('sends the same Idempotency-Key on every retry of a delivery', async () => {
      const server = await erp((_req, res) => json(res, 503, {}));
      const c = client({ url: server.url, method: 'put' });
      await c.send({ n: 1 }, 'stable-key');
      await c.send({ n: 1 }, 'stable-key');
      expect(server.requests.map((r) => [r.method, r.headers['idempotency-key']])).to.deep.equal([
        ['PUT', 'stable-key'],
        ['PUT', 'stable-key'],
      ]);
    });

    it('500: transient, HTTP_TRANSIENT', async () => {
      const server = await erp((_req, res) => json(res, 500, { error: 'boom' }));
      const result = await client({ url: server.url }).send({}, 'k');
      expect(result).to.deep.include({ outcome: 'transient', status: 500 });
      expect(result.error?.code).to.equal('OSPREY_ERR_DELIVERY_HTTP_TRANSIENT');
      expect(result.responseBody).to.equal('{"error":"boom"}');
    });

    it('503 with Retry-After in seconds and as an HTTP-date: retryAfterMs parsed', async () => {
      let n = 0;
      const server = await erp((_req, res) => {
        n += 1;
        const value = n === 1 ? '7' : new Date(Date.now() + 120_000).toUTCString();
        json(res, 503, {}, { 'Retry-After': value });
      });
      const c = client({ url: server.url });
      const seconds = await c.send({}, 'k');
      expect(seconds).to.deep.include({ outcome: 'transient', status: 503, retryAfterMs: 7000 });
      const date = await c.send({}, 'k');
      expect(date.outcome).to.equal('transient');
      expect(date.retryAfterMs).to.be.within(100_000, 120_000);
    });

    it('429: transient', async () => {
      const server = await erp((_req, res) => json(res, 429, {}, { 'Retry-After': '1' }));
      const result = await client({ url: server.url }).send({}, 'k');
      expect(result).to.deep.include({ outcome: 'transient', status: 429, retryAfterMs: 1000 });
      expect(result.error?.code).to.equal('OSPREY_ERR_DELIVERY_HTTP_TRANSIENT');
    });

    it('400: permanent, HTTP_PERMANENT, with the validation answer kept', async () => {
      const server = await erp((_req, res) => json(res, 400, { error: 'department unknown' }));
      const result = await client({ url: server.url }).send({}, 'k');
      expect(result).to.deep.include({ outcome: 'permanent', status: 400 });
      expect(result.error?.code).to.equal('OSPREY_ERR_DELIVERY_HTTP_PERMANENT');
      expect(result.responseBody).to.contain('department unknown');
    });

    it('409 is a success when the destination treats it as one, permanent otherwise', async () => {
      const server = await erp((_req, res) => json(res, 409, { error: 'already applied' }));
      const treated = await client({ url: server.url, treatAsSuccess: [409] }).send({}, 'k');
      expect(treated).to.deep.include({ outcome: 'success', status: 409 });
      expect(treated.error).to.equal(undefined);
      const plain = await client({ url: server.url }).send({}, 'k');
      expect(plain.outcome).to.equal('permanent');
    });

    it('retryOn replaces the transient list', async () => {
      const server = await erp((_req, res) => json(res, 423, {}));
      const result = await client({ url: server.url, retryOn: [423] }).send({}, 'k');
      expect(result.outcome).to.equal('transient');
    });

    it('a server that accepts but never answers: TIMEOUT, reported transient', async () => {
      const server = await erp(() => {
        /* never answers */
      });
      const result = await client({ url: server.url, timeoutMs: 150 }).send({ a: 1 }, 'k');
      expect(result.outcome).to.equal('transient');
      expect(result.status).to.equal(undefined);
      expect(result.error?.code).to.equal('OSPREY_ERR_DELIVERY_TIMEOUT');
      expect(server.requests).to.have.length(1); // it did reach the server: ambiguous
    });

    it('a server that sends headers then stalls mid-body: the status decides', async () => {
      const server = await erp((_req, res) => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.write('{"partial":');
      });
      const result = await client({ url: server.url, timeoutMs: 150 }).send({}, 'k');
      expect(result).to.deep.include({ outcome: 'success', status: 200 });
      expect(result.responseBody).to.equal('{"partial":');
    });

    it('connection refused: NETWORK, transient, never throws', async () => {
      const gone = await startServer(() => undefined);
      const url = gone.url;
      await gone.close();
      const result = await client({ url, timeoutMs: 2000 }).send({}, 'k');
      expect(result.outcome).to.equal('transient');
      expect(result.error?.code).to.equal('OSPREY_ERR_DELIVERY_NETWORK');
      expect(result.sentRequest.headers['Idempotency-Key']).to.equal('k');
    });

    it('a payload that is not JSON-serialisable: permanent BAD_PAYLOAD, nothing sent', async () => {
      const server = await erp((_req, res) => json(res, 200, {}));
      const c = client({ url: server.url });
      const big = await c.send({ n: 10n }, 'k');
      expect(big).to.deep.include({ outcome: 'permanent' });
      expect(big.error?.code).to.equal('OSPREY_ERR_DELIVERY_BAD_PAYLOAD');
      const nothing = await c.send(undefined, 'k');
      expect(nothing.error?.code).to.equal('OSPREY_ERR_DELIVERY_BAD_PAYLOAD');
      expect(server.requests).to.have.length(0);
    });

    it('truncates a large response body to 64 KiB and keeps the connection usable', async () => {
      const server = await erp((_req, res) => {
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end('x'.repeat(MAX_RESPONSE_BODY_BYTES * 3));
      });
      const c = client({ url: server.url });
      for (let i = 0; i < 6; i += 1) {
        const result = await c.send({}, 'k');
        expect(result.responseBody).to.have.length(MAX_RESPONSE_BODY_BYTES);
      }
      // The rest of the body is drained, not cut off, so the socket is reused (undici may open a
      // second one when the next request races the release of the first).
      expect(server.connections).to.be.at.most(2);
    });

    it('after close(), send still answers with a result', async () => {
      const server = await erp((_req, res) => json(res, 200, {}));
      const c = new RestClient({ url: server.url });
      await c.close();
      await c.close();
      const result = await c.send({}, 'k');
      expect(result.outcome).to.equal('transient');
      expect(result.error?.code).to.equal('OSPREY_ERR_DELIVERY_NETWORK');
    });
  });

  describe('keep-alive', () => {
    it('50 sequential sends use one or a few sockets', async () => {
      const server = await erp((_req, res) => json(res, 200, { ok: true }));
      const c = client({ url: server.url });
      for (let i = 0; i < 50; i += 1) {
        const result = await c.send({ i }, `k-${i}`);
        expect(result.outcome).to.equal('success');
      }
      expect(server.requests).to.have.length(50);
      expect(server.connections).to.be.at.most(2);
    });
  });

  describe('authentication', () => {
    it('basic: the server decodes the username and password', async () => {
      const server = await erp((_req, res) => json(res, 200, {}));
      const result = await client({ url: server.url, auth: { type: 'basic', username: 'osprey', password: 'p@ss:word' } }).send({}, 'k');
      const header = server.requests[0]?.headers.authorization ?? '';
      expect(header.startsWith('Basic ')).to.equal(true);
      expect(Buffer.from(header.slice(6), 'base64').toString('utf8')).to.equal('osprey:p@ss:word');
      expect(result.sentRequest.headers.Authorization).to.equal('[redacted]');
    });

    it('bearer: the server sees the token', async () => {
      const server = await erp((_req, res) => json(res, 200, {}));
      const result = await client({ url: server.url, auth: { type: 'bearer', token: 'static-token-123' } }).send({}, 'k');
      expect(server.requests[0]?.headers.authorization).to.equal('Bearer static-token-123');
      expect(result.sentRequest.headers.Authorization).to.equal('[redacted]');
    });

    it('api-key: the server sees the configured header', async () => {
      const server = await erp((_req, res) => json(res, 200, {}));
      const result = await client({ url: server.url, auth: { type: 'api-key', header: 'X-Erp-Key', value: 'key-abc' } }).send({}, 'k');
      expect(server.requests[0]?.headers['x-erp-key']).to.equal('key-abc');
      expect(result.sentRequest.headers['X-Erp-Key']).to.equal('[redacted]');
    });

    it('a static credential rejected with 401 is permanent (no resend)', async () => {
      const server = await erp((_req, res) => json(res, 401, {}));
      const result = await client({ url: server.url, auth: { type: 'bearer', token: 't' } }).send({}, 'k');
      expect(result).to.deep.include({ outcome: 'permanent', status: 401 });
      expect(server.requests).to.have.length(1);
    });

    it('redacts secrets in sentRequest: auth, secret-looking headers and query values, never the idempotency key', async () => {
      const server = await erp((_req, res) => json(res, 200, {}));
      const result = await client({
        url: `${server.url}/p?api_key=qsecret&site=north`,
        headers: { 'X-Client-Secret': 'hdr-secret', 'X-Source': 'osprey', Cookie: 'session=abc' },
        auth: { type: 'bearer', token: 'tok-xyz' },
      }).send({ a: 1 }, 'idem-1');
      const sent = result.sentRequest;
      expect(sent.headers).to.deep.include({
        Authorization: '[redacted]',
        'X-Client-Secret': '[redacted]',
        Cookie: '[redacted]',
        'X-Source': 'osprey',
        'Idempotency-Key': 'idem-1',
      });
      expect(sent.url).to.not.contain('qsecret');
      expect(sent.url).to.contain('site=north');
      const everything = JSON.stringify(result);
      for (const secret of ['tok-xyz', 'hdr-secret', 'qsecret', 'session=abc']) expect(everything).to.not.contain(secret);
      // The real values did go to the server.
      expect(server.requests[0]?.headers['x-client-secret']).to.equal('hdr-secret');
    });
  });

  describe('OAuth2 client credentials', () => {
    interface Idp {
      server: TestServer;
      tokens: string[];
      /** Set to make the token endpoint answer this status. */
      failWith?: number;
      delayMs: number;
    }

    async function idp(expiresIn = 3600): Promise<Idp> {
      const state: Idp = { server: undefined as unknown as TestServer, tokens: [], delayMs: 20 };
      state.server = await erp((req, res) => {
        if (state.failWith !== undefined) return json(res, state.failWith, { error: 'invalid_client', error_description: 'secret wrong' });
        const token = `tok-${state.tokens.length + 1}`;
        state.tokens.push(token);
        // A little latency so that concurrent senders really overlap the token request.
        setTimeout(() => json(res, 200, { access_token: token, token_type: 'Bearer', expires_in: expiresIn }), state.delayMs);
        void req;
      });
      return state;
    }

    /** An ERP that accepts only the newest token of the IdP. */
    async function erpAcceptingLatest(idpState: Idp): Promise<TestServer> {
      return erp((req, res) => {
        const latest = idpState.tokens.at(-1);
        if (req.headers.authorization === `Bearer ${latest}`) json(res, 200, { ok: true });
        else json(res, 401, { error: 'invalid_token' });
      });
    }

    const oauth = (tokenUrl: string, extra: Record<string, string> = {}) =>
      ({ type: 'oauth2-client-credentials', tokenUrl, clientId: 'osprey-client', clientSecret: 's3cr3t&=', ...extra }) as const;

    it('posts grant_type=client_credentials with client_secret_basic by default, scope and audience', async () => {
      const id = await idp();
      const api = await erpAcceptingLatest(id);
      const result = await client({ url: api.url, auth: { ...oauth(`${id.server.url}/token`), scope: 'labor.write', audience: 'erp' } }).send({}, 'k');
      expect(result.outcome).to.equal('success');
      const tokenRequest = id.server.requests[0];
      expect(tokenRequest?.method).to.equal('POST');
      expect(tokenRequest?.headers['content-type']).to.equal('application/x-www-form-urlencoded');
      const form = new URLSearchParams(tokenRequest?.body);
      expect(form.get('grant_type')).to.equal('client_credentials');
      expect(form.get('scope')).to.equal('labor.write');
      expect(form.get('audience')).to.equal('erp');
      expect(form.has('client_secret')).to.equal(false);
      const basic = Buffer.from((tokenRequest?.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString('utf8');
      const [user, pass] = basic.split(':').map((v) => decodeURIComponent(v.replace(/\+/g, ' ')));
      expect([user, pass]).to.deep.equal(['osprey-client', 's3cr3t&=']);
      expect(api.requests[0]?.headers.authorization).to.equal('Bearer tok-1');
      expect(result.sentRequest.headers.Authorization).to.equal('[redacted]');
      expect(JSON.stringify(result)).to.not.contain('tok-1');
    });

    it('supports client_secret_post', async () => {
      const id = await idp();
      const api = await erpAcceptingLatest(id);
      await client({ url: api.url, auth: { ...oauth(`${id.server.url}/token`), clientAuthMethod: 'client_secret_post' } }).send({}, 'k');
      const tokenRequest = id.server.requests[0];
      const form = new URLSearchParams(tokenRequest?.body);
      expect(form.get('client_id')).to.equal('osprey-client');
      expect(form.get('client_secret')).to.equal('s3cr3t&=');
      expect(tokenRequest?.headers.authorization).to.equal(undefined);
    });

    it('fetches the token once for 20 concurrent sends', async () => {
      const id = await idp();
      const api = await erpAcceptingLatest(id);
      const c = client({ url: api.url, auth: oauth(`${id.server.url}/token`) });
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => c.send({ i }, `k-${i}`)));
      expect(results.every((r) => r.outcome === 'success')).to.equal(true);
      expect(id.server.requests).to.have.length(1);
      expect(new Set(api.requests.map((r) => r.headers.authorization))).to.deep.equal(new Set(['Bearer tok-1']));
      // And reuses it afterwards.
      await c.send({}, 'k-next');
      expect(id.server.requests).to.have.length(1);
    });

    it('refreshes the token shortly before it expires', async () => {
      const id = await idp(3600);
      const api = await erpAcceptingLatest(id);
      let now = Date.parse('2025-03-01T08:00:00Z');
      const c = client({ url: api.url, auth: oauth(`${id.server.url}/token`) }, { now: () => now });
      await c.send({}, 'k1');
      now += 3_000_000; // 50 min: still valid
      await c.send({}, 'k2');
      expect(id.server.requests).to.have.length(1);
      now += 590_000; // 10 s before expiry: inside the refresh margin
      const result = await c.send({}, 'k3');
      expect(result.outcome).to.equal('success');
      expect(id.server.requests).to.have.length(2);
      expect(api.requests.map((r) => r.headers.authorization)).to.deep.equal(['Bearer tok-1', 'Bearer tok-1', 'Bearer tok-2']);
    });

    it('after a 401 drops the token, fetches a new one once and resends with the same key', async () => {
      const id = await idp();
      const api = await erpAcceptingLatest(id);
      const c = client({ url: api.url, auth: oauth(`${id.server.url}/token`) });
      expect((await c.send({}, 'k1')).outcome).to.equal('success');
      // The IdP rotates: tok-2 exists, so the cached tok-1 is now rejected by the ERP.
      id.tokens.push('tok-2');
      const results = await Promise.all(Array.from({ length: 5 }, (_, i) => c.send({ i }, `k-${i}`)));
      expect(results.map((r) => r.outcome)).to.deep.equal(['success', 'success', 'success', 'success', 'success']);
      // One refresh for the five concurrent 401s (token tok-3 issued, the rotated tok-2 was never handed out).
      expect(id.server.requests).to.have.length(2);
      const resent = api.requests.filter((r) => r.headers.authorization === 'Bearer tok-3').map((r) => r.headers['idempotency-key']);
      expect(resent.sort()).to.deep.equal(['k-0', 'k-1', 'k-2', 'k-3', 'k-4']);
      expect(results[0]?.status).to.equal(200);
    });

    it('a 401 that persists after the refresh is permanent (refreshes only once)', async () => {
      const id = await idp();
      const api = await erp((_req, res) => json(res, 401, {}));
      const result = await client({ url: api.url, auth: oauth(`${id.server.url}/token`) }).send({}, 'k');
      expect(result).to.deep.include({ outcome: 'permanent', status: 401 });
      expect(id.server.requests).to.have.length(2);
      expect(api.requests).to.have.length(2);
    });

    it('a failing token endpoint is AUTH, transient, without the secret or the IdP description', async () => {
      const id = await idp();
      id.failWith = 401;
      const api = await erp((_req, res) => json(res, 200, {}));
      const c = client({ url: api.url, auth: oauth(`${id.server.url}/token`) });
      const result = await c.send({}, 'k');
      expect(result.outcome).to.equal('transient');
      expect(result.error?.code).to.equal('OSPREY_ERR_DELIVERY_AUTH');
      expect(result.error?.detail).to.contain('invalid_client');
      expect(JSON.stringify(result)).to.not.contain('s3cr3t').and.not.contain('secret wrong');
      expect(api.requests).to.have.length(0);
      // Failures are not cached: the next send asks again and succeeds.
      id.failWith = undefined;
      expect((await c.send({}, 'k')).outcome).to.equal('success');
    });

    it('an unreachable token endpoint is AUTH, transient', async () => {
      const gone = await startServer(() => undefined);
      await gone.close();
      const api = await erp((_req, res) => json(res, 200, {}));
      const result = await client({ url: api.url, timeoutMs: 2000, auth: oauth(`${gone.url}/token`) }).send({}, 'k');
      expect(result.outcome).to.equal('transient');
      expect(result.error?.code).to.equal('OSPREY_ERR_DELIVERY_AUTH');
    });
  });
});
