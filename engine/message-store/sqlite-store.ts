// SPDX-License-Identifier: Apache-2.0
/**
 * The embedded message store: one SQLite file in WAL mode (better-sqlite3).
 *
 * Writes are group-committed (group-commit.ts): the writes of one turn of the event loop go to the
 * writer thread (sqlite-writer-worker.ts) as one batch and are committed in one transaction there,
 * so the fsync of a commit, and the statements of a batch, never block the event loop that serves
 * the MLLP connections; while the writer commits, the next batch gathers. Reads run on the main
 * thread on their own read-only connection (WAL readers never wait for the writer) and see every
 * write whose promise has resolved.
 *
 * Durability of "stored" (what a resolved `receive` promises; the MLLP ACK waits on it):
 * - `synchronous: 'full'` (default): the WAL is fsynced at every commit. A stored message survives
 *   a crash of the process and of the machine (power loss).
 * - `synchronous: 'normal'`: the commit is written to the WAL and fsynced only at checkpoints. A
 *   stored message survives a crash of the process (kill -9); the last commits before a power loss
 *   or an OS crash may be lost (the file stays consistent).
 *
 * One process writes the file (the embedded mode). Another process may open it too (the CLI, a
 * test): writers then take turns through SQLite's lock, waiting up to `busyTimeoutMs`.
 *
 * @see docs/design/0003-message-store.md
 */
import type { MessageFormatName } from '../message-formats/message-format.ts';
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { OspreyError } from '../errors/error-codes.ts';
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
import { SqliteFileLedger } from './sqlite-file-ledger.ts';
import { InProcessSingleActive } from './single-active.ts';
import { SqliteWriter, fromWireError, fromWireResults, type SqliteWriterOptions, type WireError, type WireResult } from './sqlite-writer.ts';
import type { WriterRequest } from './sqlite-writer-worker.ts';
import { deliveryFromRow, prepareOp, type PreparedOp, type StoreOp, type StoreOpResult } from './unit-of-work.ts';

export interface SqliteStoreOptions {
  /** The database file; its directory is created if missing. */
  path: string;
  /**
   * How far a commit is forced to disk before `receive` resolves; see the module comment.
   * @defaultValue 'full'
   */
  synchronous?: 'full' | 'normal';
  /**
   * How long a write waits for another process's lock before its batch fails with
   * OSPREY_ERR_STORE_UNAVAILABLE.
   * @defaultValue 5000
   */
  busyTimeoutMs?: number;
  /**
   * Writes per transaction at most (the group commit flushes earlier when this many are queued).
   * @defaultValue 1000
   */
  maxBatch?: number;
  /**
   * Where the writing connection runs: its own thread (so commits never block the event loop), or
   * the main thread (simpler to debug; every commit's fsync then blocks the event loop).
   * @defaultValue 'worker'
   */
  writeThread?: 'worker' | 'main';
}

type Db = Database.Database;
type Stmt = Database.Statement;

/** Where batches are written: on this thread, or on the writer thread. */
interface WriterLink {
  flush(ops: readonly PreparedOp[]): ItemResult<StoreOpResult>[] | Promise<ItemResult<StoreOpResult>[]>;
  close(): Promise<void>;
}

class InlineWriter implements WriterLink {
  readonly #writer: SqliteWriter;
  constructor(writer: SqliteWriter) {
    this.#writer = writer;
  }
  flush(ops: readonly PreparedOp[]): ItemResult<StoreOpResult>[] {
    return this.#writer.flush(ops);
  }
  async close(): Promise<void> {
    this.#writer.close();
  }
}

type WriterReply =
  | { type: 'ready' }
  | { type: 'failed'; error: WireError }
  | { type: 'flushed'; id: number; results: WireResult[] }
  | { type: 'flushed'; id: number; error: WireError };

/**
 * Loads the worker's TypeScript: a worker does not inherit the main thread's tsx loader (neither
 * `--import tsx` nor `register()`), so the bootstrap registers it before importing the entry.
 */
/** Old-generation limit of the writer thread: far above one batch's rows (a few MB at most). */
const WRITER_OLD_GENERATION_MB = 96;

