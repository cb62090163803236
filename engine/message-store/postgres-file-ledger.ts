// SPDX-License-Identifier: Apache-2.0
/**
 * The PostgreSQL {@link FileLedger}: the `inbound_files` table of the store's schema, through the
 * store's read pool (ledger writes are a few per file; they need no group commit). Several engine
 * instances share it; only the instance holding the channel's lease (single-active.ts) writes a
 * channel's files, and `begin` still numbers versions under a transaction-scoped advisory lock on
 * the channel and name, so that two writers could not give two contents the same version.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { FileLedger, InboundFile, InboundFileState, InboundFileUpdate, NewInboundFile } from '../adapter-sdk/file-source-services.ts';
import { OspreyError } from '../errors/error-codes.ts';
import { fileFromRow, fileLedgerSql, listFilesSql, newFileParams, updateFileSql } from './file-ledger.ts';
import { unreachableAsUnavailable } from './postgres-store.ts';
import { num, type Row } from './store-rows.ts';

const SQL = fileLedgerSql((n) => `$${n}`);

export class PostgresFileLedger implements FileLedger {
  /**
   * @param pool the store's read pool (search_path set to its schema); throws when the store is not open
   * @param schema names the version lock, so that stores in other schemas of the database never wait on it
   */
  constructor(
    private readonly pool: () => pg.Pool,
    private readonly schema: string,
  ) {}

  async findByHash(channel: string, contentHash: string): Promise<InboundFile | undefined> {
    const [r] = await this.#query(SQL.findByHash, [channel, contentHash]);
    return r ? fileFromRow(r) : undefined;
  }

  async unfinished(channel: string): Promise<InboundFile[]> {
    return (await this.#query(SQL.unfinished, [channel])).map(fileFromRow);
  }

  async begin(file: NewInboundFile): Promise<InboundFile> {
    const id = randomUUID();
    const params = newFileParams(id, file, 0, Date.now()); // checked before a connection is taken
    const client = await this.pool()
      .connect()
      .catch((err: unknown) => {
        throw unreachableAsUnavailable(err);
      });
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`osprey.file-ledger.version:${this.schema}:${file.channel}/${file.name}`]);
      const same = (await client.query(SQL.sameContentVersion, [file.channel, file.name, file.contentHash])).rows[0] as Row | undefined;
      const version = same ? num(same.version) : num(((await client.query(SQL.nextVersion, [file.channel, file.name])).rows[0] as Row).version);
      params[7] = version;
      await client.query(SQL.insert, params);
      const row = (await client.query(SQL.byId, [id])).rows[0] as Row;
      await client.query('COMMIT');
      return fileFromRow(row);
    } catch (err) {
      await client.query('ROLLBACK').catch((e: Error) => (broken = e));
      throw unreachableAsUnavailable(err);
    } finally {
      client.release(broken);
    }
  }

  async update(id: string, update: InboundFileUpdate): Promise<void> {
    const statement = updateFileSql(id, update, (n) => `$${n}`);
    const found = statement ? (await this.#run(statement.sql, statement.params)).rowCount : (await this.#query(SQL.exists, [id])).length;
    if (!found) throw new OspreyError('OSPREY_ERR_STORE_NOT_FOUND', `no inbound file ${id}`);
  }

  async storedRecords(channel: string, contentHash: string): Promise<Set<number>> {
    return new Set((await this.#query(SQL.storedRecords, [channel, contentHash])).map((r) => num(r.record_index)));
  }

  async list(query: { channel?: string; state?: InboundFileState; limit?: number }): Promise<InboundFile[]> {
    const { sql, params } = listFilesSql(query, (n) => `$${n}`);
    return (await this.#query(sql, params)).map(fileFromRow);
  }

  async #query(sql: string, params: unknown[]): Promise<Row[]> {
    return (await this.#run(sql, params)).rows;
  }

  async #run(sql: string, params: unknown[]): Promise<{ rows: Row[]; rowCount: number | null }> {
    try {
      return await this.pool().query(sql, params);
    } catch (err) {
      throw unreachableAsUnavailable(err);
    }
  }
}
