// SPDX-License-Identifier: Apache-2.0
/**
 * The state machine of the message store, shared by the SQLite and PostgreSQL stores. A write is
 * first checked and its JSON values serialised in the caller's turn (`prepareOp`), then queued on
 * the group committer. A flush of the group committer works in three steps:
 *
 * 1. `collectNeeds(ops)` says which rows the batch reads (messages, deliveries, dedupe candidates);
 * 2. the store loads them (PostgreSQL: locking the message rows, `FOR NO KEY UPDATE`, in id order) into a
 *    {@link Snapshot};
 * 3. a {@link UnitOfWork} applies the operations in order to that in-memory view and collects the
 *    rows to insert, update and delete ({@link Writes}); the store writes them (multi-row statements
 *    on PostgreSQL) and commits.
 *
 * Because later operations of a batch see the effects of earlier ones (a second receive of the same
 * control id, a second attempt settling the same message), a batch behaves exactly as if its
 * operations had run one by one. Each operation checks everything that can fail BEFORE it changes
 * the view, so a rejected operation leaves no trace and fails only its own promise.
 *
 * Locking rule (PostgreSQL; SQLite has one writer): every transaction that changes a message or
 * any of its deliveries first locks the message row. Message locks of one transaction are taken in
 * one statement, in id order, so two engine instances cannot deadlock on them; delivery rows need
 * no lock of their own.
 *
 * @see docs/design/0003-message-store.md
 */
import { isSecretHeader } from '../adapter-sdk/secret-headers.ts';
import { OspreyError, type ErrorCode } from '../errors/error-codes.ts';
import {
  DeliveryState,
  MessageState,
  type AttemptRecord,
  type BatchAttemptRecord,
  type NewMessage,
  type PendingMessage,
  type ProcessingOutcome,
  type ReceiveResult,
  type ReplayPlan,
  type StoredDelivery,
  type StoredError,
} from './message-store.ts';

/** One write, as a caller asked for it. */
export type StoreOp =
  | { kind: 'receive'; message: NewMessage }
  | { kind: 'process'; id: string; outcome: ProcessingOutcome }
  | { kind: 'attempts'; attempts: AttemptRecord[]; batch?: BatchAttemptRecord }
  | { kind: 'abandon'; deliveryId: string; error: StoredError }
  | { kind: 'replay'; id: string };

/**
 * A processing outcome with its JSON values serialised ({@link prepareOp}), so that a write is
 * plain data: cheap to clone to the SQLite writer thread, and a value JSON cannot hold fails its
 * own write before it joins a batch.
 */
export type PreparedOutcome =
  | { state: typeof MessageState.FILTERED; reason: string }
  | { state: typeof MessageState.ERROR; error: StoredError }
  | { state: typeof MessageState.BUSINESS_EXCEPTION; category: string; detail: string; exceptionJson: string }
  | {
      state: typeof MessageState.QUEUED;
      canonicalJson: string;
      deliveries: Array<{ destination: string; outputIndex: number; payloadJson: string }>;
      filteredDestinations: Array<{ destination: string; reason: string }>;
    };

/** An attempt with its request serialised (credentials redacted). */
export type PreparedAttempt = Omit<AttemptRecord, 'request'> & { requestJson: string };

/** The columns one request's outcome is written with, for an item's attempt and a batch's alike. */
export interface AttemptColumns {
  startedAt: number;
  durationMs: number;
  requestJson: string;
  responseStatus: number | null;
  responseBody: string | null;
  errorCode: string | null;
  errorDetail: string | null;
  outcome: AttemptRecord['outcome'];
  nextAttemptAt: number | null;
}

/** A batch attempt as it is written: its request serialised (credentials redacted), epochs whole. */
export interface BatchAttemptInsert extends AttemptColumns {
  id: string;
  batchKey: string;
  size: number;
}

/** A message to receive with its pipeline outcome, if any, prepared. */
export type PreparedNewMessage = Omit<NewMessage, 'outcome'> & { outcome?: PreparedOutcome };

/** One write queued on the group committer: a {@link StoreOp} after {@link prepareOp}. */
export type PreparedOp =
  | { kind: 'receive'; message: PreparedNewMessage }
  | { kind: 'process'; id: string; outcome: PreparedOutcome }
  | { kind: 'attempts'; attempts: PreparedAttempt[]; batch?: BatchAttemptInsert }
  | { kind: 'abandon'; deliveryId: string; error: StoredError }
  | { kind: 'replay'; id: string };

/** What each kind of operation resolves to. */
export type StoreOpResult = ReceiveResult | StoredDelivery[] | ReplayPlan | undefined;

