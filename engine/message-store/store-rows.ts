// SPDX-License-Identifier: Apache-2.0
/**
 * What the SQLite and PostgreSQL stores read the same way: the column lists, the mapping of rows
 * to the contract's types, the search query, and the migration files. Both drivers are set up to
 * return integers as numbers, JSON columns as text and binary columns as Buffers, so one mapping
 * serves both.
 */
import { readdir, readFile } from 'node:fs/promises';
import type { ErrorCode } from '../errors/error-codes.ts';
import type { MessageFormatName, RecordLineage } from '../message-formats/message-format.ts';
import {
  DEFAULT_ATTEMPTS,
  MAX_ATTEMPTS,
  type AttemptLogEntry,
  type AttemptRecord,
  type AttemptsPage,
  type BatchAttemptDetail,
  type BatchAttemptSummary,
  type BusinessKeys,
  type DeliveryState,
  type MessageDetail,
  type MessageEvent,
  type MessageQuery,
  type MessageState,
  type MessageSummary,
  type PendingDelivery,
  type PendingMessage,
  type PendingPage,
} from './message-store.ts';
import { deliveryFromRow, fromJson, type DeliveryRow } from './unit-of-work.ts';

/** A row as a driver returns it. */
export type Row = Record<string, unknown>;

export const SUMMARY_COLUMNS =
  'id, seq, channel, received_at, state, control_id, sender, message_type, patient_id, visit_id, facility, order_key, error_code, error_detail, exception_category, updated_at';

export const DETAIL_COLUMNS = `${SUMMARY_COLUMNS}, raw, encoding, source, canonical, exception, filter_reason, format, lineage`;

export const DELIVERY_COLUMNS =
  'id, message_id, seq, channel, destination, output_index, order_key, payload, state, attempts, next_attempt_at, last_error_code, last_error_detail, updated_at';

/** The columns of a pending delivery (recovery needs no payload). */
export const PENDING_DELIVERY_COLUMNS = 'id, message_id, channel, destination, output_index, order_key, seq';

/** A row of {@link PENDING_DELIVERY_COLUMNS}. */
export function pendingDeliveryFrom(r: Row): PendingDelivery {
  return {
    id: String(r.id),
    messageId: String(r.message_id),
    channel: String(r.channel),
    destination: String(r.destination),
    outputIndex: num(r.output_index),
    orderKey: String(r.order_key),
    seq: num(r.seq),
  };
}

/** A row of the pending-messages read. */
export function pendingMessageFrom(r: Row): PendingMessage {
  return { id: String(r.id), channel: String(r.channel), orderKey: String(r.order_key), seq: num(r.seq) };
}

/**
 * The pending reads, one page each, for both stores (`p(n)` writes the n-th placeholder). A page
 * starts after the previous page's last row, by a row comparison: both planners start the scan of
 * the index on (state, seq) at its seq (EXPLAIN: PostgreSQL derives `seq >=` from it, SQLite
 * searches `seq>?`) and sort only the rows of one seq.
 * Deliveries: changedSince, seq, destination, outputIndex, limit. Messages: changedSince, seq, limit.
 */
export function pendingReads(p: (n: number) => string): { deliveries: string; messages: string } {
  return {
    deliveries: `SELECT ${PENDING_DELIVERY_COLUMNS} FROM deliveries
                  WHERE state = 'QUEUED' AND updated_at >= ${p(1)} AND (seq, destination, output_index) > (${p(2)}, ${p(3)}, ${p(4)})
                  ORDER BY seq, destination, output_index LIMIT ${p(5)}`,
    messages: `SELECT id, channel, order_key, seq FROM messages WHERE state = 'RECEIVED' AND updated_at >= ${p(1)} AND seq > ${p(2)} ORDER BY seq LIMIT ${p(3)}`,
  };
}

/** The parameters of {@link pendingReads}' deliveries read for a page. */
export function pendingDeliveriesParams(page: PendingPage<PendingDelivery>): unknown[] {
  const a = page.after;
  return [Math.trunc(page.changedSince ?? 0), a?.seq ?? -1, a?.destination ?? '', a?.outputIndex ?? -1, page.limit];
}

