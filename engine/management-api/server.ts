// SPDX-License-Identifier: Apache-2.0
/**
 * The management API (Fastify): health, channels with counts per state, message search, one
 * message's whole history, replay, the files file sources took with their progress; and the
 * sandbox ERP/RCM receiver under `/sandbox/`.
 * Every error is JSON `{ error: { code, message } }` with a stable OSPREY_ERR_* code.
 * With `apiTokens`, every `/api/` request, and what the sandbox received, needs one of them as a
 * bearer token; the probes (`/livez`, `/healthz`, `/readyz`) stay open, as load balancers call them
 * without credentials.
 *
 * Liveness (`/livez`, `/healthz`) is about the process: 200 while it serves, whatever its channels
 * do (restarting it would not free a taken port). Readiness (`/readyz`) is about the work: 503 while
 * the engine starts, while a networked bus is disconnected, and while any configured channel is not
 * RUNNING, naming each channel with its status and error.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { InboundFileState, type InboundFile } from '../adapter-sdk/file-source-services.ts';
import type { ErrorCode } from '../errors/error-codes.ts';
import {
  MAX_ATTEMPTS,
  MessageState,
  type AttemptsPage,
  type MessageDetail,
  type MessageQuery,
  type MessageStore,
  type ReplayPlan,
} from '../message-store/message-store.ts';
import type { Logger } from '../observability/logger.ts';
import { decodeStored, messageFormat } from '../message-formats/index.ts';
import type { SandboxReceiver } from './sandbox-receiver.ts';

export interface ChannelView {
  name: string;
  status: string;
  error?: string;
  /** Problems that do not stop the channel (a lookup file refused: the last good table is in use). */
  warnings?: string[];
  file?: string;
  version?: string;
  /** Why a STOPPED channel is not run on purpose (its source left unconfigured): not a failure. */
  reason?: string;
  /** The source's type, message format and what its definition shows (address, port, remote directory). */
  source?: { type: string; format?: string; [detail: string]: string | number | undefined };
  /** One line for `osprey start` (`MLLP :6661`). */
  summary?: string;
  /** Message types the source accepts (lets `osprey send` route by type). */
  accept?: string[];
  /** The channel file's `metadata.labels`, for grouping channels in monitoring and scripts. */
  labels?: Record<string, string>;
  destinations: string[];
}

export interface ManagementApiDeps {
  store: MessageStore;
  channels: () => ChannelView[];
  replay: (id: string) => Promise<ReplayPlan | undefined>;
  /** The engine has started (channels built, recovery done); channels are judged separately. */
  ready: () => boolean;
  /** A networked bus's connection, shown by the health routes; absent on the embedded bus. */
  bus?: () => { connected: boolean; node?: string };
  sandbox?: SandboxReceiver;
  logger: Logger;
  /** Bearer tokens accepted on `/api/` and `/sandbox/received` (several while one is rotated); none: no authentication. */
  apiTokens?: readonly string[];
}

