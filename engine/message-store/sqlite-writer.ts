// SPDX-License-Identifier: Apache-2.0
/**
 * The write side of the SQLite store: the one connection that writes, the migrations, and the
 * flush of a group-committed batch (`BEGIN IMMEDIATE`, load, apply, write, `COMMIT`). It is
 * synchronous (better-sqlite3) and runs on the store's writer thread (sqlite-writer-worker.ts), so
 * that the fsync of each commit and the statements of each batch never block the event loop that
 * serves the MLLP connections; `SqliteStore` can also run it on the main thread (`writeThread:
 * 'main'`).
 *
 * @see docs/design/0003-message-store.md § Group commit
 */
import Database from 'better-sqlite3';
import { ErrorCodes, OspreyError, type ErrorCode } from '../errors/error-codes.ts';
import type { ItemResult } from './group-commit.ts';
import type { MessageState } from './message-store.ts';
import { DELIVERY_COLUMNS, deliveryRowFrom, num, type Migration, type Row } from './store-rows.ts';
import {
  UnitOfWork,
  applyBatch,
  collectNeeds,
  type DedupeHit,
  type DeliveryRow,
  type MessageHead,
  type PreparedOp,
  type Snapshot,
  type SnapshotNeeds,
  type StoreOpResult,
  type Writes,
} from './unit-of-work.ts';

export interface SqliteWriterOptions {
  path: string;
  synchronous: 'full' | 'normal';
  busyTimeoutMs: number;
}

type Db = Database.Database;
type Stmt = Database.Statement;

/** Sets the connection up as every connection of the store needs it. */
export function configureConnection(db: Db, options: SqliteWriterOptions): void {
  db.pragma(`busy_timeout = ${Math.trunc(options.busyTimeoutMs)}`);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
  db.pragma('foreign_keys = ON');
}

/** Errors confined to one write of a batch (the database itself is fine). */
function isItemError(err: unknown): boolean {
  if (err instanceof Database.SqliteError) return /^SQLITE_(CONSTRAINT|MISMATCH|TOOBIG|RANGE)/.test(err.code);
  // better-sqlite3 throws TypeError/RangeError for values it cannot bind; the unit of work for bad writes.
  return err instanceof TypeError || err instanceof RangeError;
}

/** Applies the migrations not yet recorded, in order, in one write transaction. */
export function migrate(db: Db, migrations: Migration[]): void {
  // BEGIN IMMEDIATE takes the write lock first: a second process opening at the same moment waits
  // (busy_timeout) and then finds the migrations recorded.
  db.exec('BEGIN IMMEDIATE');
  try {
    db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
    const applied = new Set((db.prepare('SELECT version FROM schema_migrations').all() as Row[]).map((r) => num(r.version)));
    const known = new Set(migrations.map((m) => m.version));
    const newer = [...applied].filter((v) => !known.has(v));
    if (newer.length > 0) {
      throw new OspreyError('OSPREY_ERR_STORE_UNAVAILABLE', `the store's schema has migration ${Math.max(...newer)}, newer than this engine`);
    }
    const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
    for (const m of migrations) {
      if (applied.has(m.version)) continue;
      db.exec(m.sql);
      record.run(m.version, m.name, Date.now());
    }
    db.exec('COMMIT');
  } catch (err) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw err;
  }
}

