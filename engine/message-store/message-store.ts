// SPDX-License-Identifier: Apache-2.0
/**
 * The message store: the system of record. Every message is kept with its raw bytes, business
 * keys, the transform output, every state transition (with a timestamp) and every delivery attempt
 * (request, response status and body, error). The bus only carries ids that point here.
 *
 * Two implementations share this contract and one test suite: SQLite (embedded default, WAL) and
 * PostgreSQL (production). Writes from concurrent callers are group-committed: each promise
 * resolves only after the transaction holding its write has committed, so "resolved" means
 * "durable" — the MLLP listener ACKs on that.
 */
import type { FileLedger, SingleActive } from '../adapter-sdk/file-source-services.ts';
import type { ErrorCode } from '../errors/error-codes.ts';
import type { FormatKeys, MessageFormatName, RecordLineage } from '../message-formats/message-format.ts';

/** Message states, in the words integration engineers already use (Mirth). */
export const MessageState = {
  RECEIVED: 'RECEIVED',
  FILTERED: 'FILTERED',
  QUEUED: 'QUEUED',
  SENT: 'SENT',
  ERROR: 'ERROR',
  BUSINESS_EXCEPTION: 'BUSINESS_EXCEPTION',
  DEAD_LETTERED: 'DEAD_LETTERED',
} as const;
export type MessageState = (typeof MessageState)[keyof typeof MessageState];

/** Per-destination states. A delivery waiting for a retry stays QUEUED (with attempts and lastError). */
export const DeliveryState = {
  QUEUED: 'QUEUED',
  SENT: 'SENT',
  DEAD_LETTERED: 'DEAD_LETTERED',
} as const;
export type DeliveryState = (typeof DeliveryState)[keyof typeof DeliveryState];

/** Business keys extracted at ingest by the message's format module, and indexed for search. */
export type BusinessKeys = FormatKeys;

export interface StoredError {
  code: ErrorCode;
  /** Safe to log and show: never message content. */
  detail: string;
}

export interface NewMessage {
  id: string;
  channel: string;
  /** Epoch milliseconds. */
  receivedAt: number;
  raw: Buffer;
  /** Character set the raw bytes were decoded with (from MSH-18 or the channel's fallback). */
  encoding: string;
  /** What the raw bytes are (engine/message-formats). @defaultValue 'hl7v2' */
  format?: MessageFormatName;
  /** For a record of a file: which file and where (its content hash and index are the file source's checkpoint). */
  lineage?: RecordLineage;
  keys: BusinessKeys;
  /** The channel's ordering key value (e.g. PID-3.1); messages of one key are processed in order. */
  orderKey: string;
  /** RECEIVED for a message to process; ERROR for one that failed parsing or was not accepted. */
  state: typeof MessageState.RECEIVED | typeof MessageState.ERROR;
  error?: StoredError;
  /**
   * When > 0 and `keys.sender` and `keys.controlId` are set, a message of the same channel, sender
   * and control id received within this many milliseconds makes this one a duplicate: it is not
   * stored again, a DUPLICATE event is added to the original, and `duplicateOf` is returned.
   * Only messages stored as RECEIVED count as originals (one stored as ERROR was refused, so its
   * sender may send it again), and only a RECEIVED message is checked. Duplicates are seen within
   * one group-committed batch and across engine instances sharing a store.
   */
  dedupeWindowMs: number;
  /** Peer address, for the history. */
  source?: string;
  /**
   * The pipeline's outcome, run by ingest before the write (RECEIVED messages only): stored in the
   * same transaction as the message, exactly as a {@link MessageStore.recordProcessing} right
   * after it would store it (the history still shows RECEIVED, then TRANSFORMED …). A duplicate
   * stores neither. Without it the message stays RECEIVED for the pipeline worker.
   */
  outcome?: ProcessingOutcome;
}

export interface ReceiveResult {
  /** The id given in {@link NewMessage}; when `duplicateOf` is set, nothing was stored under it. */
  id: string;
  /** Set when the message was a duplicate: the id of the original. */
  duplicateOf?: string;
  /** With an `outcome`: the deliveries it queued (empty when none), as `recordProcessing` returns them. */
  deliveries?: StoredDelivery[];
}

export interface NewDelivery {
  destination: string;
  outputIndex: number;
  /** The payload to send (after the destination transform), JSON-serialisable. */
  payload: unknown;
}

export type ProcessingOutcome =
  | { state: typeof MessageState.FILTERED; reason: string }
  | { state: typeof MessageState.ERROR; error: StoredError }
  | {
      state: typeof MessageState.BUSINESS_EXCEPTION;
      exception: { category: string; detail: string; tags: Record<string, string | undefined> };
    }
  | {
      state: typeof MessageState.QUEUED;
      /** The canonical event(s) produced by the channel transform. */
      canonical: unknown;
      /** One per destination output; an empty list makes the message FILTERED. */
      deliveries: NewDelivery[];
      /** Why some destinations produced nothing (destination transform filtered). */
      filteredDestinations?: Array<{ destination: string; reason: string }>;
    };