export function buildManagementApi(deps: ManagementApiDeps): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 10 * 1024 * 1024 });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) deps.logger.error('management API error', { error: err.message });
    return sendError(reply, status, status === 500 ? 'OSPREY_ERR_STORE_UNAVAILABLE' : 'OSPREY_ERR_API_BAD_REQUEST', err.message);
  });
  app.setNotFoundHandler((req, reply) => sendError(reply, 404, 'OSPREY_ERR_API_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`));

  if (deps.apiTokens && deps.apiTokens.length > 0) requireBearerToken(app, deps.apiTokens, deps.logger);

  app.get('/livez', async () => ({ status: 'ok' }));
  app.get('/healthz', async () => healthReport(deps));
  app.get('/readyz', async (_req, reply) => {
    const report = healthReport(deps);
    return reply.code(report.ready ? 200 : 503).send(report);
  });

  app.get('/api/channels', async () => {
    const counts = await deps.store.countByChannel();
    return { channels: deps.channels().map((c) => ({ ...c, counts: counts[c.name] ?? {} })) };
  });

  app.get('/api/messages', async (req, reply) => {
    const parsed = parseMessageQuery(req.query as Record<string, string | undefined>);
    if ('error' in parsed) return sendError(reply, 400, 'OSPREY_ERR_API_BAD_REQUEST', parsed.error);
    const messages = await deps.store.findMessages(parsed.query);
    return { messages: messages.map((m) => ({ ...m, receivedAt: iso(m.receivedAt), updatedAt: iso(m.updatedAt) })) };
  });

  app.get('/api/messages/:id', async (req, reply) => {
    const { id } = req.params as { id: string };
    const page = parseAttemptsPage(req.query as Record<string, string | undefined>);
    if ('error' in page) return sendError(reply, 400, 'OSPREY_ERR_API_BAD_REQUEST', page.error);
    const message = await deps.store.getMessage(id, page.attempts);
    if (!message) return sendError(reply, 404, 'OSPREY_ERR_API_NOT_FOUND', `no message ${id}`);
    deps.logger.info('message content viewed', { messageId: id, audit: true, remote: req.ip });
    return presentMessage(message);
  });

  // A whole batch attempt (its id is in each item's history): every patient of the batch, so the
  // audit record names every message in it.
  app.get('/api/batches/:id', async (req, reply) => {
    const { id } = req.params as { id: string };
    const batch = await deps.store.getBatchAttempt(id);
    if (!batch) return sendError(reply, 404, 'OSPREY_ERR_API_NOT_FOUND', `no batch attempt ${id}`);
    deps.logger.info('batch content viewed', { batchAttemptId: id, messageIds: batch.items.map((i) => i.messageId), audit: true, remote: req.ip });
    return {
      ...batch,
      startedAt: iso(batch.startedAt),
      nextAttemptAt: batch.nextAttemptAt !== undefined ? iso(batch.nextAttemptAt) : undefined,
    };
  });

  // The files file sources took, newest first, with records done / total counted from the store:
  // a file in progress shows how far it got. Names and paths only, no content.
  app.get('/api/files', async (req, reply) => {
    const parsed = parseFileQuery(req.query as Record<string, string | undefined>);
    if ('error' in parsed) return sendError(reply, 400, 'OSPREY_ERR_API_BAD_REQUEST', parsed.error);
    const files = await deps.store.files.list(parsed.query);
    return { files: files.map(presentFile) };
  });

  app.post('/api/messages/:id/replay', async (req, reply) => {
    const { id } = req.params as { id: string };
    const existing = await deps.store.getMessage(id);
    if (!existing) return sendError(reply, 404, 'OSPREY_ERR_API_NOT_FOUND', `no message ${id}`);
    const plan = await deps.replay(id);
    if (!plan) {
      return sendError(reply, 409, 'OSPREY_ERR_API_NOT_REPLAYABLE', `message ${id} is ${existing.state}; only ERROR, BUSINESS_EXCEPTION, FILTERED or dead-lettered messages are replayed`);
    }
    deps.logger.info('message replayed', { messageId: id, kind: plan.kind });
    return reply.code(202).send({ id, replayed: plan.kind, deliveries: plan.kind === 'deliveries' ? plan.deliveries.map((d) => d.id) : undefined });
  });

  if (deps.sandbox) registerSandbox(app, deps.sandbox);
  return app;
}

/**
 * Refuses `/api/` requests without one of `tokens` as `Authorization: Bearer …`. Compared as
 * SHA-256 digests in constant time, so neither a token's length nor its first bytes leak through
 * response times. A refusal is logged with the peer's address and the path, never the header.
 */
function requireBearerToken(app: FastifyInstance, tokens: readonly string[], logger: Logger): void {
  const digest = (token: string) => createHash('sha256').update(token).digest();
  const accepted = tokens.map(digest);
  app.addHook('onRequest', async (req, reply) => {
    // By the route matched, not the raw URL: the router also matches encoded paths (`/%61pi/…`).
    if (!needsToken(req.routeOptions.url ?? req.url)) return;
    const match = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '');
    const presented = match ? digest(match[1]!) : undefined;
    // Every token is compared, found or not: the time does not tell which one matched.
    let ok = false;
    for (const token of accepted) if (presented && timingSafeEqual(presented, token)) ok = true;
    if (ok) return;
    logger.warn('management API request refused: no valid bearer token', { code: 'OSPREY_ERR_API_UNAUTHORIZED', remote: req.ip, method: req.method, path: req.url.split('?')[0] });
    reply.header('www-authenticate', 'Bearer realm="osprey"');
    return sendError(reply, 401, 'OSPREY_ERR_API_UNAUTHORIZED', 'this API needs a bearer token: Authorization: Bearer <token> (http.apiToken)');
  });
}