/** The columns of a message a write needs to see (everything else is only ever overwritten). */
export interface MessageHead {
  id: string;
  /** Null for a message inserted by this batch: the store numbers it as it writes the row. */
  seq: number | null;
  channel: string;
  orderKey: string;
  state: MessageState;
}

/** A delivery row, as loaded and as written back. */
export interface DeliveryRow {
  id: string;
  messageId: string;
  /** The message's seq; null when the message is inserted by the same batch (the SQL takes it from the row). */
  seq: number | null;
  channel: string;
  destination: string;
  outputIndex: number;
  orderKey: string;
  /** JSON text; parsed only when a delivery is handed back to the caller. */
  payloadJson: string;
  state: DeliveryState;
  attempts: number;
  nextAttemptAt: number | null;
  lastErrorCode: string | null;
  lastErrorDetail: string | null;
  updatedAt: number;
}

/** The newest accepted message of a dedupe key, received at or after the probe's `since`. */
export interface DedupeHit {
  id: string;
  receivedAt: number;
}

/** A dedupe key to look up: `since` is the earliest receive time any item of the batch accepts. */
export interface DedupeProbe {
  key: string;
  channel: string;
  sender: string;
  controlId: string;
  since: number;
}

export interface SnapshotNeeds {
  /** Messages named by process and replay operations. */
  messageIds: Set<string>;
  /** Deliveries named by attempts: the store loads their messages (and all of those messages' deliveries). */
  deliveryIds: Set<string>;
  dedupe: Map<string, DedupeProbe>;
}

export interface Snapshot {
  messages: Map<string, MessageHead>;
  /** Every delivery of every message in `messages`. */
  deliveries: Map<string, DeliveryRow>;
  dedupe: Map<string, DedupeHit>;
}

/** A new message row; a message processed in its receive batch carries its result fields too. */
export interface MessageInsert extends MessageResultFields {
  id: string;
  channel: string;
  receivedAt: number;
  raw: Buffer;
  encoding: string;
  format: string;
  /** JSON of the record's lineage, when it is a record of a file. */
  lineageJson: string | null;
  fileHash: string | null;
  recordIndex: number | null;
  source: string | null;
  controlId: string | null;
  sender: string | null;
  messageType: string | null;
  patientId: string | null;
  visitId: string | null;
  facility: string | null;
  orderKey: string;
  state: MessageState;
  /** Stored as RECEIVED (not rejected at ingest): only these are originals for dedupe. */
  accepted: boolean;
  updatedAt: number;
}

/** The result columns of processing; replay clears them all. */
export interface MessageResultFields {
  errorCode: string | null;
  errorDetail: string | null;
  exceptionCategory: string | null;
  exceptionJson: string | null;
  filterReason: string | null;
  canonicalJson: string | null;
}

/** No results: a new message, or one going back through the pipeline. */
const NO_RESULTS: Readonly<MessageResultFields> = {
  errorCode: null,
  errorDetail: null,
  exceptionCategory: null,
  exceptionJson: null,
  filterReason: null,
  canonicalJson: null,
};

export interface MessageUpdate {
  id: string;
  state: MessageState;
  updatedAt: number;
  /** Absent: only the state changes (settling, delivery replay). */
  fields?: MessageResultFields;
}

export interface AttemptInsert extends AttemptColumns {
  deliveryId: string;
  n: number;
  /** The batch attempt the item went out in ({@link BatchAttemptInsert}); null for a single request. */
  batchAttemptId: string | null;
}

export interface EventInsert {
  messageId: string;
  at: number;
  event: string;
  destination: string | null;
  detail: string | null;
}

/** The rows a batch writes, in the order the store must write them (see {@link UnitOfWork}). */
export interface Writes {
  insertMessages: MessageInsert[];
  updateMessages: Map<string, MessageUpdate>;
  /** Written before `insertDeliveries`: a replayed message may get a delivery of the same id again. */
  deleteDeliveries: Set<string>;
  insertDeliveries: Map<string, DeliveryRow>;
  updateDeliveries: Map<string, DeliveryRow>;
  insertBatchAttempts: BatchAttemptInsert[];
  insertAttempts: AttemptInsert[];
  insertEvents: EventInsert[];
}

/** Dedupe key of a message, or undefined when the message is not subject to dedupe. */
export function dedupeKeyOf(m: Omit<NewMessage, 'outcome'>): string | undefined {
  if (!(m.dedupeWindowMs > 0) || m.state !== MessageState.RECEIVED) return undefined;
  const { sender, controlId } = m.keys;
  if (!sender || !controlId) return undefined;
  return JSON.stringify([m.channel, sender, controlId]);
}

