// SPDX-License-Identifier: Apache-2.0
/**
 * What the SQLite and PostgreSQL file ledgers share: the SQL (with the driver's placeholders), the
 * mapping of a row to an {@link InboundFile}, and the checks of what a caller hands in. The ledger
 * is the `inbound_files` table (migrations sqlite 0004 / postgres 0007); a file's progress is not
 * kept there but counted from `messages`, whose rows commit with the records themselves (the
 * per-record checkpoint, see engine/adapter-sdk/file-source-services.ts).
 *
 * @see docs/design/0013-file-sources.md
 */
import {
  InboundFileState,
  type InboundFile,
  type InboundFileUpdate,
  type NewInboundFile,
} from '../adapter-sdk/file-source-services.ts';
import { MessageState } from './message-store.ts';
import { num, type Row } from './store-rows.ts';

/** Files {@link FileLedger.list} answers by default, and at most. */
export const DEFAULT_FILES = 50;
export const MAX_FILES = 1000;

const COLUMNS =
  'f.id, f.channel, f.name, f.path, f.content_hash, f.size, f.mtime_ms, f.version, f.state, f.records_total, f.error_code, f.error_detail, f.moved_to, f.picked_at, f.finished_at';

const ERRORED = `'${MessageState.ERROR}', '${MessageState.BUSINESS_EXCEPTION}'`;

/**
 * The columns of an {@link InboundFile} with its counts read from `messages` (the records of the
 * file's bytes on its channel, through the index on channel, file_hash, record_index). A DUPLICATE
 * pickup stored nothing of its own: the records with its hash are the original pickup's, so it
 * counts none.
 */
const SELECT_FILES = `SELECT ${COLUMNS},
  CASE WHEN f.state = '${InboundFileState.DUPLICATE}' THEN 0 ELSE
    (SELECT count(*) FROM messages m WHERE m.channel = f.channel AND m.file_hash = f.content_hash AND m.record_index IS NOT NULL) END AS records_done,
  CASE WHEN f.state = '${InboundFileState.DUPLICATE}' THEN 0 ELSE
    (SELECT count(*) FROM messages m WHERE m.channel = f.channel AND m.file_hash = f.content_hash AND m.record_index IS NOT NULL AND m.state IN (${ERRORED})) END AS records_errored
  FROM inbound_files f`;

/** The ledger's statements, with `p(n)` writing the n-th (1-based) placeholder (`?` or `$n`). */
export function fileLedgerSql(p: (n: number) => string) {
  return {
    byId: `${SELECT_FILES} WHERE f.id = ${p(1)}`,
    exists: `SELECT 1 AS one FROM inbound_files WHERE id = ${p(1)}`,
    findByHash: `${SELECT_FILES} WHERE f.channel = ${p(1)} AND f.content_hash = ${p(2)} ORDER BY f.seq DESC LIMIT 1`,
    unfinished: `${SELECT_FILES} WHERE f.channel = ${p(1)} AND f.state = '${InboundFileState.PROCESSING}' ORDER BY f.seq`,
    storedRecords: `SELECT record_index FROM messages WHERE channel = ${p(1)} AND file_hash = ${p(2)} AND record_index IS NOT NULL`,
    /** The version an earlier pickup of the same name and bytes was given (a re-drop keeps it). */
    sameContentVersion: `SELECT version FROM inbound_files WHERE channel = ${p(1)} AND name = ${p(2)} AND content_hash = ${p(3)} ORDER BY seq DESC LIMIT 1`,
    nextVersion: `SELECT COALESCE(MAX(version), 0) + 1 AS version FROM inbound_files WHERE channel = ${p(1)} AND name = ${p(2)}`,
    insert: `INSERT INTO inbound_files (id, channel, name, path, content_hash, size, mtime_ms, version, state, picked_at)
             VALUES (${[1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map(p).join(', ')})`,
  };
}

