// SPDX-License-Identifier: Apache-2.0
/**
 * The SFTP batch poller: takes complete files from an inbox on an SFTP server, checks each whole,
 * hands the engine one message per record, and archives the file once every record is stored.
 *
 * One file, step by step (docs/design/0013-file-sources.md):
 * 1. Download to a local copy, hashing the bytes as they arrive (SHA-256: the file's identity).
 * 2. The same bytes taken before (a re-drop): recorded as DUPLICATE, archived, not processed again.
 * 3. Structural check of the copy (X12 envelopes, HL7 BTS/FTS counts, a CSV trailer): a file that
 *    fails is moved to the error directory with a `.reason` file beside it, and nothing of it is stored.
 * 4. Records streamed from the copy; each is stored as a message carrying its lineage (file, hash,
 *    record index) in the same commit: that row is the per-record checkpoint. Records already
 *    stored (a crash mid-file, a lost lease) are skipped, so a file resumes at the next record and
 *    no record is stored twice; duplicates by business identity (835: payer + TRN02 + CLP01) are
 *    recognised by ingest's de-duplication.
 * 5. Archived under a dated folder (or deleted), the marker file removed, the ledger row DONE.
 *
 * One engine instance polls a channel's inbox at a time: the poller works only while it holds the
 * channel's lease (PostgreSQL advisory lock in production; one per process embedded). A connection
 * that fails is opened again with exponential backoff; a file whose download or processing is cut
 * short stays in the inbox (and PROCESSING in the ledger) and is taken again.
 *
 * Logs name files, counts and error codes, never record content.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  FILE_LEDGER,
  SINGLE_ACTIVE,
  type AdapterLogger,
  type FileLedger,
  type InboundAdapter,
  type InboundFile,
  type InboundHandler,
  type InboundMessage,
  type Lease,
  type SingleActive,
  type SourceDeps,
  type StoredError,
} from '../../../engine/adapter-sdk/index.ts';
import { isOspreyError, OspreyError } from '../../../engine/errors/error-codes.ts';
import { messageFormat } from '../../../engine/message-formats/index.ts';
import { connectSftp, type SftpConnection } from '../../shared/sftp/sftp-connection.ts';
import { fileRecordReader, type FileRecord, type FileRecordReader } from './file-records.ts';
import { pickReadyFiles, type ListedFile } from './file-pickup.ts';
import type { SftpBatchPollerConfig } from './sftp-batch-poller.config.ts';

/** What the poller is doing, for the API. */
export type PollerState = 'starting' | 'standby' | 'connecting' | 'polling' | 'processing' | 'reconnecting' | 'stopped';

/** Timers the poller waits on; tests may inject their own. */
export interface PollerSeams {
  connect?: (config: SftpBatchPollerConfig) => Promise<SftpConnection>;
  now?: () => number;
}

/** A file cut short by something that is not the file's fault: it is taken again later. */
class Interrupted extends Error {}

const PROGRESS_EVERY_MS = 10_000;
/** How often an instance without the channel's lease tries to take it. */
const STANDBY_RETRY_MS = 5_000;
/** How long stop() waits for the poll loop to end. */
const STOP_WAIT_MS = 10_000;

export class SftpBatchPoller implements InboundAdapter {
  state: PollerState = 'starting';
  lastError?: StoredError;
  lastPollAt?: number;
  readonly #config: SftpBatchPollerConfig;
  readonly #channel: string;
  readonly #logger: AdapterLogger;
  readonly #ledger: FileLedger;
  readonly #lease?: SingleActive;
  readonly #reader: FileRecordReader;
  readonly #seams: Required<PollerSeams>;
  #handler?: InboundHandler;
  #loop?: Promise<void>;
  #stopping = false;
  #wake?: () => void;
  #connection?: SftpConnection;
  #previous = new Map<string, { size: number; mtimeMs: number }>();

