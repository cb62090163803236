// SPDX-License-Identifier: Apache-2.0
/**
 * The production message store: PostgreSQL through a `pg` Pool, in its own schema. Several engine
 * instances may share one database, so every write is safe against writers in other processes:
 *
 * - the group committer writes each batch in ONE transaction on one pooled client, with multi-row
 *   statements (`unnest` of arrays) sent as two pipelines: two round trips per batch whatever its
 *   size (postgres-batch.ts; it was about ten, one per statement);
 * - receives have a group committer of their own, so an MLLP ACK never waits for a batch of
 *   processing results or attempts to commit first;
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
import type { MessageFormatName } from '../message-formats/message-format.ts';
import pg from 'pg';
import { OspreyError, isOspreyError } from '../errors/error-codes.ts';
import { CoalescedReads } from './coalesced-reads.ts';
import { ReceiveFirstCommitter, type ItemResult } from './group-commit.ts';
import type {
  AttemptRecord,
  AttemptsPage,
  BatchAttemptDetail,
  BatchAttemptRecord,
  MessageDetail,
  MessageQuery,
  MessageState,
  MessageStore,
  MessageSummary,
  NewMessage,
  PendingDelivery,
  PendingMessage,
  PendingPage,
  ProcessingOutcome,
  ReceiveResult,
  ReplayPlan,
  StoredDelivery,
  StoredError,
} from './message-store.ts';
import {
  DELIVERY_COLUMNS,
  DETAIL_COLUMNS,
  attemptLogReads,
  attemptPageParams,
  attemptsPageOf,
  batchAttemptFromRows,
  batchAttemptReads,
  buildFindMessages,
  deliveryRowFrom,
  detailFromRows,
  keysFromRow,
  num,
  pendingDeliveriesParams,
  pendingDeliveryFrom,
  pendingMessageFrom,
  pendingMessagesParams,
  pendingReads,
  readMigrations,
  summaryFromRow,
  type Row,
} from './store-rows.ts';
import { UnitOfWork, applyBatch, collectNeeds, deliveryFromRow, prepareOp, type PreparedOp, type Snapshot, type StoreOp, type StoreOpResult } from './unit-of-work.ts';
import { PostgresFileLedger } from './postgres-file-ledger.ts';
import { PostgresSingleActive } from './single-active.ts';
import { DUPLICATE_FOUND, duplicateGuard, pipeline, snapshotReads, writeStatements, type Statement } from './postgres-batch.ts';

export interface PostgresStoreOptions {
  /** e.g. `postgres://osprey@db.example.org:5432/osprey` (credentials from the environment). */
  connectionString: string;
  /**
   * The schema holding the store's tables; created if missing. Lower-case letters, digits, `_`.
   * @defaultValue 'osprey'
   */
  schema?: string;
  /**
   * Connections for reads (API searches, recovery); the group committers have their own, one per
   * batch in flight.
   * @defaultValue 10
   */
  poolSize?: number;
  /**
   * Writes per transaction at most.
   * @defaultValue 1000
   */
  maxBatch?: number;
  /**
   * Batches written at the same time by each of the two group committers (receives; everything
   * else), each batch on its own connection. More in flight means smaller batches, and each batch
   * costs the server a fixed amount of work: on 2 busy cores, 1 gave 457–464 messages per second
   * end to end where 2 gave 422 (docs/design/0003-message-store.md).
   * @defaultValue 1
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

const RETRIES = 3;

/**
 * How the group committers' sessions plan. The batch statements (postgres-batch.ts) are named
 * prepared statements, and planning them at every run (custom plans) was ~35% of their server time.
 * A generic plan is made once per connection and kept; made while the tables are small (a new
 * schema), it was a sequential scan or a hash join that stayed as they grew. Every batch statement
 * is a key lookup through an index or an insert, so these sessions plan generically with the scans
 * and joins that ignore indexes switched off: a nested loop over index scans, the right plan at any
 * size (a test in postgres-store.spec.ts counts the sequential scans). Measured end to end:
 * PostgreSQL's CPU 0.60 → 0.46 ms per message (docs/design/0003-message-store.md).
 */
export const WRITER_PLANNING = ['plan_cache_mode=force_generic_plan', 'enable_seqscan=off', 'enable_bitmapscan=off', 'enable_hashjoin=off', 'enable_mergejoin=off']
  .map((s) => `-c ${s}`)
  .join(' ');

const BEGIN: Statement = { text: 'BEGIN' };
const COMMIT: Statement = { text: 'COMMIT' };
const SAVEPOINT: Statement = { text: 'SAVEPOINT item' };
const RELEASE: Statement = { text: 'RELEASE SAVEPOINT item' };