/**
 * Routes that need the token: the API, and what the sandbox received (delivered payloads hold PHI)
 * with the DELETE that clears it. The sandbox's receiving routes (`POST /sandbox/<system>/…`) stay
 * open: they stand in for an ERP that the sample channels call without credentials, and they
 * answer nothing of what was stored.
 */
function needsToken(route: string): boolean {
  return route.startsWith('/api/') || route.startsWith('/sandbox/received');
}

function registerSandbox(app: FastifyInstance, sandbox: SandboxReceiver): void {
  app.get('/sandbox/received', async (req) => {
    const q = req.query as { system?: string; limit?: string };
    return sandbox.list({ system: q.system, limit: q.limit ? Number(q.limit) : undefined });
  });
  app.delete('/sandbox/received', async (_req, reply) => {
    sandbox.clear();
    return reply.code(204).send();
  });
  app.post('/sandbox/:system/*', async (req) => {
    const { system } = req.params as { system: string; '*': string };
    const path = (req.params as Record<string, string>)['*'] ?? '';
    const key = req.headers['idempotency-key'];
    const record = sandbox.accept(system, path, typeof key === 'string' ? key : undefined, req.body);
    return { status: 'accepted', duplicate: record.duplicate, idempotencyKey: record.idempotencyKey };
  });
}

/** One channel as the health routes show it: its status, and why when it is not running. */
export interface ChannelHealth {
  name: string;
  status: string;
  error?: string;
  /** Why a STOPPED channel is not run on purpose. */
  reason?: string;
  /** Problems that do not stop the channel (a lookup file refused: its last good table is in use). */
  warnings?: string[];
}

/** What `/healthz` and `/readyz` answer; `/readyz` answers 503 unless `ready`. */
export interface HealthReport {
  /** `ok`, or the first reason the instance is not ready. */
  status: 'ok' | 'starting' | 'bus disconnected' | 'channels not running';
  ready: boolean;
  channels: ChannelHealth[];
  /** The channels that are not RUNNING, by name (empty when every one runs). */
  notRunning: string[];
  bus?: { connected: boolean; node?: string };
}

/** The instance's readiness and every channel's status (read on each probe: nothing is cached). */
export function healthReport(deps: Pick<ManagementApiDeps, 'ready' | 'channels' | 'bus'>): HealthReport {
  const started = deps.ready();
  const bus = deps.bus?.();
  const channels = deps
    .channels()
    .map((c): ChannelHealth => ({ name: c.name, status: c.status, ...(c.error ? { error: c.error } : {}), ...(c.reason ? { reason: c.reason } : {}), ...(c.warnings ? { warnings: c.warnings } : {}) }));
  // A channel still STARTING counts as not running: the engine is not ready until it is. One
  // STOPPED with a reason is not run on purpose (its source left unconfigured) and does not count.
  const notRunning = channels.filter((c) => c.status !== 'RUNNING' && !(c.status === 'STOPPED' && c.reason)).map((c) => c.name);
  const status = !started ? 'starting' : bus && !bus.connected ? 'bus disconnected' : notRunning.length > 0 ? 'channels not running' : 'ok';
  return { status, ready: status === 'ok', channels, notRunning, ...(bus ? { bus } : {}) };
}