/** Which rows a batch reads; see the module comment. */
export function collectNeeds(ops: readonly PreparedOp[]): SnapshotNeeds {
  const needs: SnapshotNeeds = { messageIds: new Set(), deliveryIds: new Set(), dedupe: new Map() };
  for (const op of ops) {
    switch (op.kind) {
      case 'receive': {
        const m = op.message;
        const key = dedupeKeyOf(m);
        if (key === undefined) break;
        const since = m.receivedAt - m.dedupeWindowMs;
        const probe = needs.dedupe.get(key);
        if (probe) probe.since = Math.min(probe.since, since);
        else needs.dedupe.set(key, { key, channel: m.channel, sender: m.keys.sender!, controlId: m.keys.controlId!, since });
        break;
      }
      case 'process':
      case 'replay':
        needs.messageIds.add(op.id);
        break;
      case 'attempts':
        for (const a of op.attempts) needs.deliveryIds.add(a.deliveryId);
        break;
      case 'abandon':
        needs.deliveryIds.add(op.deliveryId);
        break;
      default:
        op satisfies never;
    }
  }
  return needs;
}

/** `${messageId}:${destination}:${outputIndex}`: the delivery id and the receiver's Idempotency-Key. */
export function deliveryIdOf(messageId: string, destination: string, outputIndex: number): string {
  return `${messageId}:${destination}:${outputIndex}`;
}

function redactHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) out[name] = isSecretHeader(name) ? '[redacted]' : value;
  return out;
}

/** JSON text of a value; `undefined` is stored as JSON null. Throws on cycles and BigInt. */
export function toJson(value: unknown): string {
  return JSON.stringify(value) ?? 'null';
}

/** Parses stored JSON text (never null in the columns that use it). */
export function fromJson(text: string | null | undefined): unknown {
  return text === null || text === undefined ? undefined : JSON.parse(text);
}

/**
 * Checks a write's shape and serialises its JSON values. Runs in the caller's turn, before the
 * write is queued: a malformed write or a value JSON cannot hold (a cycle, a BigInt) fails alone.
 */
export function prepareOp(op: StoreOp): PreparedOp {
  switch (op.kind) {
    case 'receive': {
      const m = op.message;
      if (typeof m !== 'object' || m === null) throw invalid('receive needs a message');
      if (typeof m.id !== 'string' || m.id === '') throw invalid('a message needs an id');
      if (typeof m.channel !== 'string' || m.channel === '') throw invalid('a message needs a channel');
      if (!Buffer.isBuffer(m.raw)) throw invalid('raw must be a Buffer');
      if (!Number.isFinite(m.receivedAt)) throw invalid('receivedAt must be epoch milliseconds');
      if (m.state !== MessageState.RECEIVED && m.state !== MessageState.ERROR) throw invalid(`a message cannot be received as ${String(m.state)}`);
      if (m.outcome === undefined) return { kind: 'receive', message: m as PreparedNewMessage };
      if (m.state !== MessageState.RECEIVED) throw invalid('only a RECEIVED message can be stored with its outcome');
      return { kind: 'receive', message: { ...m, outcome: prepareOutcome(m.outcome) } };
    }
    case 'process':
      if (typeof op.id !== 'string') throw invalid('recordProcessing needs a message id');
      return { kind: 'process', id: op.id, outcome: prepareOutcome(op.outcome) };
    case 'attempts': {
      if (!Array.isArray(op.attempts)) throw invalid('attempts must be an array');
      const attempts = op.attempts.map((a) => {
        if (typeof a?.deliveryId !== 'string') throw invalid('an attempt needs a deliveryId');
        checkAttempt(a);
        const { request, ...rest } = a;
        return { ...rest, requestJson: toJson({ ...request, headers: redactHeaders(request?.headers ?? {}) }) };
      });
      if (op.batch === undefined) return { kind: 'attempts', attempts };
      const b = op.batch;
      if (typeof b?.id !== 'string' || b.id === '' || typeof b.key !== 'string') throw invalid('a batch attempt needs an id and a key');
      if (!Number.isInteger(b.size) || b.size < 1) throw invalid('a batch attempt needs its size');
      if (attempts.length === 0) throw invalid('a batch attempt needs its items');
      checkAttempt(b);
      const { method, url, headers } = b.request ?? {};
      const batch: BatchAttemptInsert = {
        id: b.id,
        batchKey: b.key,
        size: b.size,
        startedAt: Math.trunc(b.startedAt),
        durationMs: b.durationMs,
        requestJson: toJson({ method, url, headers: redactHeaders(headers ?? {}) }),
        responseStatus: b.response?.status ?? null,
        responseBody: b.response?.body ?? null,
        errorCode: b.error?.code ?? null,
        errorDetail: b.error?.detail ?? null,
        outcome: b.outcome,
        nextAttemptAt: epochOrNull(b.nextAttemptAt),
      };
      return { kind: 'attempts', attempts, batch };
    }
    case 'abandon':
      if (typeof op.deliveryId !== 'string') throw invalid('abandon needs a delivery id');
      if (typeof op.error?.code !== 'string') throw invalid('abandon needs an error code');
      return { kind: 'abandon', deliveryId: op.deliveryId, error: { code: op.error.code, detail: String(op.error.detail ?? '') } };
    case 'replay':
      if (typeof op.id !== 'string') throw invalid('replay needs a message id');
      return op;
    default:
      return op satisfies never;
  }
}

