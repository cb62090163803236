// SPDX-License-Identifier: Apache-2.0
/**
 * The embedded message store: one SQLite file in WAL mode, written through better-sqlite3 by the
 * group committer (one `BEGIN IMMEDIATE … COMMIT` per turn of the event loop). better-sqlite3 is
 * synchronous, so a transaction never stays open across an `await`: a read never sees a write that
 * is not committed, and nothing else runs on the connection while a batch is written.
 *
 * Durability of "stored" (what a resolved `receive` promises; the MLLP ACK waits on it):
 * - `synchronous: 'full'` (default): the WAL is fsynced at every commit. A stored message survives
 *   a crash of the process and of the machine (power loss).
 * - `synchronous: 'normal'`: the commit is written to the WAL, fsynced only at checkpoints. A stored
 *   message survives a crash of the process (kill -9); the last commits before a power loss or
 *   kernel crash may be lost (the file stays consistent).
 *
 * One process writes the file (the embedded mode). A second process may open it (the CLI, a
 * test); writers then take turns through SQLite's lock, waiting up to `busyTimeoutMs`.
 *
 * @see docs/design/0003-message-store.md
 */
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { OspreyError } from '../errors/error-codes.ts';
import { GroupCommitter, type ItemResult } from './group-commit.ts';
import type {
  AttemptRecord,
  MessageDetail,
  MessageQuery,
  MessageState,
  MessageStore,
  MessageSummary,
  NewMessage,
  PendingMessage,
  ProcessingOutcome,
  ReceiveResult,
  ReplayPlan,
  StoredDelivery,
} from './message-store.ts';
import {
  DELIVERY_COLUMNS,
  DETAIL_COLUMNS,
  ATTEMPT_COLUMNS,
  buildFindMessages,
  deliveryRowFrom,
  detailFromRows,
  keysFromRow,
  num,
  readMigrations,
  summaryFromRow,
  type Migration,
  type Row,
} from './store-rows.ts';
import {
  UnitOfWork,
  applyBatch,
  collectNeeds,
  deliveryFromRow,
  type DedupeHit,
  type DeliveryRow,
  type MessageHead,
  type Snapshot,
  type SnapshotNeeds,
  type StoreOp,
  type StoreOpResult,
  type Writes,
} from './unit-of-work.ts';

export interface SqliteStoreOptions {
  /** The database file; its directory is created if missing. */
  path: string;
  /**
   * How far a commit is forced to disk before `receive` resolves; see the module comment.
   * @defaultValue 'full'
   */
  synchronous?: 'full' | 'normal';
  /**
   * How long a write waits for another process's lock before the batch fails with
   * OSPREY_ERR_STORE_UNAVAILABLE. The wait blocks the event loop, so keep it short.
   * @defaultValue 5000
   */
  busyTimeoutMs?: number;
  /**
   * Writes per transaction at most (the group commit flushes earlier when this many are queued).
   * @defaultValue 1000
   */
  maxBatch?: number;
}

type Db = Database.Database;
type Stmt = Database.Statement;

/** Errors confined to one write of a batch (the database itself is fine). */
function isItemError(err: unknown): boolean {
  if (err instanceof Database.SqliteError) return /^SQLITE_(CONSTRAINT|MISMATCH|TOOBIG|RANGE)/.test(err.code);
  // better-sqlite3 throws TypeError/RangeError for values it cannot bind; ours for malformed writes.
  return err instanceof TypeError || err instanceof RangeError;
}

