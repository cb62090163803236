// SPDX-License-Identifier: Apache-2.0
/**
 * The HTTP client of REST destinations (ERP, RCM): one keep-alive connection pool per
 * destination, a JSON body, an Idempotency-Key on every request, authentication, and a result
 * classified for the retry policy. `send` never throws: every failure, including a bad payload or
 * an identity provider that is down, comes back as an {@link OutboundResult}.
 *
 * Classification (docs/design/0004-delivery.md#classification):
 * - a status in `treatAsSuccess`, or 2xx → `success`;
 * - a status in `retryOn` (default 408, 429, 500, 502, 503, 504) → `transient`, HTTP_TRANSIENT;
 * - any other status → `permanent`, HTTP_PERMANENT (redirects are not followed);
 * - no answer within `timeoutMs` → `transient`, TIMEOUT. The code's class is `ambiguous` (the
 *   destination may have applied the request); the result says `transient` because the retry is
 *   safe: the caller sends the same Idempotency-Key on every attempt;
 * - connection refused, reset, DNS failure, connect timeout → `transient`, NETWORK;
 * - token endpoint failure → `transient`, AUTH; unserialisable payload → `permanent`, BAD_PAYLOAD.
 *
 * A 401 with OAuth2 drops the cached token and resends once with a fresh one.
 */
import { Pool } from 'undici';
import { classifyStatus, isSecretHeader, parseRetryAfter, type OutboundRequest, type OutboundResult, type StoredError } from '../../../engine/adapter-sdk/index.ts';
import type { ErrorCode } from '../../../engine/errors/error-codes.ts';
import { createAuth, type AuthConfig, type RestAuth } from './auth.ts';

/** Configuration of one REST destination (durations in milliseconds, secrets resolved). */
export interface RestClientConfig {
  url: string;
  /** @defaultValue 'POST' */
  method?: string;
  /** Extra headers; they may override Content-Type and Accept, never Idempotency-Key or auth. */
  headers?: Record<string, string>;
  /** @defaultValue `{ type: 'none' }` */
  auth?: AuthConfig;
  /**
   * Limit for one request: connecting, sending, and receiving the whole answer.
   * @defaultValue 10_000
   */
  timeoutMs?: number;
  /** @defaultValue [408, 429, 500, 502, 503, 504] */
  retryOn?: readonly number[];
  /** @defaultValue [] */
  treatAsSuccess?: readonly number[];
  /**
   * Keep-alive connections to the destination, at most.
   * @defaultValue 16
   */
  connections?: number;
}

/** Test seams. */
export interface RestClientOptions {
  /** Clock for OAuth2 token expiry (epoch ms). @defaultValue Date.now */
  now?: () => number;
}

/** Response bodies are kept up to this many bytes in the attempt log; the rest is read and dropped. */
export const MAX_RESPONSE_BODY_BYTES = 65_536;
/** @see RestClientConfig.timeoutMs */
export const DEFAULT_TIMEOUT_MS = 10_000;

const REDACTED = '[redacted]';
/** Query parameters that commonly carry credentials. */
const SECRET_PARAM = /secret|token|passw|api[-_]?key|^key$|^sig$|signature|^auth/i;

type Attempt =
  | { kind: 'response'; status: number; retryAfter: string | string[] | undefined; body: string }
  | { kind: 'error'; error: StoredError };

/** One REST destination. */
export class RestClient {
  readonly #url: URL;
  readonly #method: string;
  readonly #headers: Record<string, string>;
  readonly #auth: RestAuth;
  readonly #timeoutMs: number;
  readonly #lists: { retryOn?: readonly number[]; treatAsSuccess?: readonly number[] };
  readonly #pool: Pool;
  readonly #redactedUrl: string;
  #closed = false;