function prepareOutcome(outcome: ProcessingOutcome): PreparedOutcome {
  switch (outcome?.state) {
    case MessageState.FILTERED:
      return { state: outcome.state, reason: String(outcome.reason ?? '') };
    case MessageState.ERROR:
      if (typeof outcome.error?.code !== 'string') throw invalid('an ERROR outcome needs an error code');
      return { state: outcome.state, error: { code: outcome.error.code, detail: String(outcome.error.detail ?? '') } };
    case MessageState.BUSINESS_EXCEPTION: {
      const e = outcome.exception;
      if (typeof e?.category !== 'string') throw invalid('a BUSINESS_EXCEPTION outcome needs a category');
      return { state: outcome.state, category: e.category, detail: String(e.detail ?? ''), exceptionJson: toJson(e) };
    }
    case MessageState.QUEUED: {
      if (!Array.isArray(outcome.deliveries)) throw invalid('a QUEUED outcome needs a list of deliveries');
      const seen = new Set<string>();
      const deliveries = outcome.deliveries.map((d) => {
        if (typeof d?.destination !== 'string' || d.destination === '') throw invalid('a delivery needs a destination');
        if (!Number.isInteger(d.outputIndex) || d.outputIndex < 0) throw invalid('outputIndex must be an integer ≥ 0');
        const key = `${d.destination}:${d.outputIndex}`;
        if (seen.has(key)) throw invalid(`two outputs for ${d.destination} with output index ${d.outputIndex}`);
        seen.add(key);
        return { destination: d.destination, outputIndex: d.outputIndex, payloadJson: toJson(d.payload) };
      });
      const filteredDestinations = (outcome.filteredDestinations ?? []).map((f) => ({ destination: String(f.destination), reason: String(f.reason) }));
      return { state: outcome.state, canonicalJson: toJson(outcome.canonical), deliveries, filteredDestinations };
    }
    default:
      throw invalid(`unknown processing outcome ${String((outcome as { state?: unknown } | undefined)?.state)}`);
  }
}

function checkAttempt(a: Pick<AttemptRecord, 'outcome' | 'startedAt' | 'durationMs'>): void {
  if (a.outcome !== 'SENT' && a.outcome !== 'RETRY' && a.outcome !== 'DEAD_LETTERED') throw invalid(`unknown attempt outcome ${String(a.outcome)}`);
  if (!Number.isFinite(a.startedAt) || !Number.isFinite(a.durationMs)) throw invalid('startedAt and durationMs must be numbers');
}

/** Epoch values are stored as integers (bigint on PostgreSQL). */
function epochOrNull(v: number | undefined): number | null {
  return v === undefined || v === null || !Number.isFinite(v) ? null : Math.trunc(v);
}

function notFound(what: string, id: string): OspreyError {
  return new OspreyError('OSPREY_ERR_STORE_NOT_FOUND', `no ${what} with id ${id}`);
}

/** A caller's bug (a malformed write): not an OspreyError, since no code describes a bug of ours. */
function invalid(message: string): TypeError {
  return new TypeError(`message store: ${message}`);
}

/** Materialises a delivery row for a caller. */
export function deliveryFromRow(r: DeliveryRow): StoredDelivery {
  const d: StoredDelivery = {
    id: r.id,
    messageId: r.messageId,
    channel: r.channel,
    destination: r.destination,
    outputIndex: r.outputIndex,
    orderKey: r.orderKey,
    payload: fromJson(r.payloadJson),
    state: r.state,
    attempts: r.attempts,
  };
  if (r.seq !== null) d.seq = r.seq;
  if (r.nextAttemptAt !== null) d.nextAttemptAt = r.nextAttemptAt;
  if (r.lastErrorCode !== null) d.lastError = { code: r.lastErrorCode as ErrorCode, detail: r.lastErrorDetail ?? '' };
  return d;
}

