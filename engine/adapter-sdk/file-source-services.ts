// SPDX-License-Identifier: Apache-2.0
/**
 * Engine services for sources that read files (the SFTP poller): a ledger of the files a channel has
 * taken, and a lease that makes one engine instance the channel's only active poller. Declared here
 * so adapters see only the SDK; the engine implements them over its store (embedded: SQLite and an
 * in-process lease; production: PostgreSQL and an advisory lock), and hands them over in
 * `SourceDeps.services` under {@link FILE_LEDGER} and {@link SINGLE_ACTIVE}.
 *
 * Exactly once per record rests on the message store, not on the ledger: each record is stored as a
 * message carrying its file's content hash and its record index (its lineage), in the same commit
 * as the record itself. {@link FileLedger.storedRecords} reads those back, so a poller resuming a
 * file after a crash skips exactly the records already stored.
 */

export const FILE_LEDGER = 'fileLedger';
export const SINGLE_ACTIVE = 'singleActive';

export const InboundFileState = {
  /** Taken; records being stored (a crash leaves it here: resumed at the next start). */
  PROCESSING: 'PROCESSING',
  /** Every record stored (some may be ERROR messages of their own); moved to the archive or deleted. */
  DONE: 'DONE',
  /** Refused whole (a structural check failed); moved to the error directory with a `.reason` file. */
  QUARANTINED: 'QUARANTINED',
  /** Same content as a file already processed: not processed again. */
  DUPLICATE: 'DUPLICATE',
} as const;
export type InboundFileState = (typeof InboundFileState)[keyof typeof InboundFileState];

export interface InboundFile {
  /** The ledger's id of this pickup. */
  id: string;
  channel: string;
  /** File name (no directory). */
  name: string;
  /** Full remote path where it was found. */
  path: string;
  /** SHA-256 (hex) of the file's bytes. */
  contentHash: string;
  size: number;
  /** Remote modification time, epoch ms. */
  mtimeMs: number;
  /** 1 for the first file of this name on the channel, 2 for a corrected one dropped under the same name … */
  version: number;
  state: InboundFileState;
  /** Records the file holds, once known (after the structural check). */
  recordsTotal?: number;
  /** Records stored as messages (read from the store: the checkpoint). */
  recordsDone: number;
  /** Records stored as ERROR or BUSINESS_EXCEPTION messages of their own. */
  recordsErrored: number;
  error?: { code: string; detail: string };
  /** Where the file was moved when finished (archive or error directory); absent when deleted or not yet. */
  movedTo?: string;
  pickedAt: number;
  finishedAt?: number;
}

export interface NewInboundFile {
  channel: string;
  name: string;
  path: string;
  contentHash: string;
  size: number;
  mtimeMs: number;
  /** PROCESSING for a file to process; DUPLICATE for a re-drop recorded and set aside. */
  state: typeof InboundFileState.PROCESSING | typeof InboundFileState.DUPLICATE;
}

export interface InboundFileUpdate {
  state?: InboundFileState;
  recordsTotal?: number;
  error?: { code: string; detail: string };
  movedTo?: string;
  finishedAt?: number;
}

export interface FileLedger {
  /** The newest pickup of a file with these bytes on the channel (any state), if any. */
  findByHash(channel: string, contentHash: string): Promise<InboundFile | undefined>;
  /** The channel's files left PROCESSING (a crash): resumed before new files are taken. */
  unfinished(channel: string): Promise<InboundFile[]>;
  /**
   * Records a pickup. Its `version` counts the different contents taken under the same name on the
   * channel: a corrected file is the next version, a re-drop of the same bytes keeps its version.
   */
  begin(file: NewInboundFile): Promise<InboundFile>;
  update(id: string, update: InboundFileUpdate): Promise<void>;
  /** Record indexes of the file already stored as messages of the channel: the per-record checkpoint. */
  storedRecords(channel: string, contentHash: string): Promise<Set<number>>;
  /** Newest first, with `recordsDone` and `recordsErrored` counted from the store. */
  list(query: { channel?: string; state?: InboundFileState; limit?: number }): Promise<InboundFile[]>;
}

/** Held by one engine instance at a time; lost when its holder's connection to the store is. */
export interface Lease {
  /**
   * Resolves when the lease is lost (the store connection dropped, or the store closed as the engine
   * stops): stop working, then try again (a try rejects while the store is closed or unreachable).
   * A lease its holder released is not lost: this never resolves then.
   */
  readonly lost: Promise<void>;
  release(): Promise<void>;
}

export interface SingleActive {
  /** Takes the lease named `key` if no instance holds it; undefined when another does. Never waits for it. */
  tryAcquire(key: string): Promise<Lease | undefined>;
}