function prepareWrites(db: Db) {
  const p = (sql: string): Stmt => db.prepare(sql);
  return {
    begin: p('BEGIN IMMEDIATE'),
    commit: p('COMMIT'),
    rollback: p('ROLLBACK'),
    savepoint: p('SAVEPOINT item'),
    release: p('RELEASE item'),
    rollbackTo: p('ROLLBACK TO item'),
    // snapshot
    deliveryMessageId: p('SELECT message_id FROM deliveries WHERE id = ?'),
    messageHead: p('SELECT id, seq, channel, order_key, state FROM messages WHERE id = ?'),
    deliveriesOf: p(`SELECT ${DELIVERY_COLUMNS} FROM deliveries WHERE message_id = ?`),
    dedupe: p(
      'SELECT id, received_at FROM messages WHERE channel = ? AND sender = ? AND control_id = ? AND accepted = 1 AND received_at >= ? ORDER BY received_at DESC LIMIT 1',
    ),
    // writes
    insertMessage: p(
      `INSERT INTO messages (id, channel, received_at, raw, encoding, source, control_id, sender, message_type, patient_id, visit_id, facility, order_key, state, accepted, error_code, error_detail, updated_at,
                             exception_category, exception, filter_reason, canonical, format, lineage, file_hash, record_index)
       VALUES (@id, @channel, @receivedAt, @raw, @encoding, @source, @controlId, @sender, @messageType, @patientId, @visitId, @facility, @orderKey, @state, @accepted, @errorCode, @errorDetail, @updatedAt,
               @exceptionCategory, @exceptionJson, @filterReason, @canonicalJson, @format, @lineageJson, @fileHash, @recordIndex)`,
    ),
    updateMessageFull: p(
      `UPDATE messages SET state = @state, error_code = @errorCode, error_detail = @errorDetail, exception_category = @exceptionCategory,
       exception = @exceptionJson, filter_reason = @filterReason, canonical = @canonicalJson, updated_at = @updatedAt WHERE id = @id`,
    ),
    updateMessageState: p('UPDATE messages SET state = @state, updated_at = @updatedAt WHERE id = @id'),
    deleteDelivery: p('DELETE FROM deliveries WHERE id = ?'),
    insertDelivery: p(
      `INSERT INTO deliveries (id, message_id, seq, channel, destination, output_index, order_key, payload, state, attempts, next_attempt_at, last_error_code, last_error_detail, updated_at)
       VALUES (@id, @messageId, COALESCE(@seq, (SELECT seq FROM messages WHERE id = @messageId)), @channel, @destination, @outputIndex, @orderKey, @payloadJson, @state, @attempts, @nextAttemptAt, @lastErrorCode, @lastErrorDetail, @updatedAt)`,
    ),
    updateDelivery: p(
      `UPDATE deliveries SET state = @state, attempts = @attempts, next_attempt_at = @nextAttemptAt, last_error_code = @lastErrorCode,
       last_error_detail = @lastErrorDetail, updated_at = @updatedAt WHERE id = @id`,
    ),
    insertBatchAttempt: p(
      `INSERT INTO batch_attempts (id, batch_key, size, started_at, duration_ms, request, response_status, response_body, error_code, error_detail, outcome, next_attempt_at)
       VALUES (@id, @batchKey, @size, @startedAt, @durationMs, @requestJson, @responseStatus, @responseBody, @errorCode, @errorDetail, @outcome, @nextAttemptAt)`,
    ),
    insertAttempt: p(
      `INSERT INTO attempts (delivery_id, n, started_at, duration_ms, request, response_status, response_body, error_code, error_detail, outcome, next_attempt_at, batch_attempt_id)
       VALUES (@deliveryId, @n, @startedAt, @durationMs, @requestJson, @responseStatus, @responseBody, @errorCode, @errorDetail, @outcome, @nextAttemptAt, @batchAttemptId)`,
    ),
    insertEvent: p('INSERT INTO events (message_id, at, event, destination, detail) VALUES (@messageId, @at, @event, @destination, @detail)'),
  };
}

/** The writing connection; see the module comment. */
export class SqliteWriter {
  readonly #db: Db;
  readonly #s: ReturnType<typeof prepareWrites>;

  /** Opens the file, applies the migrations and prepares the statements. Throws when it cannot. */
  constructor(options: SqliteWriterOptions, migrations: Migration[]) {
    const db = new Database(options.path);
    try {
      configureConnection(db, options);
      migrate(db, migrations);
      this.#s = prepareWrites(db);
    } catch (err) {
      db.close();
      throw err;
    }
    this.#db = db;
  }

  close(): void {
    this.#db.close();
  }

  /**
   * Writes one batch in one transaction and reports a result per write. Throws when the batch as a
   * whole failed (nothing of it is stored).
   */
  flush(ops: readonly PreparedOp[]): ItemResult<StoreOpResult>[] {
    const db = this.#db;
    const s = this.#s;
    const now = Date.now();
    s.begin.run();
    try {
      const results = this.#runBatch(ops, now);
      s.commit.run();
      return results;
    } catch (err) {
      if (db.inTransaction) s.rollback.run();
      if (!isItemError(err)) throw err;
      if (ops.length === 1) return [{ ok: false, error: err }];
    }
    // One write of the batch broke a constraint (a reused message id …). Redo the batch one write
    // at a time, each in a savepoint, so that only the faulty write fails.
    s.begin.run();
    try {
      const results = ops.map((op): ItemResult<StoreOpResult> => {
        s.savepoint.run();
        try {
          const [result] = this.#runBatch([op], now);
          s.release.run();
          return result!;
        } catch (err) {
          // Some errors (I/O, disk full) end the transaction itself: then the whole batch fails.
          if (!db.inTransaction || !isItemError(err)) throw err;
          s.rollbackTo.run();
          s.release.run();
          return { ok: false, error: err };
        }
      });
      s.commit.run();
      return results;
    } catch (err) {
      if (db.inTransaction) s.rollback.run();
      throw err;
    }
  }