/** The parameters of {@link pendingReads}' messages read for a page. */
export function pendingMessagesParams(page: PendingPage<PendingMessage>): unknown[] {
  return [Math.trunc(page.changedSince ?? 0), page.after?.seq ?? -1, page.limit];
}

/**
 * The reads of a message's attempt log for both stores (`p(n)` writes the n-th placeholder):
 * `page` the newest attempts of one delivery below a seq (delivery id, before, limit), the batch
 * each went out in joined for its metadata only (never its answer's body: it may name other
 * patients); `counts` every delivery's number of attempts (message id). Both walk the index on
 * attempts (delivery_id, id).
 */
export function attemptLogReads(p: (n: number) => string): { page: string; counts: string } {
  return {
    page: `SELECT a.id AS seq, a.n, a.started_at, a.duration_ms, a.request, a.response_status, a.response_body, a.error_code, a.error_detail, a.outcome, a.next_attempt_at,
                  b.id AS batch_id, b.batch_key, b.size AS batch_size, b.outcome AS batch_outcome, b.response_status AS batch_status,
                  b.started_at AS batch_started_at, b.duration_ms AS batch_duration_ms
             FROM attempts a LEFT JOIN batch_attempts b ON b.id = a.batch_attempt_id
            WHERE a.delivery_id = ${p(1)} AND a.id < ${p(2)} ORDER BY a.id DESC LIMIT ${p(3)}`,
    counts: `SELECT delivery_id, count(*) AS n FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE message_id = ${p(1)}) GROUP BY delivery_id`,
  };
}

/**
 * The reads of a whole batch attempt (`p(n)` writes the n-th placeholder; both take its id): the
 * batch's row, and its items in batch order (the partial index on attempts.batch_attempt_id).
 */
export function batchAttemptReads(p: (n: number) => string): { batch: string; items: string } {
  return {
    batch: `SELECT id, batch_key, size, started_at, duration_ms, request, response_status, response_body, error_code, error_detail, outcome, next_attempt_at
              FROM batch_attempts WHERE id = ${p(1)}`,
    items: `SELECT a.delivery_id, d.message_id, a.request FROM attempts a JOIN deliveries d ON d.id = a.delivery_id
             WHERE a.batch_attempt_id = ${p(1)} ORDER BY a.id`,
  };
}

/** A batch attempt's row and its items' rows ({@link batchAttemptReads}) as the contract's type. */
export function batchAttemptFromRows(b: Row, items: Row[]): BatchAttemptDetail {
  const head = fromJson(strOrNull(b.request)) as { method: string; url: string; headers: Record<string, string> };
  // The body as sent is JSON.stringify of the array of the items' elements: the same text again.
  const elements = items.map((r) => (fromJson(strOrNull(r.request)) as { body: string }).body);
  const detail: BatchAttemptDetail = {
    id: str(b.id),
    key: str(b.batch_key),
    size: num(b.size),
    startedAt: num(b.started_at),
    durationMs: num(b.duration_ms),
    request: { ...head, body: `[${elements.join(',')}]` },
    outcome: str(b.outcome) as AttemptRecord['outcome'],
    items: items.map((r) => ({ messageId: str(r.message_id), deliveryId: str(r.delivery_id) })),
  };
  if (b.response_status !== null && b.response_status !== undefined) detail.response = { status: num(b.response_status), body: str(b.response_body ?? '') };
  if (b.error_code !== null && b.error_code !== undefined) detail.error = { code: str(b.error_code) as ErrorCode, detail: str(b.error_detail ?? '') };
  put(detail, 'nextAttemptAt', numOrNull(b.next_attempt_at));
  return detail;
}

/** The page asked for, bounded: how many attempts per delivery, and below which seq. */
export function attemptsPageOf(page: AttemptsPage = {}): { limit: number; before: number } {
  const requested = page.limit === undefined || !Number.isFinite(page.limit) ? DEFAULT_ATTEMPTS : Math.trunc(page.limit);
  const before = page.before === undefined || !Number.isFinite(page.before) ? Number.MAX_SAFE_INTEGER : Math.trunc(page.before);
  return { limit: Math.min(MAX_ATTEMPTS, Math.max(1, requested)), before };
}

/** The parameters of {@link attemptLogReads}' page read: one row more than the page, to know if older ones remain. */
export function attemptPageParams(deliveryId: string, page: { limit: number; before: number }): unknown[] {
  return [deliveryId, page.before, page.limit + 1];
}