/** `list`'s query: newest first, filtered by channel and state. */
export function listFilesSql(query: { channel?: string; state?: InboundFileState; limit?: number }, p: (n: number) => string): { sql: string; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  if (query.channel !== undefined) {
    params.push(query.channel);
    where.push(`f.channel = ${p(params.length)}`);
  }
  if (query.state !== undefined) {
    params.push(checkState(query.state));
    where.push(`f.state = ${p(params.length)}`);
  }
  const limit = query.limit ?? DEFAULT_FILES;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_FILES) throw new RangeError(`limit must be an integer from 1 to ${MAX_FILES}`);
  params.push(limit);
  const filter = where.length > 0 ? ` WHERE ${where.join(' AND ')}` : '';
  return { sql: `${SELECT_FILES}${filter} ORDER BY f.seq DESC LIMIT ${p(params.length)}`, params };
}

/**
 * `update`'s statement: only the fields given are set; `error` sets both its columns.
 * Undefined when the update sets nothing.
 */
export function updateFileSql(id: string, update: InboundFileUpdate, p: (n: number) => string): { sql: string; params: unknown[] } | undefined {
  const set: string[] = [];
  const params: unknown[] = [];
  const put = (column: string, value: unknown): void => {
    params.push(value);
    set.push(`${column} = ${p(params.length)}`);
  };
  if (update.state !== undefined) put('state', checkState(update.state));
  if (update.recordsTotal !== undefined) put('records_total', checkCount('recordsTotal', update.recordsTotal));
  if (update.error !== undefined) {
    put('error_code', String(update.error.code));
    put('error_detail', String(update.error.detail));
  }
  if (update.movedTo !== undefined) put('moved_to', update.movedTo);
  if (update.finishedAt !== undefined) put('finished_at', checkCount('finishedAt', update.finishedAt));
  if (set.length === 0) return undefined;
  params.push(id);
  return { sql: `UPDATE inbound_files SET ${set.join(', ')} WHERE id = ${p(params.length)}`, params };
}

/** The row of a new pickup, checked: the parameters of `insert` after `id`… in its order. */
export function newFileParams(id: string, file: NewInboundFile, version: number, pickedAt: number): unknown[] {
  if (file.state !== InboundFileState.PROCESSING && file.state !== InboundFileState.DUPLICATE) {
    throw new TypeError(`a pickup begins PROCESSING or DUPLICATE, not ${String(file.state)}`);
  }
  for (const [field, value] of Object.entries({ channel: file.channel, name: file.name, path: file.path, contentHash: file.contentHash })) {
    if (typeof value !== 'string' || value === '') throw new TypeError(`an inbound file needs a ${field}`);
  }
  return [id, file.channel, file.name, file.path, file.contentHash, checkCount('size', file.size), checkCount('mtimeMs', Math.trunc(file.mtimeMs)), version, file.state, pickedAt];
}

export function fileFromRow(r: Row): InboundFile {
  const file: InboundFile = {
    id: String(r.id),
    channel: String(r.channel),
    name: String(r.name),
    path: String(r.path),
    contentHash: String(r.content_hash),
    size: num(r.size),
    mtimeMs: num(r.mtime_ms),
    version: num(r.version),
    state: String(r.state) as InboundFileState,
    recordsDone: num(r.records_done),
    recordsErrored: num(r.records_errored),
    pickedAt: num(r.picked_at),
  };
  if (r.records_total !== null && r.records_total !== undefined) file.recordsTotal = num(r.records_total);
  if (r.error_code !== null && r.error_code !== undefined) file.error = { code: String(r.error_code), detail: String(r.error_detail ?? '') };
  if (r.moved_to !== null && r.moved_to !== undefined) file.movedTo = String(r.moved_to);
  if (r.finished_at !== null && r.finished_at !== undefined) file.finishedAt = num(r.finished_at);
  return file;
}

function checkState(state: unknown): InboundFileState {
  if (typeof state !== 'string' || !Object.hasOwn(InboundFileState, state)) throw new TypeError(`state must be one of ${Object.keys(InboundFileState).join(', ')}`);
  return state as InboundFileState;
}

function checkCount(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new TypeError(`${field} must be a non-negative integer`);
  return value;
}