function prepareAll(db: Db) {
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
      `INSERT INTO messages (id, channel, received_at, raw, encoding, source, control_id, sender, message_type, patient_id, visit_id, facility, order_key, state, accepted, error_code, error_detail, updated_at)
       VALUES (@id, @channel, @receivedAt, @raw, @encoding, @source, @controlId, @sender, @messageType, @patientId, @visitId, @facility, @orderKey, @state, @accepted, @errorCode, @errorDetail, @updatedAt)`,
    ),
    updateMessageFull: p(
      `UPDATE messages SET state = @state, error_code = @errorCode, error_detail = @errorDetail, exception_category = @exceptionCategory,
       exception = @exceptionJson, filter_reason = @filterReason, canonical = @canonicalJson, updated_at = @updatedAt WHERE id = @id`,
    ),
    updateMessageState: p('UPDATE messages SET state = @state, updated_at = @updatedAt WHERE id = @id'),
    deleteDelivery: p('DELETE FROM deliveries WHERE id = ?'),
    insertDelivery: p(
      `INSERT INTO deliveries (id, message_id, seq, channel, destination, output_index, order_key, payload, state, attempts, next_attempt_at, last_error_code, last_error_detail, updated_at)
       VALUES (@id, @messageId, @seq, @channel, @destination, @outputIndex, @orderKey, @payloadJson, @state, @attempts, @nextAttemptAt, @lastErrorCode, @lastErrorDetail, @updatedAt)`,
    ),
    updateDelivery: p(
      `UPDATE deliveries SET state = @state, attempts = @attempts, next_attempt_at = @nextAttemptAt, last_error_code = @lastErrorCode,
       last_error_detail = @lastErrorDetail, updated_at = @updatedAt WHERE id = @id`,
    ),
    insertAttempt: p(
      `INSERT INTO attempts (delivery_id, n, started_at, duration_ms, request, response_status, response_body, error_code, error_detail, outcome, next_attempt_at)
       VALUES (@deliveryId, @n, @startedAt, @durationMs, @requestJson, @responseStatus, @responseBody, @errorCode, @errorDetail, @outcome, @nextAttemptAt)`,
    ),
    insertEvent: p('INSERT INTO events (message_id, at, event, destination, detail) VALUES (@messageId, @at, @event, @destination, @detail)'),
    // reads
    loadForProcessing: p(
      'SELECT id, channel, received_at, raw, encoding, control_id, sender, message_type, patient_id, visit_id, facility, order_key, state FROM messages WHERE id = ?',
    ),
    loadDelivery: p(`SELECT ${DELIVERY_COLUMNS} FROM deliveries WHERE id = ?`),
    pendingMessages: p(`SELECT id, channel, order_key, seq FROM messages WHERE state = 'RECEIVED' ORDER BY seq`),
    pendingDeliveries: p(`SELECT ${DELIVERY_COLUMNS} FROM deliveries WHERE state = 'QUEUED' ORDER BY seq, destination, output_index`),
    detail: p(`SELECT ${DETAIL_COLUMNS} FROM messages WHERE id = ?`),
    events: p('SELECT at, event, destination, detail FROM events WHERE message_id = ? ORDER BY id'),
    deliveriesByDestination: p(`SELECT ${DELIVERY_COLUMNS} FROM deliveries WHERE message_id = ? ORDER BY destination, output_index`),
    attemptsOf: p(
      `SELECT ${ATTEMPT_COLUMNS} FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE message_id = ?) ORDER BY id`,
    ),
    countByChannel: p('SELECT channel, state, count(*) AS n FROM messages GROUP BY channel, state'),
  };
}

type Statements = ReturnType<typeof prepareAll>;