/** Default and maximum page size of `findMessages`. */
export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 1000;

export function num(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint' || typeof v === 'string') return Number(v);
  throw new TypeError(`message store: expected a number, got ${typeof v}`);
}

function numOrNull(v: unknown): number | null {
  return v === null || v === undefined ? null : num(v);
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : String(v);
}

function strOrNull(v: unknown): string | null {
  return v === null || v === undefined ? null : str(v);
}

/** Sets `obj[key]` only when the value is present, so absent keys stay absent (not `undefined`). */
function put<T extends object, K extends keyof T>(obj: T, key: K, value: T[K] | null | undefined): void {
  if (value !== null && value !== undefined) obj[key] = value;
}

export function keysFromRow(r: Row): BusinessKeys {
  const keys: BusinessKeys = {};
  put(keys, 'controlId', strOrNull(r.control_id));
  put(keys, 'sender', strOrNull(r.sender));
  put(keys, 'messageType', strOrNull(r.message_type));
  put(keys, 'patientId', strOrNull(r.patient_id));
  put(keys, 'visitId', strOrNull(r.visit_id));
  put(keys, 'facility', strOrNull(r.facility));
  return keys;
}

export function summaryFromRow(r: Row): MessageSummary {
  const s: MessageSummary = {
    id: str(r.id),
    seq: num(r.seq),
    channel: str(r.channel),
    receivedAt: num(r.received_at),
    state: str(r.state) as MessageState,
    keys: keysFromRow(r),
    orderKey: str(r.order_key),
    updatedAt: num(r.updated_at),
  };
  if (r.error_code !== null && r.error_code !== undefined) s.error = { code: str(r.error_code) as ErrorCode, detail: str(r.error_detail ?? '') };
  put(s, 'exceptionCategory', strOrNull(r.exception_category));
  return s;
}

export function deliveryRowFrom(r: Row): DeliveryRow {
  return {
    id: str(r.id),
    messageId: str(r.message_id),
    seq: num(r.seq),
    channel: str(r.channel),
    destination: str(r.destination),
    outputIndex: num(r.output_index),
    orderKey: str(r.order_key),
    payloadJson: str(r.payload),
    state: str(r.state) as DeliveryState,
    attempts: num(r.attempts),
    nextAttemptAt: numOrNull(r.next_attempt_at),
    lastErrorCode: strOrNull(r.last_error_code),
    lastErrorDetail: strOrNull(r.last_error_detail),
    updatedAt: num(r.updated_at),
  };
}

/** A row of {@link attemptLogReads}' page read. */
export function attemptFromRow(r: Row): AttemptLogEntry {
  const a: AttemptLogEntry = {
    seq: num(r.seq),
    startedAt: num(r.started_at),
    durationMs: num(r.duration_ms),
    request: fromJson(strOrNull(r.request)) as AttemptRecord['request'],
    outcome: str(r.outcome) as AttemptRecord['outcome'],
  };
  if (r.response_status !== null && r.response_status !== undefined) {
    const body = strOrNull(r.response_body);
    a.response = body === null ? { status: num(r.response_status) } : { status: num(r.response_status), body };
  }
  if (r.error_code !== null && r.error_code !== undefined) a.error = { code: str(r.error_code) as ErrorCode, detail: str(r.error_detail ?? '') };
  put(a, 'nextAttemptAt', numOrNull(r.next_attempt_at));
  if (r.batch_id !== null && r.batch_id !== undefined) {
    const batch: BatchAttemptSummary = {
      id: str(r.batch_id),
      key: str(r.batch_key),
      size: num(r.batch_size),
      outcome: str(r.batch_outcome) as AttemptRecord['outcome'],
      startedAt: num(r.batch_started_at),
      durationMs: num(r.batch_duration_ms),
    };
    put(batch, 'status', numOrNull(r.batch_status));
    a.batch = batch;
  }
  return a;
}

export function eventFromRow(r: Row): MessageEvent {
  const e: MessageEvent = { at: num(r.at), event: str(r.event) };
  put(e, 'destination', strOrNull(r.destination));
  put(e, 'detail', strOrNull(r.detail));
  return e;
}