export interface StoredDelivery {
  /** `${messageId}:${destination}:${outputIndex}`; also the Idempotency-Key sent to the receiver. */
  id: string;
  messageId: string;
  channel: string;
  destination: string;
  outputIndex: number;
  orderKey: string;
  payload: unknown;
  state: DeliveryState;
  attempts: number;
  /** Epoch ms of the next attempt, when waiting for a retry. */
  nextAttemptAt?: number;
  lastError?: StoredError;
  /**
   * Message receive sequence: deliveries are recovered and sent in this order. Absent on the
   * deliveries a receive returns: the store numbers the message as it commits.
   */
  seq?: number;
}

export interface AttemptRecord {
  deliveryId: string;
  startedAt: number;
  durationMs: number;
  /** As sent; for an item of a batched request, `body` is the item's own element of the batch body. */
  request: { method: string; url: string; headers: Record<string, string>; body: string };
  /**
   * The receiver's answer. An item of a batched request has the status only: the batch's answer
   * may name other patients, so it is kept once, with the batch ({@link BatchAttemptRecord}).
   */
  response?: { status: number; body?: string };
  error?: StoredError;
  /** SENT ends the delivery; RETRY keeps it QUEUED until nextAttemptAt; DEAD_LETTERED ends it. */
  outcome: 'SENT' | 'RETRY' | 'DEAD_LETTERED';
  nextAttemptAt?: number;
}

/**
 * One request of a batched destination, stored once whatever its size: each item's attempt
 * ({@link AttemptRecord}, its own element of the body) points at it. A batch of 100 items thus
 * stores its body once per attempt, not 100 times, and a message's history never shows another
 * message's payload. @see docs/design/0004-delivery.md#batching
 */
export interface BatchAttemptRecord {
  /** Unique per attempt of a batch (a UUID): what each item's attempt points at. */
  id: string;
  /** The batch request's Idempotency-Key (the same on every retry of the same members). */
  key: string;
  /** Items in the request. */
  size: number;
  startedAt: number;
  durationMs: number;
  /** The request without its body: the body is the items' elements, kept with each item's attempt. */
  request: { method: string; url: string; headers: Record<string, string> };
  /** The receiver's answer to the whole batch (may name every patient of the batch). */
  response?: { status: number; body: string };
  error?: StoredError;
  outcome: AttemptRecord['outcome'];
  nextAttemptAt?: number;
}

/**
 * A whole batch attempt, for an operator: the request with its body reassembled from the items'
 * elements (in batch order), the answer, and whose messages it carried. Reading it shows every
 * patient of the batch, so its audit record names every message.
 */
export interface BatchAttemptDetail extends BatchAttemptRecord {
  request: { method: string; url: string; headers: Record<string, string>; body: string };
  /** The items, in batch order. An item whose delivery a replay removed is missing (and its element with it). */
  items: Array<{ messageId: string; deliveryId: string }>;
}

/** What a message's history shows of the batch request an attempt went out in: metadata only. */
export interface BatchAttemptSummary {
  /** The batch attempt's id ({@link BatchAttemptRecord.id}). */
  id: string;
  /** The batch request's Idempotency-Key: the same on every retry of the same members. */
  key: string;
  size: number;
  outcome: AttemptRecord['outcome'];
  /** The HTTP status of the batch's answer, when there was one. */
  status?: number;
  startedAt: number;
  durationMs: number;
}

/** One entry of a delivery's attempt log; `batch` is set on an item of a batched request. */
export type AttemptLogEntry = Omit<AttemptRecord, 'deliveryId'> & {
  /** Keyset cursor: pass as `attemptsBefore` to read the attempts older than this one. */
  seq: number;
  batch?: BatchAttemptSummary;
};

/** How much of each delivery's attempt log {@link MessageStore.getMessage} loads. */
export interface AttemptsPage {
  /** The newest N attempts of each delivery. Default {@link DEFAULT_ATTEMPTS}, at most {@link MAX_ATTEMPTS}. */
  limit?: number;
  /** Keyset paging: only attempts whose `seq` is below this. */
  before?: number;
}

/** Attempts per delivery {@link MessageStore.getMessage} loads by default, and at most. */
export const DEFAULT_ATTEMPTS = 20;
export const MAX_ATTEMPTS = 500;

/** A QUEUED delivery to put back on its destination's queue. */
export interface PendingDelivery {
  id: string;
  messageId: string;
  channel: string;
  destination: string;
  outputIndex: number;
  orderKey: string;
  seq: number;
}