  constructor(config: SftpBatchPollerConfig, deps: SourceDeps, seams: PollerSeams = {}) {
    this.#config = config;
    this.#channel = deps.channel;
    this.#logger = deps.logger;
    const ledger = deps.services[FILE_LEDGER] as FileLedger | undefined;
    if (!ledger) throw new OspreyError('OSPREY_ERR_CONFIG_INVALID', 'the SFTP batch poller needs the engine’s file ledger');
    this.#ledger = ledger;
    this.#lease = deps.services[SINGLE_ACTIVE] as SingleActive | undefined;
    this.#reader = fileRecordReader(config);
    this.#seams = {
      connect: seams.connect ?? connectSftp,
      now: seams.now ?? Date.now,
    };
  }

  async start(handler: InboundHandler): Promise<void> {
    if (this.#loop) return;
    this.#handler = handler;
    this.#stopping = false;
    this.#loop = this.#run().catch((err: unknown) => {
      // Only a bug here lands in this catch: every expected failure is handled inside the loop.
      this.#logger.error('sftp poller stopped by an unexpected error', { code: isOspreyError(err) ? err.code : 'OSPREY_ERR_SFTP_FAILURE', error: (err as Error).message });
      this.state = 'stopped';
    });
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#wake?.();
    await this.#connection?.end();
    // The loop ends at its next step (a record, a poll, a wait); one blocked on a remote operation
    // is not waited for past STOP_WAIT_MS: a file cut short is taken again at the next start.
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), STOP_WAIT_MS);
      timer.unref?.();
    });
    const ended = await Promise.race([this.#loop?.then(() => 'ended' as const) ?? Promise.resolve('ended' as const), late]);
    clearTimeout(timer);
    if (ended === 'late') this.#logger.warn('sftp poller did not stop in time; left to end on its own', { channel: this.#channel, state: this.state });
    this.#loop = undefined;
    this.state = 'stopped';
  }

  address(): undefined {
    return undefined;
  }

  /** Waits `ms`, or less when stop() is called. */
  #sleep(ms: number): Promise<void> {
    if (this.#stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref?.();
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }

  async #run(): Promise<void> {
    let backoff = this.#config.reconnect.initialMs;
    while (!this.#stopping) {
      const lease = await this.#acquire();
      if (!lease) {
        // Another instance polls; try again soon, so that a takeover after it dies does not wait a
        // whole poll interval (30 s by default).
        this.state = 'standby';
        await this.#sleep(Math.min(this.#config.pollIntervalMs, STANDBY_RETRY_MS));
        continue;
      }
      let lost = false;
      void lease.lost.then(() => {
        lost = true;
        this.#logger.warn('sftp poller lost its lease (store connection); another instance may take over', { channel: this.#channel });
        this.#wake?.();
      });
      try {
        while (!this.#stopping && !lost) {
          try {
            await this.#ensureConnected();
            backoff = this.#config.reconnect.initialMs;
            await this.#poll(() => lost);
            this.lastError = undefined;
          } catch (err) {
            await this.#dropConnection();
            const error = toStoredError(err);
            this.lastError = error;
            if (this.#stopping || lost) break;
            this.state = 'reconnecting';
            this.#logger.warn('sftp poll failed; trying again', { channel: this.#channel, code: error.code, error: error.detail, retryInMs: backoff });
            await this.#sleep(backoff);
            backoff = Math.min(backoff * 2, this.#config.reconnect.maxMs);
            continue;
          }
          this.state = 'polling';
          await this.#sleep(this.#config.pollIntervalMs);
        }
      } finally {
        await this.#dropConnection();
        await lease.release().catch(() => undefined);
      }
    }
  }

  async #acquire(): Promise<Lease | undefined> {
    if (!this.#lease) return { lost: new Promise(() => undefined), release: async () => undefined };
    try {
      return await this.#lease.tryAcquire(`sftp-batch-poller:${this.#channel}`);
    } catch (err) {
      this.lastError = toStoredError(err);
      return undefined;
    }
  }

  async #ensureConnected(): Promise<SftpConnection> {
    if (this.#connection && !this.#connection.closed) return this.#connection;
    this.state = 'connecting';
    this.#connection = await this.#seams.connect(this.#config);
    this.#logger.info('sftp connected', { channel: this.#channel, endpoint: this.#connection.endpoint });
    return this.#connection;
  }

  async #dropConnection(): Promise<void> {
    const connection = this.#connection;
    this.#connection = undefined;
    await connection?.end();
  }

  /** One poll: files left unfinished first (a crash, a lost lease), then the inbox's complete files. */
  async #poll(isLost: () => boolean): Promise<void> {
    const connection = await this.#ensureConnected();
    this.state = 'polling';
    this.lastPollAt = this.#seams.now();
    for (const file of await this.#ledger.unfinished(this.#channel)) {
      if (this.#stopping || isLost()) return;
      await this.#resume(connection, file, isLost);
    }
    const listing: ListedFile[] = (await connection.list(this.#config.directory)).filter((e) => e.type === 'file');
    const decision = pickReadyFiles(listing, { globs: this.#config.globs, ...this.#config.pickup }, this.#seams.now(), this.#previous);
    this.#previous = decision.seen;
    const batch = decision.ready.slice(0, this.#config.filesAtOnce);
    // Every file of the batch ends (done, quarantined or interrupted) before a failure is reported:
    // the connection is dropped on a failure, and must not be pulled from under a file still going.
    const results = await Promise.allSettled(batch.map((file) => this.#take(connection, file, decision.markers.get(file.name), isLost)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** A file the ledger shows PROCESSING: downloaded again and resumed after its stored records. */
  async #resume(connection: SftpConnection, file: InboundFile, isLost: () => boolean): Promise<void> {
    if (!(await connection.exists(file.path))) {
      await this.#ledger.update(file.id, { state: 'QUARANTINED', error: { code: 'OSPREY_ERR_SFTP_FILE_GONE', detail: `${file.name} left the inbox before it was finished; its ${file.recordsDone} stored record(s) stand` }, finishedAt: this.#seams.now() });
      this.#logger.warn('sftp file to resume is gone from the inbox', { channel: this.#channel, file: file.name, code: 'OSPREY_ERR_SFTP_FILE_GONE' });
      return;
    }
    const entry = await connection.stat(file.path);
    await this.#take(connection, { name: file.name, size: entry.size, mtimeMs: entry.mtimeMs }, undefined, isLost, file);
  }

  /** Downloads, checks and processes one file; a failure that is not the file's leaves it for later. */
  async #take(connection: SftpConnection, listed: ListedFile, marker: string | undefined, isLost: () => boolean, resuming?: InboundFile): Promise<void> {
    const path = posix.join(this.#config.directory, listed.name);
    const dir = await mkdtemp(join(tmpdir(), 'osprey-sftp-'));
    const local = join(dir, 'file');
    try {
      const contentHash = await download(connection, path, local);
      const open = (): Readable => createReadStream(local);
      let file = resuming;
      if (file && file.contentHash !== contentHash) {
        // Replaced on the server mid-way: what was stored stands; the new content is a new version.
        await this.#ledger.update(file.id, { state: 'QUARANTINED', error: { code: 'OSPREY_ERR_SFTP_FILE_CHANGED', detail: `${file.name} was replaced before it was finished; its ${file.recordsDone} stored record(s) stand, the new content is taken as a new version` }, finishedAt: this.#seams.now() });
        file = undefined;
      }
      if (!file) {
        const known = await this.#ledger.findByHash(this.#channel, contentHash);
        if (known && (known.state === 'DONE' || known.state === 'DUPLICATE')) {
          const dup = await this.#ledger.begin({ channel: this.#channel, name: listed.name, path, contentHash, size: listed.size, mtimeMs: listed.mtimeMs, state: 'DUPLICATE' });
          const movedTo = await this.#finish(connection, path, listed.name, marker);
          await this.#ledger.update(dup.id, { ...(movedTo ? { movedTo } : {}), finishedAt: this.#seams.now() });
          this.#logger.info('sftp file already processed (same content): not processed again', { channel: this.#channel, file: listed.name, firstTaken: known.id });
          return;
        }
        file = known?.state === 'PROCESSING' ? known : await this.#ledger.begin({ channel: this.#channel, name: listed.name, path, contentHash, size: listed.size, mtimeMs: listed.mtimeMs, state: 'PROCESSING' });
      }

      this.state = 'processing';
      const check = await this.#reader.check(open);
      if (!check.ok) {
        await this.#quarantine(connection, file, path, marker, { code: check.code, detail: check.detail });
        return;
      }
      await this.#ledger.update(file.id, { recordsTotal: check.records });
      this.#logger.info('sftp file taken', { channel: this.#channel, file: listed.name, version: file.version, records: check.records, resumed: Boolean(resuming) });
      const done = await this.#records(file, open, check.records, isLost);
      const movedTo = await this.#finish(connection, path, listed.name, marker);
      await this.#ledger.update(file.id, { state: 'DONE', ...(movedTo ? { movedTo } : {}), finishedAt: this.#seams.now() });
      this.#logger.info('sftp file done', { channel: this.#channel, file: listed.name, records: check.records, storedNow: done, ...(movedTo ? { movedTo } : {}) });
    } catch (err) {
      if (err instanceof Interrupted) {
        this.#logger.info('sftp file interrupted; it is taken again at the next record', { channel: this.#channel, file: listed.name, reason: err.message });
        return;
      }
      throw err;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /**
   * Hands the file's records not yet stored to the engine, many at a time (the store commits them
   * in groups), in file order. Returns how many it stored now.
   */
  async #records(file: InboundFile, open: () => Readable, total: number, isLost: () => boolean): Promise<number> {
    const stored = await this.#ledger.storedRecords(this.#channel, file.contentHash);
    const handler = this.#handler!;
    const inFlight = new Set<Promise<void>>();
    let failure: StoredError | undefined;
    let count = 0;
    let lastProgress = this.#seams.now();
    const format = messageFormat(this.#reader.format);
    const remote = `sftp://${this.#config.host}:${this.#config.port}${file.path}`;
    for await (const record of this.#reader.records(open)) {
      if (failure) break;
      if (this.#stopping || isLost()) break;
      if (stored.has(record.lineage.recordIndex)) continue;
      const message = toInboundMessage(record, file, format, remote);
      const sent = handler(message).then(
        (outcome) => {
          // Stored (accepted, a duplicate, or an ERROR record of its own) unless there is no id.
          if (outcome.messageId === undefined) failure ??= outcome.error ?? { code: 'OSPREY_ERR_STORE_UNAVAILABLE', detail: 'the record could not be stored' };
          else count++;
        },
        (err: unknown) => {
          failure ??= toStoredError(err);
        },
      );
      const tracked = sent.finally(() => inFlight.delete(tracked));
      inFlight.add(tracked);
      if (inFlight.size >= this.#config.recordsInFlight) await Promise.race(inFlight);
      const now = this.#seams.now();
      if (now - lastProgress >= PROGRESS_EVERY_MS) {
        lastProgress = now;
        this.#logger.info('sftp file progress', { channel: this.#channel, file: file.name, done: stored.size + count, total });
      }
    }
    await Promise.all(inFlight);
    if (failure) throw new Interrupted(`a record could not be stored (${failure.code})`);
    if (this.#stopping) throw new Interrupted('the engine is stopping');
    if (isLost()) throw new Interrupted('the lease was lost');
    return count;
  }

  /** After success: the file to the dated archive (or deleted), its marker deleted. Returns where it went. */
  async #finish(connection: SftpConnection, path: string, name: string, marker: string | undefined): Promise<string | undefined> {
    let movedTo: string | undefined;
    if (this.#config.afterSuccess.action === 'delete') await connection.delete(path, { missingOk: true });
    else {
      const day = new Date(this.#seams.now()).toISOString().slice(0, 10);
      movedTo = await moveAside(connection, path, posix.join(this.#config.afterSuccess.directory, day), name);
    }
    if (marker) await connection.delete(posix.join(this.#config.directory, marker), { missingOk: true });
    return movedTo;
  }

  /** A file that failed its check: to the error directory with `<name>.reason`, nothing of it stored. */
  async #quarantine(connection: SftpConnection, file: InboundFile, path: string, marker: string | undefined, error: StoredError): Promise<void> {
    const movedTo = await moveAside(connection, path, this.#config.errorDirectory, file.name);
    const reason = [`file: ${file.name}`, `sha256: ${file.contentHash}`, `code: ${error.code}`, `reason: ${error.detail}`, `at: ${new Date(this.#seams.now()).toISOString()}`, ''].join('\n');
    await connection.write(`${movedTo}.reason`, reason);
    if (marker) await connection.delete(posix.join(this.#config.directory, marker), { missingOk: true });
    await this.#ledger.update(file.id, { state: 'QUARANTINED', error, movedTo, finishedAt: this.#seams.now() });
    this.#logger.warn('sftp file refused whole and quarantined', { channel: this.#channel, file: file.name, code: error.code, error: error.detail, movedTo });
  }
}

/** Streams a remote file to `local`, returning the SHA-256 (hex) of its bytes. */
async function download(connection: SftpConnection, path: string, local: string): Promise<string> {
  const hash = createHash('sha256');
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      callback(null, chunk);
    },
  });
  await pipeline(connection.createReadStream(path), tap, createWriteStream(local));
  return hash.digest('hex');
}

/** Renames `path` into `dir` under `name`, or `name.<random>` when that is taken (a re-drop archived twice). */
async function moveAside(connection: SftpConnection, path: string, dir: string, name: string): Promise<string> {
  await connection.mkdirp(dir);
  let target = posix.join(dir, name);
  if (await connection.exists(target)) target = posix.join(dir, `${name}.${randomBytes(4).toString('hex')}`);
  await connection.rename(path, target);
  return target;
}

function toInboundMessage(record: FileRecord, file: InboundFile, format: ReturnType<typeof messageFormat>, remote: string): InboundMessage {
  const lineage = { file: file.name, fileHash: file.contentHash, ...record.lineage };
  const base = { raw: record.raw, text: record.text, encoding: record.encoding, format: format.name, remote: `${remote}#${record.lineage.recordIndex}`, lineage };
  if (record.error) return { ...base, parseError: record.error };
  try {
    return { ...base, message: format.parse(record.text) };
  } catch (err) {
    return { ...base, parseError: toStoredError(err) };
  }
}

function toStoredError(err: unknown): StoredError {
  if (isOspreyError(err)) return { code: err.code, detail: err.message };
  return { code: 'OSPREY_ERR_SFTP_FAILURE', detail: (err as Error)?.message ?? String(err) };
}