const PIPELINE_REPLAYABLE: ReadonlySet<MessageState> = new Set([
  MessageState.ERROR,
  MessageState.BUSINESS_EXCEPTION,
  MessageState.FILTERED,
  MessageState.RECEIVED,
]);

/** Applies operations to a snapshot; see the module comment. Not reusable across batches. */
export class UnitOfWork {
  readonly writes: Writes = {
    insertMessages: [],
    updateMessages: new Map(),
    deleteDeliveries: new Set(),
    insertDeliveries: new Map(),
    updateDeliveries: new Map(),
    insertBatchAttempts: [],
    insertAttempts: [],
    insertEvents: [],
  };
  readonly #now: number;
  readonly #messages: Map<string, MessageHead>;
  readonly #deliveries: Map<string, DeliveryRow>;
  readonly #byMessage = new Map<string, Set<string>>();
  readonly #dedupe: Map<string, DedupeHit>;
  /** The rows this batch inserts, by id: a change to one of them is made to its insert. */
  readonly #inserted = new Map<string, MessageInsert>();

  constructor(snapshot: Snapshot, now: number) {
    this.#now = now;
    this.#messages = snapshot.messages;
    this.#deliveries = snapshot.deliveries;
    this.#dedupe = snapshot.dedupe;
    for (const d of this.#deliveries.values()) this.#indexDelivery(d);
  }

  /** Applies one operation; throws (having changed nothing) when it cannot be applied. */
  apply(op: PreparedOp): StoreOpResult {
    switch (op.kind) {
      case 'receive':
        return this.receive(op.message);
      case 'process':
        return this.process(op.id, op.outcome);
      case 'attempts':
        this.attempts(op.attempts, op.batch);
        return undefined;
      case 'abandon':
        this.abandon(op.deliveryId, op.error);
        return undefined;
      case 'replay':
        return this.replay(op.id);
      default:
        return op satisfies never;
    }
  }

  receive(m: PreparedNewMessage): ReceiveResult {
    if (this.#inserted.has(m.id)) throw invalid(`message id ${m.id} is used twice`);

    const key = dedupeKeyOf(m);
    if (key !== undefined) {
      const hit = this.#dedupe.get(key);
      if (hit && hit.receivedAt >= m.receivedAt - m.dedupeWindowMs) {
        this.#event(hit.id, 'DUPLICATE', null, m.source ? `resent as ${m.id} from ${m.source}` : `resent as ${m.id}`);
        return { id: m.id, duplicateOf: hit.id };
      }
    }

    const accepted = m.state === MessageState.RECEIVED;
    const error = m.state === MessageState.ERROR ? m.error : undefined;
    const row: MessageInsert = {
      id: m.id,
      channel: m.channel,
      receivedAt: Math.trunc(m.receivedAt),
      raw: m.raw,
      encoding: m.encoding,
      format: m.format ?? 'hl7v2',
      lineageJson: m.lineage ? JSON.stringify(m.lineage) : null,
      fileHash: m.lineage?.fileHash ?? null,
      recordIndex: m.lineage?.recordIndex ?? null,
      source: m.source ?? null,
      controlId: m.keys.controlId ?? null,
      sender: m.keys.sender ?? null,
      messageType: m.keys.messageType ?? null,
      patientId: m.keys.patientId ?? null,
      visitId: m.keys.visitId ?? null,
      facility: m.keys.facility ?? null,
      orderKey: m.orderKey,
      state: m.state,
      ...NO_RESULTS,
      errorCode: error?.code ?? null,
      errorDetail: error?.detail ?? null,
      accepted,
      updatedAt: this.#now,
    };
    this.writes.insertMessages.push(row);
    this.#inserted.set(m.id, row);
    if (error) this.#event(m.id, MessageState.ERROR, null, `${error.code}: ${error.detail}`);
    else this.#event(m.id, m.state, null, m.source ? `from ${m.source}` : null);
    if (key !== undefined) {
      const hit = this.#dedupe.get(key);
      if (!hit || hit.receivedAt <= m.receivedAt) this.#dedupe.set(key, { id: m.id, receivedAt: m.receivedAt });
    }
    if (!m.outcome) return { id: m.id };
    // Processed in its receive batch: the same writes as a process operation right after it, made
    // to the insert (#updateMessage), so the message is written once.
    this.#messages.set(m.id, { id: m.id, seq: null, channel: m.channel, orderKey: m.orderKey, state: MessageState.RECEIVED });
    return { id: m.id, deliveries: this.process(m.id, m.outcome) };
  }

  process(id: string, outcome: PreparedOutcome): StoredDelivery[] {
    const msg = this.#messages.get(id);
    if (!msg) throw notFound('message', id);
    if (msg.state !== MessageState.RECEIVED) {
      // Processed already: a redelivered work item, or another engine instance got there first.
      // Change nothing and hand back what is still to deliver (deliveries are idempotent by id).
      return this.#deliveriesOf(id)
        .filter((d) => d.state === DeliveryState.QUEUED)
        .map(deliveryFromRow);
    }

    // Everything that can throw happens before the view changes.
    const cleared = NO_RESULTS;
    let next: MessageState;
    let fields: MessageResultFields;
    const events: Array<[event: string, destination: string | null, detail: string | null]> = [];
    const newDeliveries: DeliveryRow[] = [];

    switch (outcome.state) {
      case MessageState.FILTERED:
        next = MessageState.FILTERED;
        fields = { ...cleared, filterReason: outcome.reason };
        events.push([MessageState.FILTERED, null, fields.filterReason]);
        break;
      case MessageState.ERROR:
        next = MessageState.ERROR;
        fields = { ...cleared, errorCode: outcome.error.code, errorDetail: outcome.error.detail };
        events.push([MessageState.ERROR, null, `${outcome.error.code}: ${outcome.error.detail}`]);
        break;
      case MessageState.BUSINESS_EXCEPTION: {
        const { category, detail } = outcome;
        next = MessageState.BUSINESS_EXCEPTION;
        fields = {
          ...cleared,
          // The exception is also an error, so one "error" column lists every stopped message.
          errorCode: 'OSPREY_ERR_BUSINESS_EXCEPTION',
          errorDetail: `${category}: ${detail}`,
          exceptionCategory: category,
          exceptionJson: outcome.exceptionJson,
        };
        events.push([MessageState.BUSINESS_EXCEPTION, null, `${category}: ${detail}`]);
        break;
      }
      case MessageState.QUEUED: {
        const { canonicalJson } = outcome;
        const filtered = outcome.filteredDestinations;
        events.push(['TRANSFORMED', null, null]);
        for (const f of filtered) events.push([MessageState.FILTERED, f.destination, f.reason]);
        if (outcome.deliveries.length === 0) {
          next = MessageState.FILTERED;
          const reason = filtered.length > 0 ? filtered.map((f) => `${f.destination}: ${f.reason}`).join('; ') : 'no destination produced output';
          fields = { ...cleared, canonicalJson, filterReason: reason };
          events.push([MessageState.FILTERED, null, reason]);
          break;
        }
        next = MessageState.QUEUED;
        fields = { ...cleared, canonicalJson };
        for (const nd of outcome.deliveries) {
          const row = this.#newDelivery(msg, nd);
          // A delivery of the same id that was SENT before a replay stays SENT: the receiver has
          // applied that Idempotency-Key already, so sending it again could change nothing.
          if (this.#deliveries.get(row.id)?.state === DeliveryState.SENT) continue;
          newDeliveries.push(row);
          events.push([DeliveryState.QUEUED, row.destination, `output ${row.outputIndex}`]);
        }
        events.push([MessageState.QUEUED, null, null]);
        break;
      }
      default:
        return outcome satisfies never;
    }

    msg.state = next;
    this.#updateMessage(id, next, fields);
    for (const row of newDeliveries) {
      this.#deliveries.set(row.id, row);
      this.#indexDelivery(row);
      this.writes.insertDeliveries.set(row.id, row);
    }
    for (const [event, destination, detail] of events) this.#event(id, event, destination, detail);
    if (next === MessageState.QUEUED && newDeliveries.length === 0) this.#settle(msg);
    return newDeliveries.map(deliveryFromRow);
  }

  attempts(list: PreparedAttempt[], batch?: BatchAttemptInsert): void {
    const rows: DeliveryRow[] = [];
    for (const a of list) {
      const d = this.#deliveries.get(a.deliveryId);
      if (!d) throw notFound('delivery', a.deliveryId);
      rows.push(d);
    }
    if (batch) this.writes.insertBatchAttempts.push(batch);

    const touched = new Set<string>();
    list.forEach((a, i) => {
      const d = rows[i]!;
      d.attempts += 1;
      this.writes.insertAttempts.push({
        deliveryId: d.id,
        n: d.attempts,
        startedAt: Math.trunc(a.startedAt),
        durationMs: a.durationMs,
        requestJson: a.requestJson,
        responseStatus: a.response?.status ?? null,
        responseBody: a.response?.body ?? null,
        errorCode: a.error?.code ?? null,
        errorDetail: a.error?.detail ?? null,
        outcome: a.outcome,
        nextAttemptAt: epochOrNull(a.nextAttemptAt),
        batchAttemptId: batch?.id ?? null,
      });
      const status = a.response ? ` ${a.response.status}` : '';
      const code = a.error ? ` ${a.error.code}` : '';
      this.#event(d.messageId, 'ATTEMPT', d.destination, `#${d.attempts} ${a.outcome}${status}${code}`);

      // An attempt on a delivery that is final already (a late result from another instance, or
      // one raced by a replay) is history, not a state change — except a SENT one on a delivery
      // dead-lettered meanwhile (the bus gave up on its item while the request was under way): the
      // receiver has it, and a record saying otherwise would have an operator replay it.
      if (d.state === DeliveryState.DEAD_LETTERED && a.outcome === 'SENT') {
        d.state = DeliveryState.SENT;
        d.nextAttemptAt = null;
        d.lastErrorCode = null;
        d.lastErrorDetail = null;
        this.#event(d.messageId, DeliveryState.SENT, d.destination, 'after it was dead-lettered');
      } else if (d.state === DeliveryState.QUEUED) {
        switch (a.outcome) {
          case 'SENT':
            d.state = DeliveryState.SENT;
            d.nextAttemptAt = null;
            d.lastErrorCode = null;
            d.lastErrorDetail = null;
            this.#event(d.messageId, DeliveryState.SENT, d.destination, null);
            break;
          case 'RETRY':
            d.nextAttemptAt = epochOrNull(a.nextAttemptAt);
            d.lastErrorCode = a.error?.code ?? null;
            d.lastErrorDetail = a.error?.detail ?? null;
            break;
          case 'DEAD_LETTERED':
            d.state = DeliveryState.DEAD_LETTERED;
            d.nextAttemptAt = null;
            d.lastErrorCode = a.error?.code ?? null;
            d.lastErrorDetail = a.error?.detail ?? null;
            this.#event(d.messageId, DeliveryState.DEAD_LETTERED, d.destination, a.error ? a.error.code : null);
            break;
          default:
            a.outcome satisfies never;
        }
      }
      d.updatedAt = this.#now;
      this.#touchDelivery(d);
      touched.add(d.messageId);
    });
    for (const id of touched) {
      const msg = this.#messages.get(id);
      if (msg) this.#settle(msg);
    }
  }

  /** Dead-letters a QUEUED delivery without an attempt (the bus gave up on it); a final one stays. */
  abandon(deliveryId: string, error: StoredError): void {
    const d = this.#deliveries.get(deliveryId);
    if (!d) throw notFound('delivery', deliveryId);
    if (d.state !== DeliveryState.QUEUED) return;
    d.state = DeliveryState.DEAD_LETTERED;
    d.nextAttemptAt = null;
    d.lastErrorCode = error.code;
    d.lastErrorDetail = error.detail;
    d.updatedAt = this.#now;
    this.#touchDelivery(d);
    this.#event(d.messageId, DeliveryState.DEAD_LETTERED, d.destination, error.code);
    const msg = this.#messages.get(d.messageId);
    if (msg) this.#settle(msg);
  }

  replay(id: string): ReplayPlan | undefined {
    const msg = this.#messages.get(id);
    // Not stored yet (its receive commits in this batch): an operator cannot have seen it.
    if (!msg || msg.seq === null) return undefined;
    if (PIPELINE_REPLAYABLE.has(msg.state)) {
      const previous = msg.state;
      // Such a message has no deliveries in the normal course (deliveries only come with a QUEUED
      // outcome, and a QUEUED message settles only to SENT or DEAD_LETTERED). Should it have some,
      // the un-sent ones go (the new run makes them again); SENT ones stay as the record.
      for (const d of this.#deliveriesOf(id)) {
        if (d.state === DeliveryState.SENT) continue;
        this.#deliveries.delete(d.id);
        this.#byMessage.get(id)?.delete(d.id);
        this.writes.updateDeliveries.delete(d.id);
        if (!this.writes.insertDeliveries.delete(d.id)) this.writes.deleteDeliveries.add(d.id);
      }
      msg.state = MessageState.RECEIVED;
      this.#updateMessage(id, MessageState.RECEIVED, { ...NO_RESULTS });
      this.#event(id, 'REPLAYED', null, `pipeline, was ${previous}`);
      const message: PendingMessage = { id, channel: msg.channel, orderKey: msg.orderKey, seq: msg.seq };
      return { kind: 'pipeline', message };
    }
    const dead = this.#deliveriesOf(id).filter((d) => d.state === DeliveryState.DEAD_LETTERED);
    if (dead.length === 0) return undefined;
    this.#event(id, 'REPLAYED', null, `deliveries, was ${msg.state}`);
    for (const d of dead) {
      d.state = DeliveryState.QUEUED;
      d.attempts = 0;
      d.nextAttemptAt = null;
      d.lastErrorCode = null;
      d.lastErrorDetail = null;
      d.updatedAt = this.#now;
      this.#touchDelivery(d);
      this.#event(id, DeliveryState.QUEUED, d.destination, `output ${d.outputIndex}`);
    }
    if (msg.state !== MessageState.QUEUED) {
      msg.state = MessageState.QUEUED;
      this.#updateMessage(id, MessageState.QUEUED);
    }
    return { kind: 'deliveries', deliveries: dead.map(deliveryFromRow) };
  }

  /**
   * SENT when every delivery is SENT; DEAD_LETTERED when all are final and one is dead-lettered. A
   * DEAD_LETTERED message becomes SENT when its dead-lettered deliveries turn out sent after all.
   */
  #settle(msg: MessageHead): void {
    if (msg.state !== MessageState.QUEUED && msg.state !== MessageState.DEAD_LETTERED) return;
    const all = this.#deliveriesOf(msg.id);
    if (all.length === 0 || all.some((d) => d.state === DeliveryState.QUEUED)) return;
    const next = all.every((d) => d.state === DeliveryState.SENT) ? MessageState.SENT : MessageState.DEAD_LETTERED;
    if (next === msg.state) return;
    msg.state = next;
    this.#updateMessage(msg.id, next);
    this.#event(msg.id, next, null, null);
  }

  #newDelivery(msg: MessageHead, nd: { destination: string; outputIndex: number; payloadJson: string }): DeliveryRow {
    return {
      id: deliveryIdOf(msg.id, nd.destination, nd.outputIndex),
      messageId: msg.id,
      seq: msg.seq,
      channel: msg.channel,
      destination: nd.destination,
      outputIndex: nd.outputIndex,
      orderKey: msg.orderKey,
      payloadJson: nd.payloadJson,
      state: DeliveryState.QUEUED,
      attempts: 0,
      nextAttemptAt: null,
      lastErrorCode: null,
      lastErrorDetail: null,
      updatedAt: this.#now,
    };
  }

  #deliveriesOf(messageId: string): DeliveryRow[] {
    const ids = this.#byMessage.get(messageId);
    if (!ids) return [];
    const out: DeliveryRow[] = [];
    for (const id of ids) {
      const d = this.#deliveries.get(id);
      if (d) out.push(d);
    }
    // Stable order for callers and events: by destination, then output.
    return out.sort((a, b) => (a.destination < b.destination ? -1 : a.destination > b.destination ? 1 : a.outputIndex - b.outputIndex));
  }