/**
 * One page of a read of unfinished work: `after` is the last item of the page before (none for the
 * first page); `changedSince` (epoch ms) keeps only work whose row changed at or after it.
 */
export interface PendingPage<T> {
  changedSince?: number;
  after?: T;
  limit: number;
}

/** A message the pipeline must (re)process. */
export interface PendingMessage {
  id: string;
  channel: string;
  orderKey: string;
  seq: number;
}

export interface MessageEvent {
  at: number;
  /** A MessageState, a DeliveryState, or one of TRANSFORMED, DUPLICATE, REPLAYED, ATTEMPT. */
  event: string;
  destination?: string;
  detail?: string;
}

export interface MessageSummary {
  id: string;
  seq: number;
  channel: string;
  receivedAt: number;
  state: MessageState;
  keys: BusinessKeys;
  orderKey: string;
  error?: StoredError;
  exceptionCategory?: string;
  updatedAt: number;
}

export interface MessageDetail extends MessageSummary {
  raw: Buffer;
  encoding: string;
  format: MessageFormatName;
  /** For a record of a file: the file, its content hash, the record's index and envelope ids. */
  lineage?: RecordLineage;
  source?: string;
  canonical?: unknown;
  exception?: { category: string; detail: string; tags: Record<string, string | undefined> };
  filterReason?: string;
  events: MessageEvent[];
  deliveries: Array<
    StoredDelivery & {
      /** The newest attempts asked for (see {@link AttemptsPage}), oldest first. */
      attemptLog: AttemptLogEntry[];
      /** Attempts stored for this delivery in all (the log may hold fewer). */
      attemptCount: number;
      /** Set when older attempts than the log's remain: the `before` of the next page. */
      attemptsBefore?: number;
    }
  >;
}

export interface MessageQuery {
  channel?: string;
  state?: MessageState;
  controlId?: string;
  patientId?: string;
  visitId?: string;
  messageType?: string;
  /** Epoch ms, inclusive. */
  since?: number;
  until?: number;
  /** Default 50, max 1000. Newest first. */
  limit?: number;
  /** Keyset paging: only messages with seq below this. */
  beforeSeq?: number;
}

/** What a replay re-queued: the whole pipeline, or the listed dead-lettered deliveries. */
export type ReplayPlan =
  | { kind: 'pipeline'; message: PendingMessage }
  | { kind: 'deliveries'; deliveries: StoredDelivery[] };

export interface MessageStore {
  /** Runs the append-only migrations. Idempotent. */
  open(): Promise<void>;
  close(): Promise<void>;

  /** Stores a received message (group-committed). Resolves once durable. */
  receive(message: NewMessage): Promise<ReceiveResult>;
  /** The raw message and what the pipeline needs to run it. */
  loadForProcessing(id: string): Promise<
    | { id: string; channel: string; receivedAt: number; raw: Buffer; encoding: string; format: MessageFormatName; keys: BusinessKeys; orderKey: string; state: MessageState }
    | undefined
  >;
  /**
   * Records the pipeline's result (state, canonical output, deliveries, events) in one transaction
   * and returns the deliveries it queued. A message that is no longer RECEIVED (processed already:
   * a redelivered work item, another engine instance) is left unchanged and its still-QUEUED
   * deliveries are returned. Rejects with OSPREY_ERR_STORE_NOT_FOUND for an unknown id.
   */
  recordProcessing(id: string, outcome: ProcessingOutcome): Promise<StoredDelivery[]>;
  loadDelivery(id: string): Promise<StoredDelivery | undefined>;
  /**
   * When the delivery's current run of attempts began (epoch ms): the start of its latest attempt
   * numbered 1, since a replay restarts the numbering. Undefined before its first attempt. A retry
   * window (`maxElapsed`) counts from it, also across a restart.
   */
  firstAttemptAt(deliveryId: string): Promise<number | undefined>;
  /**
   * Records attempts (one, or one per item of a batched request) in one transaction, moves each
   * delivery to its new state, and settles the message state once all its deliveries are final
   * (SENT when all sent, DEAD_LETTERED when any was dead-lettered). An attempt on a delivery that
   * is final already is logged without changing its state. Credentials in request headers
   * (Authorization, Cookie, X-Api-Key …) are stored as `[redacted]`. Rejects with
   * OSPREY_ERR_STORE_NOT_FOUND, writing nothing of the call, when a delivery id is unknown.
   * `batch`: the attempts are the items of one batched request, stored once in the same
   * transaction; each item's attempt points at it.
   */
  recordAttempts(attempts: AttemptRecord[], batch?: BatchAttemptRecord): Promise<void>;
  /**
   * Dead-letters a QUEUED delivery without an attempt, with `error` as its last error: the bus gave
   * up on its work item (its delivery limit), so nothing would send it any more. The message settles
   * as after a dead-lettered attempt, and a replay re-queues the delivery. A final delivery is left
   * as it is. Rejects with OSPREY_ERR_STORE_NOT_FOUND for an unknown id.
   */
  abandonDelivery(deliveryId: string, error: StoredError): Promise<void>;