const PENDING = pendingReads((n) => `$${n}`);
const ATTEMPT_LOG = attemptLogReads((n) => `$${n}`);
const BATCH_ATTEMPT = batchAttemptReads((n) => `$${n}`);

/**
 * A read that failed because the server could not be reached (refused, lost, shutting down, out of
 * connections) as `OSPREY_ERR_STORE_UNAVAILABLE`, a transient error: the bus retries such work
 * without counting it towards its delivery limit, as it does a failed commit. Anything else (a
 * statement the server refused) is thrown as it is.
 */
export function unreachableAsUnavailable(err: unknown): unknown {
  if (isOspreyError(err)) return err;
  const e = err as { code?: unknown; message?: unknown } | undefined;
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = typeof e?.message === 'string' ? e.message : '';
  const unreachable =
    /^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN)$/.test(code) ||
    /^(08|57P0|53)/.test(code) || // SQLSTATE connection exception, shutdown / cannot connect now, insufficient resources
    /^Connection terminated|^timeout exceeded when trying to connect|^Client has encountered a connection error/.test(message);
  return unreachable ? new OspreyError('OSPREY_ERR_STORE_UNAVAILABLE', 'the PostgreSQL message store is unreachable', { cause: err }) : err;
}

/** The PostgreSQL implementation of {@link MessageStore}; see the module comment. */
export class PostgresStore implements MessageStore {
  readonly #options: Required<PostgresStoreOptions>;
  /** Reads (API searches, recovery, coalesced point reads) and migrations. */
  #pool: pg.Pool | undefined;
  /** The group committers' connections (see WRITER_PLANNING). */
  #writers: pg.Pool | undefined;
  /** `loadForProcessing` and `loadDelivery` of one turn share a query: see coalesced-reads.ts. */
  readonly #messageReads = new CoalescedReads<Row>((ids) =>
    this.#rowsById(
      'SELECT id, channel, received_at, raw, encoding, format, control_id, sender, message_type, patient_id, visit_id, facility, order_key, state FROM messages WHERE id = ANY($1::text[])',
      ids,
    ),
  );
  readonly #deliveryReads = new CoalescedReads<Row>((ids) => this.#rowsById(`SELECT ${DELIVERY_COLUMNS} FROM deliveries WHERE id = ANY($1::text[])`, ids));
  /**
   * Receives in their own batches (see ReceiveFirstCommitter). Two batches in flight at once were
   * already the rule (`maxInFlight` was 2), within an instance and across instances: the locks keep
   * them apart (docs/design/0003 § PostgreSQL).
   */
  #committer: ReceiveFirstCommitter<PreparedOp, StoreOpResult> | undefined;
  /** Through the read pool: a few writes per file need no group commit. */
  readonly files: PostgresFileLedger;
  /** Session advisory locks, each on a connection of its own (single-active.ts). */
  readonly singleActive: PostgresSingleActive;

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
      maxInFlight: options.maxInFlight ?? 1,
    };
    this.files = new PostgresFileLedger(() => this.#requirePool(), schema);
    this.singleActive = new PostgresSingleActive({ connectionString: options.connectionString, schema });
  }

  async open(): Promise<void> {
    if (this.#pool) return;
    const { connectionString, schema, poolSize, maxBatch, maxInFlight } = this.#options;
    const settings = {
      connectionString,
      types: TYPES,
      connectionTimeoutMillis: 10_000,
      // Statements queued on a client go out without waiting for the answer to the one before:
      // a batch's reads, and its writes with its COMMIT, take one round trip each (postgres-batch.ts).
      pipeline: true,
    };
    const pool = new pg.Pool({ ...settings, max: poolSize, options: `-c search_path=${schema}` });
    // The group committers' own connections, one per batch in flight: the batch statements are
    // planned once per connection (see WRITER_PLANNING) while the reads keep their custom plans.
    const writers = new pg.Pool({
      ...settings,
      max: 2 * maxInFlight,
      options: `-c search_path=${schema} ${WRITER_PLANNING}`,
    });
    // A client losing its connection (a PostgreSQL restart, a failover: FATAL 57P01) must not crash
    // the engine. pg emits 'error' on the pool for an idle client, and on the client itself when it
    // is checked out between queries, where nothing else listens: an unhandled 'error' event ends
    // the process. Its queries fail instead, and the client is discarded on release.
    for (const p of [pool, writers]) {
      p.on('error', () => {});
      p.on('connect', (client) => client.on('error', () => {}));
    }
    try {
      await this.#migrate(pool);
    } catch (err) {
      await Promise.all([pool.end().catch(() => {}), writers.end().catch(() => {})]);
      throw new OspreyError('OSPREY_ERR_STORE_UNAVAILABLE', 'the PostgreSQL message store could not be opened', { cause: err });
    }
    this.#pool = pool;
    this.#writers = writers;
    this.#committer = new ReceiveFirstCommitter((ops) => this.#flush(ops), { maxBatch, maxInFlight });
    this.singleActive.open();
  }

  async close(): Promise<void> {
    const committer = this.#committer;
    if (!committer) return;
    await this.singleActive.close();
    await committer.close();
    const pools = [this.#pool, this.#writers];
    this.#pool = undefined;
    this.#writers = undefined;
    this.#committer = undefined;
    await Promise.all(pools.map((p) => p?.end()));
  }

  receive(message: NewMessage): Promise<ReceiveResult> {
    return this.#submit({ kind: 'receive', message }) as Promise<ReceiveResult>;
  }

  recordProcessing(id: string, outcome: ProcessingOutcome): Promise<StoredDelivery[]> {
    return this.#submit({ kind: 'process', id, outcome }) as Promise<StoredDelivery[]>;
  }

  async recordAttempts(attempts: AttemptRecord[], batch?: BatchAttemptRecord): Promise<void> {
    if (Array.isArray(attempts) && attempts.length === 0 && batch === undefined) return;
    await this.#submit(batch === undefined ? { kind: 'attempts', attempts } : { kind: 'attempts', attempts, batch });
  }

  async abandonDelivery(deliveryId: string, error: StoredError): Promise<void> {
    await this.#submit({ kind: 'abandon', deliveryId, error });
  }

  replay(id: string): Promise<ReplayPlan | undefined> {
    return this.#submit({ kind: 'replay', id }) as Promise<ReplayPlan | undefined>;
  }

  async loadForProcessing(id: string) {
    const r = await this.#messageReads.get(id);
    if (!r) return undefined;
    return {
      id: String(r.id),
      channel: String(r.channel),
      receivedAt: num(r.received_at),
      raw: r.raw as Buffer,
      encoding: String(r.encoding),
      format: String(r.format) as MessageFormatName,
      keys: keysFromRow(r),
      orderKey: String(r.order_key),
      state: String(r.state) as MessageState,
    };
  }

  async loadDelivery(id: string): Promise<StoredDelivery | undefined> {
    const r = await this.#deliveryReads.get(id);
    return r ? deliveryFromRow(deliveryRowFrom(r)) : undefined;
  }

  async firstAttemptAt(deliveryId: string): Promise<number | undefined> {
    const { rows } = await this.#query('SELECT started_at FROM attempts WHERE delivery_id = $1 AND n = 1 ORDER BY id DESC LIMIT 1', [deliveryId]);
    return rows[0] ? num(rows[0].started_at) : undefined;
  }

  async pendingDeliveries(page: PendingPage<PendingDelivery>): Promise<PendingDelivery[]> {
    return (await this.#query(PENDING.deliveries, pendingDeliveriesParams(page))).rows.map(pendingDeliveryFrom);
  }

  async pendingMessages(page: PendingPage<PendingMessage>): Promise<PendingMessage[]> {
    return (await this.#query(PENDING.messages, pendingMessagesParams(page))).rows.map(pendingMessageFrom);
  }

  async getMessage(id: string, attempts?: AttemptsPage): Promise<MessageDetail | undefined> {
    const page = attemptsPageOf(attempts);
    return this.#readOnly(async (c) => {
      const m = (await c.query(`SELECT ${DETAIL_COLUMNS} FROM messages WHERE id = $1`, [id])).rows[0] as Row | undefined;
      if (!m) return undefined;
      const events = await c.query('SELECT at, event, destination, detail FROM events WHERE message_id = $1 ORDER BY id', [id]);
      const deliveries = (await c.query(`SELECT ${DELIVERY_COLUMNS} FROM deliveries WHERE message_id = $1 ORDER BY destination, output_index`, [id])).rows as Row[];
      const pages = new Map<string, Row[]>();
      for (const d of deliveries) pages.set(String(d.id), (await c.query(ATTEMPT_LOG.page, attemptPageParams(String(d.id), page))).rows as Row[]);
      const counts = await c.query(ATTEMPT_LOG.counts, [id]);
      return detailFromRows(m, events.rows as Row[], deliveries, pages, counts.rows as Row[], page.limit);
    });
  }

  async getBatchAttempt(id: string): Promise<BatchAttemptDetail | undefined> {
    return this.#readOnly(async (c) => {
      const b = (await c.query(BATCH_ATTEMPT.batch, [id])).rows[0] as Row | undefined;
      return b ? batchAttemptFromRows(b, (await c.query(BATCH_ATTEMPT.items, [id])).rows as Row[]) : undefined;
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

  /** The reads' pool by default; `#flush` passes the group committers'. */
  #requirePool(pool: pg.Pool | undefined = this.#pool): pg.Pool {
    if (!pool) throw new OspreyError('OSPREY_ERR_STORE_UNAVAILABLE', 'the message store is not open');
    return pool;
  }

  async #query(sql: string, params: unknown[] = []): Promise<{ rows: Row[] }> {
    try {
      const { rows } = await this.#requirePool().query(sql, params);
      return { rows: rows as Row[] };
    } catch (err) {
      throw unreachableAsUnavailable(err);
    }
  }

  async #rowsById(sql: string, ids: string[]): Promise<Map<string, Row>> {
    const { rows } = await this.#query(sql, [ids]);
    return new Map(rows.map((r) => [String(r.id), r]));
  }

  /** Several reads of one moment (REPEATABLE READ snapshot). */
  async #readOnly<T>(fn: (c: Client) => Promise<T>): Promise<T> {
    const client = await this.#requirePool()
      .connect()
      .catch((err: unknown) => {
        throw unreachableAsUnavailable(err);
      });
    let broken: Error | undefined;
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch((e: Error) => (broken = e));
      throw unreachableAsUnavailable(err);
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

  /**
   * Writes one batch in one transaction; see group-commit.ts for what a throw means. Two round
   * trips in the usual case: see postgres-batch.ts.
   */
  async #flush(ops: readonly PreparedOp[]): Promise<ItemResult<StoreOpResult>[]> {
    const pool = this.#requirePool(this.#writers);
    for (let attempt = 1; ; attempt++) {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        const now = Date.now();
        try {
          return await this.#runBatch(client, ops, now, BEGIN, COMMIT);
        } catch (err) {
          // Also when the pipelined COMMIT has ended the transaction already (with a rollback, as a
          // statement before it failed): a ROLLBACK then only draws a warning.
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
          try {
            const [result] = await this.#runBatch(client, [op], now, SAVEPOINT, RELEASE);
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

  /**
   * Runs a batch between `open` and `close` (BEGIN … COMMIT, or SAVEPOINT … RELEASE in the
   * one-by-one retry): `open` and the snapshot reads in one round trip, then the unit of work, then
   * the writes and `close` in another. A batch that reads nothing (receives without dedupe) takes
   * one round trip, and so does a batch of receives with no resend of a stored message (the
   * guard of postgres-batch.ts).
   */
  async #runBatch(client: Client, ops: readonly PreparedOp[], now: number, open: Statement, close: Statement): Promise<ItemResult<StoreOpResult>[]> {
    const needs = collectNeeds(ops);
    if (open === BEGIN && needs.messageIds.size === 0 && needs.deliveryIds.size === 0 && needs.dedupe.size > 0) {
      // Receives only: bet that none is a resend and write the batch in one round trip; a stored
      // original fails the guard (and the transaction), and the batch is written the careful way.
      const uow = new UnitOfWork({ messages: new Map(), deliveries: new Map(), dedupe: new Map() }, now);
      const results = applyBatch(uow, ops);
      try {
        const answers = await pipeline(client, [BEGIN, ...duplicateGuard(needs), ...writeStatements(uow.writes), COMMIT]);
        if (answers.at(-1)?.command !== 'COMMIT') throw new Error(`the batch's COMMIT was answered ${answers.at(-1)?.command}`);
        return results;
      } catch (err) {
        if ((err as { code?: unknown }).code !== DUPLICATE_FOUND) throw err;
        // The pipelined COMMIT ended the failed transaction with a rollback.
      }
    }
    const reads = snapshotReads(needs);
    const first: Statement[] = [];
    let snapshot: Snapshot;
    if (reads.statements.length > 0) {
      const answers = await pipeline(client, [open, ...reads.statements]);
      snapshot = reads.snapshot(answers.slice(1));
    } else {
      snapshot = { messages: new Map(), deliveries: new Map(), dedupe: new Map() };
      first.push(open);
    }
    const uow = new UnitOfWork(snapshot, now);
    const results = applyBatch(uow, ops);
    const answers = await pipeline(client, [...first, ...writeStatements(uow.writes), close]);
    // Belt and braces: a COMMIT answered by anything else did not commit.
    if (close === COMMIT && answers.at(-1)?.command !== 'COMMIT') throw new Error(`the batch's COMMIT was answered ${answers.at(-1)?.command}`);
    return results;
  }
}
