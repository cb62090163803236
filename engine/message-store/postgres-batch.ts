// SPDX-License-Identifier: Apache-2.0
/**
 * The SQL of one group-committed batch on PostgreSQL, and how it travels: `PostgresStore` runs a
 * batch as two pipelines of statements, each ONE round trip to the server:
 *
 * 1. `BEGIN` and the snapshot reads ({@link snapshotReads}): the dedupe advisory locks, the dedupe
 *    lookup, the locking read of the messages, the read of their deliveries;
 * 2. the writes ({@link writeStatements}: one multi-row statement per table and kind) and `COMMIT`.
 *
 * Pipelining keeps every statement (and so every lock, and the order in which they are taken)
 * exactly as when each was awaited in turn: the server still runs them one after the other, in the
 * order sent, each with its own READ COMMITTED snapshot. What goes is the wait between them: the
 * client no longer waits for one answer (and for its own event loop to get round to it) before it
 * sends the next statement. Before, a batch took about ten such waits of ~1.1 ms each under load.
 *
 * The raw message bytes of a batch travel as ONE binary parameter (the bytes of every message one
 * after the other, each row taking its slice), not as a `bytea[]` literal: a bytea array is sent as
 * text, so every byte was hex-encoded and escaped on the main thread.
 *
 * @see docs/design/0003-message-store.md § PostgreSQL: safe with several writers
 */
import type pg from 'pg';
import type { MessageState } from './message-store.ts';
import { DELIVERY_COLUMNS, deliveryRowFrom, num, type Row } from './store-rows.ts';
import type { DedupeHit, DedupeProbe, DeliveryRow, MessageHead, Snapshot, SnapshotNeeds, Writes } from './unit-of-work.ts';

/** One statement of a pipeline. */
export interface Statement {
  /**
   * Makes it a named prepared statement: parsed and planned once per connection (the text must
   * never change under a name; see WRITER_PLANNING in postgres-store.ts for the plan).
   */
  name?: string;
  text: string;
  values?: unknown[];
}