const WORKER_BOOTSTRAP = `
(async () => {
  // Only import(): the worker inherits --input-type, so this may be run as CommonJS or as a module.
  const { workerData } = await import('node:worker_threads');
  if (workerData.tsxApi) (await import(workerData.tsxApi)).register();
  await import(workerData.entry);
})();
`;

function tsxApiUrl(): string | undefined {
  try {
    return import.meta.resolve('tsx/esm/api');
  } catch {
    // Loaded through tsx's CommonJS path (mocha requires spec files first): no import.meta.resolve.
  }
  try {
    // require.resolve would pick tsx's CommonJS build, which cannot register from an ES module.
    const manifest = createRequire(import.meta.url).resolve('tsx/package.json');
    const { exports } = JSON.parse(readFileSync(manifest, 'utf8')) as { exports: Record<string, { import: { default: string } }> };
    return pathToFileURL(join(dirname(manifest), exports['./esm/api']!.import.default)).href;
  } catch {
    return undefined; // running compiled JavaScript without tsx: nothing to register
  }
}

class WorkerWriter implements WriterLink {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (r: ItemResult<StoreOpResult>[]) => void; reject: (e: unknown) => void }>();
  #nextId = 1;
  #dead: Error | undefined;
  readonly #exited: Promise<void>;

  private constructor(worker: Worker) {
    this.#worker = worker;
    this.#exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    worker.on('message', (reply: WriterReply) => {
      if (reply.type !== 'flushed') return;
      const pending = this.#pending.get(reply.id);
      if (!pending) return;
      this.#pending.delete(reply.id);
      if (this.#pending.size === 0) worker.unref();
      if ('error' in reply) pending.reject(fromWireError(reply.error));
      else pending.resolve(fromWireResults(reply.results));
    });
    worker.on('error', (err) => this.#fail(err));
    worker.on('exit', (code) => this.#fail(new Error(`the SQLite writer thread exited (code ${code})`)));
  }

  /** Starts the writer thread and waits until it has opened and migrated the database. */
  static async start(options: SqliteWriterOptions): Promise<WorkerWriter> {
    const worker = new Worker(WORKER_BOOTSTRAP, {
      eval: true,
      // The writer keeps nothing between batches (prepared statements, one batch's rows): a bounded
      // old generation makes V8 collect it instead of growing it, which under a sustained stream
      // (an 835 of 100,000 claims) added ~100 MB to the engine's RSS for garbage.
      resourceLimits: { maxOldGenerationSizeMb: WRITER_OLD_GENERATION_MB },
      workerData: { options, tsxApi: tsxApiUrl(), entry: new URL('./sqlite-writer-worker.ts', import.meta.url).href },
    });
    const ready = await new Promise<WriterReply>((resolve, reject) => {
      const onMessage = (reply: WriterReply): void => {
        if (reply.type === 'ready' || reply.type === 'failed') {
          worker.off('message', onMessage);
          worker.off('error', reject);
          resolve(reply);
        }
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
    });
    if (ready.type === 'failed') {
      await worker.terminate();
      throw fromWireError(ready.error);
    }
    // An idle store must not keep the process alive; a write in flight does (see flush).
    worker.unref();
    return new WorkerWriter(worker);
  }

  flush(ops: readonly PreparedOp[]): Promise<ItemResult<StoreOpResult>[]> {
    if (this.#dead) return Promise.reject(this.#dead);
    const id = this.#nextId++;
    const transfer: ArrayBuffer[] = [];
    const wire = ops.map((op): PreparedOp => {
      if (op.kind !== 'receive') return op;
      // An exact copy, transferred: cloning the caller's Buffer would copy its whole backing
      // ArrayBuffer (a pooled slab, a socket read of many frames), and it stays the caller's.
      const raw = new Uint8Array(op.message.raw);
      transfer.push(raw.buffer);
      return { ...op, message: { ...op.message, raw: raw as Buffer } };
    });
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.ref();
      this.#worker.postMessage({ type: 'flush', id, ops: wire } satisfies WriterRequest, transfer);
    });
  }

  async close(): Promise<void> {
    if (!this.#dead) {
      this.#worker.ref();
      this.#worker.postMessage({ type: 'close' } satisfies WriterRequest);
    }
    await this.#exited;
  }

  #fail(err: Error): void {
    this.#dead ??= err;
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }
}