  #runBatch(ops: readonly PreparedOp[], now: number): ItemResult<StoreOpResult>[] {
    const uow = new UnitOfWork(this.#load(collectNeeds(ops)), now);
    const results = applyBatch(uow, ops);
    this.#write(uow.writes);
    return results;
  }

  #load(needs: SnapshotNeeds): Snapshot {
    const s = this.#s;
    const messageIds = new Set(needs.messageIds);
    for (const id of needs.deliveryIds) {
      const r = s.deliveryMessageId.get(id) as Row | undefined;
      if (r) messageIds.add(String(r.message_id));
    }
    const messages = new Map<string, MessageHead>();
    const deliveries = new Map<string, DeliveryRow>();
    for (const id of messageIds) {
      const r = s.messageHead.get(id) as Row | undefined;
      if (!r) continue;
      messages.set(id, { id, seq: num(r.seq), channel: String(r.channel), orderKey: String(r.order_key), state: String(r.state) as MessageState });
      for (const d of s.deliveriesOf.all(id) as Row[]) deliveries.set(String(d.id), deliveryRowFrom(d));
    }
    const dedupe = new Map<string, DedupeHit>();
    for (const p of needs.dedupe.values()) {
      const r = s.dedupe.get(p.channel, p.sender, p.controlId, p.since) as Row | undefined;
      if (r) dedupe.set(p.key, { id: String(r.id), receivedAt: num(r.received_at) });
    }
    return { messages, deliveries, dedupe };
  }

  #write(w: Writes): void {
    const s = this.#s;
    for (const m of w.insertMessages) s.insertMessage.run({ ...m, accepted: m.accepted ? 1 : 0 });
    for (const u of w.updateMessages.values()) {
      if (u.fields) s.updateMessageFull.run({ id: u.id, state: u.state, updatedAt: u.updatedAt, ...u.fields });
      else s.updateMessageState.run({ id: u.id, state: u.state, updatedAt: u.updatedAt });
    }
    for (const id of w.deleteDeliveries) s.deleteDelivery.run(id);
    for (const d of w.insertDeliveries.values()) s.insertDelivery.run(d);
    for (const d of w.updateDeliveries.values()) {
      s.updateDelivery.run({
        id: d.id,
        state: d.state,
        attempts: d.attempts,
        nextAttemptAt: d.nextAttemptAt,
        lastErrorCode: d.lastErrorCode,
        lastErrorDetail: d.lastErrorDetail,
        updatedAt: d.updatedAt,
      });
    }
    for (const b of w.insertBatchAttempts) s.insertBatchAttempt.run(b);
    for (const a of w.insertAttempts) s.insertAttempt.run(a);
    for (const e of w.insertEvents) s.insertEvent.run(e);
  }
}

/** An error as it crosses from the writer thread (structured clone keeps neither class nor code). */
export interface WireError {
  name: string;
  message: string;
  code?: string;
}

export function toWireError(err: unknown): WireError {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? { name: err.name, message: err.message, code } : { name: err.name, message: err.message };
  }
  return { name: 'Error', message: String(err) };
}

export function fromWireError(w: WireError): Error {
  if (w.name === 'OspreyError' && w.code !== undefined && Object.hasOwn(ErrorCodes, w.code)) {
    return new OspreyError(w.code as ErrorCode, w.message);
  }
  const err = w.name === 'TypeError' ? new TypeError(w.message) : w.name === 'RangeError' ? new RangeError(w.message) : new Error(w.message);
  if (w.name !== err.name) err.name = w.name;
  if (w.code !== undefined) Object.assign(err, { code: w.code });
  return err;
}

/** Results of a flush in a form that survives structured clone. */
export type WireResult = { ok: true; value: StoreOpResult } | { ok: false; error: WireError };

export function toWireResults(results: ItemResult<StoreOpResult>[]): WireResult[] {
  return results.map((r) => (r.ok ? r : { ok: false, error: toWireError(r.error) }));
}

export function fromWireResults(results: WireResult[]): ItemResult<StoreOpResult>[] {
  return results.map((r) => (r.ok ? r : { ok: false, error: fromWireError(r.error) }));
}