  /**
   * Unfinished work, a page at a time, oldest first (by message seq, then destination and output):
   * QUEUED deliveries, as the work items that put them back on the bus. Paged and without payloads
   * because a backlog after a long ERP outage can hold millions, and every instance reads it when
   * its bus reconnects. `changedSince`: what may not have reached the bus around a broker outage.
   * @see pendingWorkPages, which reads both kinds in the order recovery needs
   */
  pendingDeliveries(page: PendingPage<PendingDelivery>): Promise<PendingDelivery[]>;
  /** RECEIVED messages, a page at a time, by seq; as {@link pendingDeliveries}. */
  pendingMessages(page: PendingPage<PendingMessage>): Promise<PendingMessage[]>;
  /**
   * Resets a message for replay (ERROR/BUSINESS_EXCEPTION/FILTERED → RECEIVED; dead-lettered deliveries → QUEUED) and records REPLAYED.
   * ERROR, BUSINESS_EXCEPTION, FILTERED and RECEIVED messages go back to RECEIVED (result fields
   * cleared; un-sent deliveries, if any, removed) → `pipeline`. Otherwise, a message with
   * DEAD_LETTERED deliveries gets them back as QUEUED with attempts reset (attempt log kept) and
   * becomes QUEUED → `deliveries`. Anything else (SENT, QUEUED with nothing dead-lettered, an
   * unknown id) → undefined.
   * @see docs/design/0003-message-store.md § Replay
   */
  replay(id: string): Promise<ReplayPlan | undefined>;

  /**
   * A message with its whole history, but only the newest attempts of each delivery (`attempts`),
   * with their count, so that a delivery retried for days cannot make one read unbounded.
   */
  getMessage(id: string, attempts?: AttemptsPage): Promise<MessageDetail | undefined>;
  /** One attempt of a batched request, whole (see {@link BatchAttemptDetail}); undefined for an unknown id. */
  getBatchAttempt(id: string): Promise<BatchAttemptDetail | undefined>;
  findMessages(query: MessageQuery): Promise<MessageSummary[]>;
  /** Counts per channel and state. */
  countByChannel(): Promise<Record<string, Partial<Record<MessageState, number>>>>;

  /**
   * The files file sources have taken, with each one's progress counted from the records stored
   * (the per-record checkpoint). Usable between `open` and `close`.
   * @see engine/adapter-sdk/file-source-services.ts
   */
  readonly files: FileLedger;
  /**
   * Leases that make one engine instance the only active poller of a channel: one per process in
   * the embedded mode, a PostgreSQL advisory lock in production. Usable between `open` and `close`;
   * `close` loses every lease still held. @see docs/design/0013-file-sources.md
   */
  readonly singleActive: SingleActive;
}

/** Rows per page of {@link pendingWorkPages}: a few MB of work items, published a page at a time. */
export const PENDING_PAGE_SIZE = 5_000;

/**
 * Every page of unfinished work: all QUEUED deliveries, then all RECEIVED messages, each oldest
 * first. Deliveries come first because, for one key, every delivery still queued belongs to a
 * message older than any message still RECEIVED (the pipeline runs a key in order; a replay aside),
 * so the deliveries a recovered message will produce must come after them. The pages are not one
 * snapshot: work finished meanwhile may still come (the stages skip finished work), and work that
 * starts meanwhile is published by whoever starts it.
 */
export async function* pendingWorkPages(
  store: MessageStore,
  options: { changedSince?: number; pageSize?: number } = {},
): AsyncGenerator<{ deliveries: PendingDelivery[]; messages: PendingMessage[] }> {
  const limit = options.pageSize ?? PENDING_PAGE_SIZE;
  const since = options.changedSince === undefined ? {} : { changedSince: options.changedSince };
  let after: PendingDelivery | undefined;
  for (;;) {
    const deliveries = await store.pendingDeliveries({ ...since, limit, ...(after ? { after } : {}) });
    if (deliveries.length > 0) yield { deliveries, messages: [] };
    if (deliveries.length < limit) break;
    after = deliveries[deliveries.length - 1];
  }
  let afterMessage: PendingMessage | undefined;
  for (;;) {
    const messages = await store.pendingMessages({ ...since, limit, ...(afterMessage ? { after: afterMessage } : {}) });
    if (messages.length > 0) yield { deliveries: [], messages };
    if (messages.length < limit) break;
    afterMessage = messages[messages.length - 1];
  }
}