/** Applies the migrations not yet recorded, in order, in one write transaction. */
function migrate(db: Db, migrations: Migration[]): void {
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

/** The SQLite implementation of {@link MessageStore}; see the module comment. */
export class SqliteStore implements MessageStore {
  readonly #options: Required<SqliteStoreOptions>;
  #db: Db | undefined;
  #s: Statements | undefined;
  #committer: GroupCommitter<StoreOp, StoreOpResult> | undefined;
  readonly #findStatements = new Map<string, Stmt>();

  constructor(options: SqliteStoreOptions) {
    const synchronous = options.synchronous ?? 'full';
    if (synchronous !== 'full' && synchronous !== 'normal') throw new TypeError(`synchronous must be 'full' or 'normal'`);
    // `??`, not a spread: callers pass optional settings through as explicit undefined.
    this.#options = {
      path: options.path,
      synchronous,
      busyTimeoutMs: options.busyTimeoutMs ?? 5000,
      maxBatch: options.maxBatch ?? 1000,
    };
  }

  async open(): Promise<void> {
    if (this.#db) return;
    const { path, synchronous, busyTimeoutMs, maxBatch } = this.#options;
    if (path !== ':memory:') await mkdir(dirname(path), { recursive: true });
    const migrations = await readMigrations('sqlite');
    let db: Db | undefined;
    try {
      db = new Database(path);
      db.pragma(`busy_timeout = ${Math.trunc(busyTimeoutMs)}`);
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
      db.pragma('foreign_keys = ON');
      migrate(db, migrations);
      this.#s = prepareAll(db);
    } catch (err) {
      db?.close();
      throw new OspreyError('OSPREY_ERR_STORE_UNAVAILABLE', 'the SQLite message store could not be opened', { cause: err });
    }
    this.#db = db;
    this.#committer = new GroupCommitter((ops) => this.#flush(ops), { maxBatch, maxInFlight: 1 });
  }

  async close(): Promise<void> {
    const committer = this.#committer;
    if (!committer) return;
    await committer.close();
    this.#db?.close();
    this.#db = undefined;
    this.#s = undefined;
    this.#committer = undefined;
    this.#findStatements.clear();
  }

  receive(message: NewMessage): Promise<ReceiveResult> {
    return this.#submit({ kind: 'receive', message }) as Promise<ReceiveResult>;
  }

  recordProcessing(id: string, outcome: ProcessingOutcome): Promise<StoredDelivery[]> {
    return this.#submit({ kind: 'process', id, outcome }) as Promise<StoredDelivery[]>;
  }

  async recordAttempts(attempts: AttemptRecord[]): Promise<void> {
    if (attempts.length === 0) return;
    await this.#submit({ kind: 'attempts', attempts });
  }

  replay(id: string): Promise<ReplayPlan | undefined> {
    return this.#submit({ kind: 'replay', id }) as Promise<ReplayPlan | undefined>;
  }

  async loadForProcessing(id: string) {
    const r = this.#stmts().loadForProcessing.get(id) as Row | undefined;
    if (!r) return undefined;
    return {
      id: String(r.id),
      channel: String(r.channel),
      receivedAt: num(r.received_at),
      raw: r.raw as Buffer,
      encoding: String(r.encoding),
      keys: keysFromRow(r),
      orderKey: String(r.order_key),
      state: String(r.state) as MessageState,
    };
  }

  async loadDelivery(id: string): Promise<StoredDelivery | undefined> {
    const r = this.#stmts().loadDelivery.get(id) as Row | undefined;
    return r ? deliveryFromRow(deliveryRowFrom(r)) : undefined;
  }

  async pendingWork(): Promise<{ messages: PendingMessage[]; deliveries: StoredDelivery[] }> {
    const s = this.#stmts();
    // One read transaction, so the two lists are of the same moment.
    return this.#db!.transaction(() => ({
      messages: (s.pendingMessages.all() as Row[]).map((r) => ({ id: String(r.id), channel: String(r.channel), orderKey: String(r.order_key), seq: num(r.seq) })),
      deliveries: (s.pendingDeliveries.all() as Row[]).map((r) => deliveryFromRow(deliveryRowFrom(r))),
    }))();
  }

  async getMessage(id: string): Promise<MessageDetail | undefined> {
    const s = this.#stmts();
    return this.#db!.transaction(() => {
      const m = s.detail.get(id) as Row | undefined;
      if (!m) return undefined;
      return detailFromRows(m, s.events.all(id) as Row[], s.deliveriesByDestination.all(id) as Row[], s.attemptsOf.all(id) as Row[]);
    })();
  }

  async findMessages(query: MessageQuery): Promise<MessageSummary[]> {
    this.#stmts();
    const { sql, params } = buildFindMessages(query, () => '?');
    let stmt = this.#findStatements.get(sql);
    if (!stmt) this.#findStatements.set(sql, (stmt = this.#db!.prepare(sql)));
    return (stmt.all(...params) as Row[]).map(summaryFromRow);
  }

  async countByChannel(): Promise<Record<string, Partial<Record<MessageState, number>>>> {
    const out: Record<string, Partial<Record<MessageState, number>>> = {};
    for (const r of this.#stmts().countByChannel.all() as Row[]) {
      const channel = String(r.channel);
      (out[channel] ??= {})[String(r.state) as MessageState] = num(r.n);
    }
    return out;
  }

  #stmts(): Statements {
    if (!this.#s) throw new OspreyError('OSPREY_ERR_STORE_UNAVAILABLE', 'the message store is not open');
    return this.#s;
  }

  #submit(op: StoreOp): Promise<StoreOpResult> {
    if (!this.#committer) return Promise.reject(new OspreyError('OSPREY_ERR_STORE_UNAVAILABLE', 'the message store is not open'));
    return this.#committer.submit(op);
  }

  /** Writes one batch in one transaction; see group-commit.ts for what a throw means. */
  #flush(ops: readonly StoreOp[]): ItemResult<StoreOpResult>[] {
    const db = this.#db!;
    const s = this.#s!;
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

  #runBatch(ops: readonly StoreOp[], now: number): ItemResult<StoreOpResult>[] {
    const uow = new UnitOfWork(this.#load(collectNeeds(ops)), now);
    const results = applyBatch(uow, ops);
    this.#write(uow.writes);
    return results;
  }

  #load(needs: SnapshotNeeds): Snapshot {
    const s = this.#s!;
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
    const s = this.#s!;
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
    for (const a of w.insertAttempts) s.insertAttempt.run(a);
    for (const e of w.insertEvents) s.insertEvent.run(e);
  }
}
