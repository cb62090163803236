// SPDX-License-Identifier: Apache-2.0
/**
 * The production message store: PostgreSQL through a `pg` Pool, in its own schema. Several engine
 * instances may share one database, so every write is safe against writers in other processes:
 *
 * - the group committer writes each batch in ONE transaction on one pooled client, with multi-row
 *   statements (`unnest` of arrays): about ten round trips per batch whatever its size;
 * - a batch locks the rows of every message it changes (`SELECT … FOR NO KEY UPDATE`, all in one
 *   statement, in id order, so two instances cannot deadlock) before it reads their deliveries;
 *   deliveries are only ever changed under their message's lock (see unit-of-work.ts);
 * - dedupe takes a transaction-scoped advisory lock per (channel, sender, control id) before it
 *   looks for the original, so two instances receiving the same resend cannot both store it;
 * - migrations run under a session advisory lock, so instances starting together apply them once.
 *
 * "Stored" (a resolved `receive`) means committed: with the server's default
 * `synchronous_commit = on`, flushed to the server's WAL (and to a synchronous standby, if one is
 * configured).
 *
 * @see docs/design/0003-message-store.md
 */
import pg from 'pg';
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
  ATTEMPT_COLUMNS,
  DELIVERY_COLUMNS,
  DETAIL_COLUMNS,
  buildFindMessages,
  deliveryRowFrom,
  detailFromRows,
  keysFromRow,
  num,
  readMigrations,
  summaryFromRow,
  type Row,
} from './store-rows.ts';
import {
  UnitOfWork,
  applyBatch,
  collectNeeds,
  deliveryFromRow,
  prepareOp,
  type DedupeHit,
  type DeliveryRow,
  type MessageHead,
  type Snapshot,
  type SnapshotNeeds,
  type PreparedOp,
  type StoreOp,
  type StoreOpResult,
  type Writes,
} from './unit-of-work.ts';

export interface PostgresStoreOptions {
  /** e.g. `postgres://osprey@db.example.org:5432/osprey` (credentials from the environment). */
  connectionString: string;
  /**
   * The schema holding the store's tables; created if missing. Lower-case letters, digits, `_`.
   * @defaultValue 'osprey'
   */
  schema?: string;
  /**
   * Connections in the pool (shared by the group committer and the reads).
   * @defaultValue 10
   */
  poolSize?: number;
  /**
   * Writes per transaction at most.
   * @defaultValue 1000
   */
  maxBatch?: number;
  /**
   * Batches written at the same time, each on its own connection.
   * @defaultValue 2
   */
  maxInFlight?: number;
}

type Client = pg.PoolClient;

/**
 * Integers as numbers (epoch ms and seq fit in 2^53), JSON as text (parsed by the shared row
 * mapping, as SQLite's). Per pool, not `pg.types`, so other users of `pg` are untouched.
 */
const TYPES = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20 /* int8 */) return (v: string) => Number(v);
    if (oid === 114 /* json */ || oid === 3802 /* jsonb */) return (v: string) => v;
    return format === undefined ? pg.types.getTypeParser(oid) : pg.types.getTypeParser(oid, format);
  },
} as pg.CustomTypesConfig;

/** SQLSTATE classes confined to one write: data exceptions (22) and constraint violations (23). */
function isItemError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && /^2[23]/.test(code)) return true;
  return err instanceof TypeError || err instanceof RangeError;
}

/** Deadlock or serialization failure: the transaction can simply be run again. */
function isRetryable(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === '40P01' || code === '40001';
}

/** PostgreSQL text cannot hold NUL; a response body or detail might. */
function text(v: string | null): string | null {
  return v === null || !v.includes('\u0000') ? v : v.replaceAll('\u0000', '\uFFFD');
}

const RETRIES = 3;

/** The PostgreSQL implementation of {@link MessageStore}; see the module comment. */
export class PostgresStore implements MessageStore {
  readonly #options: Required<PostgresStoreOptions>;
  #pool: pg.Pool | undefined;
  #committer: GroupCommitter<PreparedOp, StoreOpResult> | undefined;