  #indexDelivery(d: DeliveryRow): void {
    let set = this.#byMessage.get(d.messageId);
    if (!set) this.#byMessage.set(d.messageId, (set = new Set()));
    set.add(d.id);
  }

  /** Records a changed delivery: a new row stays an insert, a loaded one becomes an update. */
  #touchDelivery(d: DeliveryRow): void {
    if (this.writes.insertDeliveries.has(d.id)) this.writes.insertDeliveries.set(d.id, d);
    else this.writes.updateDeliveries.set(d.id, d);
  }

  #updateMessage(id: string, state: MessageState, fields?: MessageResultFields): void {
    const inserted = this.#inserted.get(id);
    if (inserted) {
      inserted.state = state;
      if (fields) Object.assign(inserted, fields);
      return;
    }
    const prior = this.writes.updateMessages.get(id);
    // A state-only change after a full one keeps the full one's fields.
    const merged = fields ?? prior?.fields;
    const update: MessageUpdate = { id, state, updatedAt: this.#now };
    if (merged) update.fields = merged;
    this.writes.updateMessages.set(id, update);
  }

  #event(messageId: string, event: string, destination: string | null, detail: string | null): void {
    this.writes.insertEvents.push({ messageId, at: this.#now, event, destination, detail });
  }
}

/** Runs every operation of a batch through one unit of work, one result per operation. */
export function applyBatch(uow: UnitOfWork, ops: readonly PreparedOp[]): Array<{ ok: true; value: StoreOpResult } | { ok: false; error: unknown }> {
  return ops.map((op) => {
    try {
      return { ok: true as const, value: uow.apply(op) };
    } catch (error) {
      return { ok: false as const, error };
    }
  });
}
