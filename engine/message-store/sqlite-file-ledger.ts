// SPDX-License-Identifier: Apache-2.0
/**
 * The SQLite {@link FileLedger}: the `inbound_files` table of the store's file, on a connection of
 * its own on the main thread.
 *
 * Why not through the group-committed writer (sqlite-writer.ts): ledger writes are rare (a few per
 * file: begin, records total, done or quarantined), while the writer's batches carry the unit of
 * work that PostgreSQL shares (unit-of-work.ts); a new kind of op there would touch both stores and
 * the writer thread's protocol for a handful of statements per file. The cost of a connection of its
 * own: a ledger write takes SQLite's write lock in turn with the writer thread, so it may wait (up
 * to `busy_timeout`, blocking the event loop meanwhile) for the batch being committed (a few ms),
 * and its own commit's fsync runs on the event loop. A few times per file, that is noise next to the
 * records' own writes; thousands per second would not be.
 *
 * Reads see every record whose `receive` has resolved (WAL: a committed write is visible to every
 * connection), so {@link SqliteFileLedger.storedRecords} is the checkpoint the poller resumes from.
 */
import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import type { FileLedger, InboundFile, InboundFileState, InboundFileUpdate, NewInboundFile } from '../adapter-sdk/file-source-services.ts';
import { OspreyError } from '../errors/error-codes.ts';
import { fileFromRow, fileLedgerSql, listFilesSql, newFileParams, updateFileSql } from './file-ledger.ts';
import { configureConnection, type SqliteWriterOptions } from './sqlite-writer.ts';
import { num, type Row } from './store-rows.ts';

type Db = Database.Database;

const SQL = fileLedgerSql(() => '?');

export class SqliteFileLedger implements FileLedger {
  #db: Db | undefined;
  #s: ReturnType<typeof prepare> | undefined;

  /** Opens the ledger's connection; the store's writer has created the file and applied the migrations. */
  open(options: SqliteWriterOptions): void {
    if (this.#db) return;
    const db = new Database(options.path, { fileMustExist: true });
    try {
      configureConnection(db, options);
      this.#s = prepare(db);
    } catch (err) {
      db.close();
      throw err;
    }
    this.#db = db;
  }

  close(): void {
    this.#db?.close();
    this.#db = undefined;
    this.#s = undefined;
  }

  async findByHash(channel: string, contentHash: string): Promise<InboundFile | undefined> {
    const r = this.#stmts().findByHash.get(channel, contentHash) as Row | undefined;
    return r ? fileFromRow(r) : undefined;
  }

  async unfinished(channel: string): Promise<InboundFile[]> {
    return (this.#stmts().unfinished.all(channel) as Row[]).map(fileFromRow);
  }

  async begin(file: NewInboundFile): Promise<InboundFile> {
    const s = this.#stmts();
    const id = randomUUID();
    // IMMEDIATE: the version is read and written under the write lock, so two pickups of one name
    // (two processes on one file, which the embedded mode does not do) cannot get the same one.
    const row = this.#write(() => this.#db!.transaction(() => {
      const same = s.sameContentVersion.get(file.channel, file.name, file.contentHash) as Row | undefined;
      const version = same ? num(same.version) : num((s.nextVersion.get(file.channel, file.name) as Row).version);
      s.insert.run(...newFileParams(id, file, version, Date.now()));
      return s.byId.get(id) as Row;
    }).immediate());
    return fileFromRow(row);
  }

  async update(id: string, update: InboundFileUpdate): Promise<void> {
    const s = this.#stmts();
    const statement = updateFileSql(id, update, () => '?');
    const changes = statement ? this.#write(() => this.#db!.prepare(statement.sql).run(...statement.params).changes) : s.exists.all(id).length;
    if (changes === 0) throw new OspreyError('OSPREY_ERR_STORE_NOT_FOUND', `no inbound file ${id}`);
  }

  async storedRecords(channel: string, contentHash: string): Promise<Set<number>> {
    return new Set((this.#stmts().storedRecords.raw().all(channel, contentHash) as unknown[][]).map((r) => num(r[0])));
  }

  async list(query: { channel?: string; state?: InboundFileState; limit?: number }): Promise<InboundFile[]> {
    this.#stmts();
    const { sql, params } = listFilesSql(query, () => '?');
    return (this.#db!.prepare(sql).all(...params) as Row[]).map(fileFromRow);
  }

  /** A write the database refused (busy past the timeout, disk full) as a transient store error. */
  #write<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof Database.SqliteError) throw new OspreyError('OSPREY_ERR_STORE_UNAVAILABLE', 'the file ledger could not commit', { cause: err });
      throw err;
    }
  }

  #stmts(): ReturnType<typeof prepare> {
    if (!this.#s) throw new OspreyError('OSPREY_ERR_STORE_UNAVAILABLE', 'the message store is not open');
    return this.#s;
  }
}

function prepare(db: Db) {
  return {
    byId: db.prepare(SQL.byId),
    exists: db.prepare(SQL.exists),
    findByHash: db.prepare(SQL.findByHash),
    unfinished: db.prepare(SQL.unfinished),
    storedRecords: db.prepare(SQL.storedRecords),
    sameContentVersion: db.prepare(SQL.sameContentVersion),
    nextVersion: db.prepare(SQL.nextVersion),
    insert: db.prepare(SQL.insert),
  };
}