  constructor(options: PostgresStoreOptions) {
    const schema = options.schema ?? 'osprey';
    // The schema name is written into SQL (search_path, CREATE SCHEMA): allow only plain names.
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new TypeError(`schema must be a plain lower-case name, got ${JSON.stringify(schema)}`);
    // `??`, not a spread: callers pass optional settings through as explicit undefined.
    this.#options = {
      connectionString: options.connectionString,
      schema,
      poolSize: options.poolSize ?? 10,
      maxBatch: options.maxBatch ?? 1000,
      maxInFlight: options.maxInFlight ?? 2,
    };
  }

  async open(): Promise<void> {
    if (this.#pool) return;
    const { connectionString, schema, poolSize, maxBatch, maxInFlight } = this.#options;
    const pool = new pg.Pool({
      connectionString,
      max: poolSize,
      options: `-c search_path=${schema}`,
      types: TYPES,
      connectionTimeoutMillis: 10_000,
    });
    // An idle client losing its connection must not crash the engine; the next query reports it.
    pool.on('error', () => {});
    try {
      await this.#migrate(pool);
    } catch (err) {
      await pool.end().catch(() => {});
      throw new OspreyError('OSPREY_ERR_STORE_UNAVAILABLE', 'the PostgreSQL message store could not be opened', { cause: err });
    }
    this.#pool = pool;
    this.#committer = new GroupCommitter((ops) => this.#flush(ops), { maxBatch, maxInFlight });
  }

  async close(): Promise<void> {
    const committer = this.#committer;
    if (!committer) return;
    await committer.close();
    const pool = this.#pool;
    this.#pool = undefined;
    this.#committer = undefined;
    await pool?.end();
  }

  receive(message: NewMessage): Promise<ReceiveResult> {
    return this.#submit({ kind: 'receive', message }) as Promise<ReceiveResult>;
  }

  recordProcessing(id: string, outcome: ProcessingOutcome): Promise<StoredDelivery[]> {
    return this.#submit({ kind: 'process', id, outcome }) as Promise<StoredDelivery[]>;
  }

  async recordAttempts(attempts: AttemptRecord[]): Promise<void> {
    if (Array.isArray(attempts) && attempts.length === 0) return;
    await this.#submit({ kind: 'attempts', attempts });
  }

  replay(id: string): Promise<ReplayPlan | undefined> {
    return this.#submit({ kind: 'replay', id }) as Promise<ReplayPlan | undefined>;
  }

  async loadForProcessing(id: string) {
    const { rows } = await this.#query(
      'SELECT id, channel, received_at, raw, encoding, control_id, sender, message_type, patient_id, visit_id, facility, order_key, state FROM messages WHERE id = $1',
      [id],
    );
    const r = rows[0];
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
    const { rows } = await this.#query(`SELECT ${DELIVERY_COLUMNS} FROM deliveries WHERE id = $1`, [id]);
    return rows[0] ? deliveryFromRow(deliveryRowFrom(rows[0])) : undefined;
  }

  async pendingWork(): Promise<{ messages: PendingMessage[]; deliveries: StoredDelivery[] }> {
    return this.#readOnly(async (c) => {
      const m = await c.query(`SELECT id, channel, order_key, seq FROM messages WHERE state = 'RECEIVED' ORDER BY seq`);
      const d = await c.query(`SELECT ${DELIVERY_COLUMNS} FROM deliveries WHERE state = 'QUEUED' ORDER BY seq, destination, output_index`);
      return {
        messages: (m.rows as Row[]).map((r) => ({ id: String(r.id), channel: String(r.channel), orderKey: String(r.order_key), seq: num(r.seq) })),
        deliveries: (d.rows as Row[]).map((r) => deliveryFromRow(deliveryRowFrom(r))),
      };
    });
  }

  async getMessage(id: string): Promise<MessageDetail | undefined> {
    return this.#readOnly(async (c) => {
      const m = (await c.query(`SELECT ${DETAIL_COLUMNS} FROM messages WHERE id = $1`, [id])).rows[0] as Row | undefined;
      if (!m) return undefined;
      const events = await c.query('SELECT at, event, destination, detail FROM events WHERE message_id = $1 ORDER BY id', [id]);
      const deliveries = await c.query(`SELECT ${DELIVERY_COLUMNS} FROM deliveries WHERE message_id = $1 ORDER BY destination, output_index`, [id]);
      const attempts = await c.query(
        `SELECT ${ATTEMPT_COLUMNS} FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE message_id = $1) ORDER BY id`,
        [id],
      );
      return detailFromRows(m, events.rows as Row[], deliveries.rows as Row[], attempts.rows as Row[]);
    });
  }

  async findMessages(query: MessageQuery): Promise<MessageSummary[]> {
    const { sql, params } = buildFindMessages(query, (n) => `$${n}`);
    const { rows } = await this.#query(sql, params);
    return rows.map(summaryFromRow);
  }

  async countByChannel(): Promise<Record<string, Partial<Record<MessageState, number>>>> {
    const { rows } = await this.#query('SELECT channel, state, count(*) AS n FROM messages GROUP BY channel, state');
    const out: Record<string, Partial<Record<MessageState, number>>> = {};
    for (const r of rows) (out[String(r.channel)] ??= {})[String(r.state) as MessageState] = num(r.n);
    return out;
  }

  async #migrate(pool: pg.Pool): Promise<void> {
    const { schema } = this.#options;
    const migrations = await readMigrations('postgres');
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      // Instances starting together: the first applies the migrations, the others wait here and
      // then find them recorded. Transaction-scoped, so a crash cannot leave it held.
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`osprey.message-store.migrate:${schema}`]);
      await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
      await client.query(`SET LOCAL search_path TO "${schema}"`);
      await client.query(
        'CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
      );
      const applied = new Set((await client.query('SELECT version FROM schema_migrations')).rows.map((r: Row) => num(r.version)));
      const known = new Set(migrations.map((m) => m.version));
      const newer = [...applied].filter((v) => !known.has(v));
      if (newer.length > 0) {
        throw new OspreyError('OSPREY_ERR_STORE_UNAVAILABLE', `the store's schema has migration ${Math.max(...newer)}, newer than this engine`);
      }
      for (const m of migrations) {
        if (applied.has(m.version)) continue;
        await client.query(m.sql);
        await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  #requirePool(): pg.Pool {
    if (!this.#pool) throw new OspreyError('OSPREY_ERR_STORE_UNAVAILABLE', 'the message store is not open');
    return this.#pool;
  }

  async #query(sql: string, params: unknown[] = []): Promise<{ rows: Row[] }> {
    const { rows } = await this.#requirePool().query(sql, params);
    return { rows: rows as Row[] };
  }

  /** Several reads of one moment (REPEATABLE READ snapshot). */
  async #readOnly<T>(fn: (c: Client) => Promise<T>): Promise<T> {
    const client = await this.#requirePool().connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch((e: Error) => (broken = e));
      throw err;
    } finally {
      client.release(broken);
    }
  }

  #submit(op: StoreOp): Promise<StoreOpResult> {
    if (!this.#committer) return Promise.reject(new OspreyError('OSPREY_ERR_STORE_UNAVAILABLE', 'the message store is not open'));
    let prepared: PreparedOp;
    try {
      prepared = prepareOp(op);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#committer.submit(prepared);
  }

  /** Writes one batch in one transaction; see group-commit.ts for what a throw means. */
  async #flush(ops: readonly PreparedOp[]): Promise<ItemResult<StoreOpResult>[]> {
    const pool = this.#requirePool();
    for (let attempt = 1; ; attempt++) {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        const now = Date.now();
        await client.query('BEGIN');
        try {
          const results = await this.#runBatch(client, ops, now);
          await client.query('COMMIT');
          return results;
        } catch (err) {
          await client.query('ROLLBACK');
          if (isRetryable(err) && attempt < RETRIES) continue;
          if (!isItemError(err)) throw err;
          if (ops.length === 1) return [{ ok: false, error: err }];
        }
        // One write of the batch broke a constraint (a reused message id …). Redo the batch one
        // write at a time, each in a savepoint, so that only the faulty write fails.
        await client.query('BEGIN');
        const results: ItemResult<StoreOpResult>[] = [];
        for (const op of ops) {
          await client.query('SAVEPOINT item');
          try {
            const [result] = await this.#runBatch(client, [op], now);
            await client.query('RELEASE SAVEPOINT item');
            results.push(result!);
          } catch (err) {
            if (!isItemError(err)) throw err;
            await client.query('ROLLBACK TO SAVEPOINT item');
            results.push({ ok: false, error: err });
          }
        }
        await client.query('COMMIT');
        return results;
      } catch (err) {
        await client.query('ROLLBACK').catch((e: Error) => (broken = e));
        throw err;
      } finally {
        client.release(broken);
      }
    }
  }

  async #runBatch(client: Client, ops: readonly PreparedOp[], now: number): Promise<ItemResult<StoreOpResult>[]> {
    const uow = new UnitOfWork(await this.#load(client, collectNeeds(ops)), now);
    const results = applyBatch(uow, ops);
    await this.#write(client, uow.writes);
    return results;
  }

  async #load(client: Client, needs: SnapshotNeeds): Promise<Snapshot> {
    const messages = new Map<string, MessageHead>();
    const deliveries = new Map<string, DeliveryRow>();
    const dedupe = new Map<string, DedupeHit>();

    if (needs.dedupe.size > 0) {
      const probes = [...needs.dedupe.values()];
      // Serialise with any other transaction (another engine instance) storing the same key until
      // this one commits; sorted, so two batches with several keys cannot deadlock.
      await client.query(
        `SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest($1::text[]) AS k) AS keys ORDER BY h`,
        [probes.map((p) => p.key)],
      );
      const { rows } = await client.query(
        `SELECT DISTINCT ON (p.key) p.key, m.id, m.received_at
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[]) AS p(key, channel, sender, control_id, since)
           JOIN messages m ON m.channel = p.channel AND m.sender = p.sender AND m.control_id = p.control_id
                          AND m.accepted AND m.received_at >= p.since
          ORDER BY p.key, m.received_at DESC`,
        [probes.map((p) => p.key), probes.map((p) => p.channel), probes.map((p) => p.sender), probes.map((p) => p.controlId), probes.map((p) => Math.trunc(p.since))],
      );
      for (const r of rows as Row[]) dedupe.set(String(r.key), { id: String(r.id), receivedAt: num(r.received_at) });
    }

    const messageIds = new Set(needs.messageIds);
    if (needs.deliveryIds.size > 0) {
      // A delivery's message never changes, so this needs no lock.
      const { rows } = await client.query('SELECT DISTINCT message_id FROM deliveries WHERE id = ANY($1::text[])', [[...needs.deliveryIds]]);
      for (const r of rows as Row[]) messageIds.add(String(r.message_id));
    }
    if (messageIds.size > 0) {
      const ids = [...messageIds];
      // NO KEY: the lock must not block the foreign-key checks (KEY SHARE) of another instance's
      // inserts (a DUPLICATE event on this message), or two batches could deadlock through them.
      const m = await client.query(
        'SELECT id, seq, channel, order_key, state FROM messages WHERE id = ANY($1::text[]) ORDER BY id FOR NO KEY UPDATE',
        [ids],
      );
      for (const r of m.rows as Row[]) {
        messages.set(String(r.id), { id: String(r.id), seq: num(r.seq), channel: String(r.channel), orderKey: String(r.order_key), state: String(r.state) as MessageState });
      }
      // Read after the locks: this sees every committed change of these messages' deliveries.
      const d = await client.query(`SELECT ${DELIVERY_COLUMNS} FROM deliveries WHERE message_id = ANY($1::text[])`, [ids]);
      for (const r of d.rows as Row[]) deliveries.set(String(r.id), deliveryRowFrom(r));
    }
    return { messages, deliveries, dedupe };
  }

  async #write(client: Client, w: Writes): Promise<void> {
    if (w.insertMessages.length > 0) {
      const m = w.insertMessages;
      // WITH ORDINALITY … ORDER BY: seq follows the order of the batch, which is arrival order.
      await client.query(
        `INSERT INTO messages (id, channel, received_at, raw, encoding, source, control_id, sender, message_type, patient_id, visit_id, facility, order_key, state, accepted, error_code, error_detail, updated_at)
         SELECT id, channel, received_at, raw, encoding, source, control_id, sender, message_type, patient_id, visit_id, facility, order_key, state, accepted, error_code, error_detail, updated_at
           FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::boolean[], $16::text[], $17::text[], $18::bigint[])
                WITH ORDINALITY AS t(id, channel, received_at, raw, encoding, source, control_id, sender, message_type, patient_id, visit_id, facility, order_key, state, accepted, error_code, error_detail, updated_at, ord)
          ORDER BY ord`,
        [
          m.map((r) => r.id),
          m.map((r) => r.channel),
          m.map((r) => r.receivedAt),
          m.map((r) => r.raw),
          m.map((r) => r.encoding),
          m.map((r) => text(r.source)),
          m.map((r) => text(r.controlId)),
          m.map((r) => text(r.sender)),
          m.map((r) => text(r.messageType)),
          m.map((r) => text(r.patientId)),
          m.map((r) => text(r.visitId)),
          m.map((r) => text(r.facility)),
          m.map((r) => text(r.orderKey)),
          m.map((r) => r.state),
          m.map((r) => r.accepted),
          m.map((r) => r.errorCode),
          m.map((r) => text(r.errorDetail)),
          m.map((r) => r.updatedAt),
        ],
      );
    }
    const updates = [...w.updateMessages.values()];
    const full = updates.filter((u) => u.fields);
    const stateOnly = updates.filter((u) => !u.fields);
    if (full.length > 0) {
      await client.query(
        `UPDATE messages AS m SET state = u.state, error_code = u.error_code, error_detail = u.error_detail, exception_category = u.exception_category,
                exception = u.exception::json, filter_reason = u.filter_reason, canonical = u.canonical::json, updated_at = u.updated_at
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[])
                AS u(id, state, error_code, error_detail, exception_category, exception, filter_reason, canonical, updated_at)
          WHERE m.id = u.id`,
        [
          full.map((u) => u.id),
          full.map((u) => u.state),
          full.map((u) => u.fields!.errorCode),
          full.map((u) => text(u.fields!.errorDetail)),
          full.map((u) => text(u.fields!.exceptionCategory)),
          full.map((u) => u.fields!.exceptionJson),
          full.map((u) => text(u.fields!.filterReason)),
          full.map((u) => u.fields!.canonicalJson),
          full.map((u) => u.updatedAt),
        ],
      );
    }
    if (stateOnly.length > 0) {
      await client.query(
        `UPDATE messages AS m SET state = u.state, updated_at = u.updated_at
           FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u(id, state, updated_at) WHERE m.id = u.id`,
        [stateOnly.map((u) => u.id), stateOnly.map((u) => u.state), stateOnly.map((u) => u.updatedAt)],
      );
    }
    if (w.deleteDeliveries.size > 0) {
      await client.query('DELETE FROM deliveries WHERE id = ANY($1::text[])', [[...w.deleteDeliveries]]);
    }
    if (w.insertDeliveries.size > 0) {
      const d = [...w.insertDeliveries.values()];
      await client.query(
        `INSERT INTO deliveries (id, message_id, seq, channel, destination, output_index, order_key, payload, state, attempts, next_attempt_at, last_error_code, last_error_detail, updated_at)
         SELECT id, message_id, seq, channel, destination, output_index, order_key, payload::json, state, attempts, next_attempt_at, last_error_code, last_error_detail, updated_at
           FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::integer[], $7::text[], $8::text[], $9::text[], $10::integer[], $11::bigint[], $12::text[], $13::text[], $14::bigint[])
                AS t(id, message_id, seq, channel, destination, output_index, order_key, payload, state, attempts, next_attempt_at, last_error_code, last_error_detail, updated_at)`,
        [
          d.map((r) => r.id),
          d.map((r) => r.messageId),
          d.map((r) => r.seq),
          d.map((r) => r.channel),
          d.map((r) => text(r.destination)),
          d.map((r) => r.outputIndex),
          d.map((r) => text(r.orderKey)),
          d.map((r) => r.payloadJson),
          d.map((r) => r.state),
          d.map((r) => r.attempts),
          d.map((r) => r.nextAttemptAt),
          d.map((r) => r.lastErrorCode),
          d.map((r) => text(r.lastErrorDetail)),
          d.map((r) => r.updatedAt),
        ],
      );
    }
    if (w.updateDeliveries.size > 0) {
      const d = [...w.updateDeliveries.values()];
      await client.query(
        `UPDATE deliveries AS d SET state = u.state, attempts = u.attempts, next_attempt_at = u.next_attempt_at, last_error_code = u.last_error_code,
                last_error_detail = u.last_error_detail, updated_at = u.updated_at
           FROM unnest($1::text[], $2::text[], $3::integer[], $4::bigint[], $5::text[], $6::text[], $7::bigint[])
                AS u(id, state, attempts, next_attempt_at, last_error_code, last_error_detail, updated_at)
          WHERE d.id = u.id`,
        [
          d.map((r) => r.id),
          d.map((r) => r.state),
          d.map((r) => r.attempts),
          d.map((r) => r.nextAttemptAt),
          d.map((r) => r.lastErrorCode),
          d.map((r) => text(r.lastErrorDetail)),
          d.map((r) => r.updatedAt),
        ],
      );
    }
    if (w.insertAttempts.length > 0) {
      const a = w.insertAttempts;
      await client.query(
        `INSERT INTO attempts (delivery_id, n, started_at, duration_ms, request, response_status, response_body, error_code, error_detail, outcome, next_attempt_at)
         SELECT delivery_id, n, started_at, duration_ms, request::json, response_status, response_body, error_code, error_detail, outcome, next_attempt_at
           FROM unnest($1::text[], $2::integer[], $3::bigint[], $4::float8[], $5::text[], $6::integer[], $7::text[], $8::text[], $9::text[], $10::text[], $11::bigint[])
                WITH ORDINALITY AS t(delivery_id, n, started_at, duration_ms, request, response_status, response_body, error_code, error_detail, outcome, next_attempt_at, ord)
          ORDER BY ord`,
        [
          a.map((r) => r.deliveryId),
          a.map((r) => r.n),
          a.map((r) => r.startedAt),
          a.map((r) => r.durationMs),
          a.map((r) => r.requestJson),
          a.map((r) => r.responseStatus),
          a.map((r) => text(r.responseBody)),
          a.map((r) => r.errorCode),
          a.map((r) => text(r.errorDetail)),
          a.map((r) => r.outcome),
          a.map((r) => r.nextAttemptAt),
        ],
      );
    }
    if (w.insertEvents.length > 0) {
      const e = w.insertEvents;
      await client.query(
        `INSERT INTO events (message_id, at, event, destination, detail)
         SELECT message_id, at, event, destination, detail
           FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS t(message_id, at, event, destination, detail, ord)
          ORDER BY ord`,
        [e.map((r) => r.messageId), e.map((r) => r.at), e.map((r) => r.event), e.map((r) => text(r.destination)), e.map((r) => text(r.detail))],
      );
    }
  }
}
