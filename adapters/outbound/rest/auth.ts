// SPDX-License-Identifier: Apache-2.0
/**
 * Authentication of REST destinations: none, bearer, api-key, basic and OAuth2 client credentials.
 *
 * OAuth2 tokens are cached until shortly before `expires_in`, fetched single-flight (concurrent
 * senders wait for one token request instead of stampeding the identity provider), and dropped
 * when the destination answers 401, so the client can refresh once and resend. A token request
 * that fails for any reason is `OSPREY_ERR_DELIVERY_AUTH` (transient: an IdP outage or a rotated
 * secret being fixed should not dead-letter deliveries at once).
 *
 * Secrets never appear in errors or logs; {@link RestAuth.secretHeaders} tells the client which
 * headers to redact in the attempt log.
 *
 * @see docs/design/0004-delivery.md#authentication
 */
import { Agent, request } from 'undici';
import { OspreyError } from '../../../engine/errors/error-codes.ts';

/** The `auth` block of a REST destination (secrets already resolved from the environment). */
export type AuthConfig =
  | { type: 'none' }
  | { type: 'bearer'; token: string }
  | { type: 'api-key'; header: string; value: string }
  | { type: 'basic'; username: string; password: string }
  | {
      type: 'oauth2-client-credentials';
      tokenUrl: string;
      clientId: string;
      clientSecret: string;
      scope?: string;
      audience?: string;
      /**
       * How the client authenticates to the token endpoint (RFC 6749 §2.3.1).
       * @defaultValue 'client_secret_basic'
       */
      clientAuthMethod?: 'client_secret_basic' | 'client_secret_post';
    };

export type AuthType = AuthConfig['type'];

/** Credentials for requests to one destination. */
export interface RestAuth {
  readonly type: AuthType;
  /**
   * Lower-case names of the headers this auth sets (an api-key's header is named in the channel
   * file), redacted besides those the adapter SDK's `isSecretHeader` names.
   */
  readonly secretHeaders: readonly string[];
  /**
   * Headers to add to the next request (may fetch a token).
   * @throws OspreyError OSPREY_ERR_DELIVERY_AUTH when a token cannot be obtained.
   */
  headers(): Promise<Record<string, string>>;
  /**
   * Called after the destination answered 401 to a request sent with `used` (what
   * {@link RestAuth.headers} returned). Drops the cached token if it is still the one used — so 20
   * concurrent 401s cause one refresh, not 20 — and returns whether new credentials may help
   * (true only for refreshable auth; static credentials would just be rejected again).
   */
  invalidate(used: Readonly<Record<string, string>>): boolean;
  /** Releases connections to the token endpoint. Idempotent. */
  close(): Promise<void>;
}

/** Options of {@link createAuth}. */
export interface AuthOptions {
  /**
   * Clock for token expiry (epoch ms), injectable for tests.
   * @defaultValue Date.now
   */
  now?: () => number;
  /**
   * Time limit of a token request.
   * @defaultValue 10_000
   */
  timeoutMs?: number;
}

/** Refresh this long before `expires_in`, at most: the request must not reach the API with a token that expires in flight. */
const MAX_REFRESH_MARGIN_MS = 30_000;
/** …and at most this share of the token's lifetime, so short-lived tokens are still reused. */
const REFRESH_MARGIN_SHARE = 0.1;
/** When the IdP omits `expires_in` (RFC 6749 only recommends it): a conservative lifetime. */
const DEFAULT_TOKEN_LIFETIME_MS = 300_000;
const MAX_TOKEN_RESPONSE_BYTES = 65_536;

/** Builds the auth of a destination from its config. */
export function createAuth(config: AuthConfig = { type: 'none' }, options: AuthOptions = {}): RestAuth {
  switch (config.type) {
    case 'none':
      return staticAuth('none', {}, []);
    case 'bearer':
      return staticAuth('bearer', { Authorization: `Bearer ${config.token}` }, ['authorization']);
    case 'api-key':
      return staticAuth('api-key', { [config.header]: config.value }, [config.header.toLowerCase()]);
    case 'basic': {
      const encoded = Buffer.from(`${config.username}:${config.password}`, 'utf8').toString('base64');
      return staticAuth('basic', { Authorization: `Basic ${encoded}` }, ['authorization']);
    }
    case 'oauth2-client-credentials':
      return new ClientCredentialsAuth(config, options);
    default:
      config satisfies never;
      throw new TypeError(`unknown auth type ${String((config as { type?: unknown }).type)}`);
  }
}

function staticAuth(type: AuthType, headers: Record<string, string>, secretHeaders: string[]): RestAuth {
  return {
    type,
    secretHeaders,
    headers: () => Promise.resolve({ ...headers }),
    invalidate: () => false,
    close: () => Promise.resolve(),
  };
}

interface CachedToken {
  header: string;
  expiresAt: number;
}

type ClientCredentialsConfig = Extract<AuthConfig, { type: 'oauth2-client-credentials' }>;