const PENDING = pendingReads(() => '?');
const ATTEMPT_LOG = attemptLogReads(() => '?');
const BATCH_ATTEMPT = batchAttemptReads(() => '?');

function prepareReads(db: Db) {
  const p = (sql: string): Stmt => db.prepare(sql);
  return {
    loadForProcessing: p(
      'SELECT id, channel, received_at, raw, encoding, format, control_id, sender, message_type, patient_id, visit_id, facility, order_key, state FROM messages WHERE id = ?',
    ),
    loadDelivery: p(`SELECT ${DELIVERY_COLUMNS} FROM deliveries WHERE id = ?`),
    firstAttemptAt: p('SELECT started_at FROM attempts WHERE delivery_id = ? AND n = 1 ORDER BY id DESC LIMIT 1'),
    pendingMessages: p(PENDING.messages),
    pendingDeliveries: p(PENDING.deliveries),
    detail: p(`SELECT ${DETAIL_COLUMNS} FROM messages WHERE id = ?`),
    events: p('SELECT at, event, destination, detail FROM events WHERE message_id = ? ORDER BY id'),
    deliveries: p(`SELECT ${DELIVERY_COLUMNS} FROM deliveries WHERE message_id = ? ORDER BY destination, output_index`),
    attemptPage: p(ATTEMPT_LOG.page),
    attemptCounts: p(ATTEMPT_LOG.counts),
    batchAttempt: p(BATCH_ATTEMPT.batch),
    batchItems: p(BATCH_ATTEMPT.items),
    countByChannel: p('SELECT channel, state, count(*) AS n FROM messages GROUP BY channel, state'),
  };
}

/** The SQLite implementation of {@link MessageStore}; see the module comment. */
export class SqliteStore implements MessageStore {
  readonly #options: Required<SqliteStoreOptions>;
  #reader: Db | undefined;
  #r: ReturnType<typeof prepareReads> | undefined;
  #writer: WriterLink | undefined;
  /** Receives in their own batches (see ReceiveFirstCommitter); the writer runs one transaction at a time. */
  #committer: ReceiveFirstCommitter<PreparedOp, StoreOpResult> | undefined;
  #opening: Promise<void> | undefined;
  readonly #findStatements = new Map<string, Stmt>();
  /** On a connection of its own: see sqlite-file-ledger.ts for why not through the writer. */
  readonly files = new SqliteFileLedger();
  /** One engine process owns the file (the embedded mode): a lease per process is one per store. */
  readonly singleActive = new InProcessSingleActive();