/** Characters a string's JSON form escapes other than as the array literal does (see arrayLiteral). */
const JSON_ESCAPES_DIFFER = /[\u0000-\u001f\ud800-\udfff]/;
const ARRAY_ESCAPES = /["\\]/;

/**
 * The PostgreSQL array literal of strings, numbers, booleans and nulls: the text pg sends for a JS
 * array, built faster. pg escapes every element with two regular-expression passes, and the JSON
 * columns' texts are full of quotes: that was ~5% of the engine's CPU in production mode. Inside a
 * quoted element only `"` and `\` are escaped, with a backslash — exactly what JSON does to a
 * string, as long as it holds no control character or surrogate (JSON escapes those its own way),
 * so the native `JSON.stringify` quotes most texts in one pass.
 */
export function arrayLiteral(values: readonly unknown[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    if (i > 0) out += ',';
    const v = values[i];
    if (v === null || v === undefined) out += 'NULL';
    else if (typeof v === 'number' || typeof v === 'boolean') out += String(v);
    else {
      const s = String(v);
      if (!ARRAY_ESCAPES.test(s)) out += `"${s}"`;
      else if (JSON_ESCAPES_DIFFER.test(s)) out += `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
      else out += JSON.stringify(s);
    }
  }
  return `${out}}`;
}

/**
 * Sends every statement at once on a client in pipeline mode and waits for all the answers: one
 * round trip. The server runs them in order; once one fails, the rest of its transaction fails
 * too (25P02, "current transaction is aborted"), so the FIRST failure is the cause and is thrown.
 * A `COMMIT` sent after a failed statement ends the transaction with a rollback, not a commit.
 */
export async function pipeline(client: pg.PoolClient, statements: readonly Statement[]): Promise<pg.QueryResult[]> {
  // pg writes each query to its socket at once: one system call per statement. Corked, the whole
  // pipeline leaves in one write. Socket writes are the largest item of the engine's profile in
  // production mode (on loopback the kernel also runs the receiving side of TCP in the sender's
  // system call). pg has no public handle on its socket; without one, this only costs the extra writes.
  const socket = (client as unknown as { connection?: { stream?: { cork?: () => void; uncork?: () => void } } }).connection?.stream;
  socket?.cork?.();
  let sent: Array<Promise<pg.QueryResult>>;
  try {
    sent = statements.map((s) => client.query(s.values ? { ...s, values: s.values.map((v) => (Array.isArray(v) ? arrayLiteral(v) : v)) } : s));
  } finally {
    socket?.uncork?.();
  }
  const settled = await Promise.allSettled(sent);
  const answers: pg.QueryResult[] = [];
  for (const s of settled) {
    if (s.status === 'rejected') throw s.reason;
    answers.push(s.value);
  }
  return answers;
}

/** PostgreSQL text cannot hold NUL; a response body or detail might. */
function text(v: string | null): string | null {
  return v === null || !v.includes('\u0000') ? v : v.replaceAll('\u0000', '\uFFFD');
}

/**
 * The ids of the messages a batch locks: those named by process and replay operations, and those
 * of the deliveries named by attempts (a delivery's message never changes, so looking it up needs
 * no lock). `$1` message ids, `$2` delivery ids.
 */
const LOCKED_IDS = `$1::text[] || ARRAY(SELECT message_id FROM deliveries WHERE id = ANY($2::text[]))`;

/**
 * Serialises with any other transaction (another engine instance) storing one of these dedupe keys
 * until this one commits; sorted, so two batches with several keys cannot deadlock.
 */
function dedupeLocks(probes: readonly DedupeProbe[]): Statement {
  return {
    name: 'osprey_dedupe_lock',
    text: `SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest($1::text[]) AS k) AS keys ORDER BY h`,
    values: [probes.map((p) => p.key)],
  };
}

/**
 * The reads of a batch, as statements to pipeline after `BEGIN`, and how to turn their answers
 * into the unit of work's {@link Snapshot}. The statements (and their order) are those the store
 * has always run, one at a time; see the comments for why each is needed.
 */
export function snapshotReads(needs: SnapshotNeeds): { statements: Statement[]; snapshot: (answers: readonly pg.QueryResult[]) => Snapshot } {
  const statements: Statement[] = [];
  let dedupeAt = -1;
  let messagesAt = -1;

  if (needs.dedupe.size > 0) {
    const probes = [...needs.dedupe.values()];
    // The lookup is the statement after the locks, so it runs once they are held and sees what
    // their holders committed.
    statements.push(dedupeLocks(probes));
    dedupeAt = statements.length;
    statements.push({
      name: 'osprey_dedupe_find',
      text: `SELECT DISTINCT ON (p.key) p.key, m.id, m.received_at
               FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[]) AS p(key, channel, sender, control_id, since)
               JOIN messages m ON m.channel = p.channel AND m.sender = p.sender AND m.control_id = p.control_id
                              AND m.accepted AND m.received_at >= p.since
              ORDER BY p.key, m.received_at DESC`,
      values: [probes.map((p) => p.key), probes.map((p) => p.channel), probes.map((p) => p.sender), probes.map((p) => p.controlId), probes.map((p) => Math.trunc(p.since))],
    });
  }

  if (needs.messageIds.size > 0 || needs.deliveryIds.size > 0) {
    const ids = [[...needs.messageIds], [...needs.deliveryIds]];
    messagesAt = statements.length;
    // In id order, in one statement, so two instances cannot deadlock. NO KEY UPDATE is enough to
    // serialise the writers of a message (its key never changes), and the weakest lock that does.
    statements.push({
      name: 'osprey_lock_messages',
      text: `SELECT id, seq, channel, order_key, state FROM messages WHERE id = ANY(${LOCKED_IDS}) ORDER BY id FOR NO KEY UPDATE`,
      values: ids,
    });
    // A statement of its own, run once the locks are held: it sees every committed change of
    // these messages' deliveries (one statement's snapshot is taken when it starts, before any
    // lock wait). It computes the message ids again; should a delivery named by an attempt have
    // been committed in between, its message was not locked, and its rows are dropped below: the
    // snapshot holds the deliveries of locked messages only, as the locking rule requires.
    statements.push({
      name: 'osprey_read_deliveries',
      text: `SELECT ${DELIVERY_COLUMNS} FROM deliveries WHERE message_id = ANY(${LOCKED_IDS})`,
      values: ids,
    });
  }

  const snapshot = (answers: readonly pg.QueryResult[]): Snapshot => {
    const messages = new Map<string, MessageHead>();
    const deliveries = new Map<string, DeliveryRow>();
    const dedupe = new Map<string, DedupeHit>();
    if (dedupeAt >= 0) {
      for (const r of answers[dedupeAt]!.rows as Row[]) dedupe.set(String(r.key), { id: String(r.id), receivedAt: num(r.received_at) });
    }
    if (messagesAt >= 0) {
      for (const r of answers[messagesAt]!.rows as Row[]) {
        messages.set(String(r.id), { id: String(r.id), seq: num(r.seq), channel: String(r.channel), orderKey: String(r.order_key), state: String(r.state) as MessageState });
      }
      for (const r of answers[messagesAt + 1]!.rows as Row[]) {
        const d = deliveryRowFrom(r);
        if (messages.has(d.messageId)) deliveries.set(d.id, d);
      }
    }
    return { messages, deliveries, dedupe };
  };
  return { statements, snapshot };
}

/** SQLSTATE of {@link duplicateGuard}'s failure (migration 0003). */
export const DUPLICATE_FOUND = 'OS001';

/**
 * For a batch of receives sent in ONE round trip (BEGIN, the dedupe locks, this guard, the writes
 * as if no message were a resend, COMMIT): fails the transaction with {@link DUPLICATE_FOUND}
 * when any probe has a stored original, the condition of the dedupe lookup of
 * {@link snapshotReads}, checked once the locks are held. The store then writes the batch again
 * with the lookup first (two round trips). Resends are rare, so most receive batches take one.
 * Returns the lock and guard statements, or none when the batch has no dedupe probe.
 */
export function duplicateGuard(needs: SnapshotNeeds): Statement[] {
  if (needs.dedupe.size === 0) return [];
  const probes = [...needs.dedupe.values()];
  return [
    dedupeLocks(probes), // as the careful path takes them
    {
      name: 'osprey_duplicate_guard',
      text: `SELECT osprey_duplicate_found()
               FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS p(channel, sender, control_id, since)
              WHERE EXISTS (SELECT 1 FROM messages m WHERE m.channel = p.channel AND m.sender = p.sender AND m.control_id = p.control_id
                                                       AND m.accepted AND m.received_at >= p.since)`,
      values: [probes.map((p) => p.channel), probes.map((p) => p.sender), probes.map((p) => p.controlId), probes.map((p) => Math.trunc(p.since))],
    },
  ];
}

/**
 * The writes of a batch: one multi-row statement per table and kind (`unnest` of one array per
 * column), in the order {@link Writes} requires.
 */
export function writeStatements(w: Writes): Statement[] {
  const out: Statement[] = [];
  if (w.insertMessages.length > 0) {
    const m = w.insertMessages;
    // The raw bytes of every message, one after the other, as one binary parameter ($24); row i
    // takes its slice (substring is 1-based).
    const rawFrom: number[] = [];
    let at = 1;
    for (const r of m) {
      rawFrom.push(at);
      at += r.raw.length;
    }
    // WITH ORDINALITY … ORDER BY: seq follows the order of the batch, which is arrival order.
    out.push({
      name: 'osprey_insert_messages',
      text: `INSERT INTO messages (id, channel, received_at, raw, encoding, source, control_id, sender, message_type, patient_id, visit_id, facility, order_key, state, accepted, error_code, error_detail, updated_at,
                                   exception_category, exception, filter_reason, canonical, format, lineage, file_hash, record_index)
             SELECT id, channel, received_at, substring($28::bytea FROM raw_from FOR raw_length), encoding, source, control_id, sender, message_type, patient_id, visit_id, facility, order_key, state, accepted, error_code, error_detail, updated_at,
                    exception_category, exception::json, filter_reason, canonical::json, format, lineage::json, file_hash, record_index
               FROM unnest($1::text[], $2::text[], $3::bigint[], $4::integer[], $5::integer[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::boolean[], $17::text[], $18::text[], $19::bigint[],
                           $20::text[], $21::text[], $22::text[], $23::text[], $24::text[], $25::text[], $26::text[], $27::integer[])
                    WITH ORDINALITY AS t(id, channel, received_at, raw_from, raw_length, encoding, source, control_id, sender, message_type, patient_id, visit_id, facility, order_key, state, accepted, error_code, error_detail, updated_at,
                                         exception_category, exception, filter_reason, canonical, format, lineage, file_hash, record_index, ord)
              ORDER BY ord`,
      values: [
        m.map((r) => r.id),
        m.map((r) => r.channel),
        m.map((r) => r.receivedAt),
        rawFrom,
        m.map((r) => r.raw.length),
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
        m.map((r) => text(r.exceptionCategory)),
        m.map((r) => r.exceptionJson),
        m.map((r) => text(r.filterReason)),
        m.map((r) => r.canonicalJson),
        m.map((r) => r.format),
        m.map((r) => r.lineageJson),
        m.map((r) => r.fileHash),
        m.map((r) => r.recordIndex),
        // pg sends a Buffer as a binary parameter: the bytes as they are.
        Buffer.concat(m.map((r) => r.raw)),
      ],
    });
  }
  const updates = [...w.updateMessages.values()];
  const full = updates.filter((u) => u.fields);
  const stateOnly = updates.filter((u) => !u.fields);
  if (full.length > 0) {
    out.push({
      name: 'osprey_update_messages',
      text: `UPDATE messages AS m SET state = u.state, error_code = u.error_code, error_detail = u.error_detail, exception_category = u.exception_category,
                    exception = u.exception::json, filter_reason = u.filter_reason, canonical = u.canonical::json, updated_at = u.updated_at
               FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[])
                    AS u(id, state, error_code, error_detail, exception_category, exception, filter_reason, canonical, updated_at)
              WHERE m.id = u.id`,
      values: [
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
    });
  }
  if (stateOnly.length > 0) {
    out.push({
      name: 'osprey_update_message_states',
      text: `UPDATE messages AS m SET state = u.state, updated_at = u.updated_at
               FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u(id, state, updated_at) WHERE m.id = u.id`,
      values: [stateOnly.map((u) => u.id), stateOnly.map((u) => u.state), stateOnly.map((u) => u.updatedAt)],
    });
  }
  if (w.deleteDeliveries.size > 0) {
    // A delivery goes with its attempts (no foreign key cascades them: migration 0002).
    out.push({ name: 'osprey_delete_attempts', text: 'DELETE FROM attempts WHERE delivery_id = ANY($1::text[])', values: [[...w.deleteDeliveries]] });
    out.push({ name: 'osprey_delete_deliveries', text: 'DELETE FROM deliveries WHERE id = ANY($1::text[])', values: [[...w.deleteDeliveries]] });
  }
  if (w.insertDeliveries.size > 0) {
    const d = [...w.insertDeliveries.values()];
    out.push({
      name: 'osprey_insert_deliveries',
      text: `INSERT INTO deliveries (id, message_id, seq, channel, destination, output_index, order_key, payload, state, attempts, next_attempt_at, last_error_code, last_error_detail, updated_at)
             SELECT id, message_id, COALESCE(seq, (SELECT m.seq FROM messages m WHERE m.id = t.message_id)), channel, destination, output_index, order_key, payload::json, state, attempts,
                    next_attempt_at, last_error_code, last_error_detail, updated_at
               FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::integer[], $7::text[], $8::text[], $9::text[], $10::integer[], $11::bigint[], $12::text[], $13::text[], $14::bigint[])
                    AS t(id, message_id, seq, channel, destination, output_index, order_key, payload, state, attempts, next_attempt_at, last_error_code, last_error_detail, updated_at)`,
      values: [
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
    });
  }
  if (w.updateDeliveries.size > 0) {
    const d = [...w.updateDeliveries.values()];
    out.push({
      name: 'osprey_update_deliveries',
      text: `UPDATE deliveries AS d SET state = u.state, attempts = u.attempts, next_attempt_at = u.next_attempt_at, last_error_code = u.last_error_code,
                    last_error_detail = u.last_error_detail, updated_at = u.updated_at
               FROM unnest($1::text[], $2::text[], $3::integer[], $4::bigint[], $5::text[], $6::text[], $7::bigint[])
                    AS u(id, state, attempts, next_attempt_at, last_error_code, last_error_detail, updated_at)
              WHERE d.id = u.id`,
      values: [
        d.map((r) => r.id),
        d.map((r) => r.state),
        d.map((r) => r.attempts),
        d.map((r) => r.nextAttemptAt),
        d.map((r) => r.lastErrorCode),
        d.map((r) => text(r.lastErrorDetail)),
        d.map((r) => r.updatedAt),
      ],
    });
  }
  if (w.insertBatchAttempts.length > 0) {
    const b = w.insertBatchAttempts;
    out.push({
      name: 'osprey_insert_batch_attempts',
      text: `INSERT INTO batch_attempts (id, batch_key, size, started_at, duration_ms, request, response_status, response_body, error_code, error_detail, outcome, next_attempt_at)
             SELECT id, batch_key, size, started_at, duration_ms, request::json, response_status, response_body, error_code, error_detail, outcome, next_attempt_at
               FROM unnest($1::text[], $2::text[], $3::integer[], $4::bigint[], $5::float8[], $6::text[], $7::integer[], $8::text[], $9::text[], $10::text[], $11::text[], $12::bigint[])
                    AS t(id, batch_key, size, started_at, duration_ms, request, response_status, response_body, error_code, error_detail, outcome, next_attempt_at)`,
      values: [
        b.map((r) => r.id),
        b.map((r) => r.batchKey),
        b.map((r) => r.size),
        b.map((r) => r.startedAt),
        b.map((r) => r.durationMs),
        b.map((r) => r.requestJson),
        b.map((r) => r.responseStatus),
        b.map((r) => text(r.responseBody)),
        b.map((r) => r.errorCode),
        b.map((r) => text(r.errorDetail)),
        b.map((r) => r.outcome),
        b.map((r) => r.nextAttemptAt),
      ],
    });
  }
  if (w.insertAttempts.length > 0) {
    const a = w.insertAttempts;
    out.push({
      name: 'osprey_insert_attempts',
      text: `INSERT INTO attempts (delivery_id, n, started_at, duration_ms, request, response_status, response_body, error_code, error_detail, outcome, next_attempt_at, batch_attempt_id)
             SELECT delivery_id, n, started_at, duration_ms, request::json, response_status, response_body, error_code, error_detail, outcome, next_attempt_at, batch_attempt_id
               FROM unnest($1::text[], $2::integer[], $3::bigint[], $4::float8[], $5::text[], $6::integer[], $7::text[], $8::text[], $9::text[], $10::text[], $11::bigint[], $12::text[])
                    WITH ORDINALITY AS t(delivery_id, n, started_at, duration_ms, request, response_status, response_body, error_code, error_detail, outcome, next_attempt_at, batch_attempt_id, ord)
              ORDER BY ord`,
      values: [
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
        a.map((r) => r.batchAttemptId),
      ],
    });
  }
  if (w.insertEvents.length > 0) {
    const e = w.insertEvents;
    out.push({
      name: 'osprey_insert_events',
      text: `INSERT INTO events (message_id, at, event, destination, detail)
             SELECT message_id, at, event, destination, detail
               FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS t(message_id, at, event, destination, detail, ord)
              ORDER BY ord`,
      values: [e.map((r) => r.messageId), e.map((r) => r.at), e.map((r) => r.event), e.map((r) => text(r.destination)), e.map((r) => text(r.detail))],
    });
  }
  return out;
}
