// SPDX-License-Identifier: Apache-2.0
/**
 * {@link SingleActive}: one engine instance at a time holds a named lease, so that one poller per
 * channel runs across the instances (production mode runs every channel on every instance).
 *
 * - Embedded mode (SQLite, one engine process): {@link InProcessSingleActive}, a set of names in
 *   memory: one holder per process.
 * - Production mode (PostgreSQL): {@link PostgresSingleActive}, a session-level
 *   `pg_try_advisory_lock` on a connection of its own, held as long as the lease lives. The server
 *   drops the lock with the session, so a crashed or killed instance frees the lease as soon as its
 *   connection is gone, and another instance's next try takes it.
 *
 * Why an advisory lock rather than a single-active-consumer queue: docs/design/0013-file-sources.md
 * § One active poller per channel.
 */
import pg from 'pg';
import type { Lease, SingleActive } from '../adapter-sdk/file-source-services.ts';
import { OspreyError } from '../errors/error-codes.ts';
import { unreachableAsUnavailable } from './postgres-store.ts';

/** A lease whose `lost` resolves once, when {@link LeaseBase.lose} is called. */
abstract class LeaseBase implements Lease {
  readonly lost: Promise<void>;
  #lose!: () => void;
  /** Released by its holder: nothing is lost any more. */
  protected released = false;

  constructor() {
    this.lost = new Promise((resolve) => (this.#lose = resolve));
  }

  /** The lease is gone without its holder's release (the connection dropped, the store closed). */
  lose(): void {
    if (!this.released) this.#lose();
  }

  abstract release(): Promise<void>;
}

class InProcessLease extends LeaseBase {
  constructor(private readonly onEnd: () => void) {
    super();
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.onEnd();
  }
}

/**
 * One holder per lease name in this process: the embedded mode, where one engine process owns the
 * store. `lost` resolves when the store closes while the lease is held.
 */
export class InProcessSingleActive implements SingleActive {
  readonly #held = new Map<string, InProcessLease>();
  #open = false;

  /** Leases are taken between the store's open and close. */
  open(): void {
    this.#open = true;
  }

  /** Every lease still held is lost (its holder stops). */
  close(): void {
    this.#open = false;
    for (const lease of this.#held.values()) lease.lose();
    this.#held.clear();
  }

  async tryAcquire(key: string): Promise<Lease | undefined> {
    if (!this.#open) throw new OspreyError('OSPREY_ERR_STORE_UNAVAILABLE', 'the message store is not open');
    if (this.#held.has(key)) return undefined;
    const lease: InProcessLease = new InProcessLease(() => {
      if (this.#held.get(key) === lease) this.#held.delete(key);
    });
    this.#held.set(key, lease);
    return lease;
  }
}

export interface PostgresSingleActiveOptions {
  connectionString: string;
  /** The store's schema: part of each lock's name, so stores in other schemas of the database hold their own leases. */
  schema: string;
  /**
   * How often a held lease's connection is checked with a query. A connection that died without
   * the server closing it (a network cut) shows only when something is sent on it: within about
   * twice this time the lease is lost and its holder stops. The server frees the lock later still
   * (when it notices the dead session), so the holder stops before another instance can take over.
   * @defaultValue 5000
   */
  heartbeatMs?: number;
}

class PostgresLease extends LeaseBase {
  readonly #timer: NodeJS.Timeout;
  #checking = false;

  constructor(
    private readonly client: pg.Client,
    private readonly lockName: string,
    heartbeatMs: number,
    private readonly onEnd: () => void,
  ) {
    super();
    // A server that ends the session (pg_terminate_backend, a restart, a failover) is seen at once;
    // a connection that silently died is seen by the heartbeat's query failing or timing out.
    client.on('error', () => this.#drop());
    client.on('end', () => this.#drop());
    this.#timer = setInterval(() => void this.#heartbeat(), heartbeatMs);
    // A held lease must not keep a process alive that has nothing else to do.
    this.#timer.unref();
  }

  async #heartbeat(): Promise<void> {
    if (this.#checking || this.released) return;
    this.#checking = true;
    try {
      await this.client.query('SELECT 1');
    } catch {
      this.#drop();
    } finally {
      this.#checking = false;
    }
  }

  #drop(): void {
    if (this.released) return;
    clearInterval(this.#timer);
    this.onEnd();
    this.lose();
    // Whatever is left of the session goes: if it were still alive, its lock would be too.
    this.client.end().catch(() => {});
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.#timer);
    this.onEnd();
    try {
      await this.client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [this.lockName]);
    } catch {
      // The session is gone already, and its lock with it.
    }
    await this.client.end().catch(() => {});
  }

  /** The store closes: the lease is lost to its holder, and its session ends. */
  async abandon(): Promise<void> {
    this.lose();
    await this.release();
  }
}

/**
 * Leases as PostgreSQL session-level advisory locks, each on a connection of its own (a pooled one
 * would hand the session, and the lock, to other work). The lock's 64-bit key is
 * `hashtextextended('osprey.single-active:<schema>:<key>', 0)`, computed by the server every
 * instance shares, so all compute the same key.
 */
export class PostgresSingleActive implements SingleActive {
  readonly #options: Required<PostgresSingleActiveOptions>;
  readonly #held = new Set<PostgresLease>();
  #open = false;

  constructor(options: PostgresSingleActiveOptions) {
    this.#options = { connectionString: options.connectionString, schema: options.schema, heartbeatMs: options.heartbeatMs ?? 5000 };
  }

  open(): void {
    this.#open = true;
  }

  /** Every lease still held is lost to its holder and its session ended. */
  async close(): Promise<void> {
    this.#open = false;
    await Promise.all([...this.#held].map((lease) => lease.abandon()));
  }

  async tryAcquire(key: string): Promise<Lease | undefined> {
    if (!this.#open) throw new OspreyError('OSPREY_ERR_STORE_UNAVAILABLE', 'the message store is not open');
    const lockName = `osprey.single-active:${this.#options.schema}:${key}`;
    const client = new pg.Client({
      connectionString: this.#options.connectionString,
      connectionTimeoutMillis: 10_000,
      // Bounds the heartbeat: a query on a dead connection otherwise waits for TCP to give up.
      query_timeout: this.#options.heartbeatMs,
      keepAlive: true,
      // Shown in pg_stat_activity: which session holds which lease (truncated by the server to 63 bytes).
      application_name: `osprey lease ${key}`,
    });
    // Until the lease listens: an 'error' event with no listener would end the process.
    client.on('error', () => {});
    try {
      await client.connect();
      const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok', [lockName]);
      if (rows[0]?.ok !== true) {
        await client.end().catch(() => {});
        return undefined;
      }
    } catch (err) {
      await client.end().catch(() => {});
      throw unreachableAsUnavailable(err);
    }
    if (!this.#open) {
      // The store closed while the lock was being taken.
      await client.end().catch(() => {});
      throw new OspreyError('OSPREY_ERR_STORE_UNAVAILABLE', 'the message store is not open');
    }
    const lease: PostgresLease = new PostgresLease(client, lockName, this.#options.heartbeatMs, () => this.#held.delete(lease));
    this.#held.add(lease);
    return lease;
  }
}