function parseMessageQuery(q: Record<string, string | undefined>): { query: MessageQuery } | { error: string } {
  const query: MessageQuery = {};
  if (q.channel) query.channel = q.channel;
  if (q.state) {
    if (!(q.state in MessageState)) return { error: `state must be one of ${Object.keys(MessageState).join(', ')}` };
    query.state = q.state as MessageState;
  }
  if (q.controlId) query.controlId = q.controlId;
  if (q.patientId) query.patientId = q.patientId;
  if (q.visitId) query.visitId = q.visitId;
  if (q.type) query.messageType = q.type;
  for (const name of ['since', 'until'] as const) {
    const value = q[name];
    if (!value) continue;
    const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
    if (Number.isNaN(ms)) return { error: `${name} must be an ISO 8601 time or epoch milliseconds` };
    query[name] = ms;
  }
  if (q.limit) {
    const limit = Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) return { error: 'limit must be an integer from 1 to 1000' };
    query.limit = limit;
  }
  if (q.before) {
    const before = Number(q.before);
    if (!Number.isInteger(before)) return { error: 'before must be a message seq' };
    query.beforeSeq = before;
  }
  return { query };
}

/** `?channel=&state=&limit=` of `GET /api/files`. */
function parseFileQuery(q: Record<string, string | undefined>): { query: { channel?: string; state?: InboundFileState; limit?: number } } | { error: string } {
  const query: { channel?: string; state?: InboundFileState; limit?: number } = {};
  if (q.channel) query.channel = q.channel;
  if (q.state) {
    if (!Object.hasOwn(InboundFileState, q.state)) return { error: `state must be one of ${Object.keys(InboundFileState).join(', ')}` };
    query.state = q.state as InboundFileState;
  }
  if (q.limit) {
    const limit = Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) return { error: 'limit must be an integer from 1 to 1000' };
    query.limit = limit;
  }
  return { query };
}

function presentFile(file: InboundFile) {
  return { ...file, pickedAt: iso(file.pickedAt), finishedAt: file.finishedAt !== undefined ? iso(file.finishedAt) : undefined };
}

/** `?attempts=N&attemptsBefore=SEQ` of `GET /api/messages/:id`: which page of each delivery's attempt log. */
function parseAttemptsPage(q: Record<string, string | undefined>): { attempts: AttemptsPage } | { error: string } {
  const attempts: AttemptsPage = {};
  if (q.attempts) {
    const limit = Number(q.attempts);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_ATTEMPTS) return { error: `attempts must be an integer from 1 to ${MAX_ATTEMPTS}` };
    attempts.limit = limit;
  }
  if (q.attemptsBefore) {
    const before = Number(q.attemptsBefore);
    if (!Number.isInteger(before)) return { error: "attemptsBefore must be an attempt's seq (a delivery's attemptsBefore)" };
    attempts.before = before;
  }
  return { attempts };
}

/** The stored bytes as text (`raw`, as the format reads them) and as its format renders them for people (`rendered`). */
function rawViews(formatName: string, raw: Buffer, encoding: string): { raw: string; rendered: string } {
  try {
    const format = messageFormat(formatName);
    return { raw: decodeStored(format, raw, encoding), rendered: format.render(raw, encoding) };
  } catch {
    // A row of a format this engine does not know (written by a newer one): the bytes as UTF-8.
    const text = raw.toString('utf8');
    return { raw: text, rendered: text };
  }
}

function presentMessage(message: MessageDetail) {
  const { raw, ...rest } = message;
  return {
    ...rest,
    receivedAt: iso(message.receivedAt),
    updatedAt: iso(message.updatedAt),
    ...rawViews(message.format, raw, message.encoding),
    rawBase64: raw.toString('base64'),
    events: message.events.map((e) => ({ ...e, at: iso(e.at) })),
    deliveries: message.deliveries.map((d) => ({
      ...d,
      nextAttemptAt: d.nextAttemptAt !== undefined ? iso(d.nextAttemptAt) : undefined,
      attemptLog: d.attemptLog.map((a) => ({
        ...a,
        startedAt: iso(a.startedAt),
        nextAttemptAt: a.nextAttemptAt !== undefined ? iso(a.nextAttemptAt) : undefined,
        batch: a.batch ? { ...a.batch, startedAt: iso(a.batch.startedAt) } : undefined,
      })),
    })),
  };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function sendError(reply: FastifyReply, status: number, code: ErrorCode, message: string) {
  return reply.code(status).send({ error: { code, message } });
}