  /** @throws TypeError when `url` is not an absolute http(s) URL (a configuration error). */
  constructor(config: RestClientConfig, options: RestClientOptions = {}) {
    const url = new URL(config.url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TypeError(`REST destination url must be http or https, got ${url.protocol}`);
    }
    this.#url = url;
    this.#method = (config.method ?? 'POST').toUpperCase();
    this.#headers = { ...(config.headers ?? {}) };
    this.#timeoutMs = config.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#auth = createAuth(config.auth ?? { type: 'none' }, {
      timeoutMs: this.#timeoutMs,
      ...(options.now ? { now: options.now } : {}),
    });
    this.#lists = {
      ...(config.retryOn ? { retryOn: config.retryOn } : {}),
      ...(config.treatAsSuccess ? { treatAsSuccess: config.treatAsSuccess } : {}),
    };
    this.#pool = new Pool(url.origin, {
      connections: config.connections ?? 16,
      keepAliveTimeout: 30_000,
      connect: { timeout: this.#timeoutMs },
    });
    this.#redactedUrl = redactUrl(url);
  }

  /**
   * Sends `body` as JSON with `Idempotency-Key: idempotencyKey`. Pass the same key on every retry
   * of one delivery: that is what makes retrying a timeout safe. Never throws.
   */
  async send(body: unknown, idempotencyKey: string): Promise<OutboundResult> {
    const started = performance.now();
    const sent: OutboundRequest = { method: this.#method, url: this.#redactedUrl, headers: {}, body: '' };
    const finish = (rest: Omit<OutboundResult, 'durationMs' | 'sentRequest'>): OutboundResult => ({
      ...rest,
      durationMs: Math.round(performance.now() - started),
      sentRequest: sent,
    });

    try {
      let text: string | undefined;
      try {
        text = JSON.stringify(body);
      } catch (err) {
        return finish({ outcome: 'permanent', error: { code: 'OSPREY_ERR_DELIVERY_BAD_PAYLOAD', detail: `payload is not JSON-serialisable (${errorName(err)})` } });
      }
      if (text === undefined) {
        return finish({ outcome: 'permanent', error: { code: 'OSPREY_ERR_DELIVERY_BAD_PAYLOAD', detail: 'payload is undefined or a function' } });
      }
      sent.body = text;

      const base: Record<string, string> = { 'Content-Type': 'application/json', Accept: 'application/json' };
      for (const [name, value] of Object.entries(this.#headers)) setHeader(base, name, value);
      setHeader(base, 'Idempotency-Key', idempotencyKey);
      sent.headers = this.#redact(base);

      if (this.#closed) {
        return finish({ outcome: 'transient', error: { code: 'OSPREY_ERR_DELIVERY_NETWORK', detail: 'client is closed' } });
      }

      let authHeaders = await this.#authHeaders();
      if ('error' in authHeaders) return finish({ outcome: 'transient', error: authHeaders.error });
      let headers = withAuth(base, authHeaders.headers);
      sent.headers = this.#redact(headers);
      let attempt = await this.#request(headers, text);

      // A 401 with a refreshable token: the IdP may have revoked or rotated it before expiry.
      // Refresh once and resend; the same Idempotency-Key makes the resend safe.
      if (attempt.kind === 'response' && attempt.status === 401 && this.#auth.invalidate(authHeaders.headers)) {
        authHeaders = await this.#authHeaders();
        if ('error' in authHeaders) return finish({ outcome: 'transient', error: authHeaders.error });
        headers = withAuth(base, authHeaders.headers);
        sent.headers = this.#redact(headers);
        attempt = await this.#request(headers, text);
      }

      if (attempt.kind === 'error') {
        return finish({ outcome: 'transient', error: attempt.error });
      }
      const cls = classifyStatus(attempt.status, this.#lists);
      const retryAfterMs = parseRetryAfter(attempt.retryAfter);
      const common = {
        status: attempt.status,
        responseBody: attempt.body,
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      };
      if (cls === 'success') return finish({ outcome: 'success', ...common });
      const code: ErrorCode = cls === 'transient' ? 'OSPREY_ERR_DELIVERY_HTTP_TRANSIENT' : 'OSPREY_ERR_DELIVERY_HTTP_PERMANENT';
      return finish({ outcome: cls, ...common, error: { code, detail: `HTTP ${attempt.status} from ${this.#method} ${safeTarget(this.#url)}` } });
    } catch (err) {
      // Defensive: nothing above should throw, but a thrown send would wedge the delivery worker.
      return finish({ outcome: 'transient', error: { code: 'OSPREY_ERR_DELIVERY_NETWORK', detail: `unexpected client failure (${errorName(err)})` } });
    }
  }

  /** Closes the pooled connections (waiting for requests in flight) and the token client. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([this.#pool.close(), this.#auth.close()]);
  }

  async #authHeaders(): Promise<{ headers: Record<string, string> } | { error: StoredError }> {
    try {
      return { headers: await this.#auth.headers() };
    } catch (err) {
      const detail = err instanceof Error ? err.message : 'token request failed';
      return { error: { code: 'OSPREY_ERR_DELIVERY_AUTH', detail } };
    }
  }

  async #request(headers: Record<string, string>, body: string): Promise<Attempt> {
    let timedOut = false;
    const controller = new AbortController();
    // One deadline for the whole exchange: undici's headers/body timeouts alone would let a
    // server that trickles a byte now and then hold the delivery forever.
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.#timeoutMs);
    timer.unref();
    let status: number | undefined;
    let retryAfter: string | string[] | undefined;
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      const res = await this.#pool.request({
        path: `${this.#url.pathname}${this.#url.search}`,
        method: this.#method as 'POST',
        headers,
        body,
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
        signal: controller.signal,
      });
      status = res.statusCode;
      retryAfter = res.headers['retry-after'];
      for await (const chunk of res.body) {
        if (size >= MAX_RESPONSE_BODY_BYTES) continue; // drained, not kept: the connection stays reusable
        const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
        const take = buf.subarray(0, MAX_RESPONSE_BODY_BYTES - size);
        chunks.push(take);
        size += take.length;
      }
      return { kind: 'response', status, retryAfter, body: Buffer.concat(chunks).toString('utf8') };
    } catch (err) {
      if (status !== undefined) {
        // The status arrived, so the destination decided; a body cut short only shortens the log.
        return { kind: 'response', status, retryAfter, body: Buffer.concat(chunks).toString('utf8') };
      }
      return { kind: 'error', error: classifyError(err, timedOut, this.#timeoutMs, this.#method, this.#url) };
    } finally {
      clearTimeout(timer);
    }
  }

  #redact(headers: Record<string, string>): Record<string, string> {
    const secret = new Set(this.#auth.secretHeaders);
    const out: Record<string, string> = {};
    for (const [name, value] of Object.entries(headers)) {
      const lower = name.toLowerCase();
      out[name] = secret.has(lower) || isSecretHeader(lower) ? REDACTED : value;
    }
    return out;
  }
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

function classifyError(err: unknown, timedOut: boolean, timeoutMs: number, method: string, url: URL): StoredError {
  const code = errorName(err);
  if (timedOut || TIMEOUT_CODES.has(code)) {
    return { code: 'OSPREY_ERR_DELIVERY_TIMEOUT', detail: `no answer from ${method} ${safeTarget(url)} within ${timeoutMs} ms` };
  }
  // Refused, reset, DNS, TLS, connect timeout (UND_ERR_CONNECT_TIMEOUT: nothing was sent). A reset
  // after the request went out is ambiguous in truth; both classes are retried, so it stays NETWORK.
  return { code: 'OSPREY_ERR_DELIVERY_NETWORK', detail: `connection to ${safeTarget(url)} failed (${code})` };
}

/** Sets a header, replacing any existing one whose name differs only in case. */
function setHeader(headers: Record<string, string>, name: string, value: string): void {
  const lower = name.toLowerCase();
  for (const existing of Object.keys(headers)) {
    if (existing.toLowerCase() === lower) delete headers[existing];
  }
  headers[name] = value;
}

function withAuth(base: Record<string, string>, auth: Record<string, string>): Record<string, string> {
  const headers = { ...base };
  for (const [name, value] of Object.entries(auth)) setHeader(headers, name, value);
  return headers;
}

/** The URL for the attempt log, with user info and credential-like query values redacted. */
function redactUrl(url: URL): string {
  const copy = new URL(url.href);
  if (copy.username) copy.username = 'redacted';
  if (copy.password) copy.password = 'redacted';
  for (const name of [...new Set(copy.searchParams.keys())]) {
    if (SECRET_PARAM.test(name)) copy.searchParams.set(name, REDACTED);
  }
  return copy.href;
}

/** Origin and path, for error details (no query string). */
function safeTarget(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

function errorName(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code;
  return err instanceof Error ? err.name : 'error';
}