  constructor(options: SqliteStoreOptions) {
    const synchronous = options.synchronous ?? 'full';
    if (synchronous !== 'full' && synchronous !== 'normal') throw new TypeError(`synchronous must be 'full' or 'normal'`);
    const writeThread = options.writeThread ?? 'worker';
    if (writeThread !== 'worker' && writeThread !== 'main') throw new TypeError(`writeThread must be 'worker' or 'main'`);
    if (options.path === ':memory:') throw new TypeError('the SQLite store needs a file (WAL does not work in memory)');
    // `??`, not a spread: callers pass optional settings through as explicit undefined.
    this.#options = {
      path: options.path,
      synchronous,
      busyTimeoutMs: options.busyTimeoutMs ?? 5000,
      maxBatch: options.maxBatch ?? 1000,
      writeThread,
    };
  }

  open(): Promise<void> {
    this.#opening ??= this.#open().catch((err: unknown) => {
      this.#opening = undefined;
      throw new OspreyError('OSPREY_ERR_STORE_UNAVAILABLE', 'the SQLite message store could not be opened', { cause: err });
    });
    return this.#opening;
  }

  async #open(): Promise<void> {
    const { path, synchronous, busyTimeoutMs, maxBatch, writeThread } = this.#options;
    await mkdir(dirname(path), { recursive: true });
    const writerOptions: SqliteWriterOptions = { path, synchronous, busyTimeoutMs };
    // The writer first: it creates the file and applies the migrations the reader relies on.
    const writer = writeThread === 'worker' ? await WorkerWriter.start(writerOptions) : new InlineWriter(new SqliteWriter(writerOptions, await readMigrations('sqlite')));
    let reader: Db | undefined;
    try {
      reader = new Database(path, { readonly: true, fileMustExist: true });
      reader.pragma(`busy_timeout = ${Math.trunc(busyTimeoutMs)}`);
      this.#r = prepareReads(reader);
      this.files.open(writerOptions);
    } catch (err) {
      reader?.close();
      this.files.close();
      await writer.close();
      throw err;
    }
    this.singleActive.open();
    this.#reader = reader;
    this.#writer = writer;
    this.#committer = new ReceiveFirstCommitter((ops) => writer.flush(ops), { maxBatch, maxInFlight: 1 });
  }

  async close(): Promise<void> {
    await this.#opening?.catch(() => {});
    const committer = this.#committer;
    if (!committer) return;
    this.#committer = undefined;
    this.singleActive.close();
    await committer.close();
    await this.#writer?.close();
    this.files.close();
    this.#reader?.close();
    this.#writer = undefined;
    this.#reader = undefined;
    this.#r = undefined;
    this.#opening = undefined;
    this.#findStatements.clear();
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
    const r = this.#reads().loadForProcessing.get(id) as Row | undefined;
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
    const r = this.#reads().loadDelivery.get(id) as Row | undefined;
    return r ? deliveryFromRow(deliveryRowFrom(r)) : undefined;
  }

  async firstAttemptAt(deliveryId: string): Promise<number | undefined> {
    const r = this.#reads().firstAttemptAt.get(deliveryId) as Row | undefined;
    return r ? num(r.started_at) : undefined;
  }

  async pendingDeliveries(page: PendingPage<PendingDelivery>): Promise<PendingDelivery[]> {
    return (this.#reads().pendingDeliveries.all(...pendingDeliveriesParams(page)) as Row[]).map(pendingDeliveryFrom);
  }

  async pendingMessages(page: PendingPage<PendingMessage>): Promise<PendingMessage[]> {
    return (this.#reads().pendingMessages.all(...pendingMessagesParams(page)) as Row[]).map(pendingMessageFrom);
  }

  async getMessage(id: string, attempts?: AttemptsPage): Promise<MessageDetail | undefined> {
    const r = this.#reads();
    const page = attemptsPageOf(attempts);
    return this.#reader!.transaction(() => {
      const m = r.detail.get(id) as Row | undefined;
      if (!m) return undefined;
      const deliveries = r.deliveries.all(id) as Row[];
      const pages = new Map(deliveries.map((d) => [String(d.id), r.attemptPage.all(...attemptPageParams(String(d.id), page)) as Row[]]));
      return detailFromRows(m, r.events.all(id) as Row[], deliveries, pages, r.attemptCounts.all(id) as Row[], page.limit);
    })();
  }

  async getBatchAttempt(id: string): Promise<BatchAttemptDetail | undefined> {
    const r = this.#reads();
    return this.#reader!.transaction(() => {
      const b = r.batchAttempt.get(id) as Row | undefined;
      return b ? batchAttemptFromRows(b, r.batchItems.all(id) as Row[]) : undefined;
    })();
  }

  async findMessages(query: MessageQuery): Promise<MessageSummary[]> {
    this.#reads();
    const { sql, params } = buildFindMessages(query, () => '?');
    let stmt = this.#findStatements.get(sql);
    if (!stmt) this.#findStatements.set(sql, (stmt = this.#reader!.prepare(sql)));
    return (stmt.all(...params) as Row[]).map(summaryFromRow);
  }

  async countByChannel(): Promise<Record<string, Partial<Record<MessageState, number>>>> {
    const out: Record<string, Partial<Record<MessageState, number>>> = {};
    for (const r of this.#reads().countByChannel.all() as Row[]) (out[String(r.channel)] ??= {})[String(r.state) as MessageState] = num(r.n);
    return out;
  }

  #reads(): ReturnType<typeof prepareReads> {
    if (!this.#r) throw new OspreyError('OSPREY_ERR_STORE_UNAVAILABLE', 'the message store is not open');
    return this.#r;
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
}