class ClientCredentialsAuth implements RestAuth {
  readonly type = 'oauth2-client-credentials' as const;
  readonly secretHeaders = ['authorization'] as const;
  readonly #config: ClientCredentialsConfig;
  readonly #now: () => number;
  readonly #timeoutMs: number;
  #agent: Agent | undefined;
  #cached: CachedToken | undefined;
  #inflight: Promise<CachedToken> | undefined;

  constructor(config: ClientCredentialsConfig, options: AuthOptions) {
    this.#config = config;
    this.#now = options.now ?? Date.now;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  async headers(): Promise<Record<string, string>> {
    const cached = this.#cached;
    if (cached && this.#now() < cached.expiresAt) return { Authorization: cached.header };
    // Single flight: the promise is stored before the first await, so every concurrent caller
    // that finds no valid token joins the same request.
    this.#inflight ??= this.#fetchToken().finally(() => {
      this.#inflight = undefined;
    });
    const token = await this.#inflight;
    return { Authorization: token.header };
  }

  invalidate(used: Readonly<Record<string, string>>): boolean {
    const usedHeader = Object.entries(used).find(([name]) => name.toLowerCase() === 'authorization')?.[1];
    if (this.#cached && this.#cached.header === usedHeader) this.#cached = undefined;
    return true;
  }

  async close(): Promise<void> {
    const agent = this.#agent;
    this.#agent = undefined;
    this.#cached = undefined;
    if (agent) await agent.close();
  }

  async #fetchToken(): Promise<CachedToken> {
    const config = this.#config;
    const method = config.clientAuthMethod ?? 'client_secret_basic';
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (config.scope) form.set('scope', config.scope);
    if (config.audience) form.set('audience', config.audience);
    const headers: Record<string, string> = {
      'Content-Type': 'application/x-www-form-urlencoded',
      Accept: 'application/json',
    };
    if (method === 'client_secret_post') {
      form.set('client_id', config.clientId);
      form.set('client_secret', config.clientSecret);
    } else {
      // RFC 6749 §2.3.1: id and secret are form-urlencoded before the Basic encoding.
      const user = formEncode(config.clientId);
      const pass = formEncode(config.clientSecret);
      headers.Authorization = `Basic ${Buffer.from(`${user}:${pass}`, 'utf8').toString('base64')}`;
    }

    const requestedAt = this.#now();
    let status: number;
    let text: string;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.#timeoutMs);
    timer.unref();
    try {
      this.#agent ??= new Agent({ keepAliveTimeout: 30_000, connect: { timeout: this.#timeoutMs } });
      const res = await request(config.tokenUrl, {
        dispatcher: this.#agent,
        method: 'POST',
        headers,
        body: form.toString(),
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
        signal: controller.signal,
      });
      status = res.statusCode;
      text = await readLimited(res.body, MAX_TOKEN_RESPONSE_BYTES);
    } catch (err) {
      const why = controller.signal.aborted ? 'timed out' : `failed (${errorCode(err)})`;
      throw new OspreyError('OSPREY_ERR_DELIVERY_AUTH', `token request to ${safeUrl(config.tokenUrl)} ${why}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }

    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (status < 200 || status > 299) {
      // The OAuth `error` field (invalid_client, invalid_scope …) is a short code, safe to record;
      // error_description and the rest of the body are not kept.
      const oauthError = isRecord(parsed) && typeof parsed.error === 'string' ? ` (${parsed.error.slice(0, 64)})` : '';
      throw new OspreyError('OSPREY_ERR_DELIVERY_AUTH', `token endpoint ${safeUrl(config.tokenUrl)} answered HTTP ${status}${oauthError}`);
    }
    if (!isRecord(parsed) || typeof parsed.access_token !== 'string' || parsed.access_token === '') {
      throw new OspreyError('OSPREY_ERR_DELIVERY_AUTH', `token endpoint ${safeUrl(config.tokenUrl)} answered without an access_token`);
    }
    const expiresIn = Number(parsed.expires_in);
    const lifetimeMs = Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn * 1000 : DEFAULT_TOKEN_LIFETIME_MS;
    const margin = Math.min(MAX_REFRESH_MARGIN_MS, lifetimeMs * REFRESH_MARGIN_SHARE);
    // Measured from when the request was made, not answered: the IdP's clock started then.
    const token: CachedToken = { header: `Bearer ${parsed.access_token}`, expiresAt: requestedAt + lifetimeMs - margin };
    this.#cached = token;
    return token;
  }
}

/** Reads at most `limit` bytes of a body as UTF-8 and drains the rest. */
async function readLimited(body: AsyncIterable<Buffer | Uint8Array | string>, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    if (size >= limit) continue;
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk);
    const take = buf.subarray(0, limit - size);
    chunks.push(take);
    size += take.length;
  }
  return Buffer.concat(chunks).toString('utf8');
}

function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function errorCode(err: unknown): string {
  if (isRecord(err) && typeof err.code === 'string') return err.code;
  return err instanceof Error ? err.name : 'error';
}

/** Origin and path only: a query string may carry credentials. */
function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '(invalid url)';
  }
}