/**
 * Assembles `getMessage`'s answer from the message row (DETAIL_COLUMNS), its events (in order),
 * its deliveries, each delivery's page of attempts (newest first, one more than `limit` when
 * older ones remain: {@link attemptPageParams}) and the counts of {@link attemptLogReads}.
 */
export function detailFromRows(m: Row, events: Row[], deliveries: Row[], pages: ReadonlyMap<string, Row[]>, counts: Row[], limit: number): MessageDetail {
  const count = new Map(counts.map((r) => [str(r.delivery_id), num(r.n)]));
  const detail: MessageDetail = {
    ...summaryFromRow(m),
    raw: m.raw as Buffer,
    encoding: str(m.encoding),
    format: str(m.format) as MessageFormatName,
    events: events.map(eventFromRow),
    deliveries: deliveries.map((r) => {
      const d = deliveryFromRow(deliveryRowFrom(r));
      const rows = pages.get(d.id) ?? [];
      const attemptLog = rows.slice(0, limit).map(attemptFromRow).reverse();
      const entry: MessageDetail['deliveries'][number] = { ...d, attemptLog, attemptCount: count.get(d.id) ?? 0 };
      if (rows.length > limit) entry.attemptsBefore = attemptLog[0]!.seq;
      return entry;
    }),
  };
  put(detail, 'source', strOrNull(m.source));
  if (m.canonical !== null && m.canonical !== undefined) detail.canonical = fromJson(str(m.canonical));
  if (m.exception !== null && m.exception !== undefined) detail.exception = fromJson(str(m.exception)) as MessageDetail['exception'];
  put(detail, 'filterReason', strOrNull(m.filter_reason));
  if (m.lineage !== null && m.lineage !== undefined) detail.lineage = fromJson(str(m.lineage)) as RecordLineage;
  return detail;
}

/** Builds the search of `findMessages`: newest first, keyset-paged on seq. */
export function buildFindMessages(q: MessageQuery, placeholder: (n: number) => string): { sql: string; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (clause: (p: string) => string, value: unknown): void => {
    params.push(value);
    where.push(clause(placeholder(params.length)));
  };
  if (q.channel !== undefined) add((p) => `channel = ${p}`, q.channel);
  if (q.state !== undefined) add((p) => `state = ${p}`, q.state);
  if (q.controlId !== undefined) add((p) => `control_id = ${p}`, q.controlId);
  if (q.patientId !== undefined) add((p) => `patient_id = ${p}`, q.patientId);
  if (q.visitId !== undefined) add((p) => `visit_id = ${p}`, q.visitId);
  if (q.messageType !== undefined) add((p) => `message_type = ${p}`, q.messageType);
  if (q.since !== undefined) add((p) => `received_at >= ${p}`, Math.trunc(q.since));
  if (q.until !== undefined) add((p) => `received_at <= ${p}`, Math.trunc(q.until));
  if (q.beforeSeq !== undefined) add((p) => `seq < ${p}`, Math.trunc(q.beforeSeq));
  const requested = q.limit === undefined || !Number.isFinite(q.limit) ? DEFAULT_LIMIT : Math.trunc(q.limit);
  const limit = Math.min(MAX_LIMIT, Math.max(1, requested));
  params.push(limit);
  const sql =
    `SELECT ${SUMMARY_COLUMNS} FROM messages` +
    (where.length > 0 ? ` WHERE ${where.join(' AND ')}` : '') +
    ` ORDER BY seq DESC LIMIT ${placeholder(params.length)}`;
  return { sql, params };
}

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** The numbered SQL files of one dialect (`migrations/<dialect>/NNNN-name.sql`), in order. */
export async function readMigrations(dialect: 'sqlite' | 'postgres'): Promise<Migration[]> {
  const dir = new URL(`./migrations/${dialect}/`, import.meta.url);
  const files = (await readdir(dir)).filter((f) => /^\d{4}-[a-z0-9-]+\.sql$/.test(f)).sort();
  const out: Migration[] = [];
  for (const file of files) {
    const version = Number(file.slice(0, 4));
    if (out.some((m) => m.version === version)) throw new Error(`message store: two migrations numbered ${version}`);
    out.push({ version, name: file.replace(/\.sql$/, ''), sql: await readFile(new URL(file, dir), 'utf8') });
  }
  return out;
}
