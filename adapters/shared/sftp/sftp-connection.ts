// SPDX-License-Identifier: Apache-2.0
/**
 * One SFTP connection, as the SFTP source and the SFTP destination use it: a small interface over
 * `ssh2-sftp-client` (and, for downloads, the `ssh2` SFTP session under it) with a pinned host key,
 * every failure turned into an {@link OspreyError} with an `OSPREY_ERR_SFTP_*` code whose class
 * (transient / permanent) the retry policy reads, and downloads that stream with parallel reads.
 *
 * Why parallel reads: ssh2's `createReadStream` keeps one read request in flight at a time, so its
 * speed is one round trip per chunk, and under Node 22+ the per-request cost grew (ssh2 issue 1452).
 * {@link SftpParallelReadStream} keeps several requests in flight, as OpenSSH's own `sftp` client
 * does, and still delivers the bytes in order with bounded memory. Figures: docs/design/0014-sftp-connection.md.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import SftpClient from 'ssh2-sftp-client';
import type { SFTPWrapper } from 'ssh2';
import { isOspreyError, OspreyError, type ErrorCode } from '../../../engine/errors/error-codes.ts';

/** Where and how to connect. Exactly one of `keyFile`, `privateKey` or `password` is normally given. */
export interface SftpConnectOptions {
  host: string;
  /** @defaultValue 22 */
  port?: number;
  user: string;
  /** Path of the private key file (OpenSSH or PEM format). */
  keyFile?: string;
  /** The private key itself (PEM text), e.g. from an environment variable. */
  privateKey?: string | Buffer;
  /** Passphrase of an encrypted private key. */
  passphrase?: string;
  password?: string;
  /**
   * The server's host key fingerprint, `SHA256:<base64>` as `ssh-keygen -lf` prints it. Required:
   * a server presenting any other key is refused before anything is sent (OSPREY_ERR_SFTP_HOST_KEY).
   */
  hostKey: string;
  /** Limit for TCP connect plus SSH handshake plus authentication. @defaultValue 20_000 */
  connectTimeoutMs?: number;
  /**
   * A server that answers no keepalive for this long counts as gone, so an operation on a dead
   * connection fails (CONNECTION_LOST) instead of hanging. @defaultValue 15_000
   */
  deadAfterMs?: number;
}

/** One entry of a directory listing. */
export interface SftpEntry {
  name: string;
  type: 'file' | 'directory' | 'symlink' | 'other';
  size: number;
  /** Modification time, epoch ms (the server's resolution is seconds). */
  mtimeMs: number;
}

/** Options of {@link SftpConnection.createReadStream}. */
export interface SftpReadOptions {
  /**
   * Read requests kept in flight; 1 uses ssh2's own one-request-at-a-time stream.
   * @defaultValue 16
   */
  concurrency?: number;
  /** Bytes asked for by each request. @defaultValue 65_536 */
  chunkSize?: number;
}

/** What the SFTP source and destination need of a server. Every method rejects with an {@link OspreyError}. */
export interface SftpConnection {
  /** `host:port` (for logs and error messages). */
  readonly endpoint: string;
  /** True once the server closed the connection or end() was called: open a new one. */
  readonly closed: boolean;
  /** Entries of `dir` (without `.` and `..`). */
  list(dir: string): Promise<SftpEntry[]>;
  /** The entry at `path`; rejects with NO_SUCH_FILE when there is none. */
  stat(path: string): Promise<SftpEntry>;
  /** Whether something is at `path`. */
  exists(path: string): Promise<boolean>;
  /** The file's bytes, streamed in order (errors classified, emitted as 'error'). */
  createReadStream(path: string, options?: SftpReadOptions): Readable;
  /** The whole file in memory (for small files: markers, a destination's own output). */
  readFile(path: string): Promise<Buffer>;
  /**
   * Renames `from` to `to`. With `overwrite`, an existing `to` is replaced atomically
   * (posix-rename@openssh.com; a server without it gets delete + rename, not atomic). Without,
   * the rename fails when `to` exists (SFTP v3 rename), which is atomic against a concurrent writer.
   */
  rename(from: string, to: string, options?: { overwrite?: boolean }): Promise<void>;
  /** Makes `dir` and its missing parents (mkdir -p). */
  mkdirp(dir: string): Promise<void>;
  /** Deletes a file; with `missingOk`, a file that is not there is no error. */
  delete(path: string, options?: { missingOk?: boolean }): Promise<void>;
  /** Writes (creates or truncates) `path` with `data`. With `exclusive`, fails when `path` exists. */
  write(path: string, data: Buffer | string | Readable, options?: { exclusive?: boolean }): Promise<void>;
  /** Closes the connection. Idempotent; never rejects. */
  end(): Promise<void>;
}

/** @see SftpConnectOptions.connectTimeoutMs */
export const DEFAULT_CONNECT_TIMEOUT_MS = 20_000;
/** @see SftpConnectOptions.deadAfterMs */
export const DEFAULT_DEAD_AFTER_MS = 15_000;
const KEEPALIVE_COUNT = 3;

const FINGERPRINT = /^SHA256:([A-Za-z0-9+/]{43})=?$/;

/** `SHA256:<base64, no padding>` of an SSH public key blob, as `ssh-keygen -lf` prints it. */
export function sshFingerprint(publicKeyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(publicKeyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** The canonical form of a configured fingerprint (padding dropped), or undefined when it is not one. */
export function normaliseFingerprint(text: string): string | undefined {
  const m = FINGERPRINT.exec(text.trim());
  return m ? `SHA256:${m[1]}` : undefined;
}

// SFTP status codes (draft-ietf-secsh-filexfer-02 §7) as ssh2 sets them on `err.code`.
const SFTP_STATUS = { noSuchFile: 2, permissionDenied: 3, failure: 4, noConnection: 6, connectionLost: 7, unsupported: 8 } as const;

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EHOSTDOWN']);
const LOST_CODES = new Set<string | number>(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ERR_NOT_CONNECTED', SFTP_STATUS.noConnection, SFTP_STATUS.connectionLost]);

/**
 * The Osprey error for a failure of `what` (e.g. `list /inbox`): the code says what happened, its
 * class whether a retry may help. `connectionGone` says the connection is known to be down, which
 * turns an unspecific error (ssh2's "No response from server") into CONNECTION_LOST.
 */
export function classifySftpError(err: unknown, what: string, connectionGone = false): OspreyError {
  if (isOspreyError(err)) return err;
  const e = (err ?? {}) as { code?: unknown; level?: unknown; message?: unknown };
  const message = typeof e.message === 'string' ? e.message : String(err);
  const code = e.code;
  const fail = (c: ErrorCode, why: string): OspreyError => new OspreyError(c, `${what}: ${why}`, { cause: err });
  if (e.level === 'client-authentication' || /authentication methods failed/i.test(message)) return fail('OSPREY_ERR_SFTP_AUTH', 'the server refused the credentials');
  if (/parse privateKey|privateKey value|Encrypted private OpenSSH key|passphrase/i.test(message)) return fail('OSPREY_ERR_SFTP_BAD_KEY', `the private key cannot be used (${message})`);
  if (e.level === 'client-timeout' || /timed out while waiting for handshake/i.test(message)) return fail('OSPREY_ERR_SFTP_UNREACHABLE', 'no SSH handshake within the connect timeout');
  if (typeof code === 'string' && UNREACHABLE_CODES.has(code) && !connectionGone) return fail('OSPREY_ERR_SFTP_UNREACHABLE', `cannot connect (${code})`);
  if ((typeof code === 'string' || typeof code === 'number') && LOST_CODES.has(code)) return fail('OSPREY_ERR_SFTP_CONNECTION_LOST', `connection lost (${String(code)})`);
  if (code === SFTP_STATUS.noSuchFile || code === 'ENOENT') return fail('OSPREY_ERR_SFTP_NO_SUCH_FILE', 'no such file or directory');
  if (code === SFTP_STATUS.permissionDenied || code === 'EACCES') return fail('OSPREY_ERR_SFTP_PERMISSION_DENIED', 'permission denied');
  if (connectionGone || /No response from server|Unexpected (end|close) event|No SFTP connection|Keepalive timeout|Channel (not open|closed)/i.test(message)) {
    return fail('OSPREY_ERR_SFTP_CONNECTION_LOST', 'the server closed the connection');
  }
  if (typeof code === 'string' && UNREACHABLE_CODES.has(code)) return fail('OSPREY_ERR_SFTP_CONNECTION_LOST', `connection lost (${code})`);
  return fail('OSPREY_ERR_SFTP_FAILURE', message.replace(/^[a-zA-Z]+(->|: )/, ''));
}

const entryType = (t: string | undefined): SftpEntry['type'] => (t === '-' ? 'file' : t === 'd' ? 'directory' : t === 'l' ? 'symlink' : 'other');

/**
 * Opens a connection: TCP, SSH handshake, host key check against the pinned fingerprint,
 * authentication, SFTP subsystem.
 * @throws OspreyError HOST_KEY (naming the expected and the presented fingerprint), AUTH, BAD_KEY, UNREACHABLE.
 */
export async function connectSftp(options: SftpConnectOptions): Promise<SftpConnection> {
  const port = options.port ?? 22;
  const endpoint = `${options.host}:${port}`;
  const expected = normaliseFingerprint(options.hostKey);
  if (!expected) {
    throw new OspreyError('OSPREY_ERR_SFTP_BAD_KEY', `connect ${endpoint}: hostKey is not a SHA256:<base64> fingerprint as ssh-keygen -lf prints it`);
  }
  let privateKey: string | Buffer | undefined = options.privateKey;
  if (privateKey === undefined && options.keyFile !== undefined) {
    try {
      privateKey = await readFile(options.keyFile);
    } catch (err) {
      throw new OspreyError('OSPREY_ERR_SFTP_BAD_KEY', `connect ${endpoint}: cannot read the key file ${options.keyFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, {
        cause: err,
      });
    }
  }

  const state = { gone: false, lastError: undefined as unknown };
  const markGone = (err?: unknown): void => {
    state.gone = true;
    if (err !== undefined) state.lastError ??= err;
  };
  // Our own callbacks: the library's defaults print to the console.
  const client = new SftpClient(`osprey-${endpoint}`, { error: markGone, end: () => markGone(), close: () => markGone() });
  // The raw ssh2 error keeps `level` (client-authentication, client-timeout) that the library's
  // rewrapped error loses.
  let rawError: unknown;
  client.on('error', (err: unknown) => {
    rawError ??= err;
  });
  let presented: string | undefined;
  const deadAfterMs = options.deadAfterMs ?? DEFAULT_DEAD_AFTER_MS;
  try {
    await client.connect({
      host: options.host,
      port,
      username: options.user,
      ...(privateKey !== undefined ? { privateKey } : {}),
      ...(options.passphrase !== undefined ? { passphrase: options.passphrase } : {}),
      ...(options.password !== undefined ? { password: options.password } : {}),
      readyTimeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      keepaliveInterval: Math.max(1000, Math.floor(deadAfterMs / KEEPALIVE_COUNT)),
      keepaliveCountMax: KEEPALIVE_COUNT,
      hostVerifier: (key: Buffer) => {
        presented = sshFingerprint(key);
        return presented === expected;
      },
    });
  } catch (err) {
    // The ssh2 client under the library: close whatever the failed attempt left open.
    (client as unknown as { client: { end(): void } }).client.end();
    if (presented !== undefined && presented !== expected) {
      throw new OspreyError(
        'OSPREY_ERR_SFTP_HOST_KEY',
        `connect ${endpoint}: the server's host key is ${presented}, but ${expected} is pinned (hostKey); refused. If the server's key was changed on purpose, pin the new one.`,
        { cause: err },
      );
    }
    // A key the library could not parse throws before any network I/O, with no raw ssh2 error.
    throw classifySftpError(rawError ?? err, `connect ${endpoint}`);
  }
  // TCP_NODELAY: with Nagle's algorithm on, each small read request waits for the ACK of the last
  // one (a delayed ACK: tens of ms), which made downloads ~40x slower (docs/design/0011).
  (client as unknown as { client: { setNoDelay(v: boolean): void } }).client.setNoDelay(true);
  // Errors after connect come through the library's callbacks (markGone); rawError only served it.
  return new Ssh2SftpConnection(client, endpoint, state);
}

class Ssh2SftpConnection implements SftpConnection {
  readonly endpoint: string;
  readonly #client: SftpClient;
  readonly #state: { gone: boolean };
  #ended = false;

  constructor(client: SftpClient, endpoint: string, state: { gone: boolean }) {
    this.#client = client;
    this.endpoint = endpoint;
    this.#state = state;
  }

  get closed(): boolean {
    return this.#ended || this.#state.gone;
  }

  async #run<T>(what: string, op: () => Promise<T>): Promise<T> {
    if (this.closed) throw new OspreyError('OSPREY_ERR_SFTP_CONNECTION_LOST', `${what} on ${this.endpoint}: the connection is closed`);
    try {
      return await op();
    } catch (err) {
      throw classifySftpError(err, `${what} on ${this.endpoint}`, this.#state.gone);
    }
  }

  /** The ssh2 SFTP session (for the parallel reader and posix-rename). */
  get #sftp(): SFTPWrapper {
    const sftp = (this.#client as unknown as { sftp?: SFTPWrapper }).sftp;
    if (!sftp || this.closed) throw new OspreyError('OSPREY_ERR_SFTP_CONNECTION_LOST', `${this.endpoint}: the connection is closed`);
    return sftp;
  }

  list(dir: string): Promise<SftpEntry[]> {
    return this.#run(`list ${dir}`, async () =>
      (await this.#client.list(dir)).map((f) => ({ name: f.name, type: entryType(f.type), size: f.size, mtimeMs: f.modifyTime })),
    );
  }

  stat(path: string): Promise<SftpEntry> {
    return this.#run(`stat ${path}`, async () => {
      const s = await this.#client.stat(path);
      const type: SftpEntry['type'] = s.isFile ? 'file' : s.isDirectory ? 'directory' : s.isSymbolicLink ? 'symlink' : 'other';
      return { name: posix.basename(path), type, size: s.size, mtimeMs: s.modifyTime };
    });
  }

  exists(path: string): Promise<boolean> {
    return this.#run(`exists ${path}`, async () => (await this.#client.exists(path)) !== false);
  }

  createReadStream(path: string, options: SftpReadOptions = {}): Readable {
    const what = `read ${path} on ${this.endpoint}`;
    let sftp: SFTPWrapper;
    try {
      sftp = this.#sftp;
    } catch (err) {
      return Readable.from([]).destroy(err as Error) as Readable;
    }
    const classify = (err: unknown): OspreyError => classifySftpError(err, what, this.#state.gone);
    if ((options.concurrency ?? DEFAULT_READ_CONCURRENCY) <= 1) {
      // ssh2's own stream: one request in flight. Kept for comparison (docs/design/0011).
      const inner = sftp.createReadStream(path);
      const out = new Readable({ read: () => inner.resume() });
      inner.on('data', (chunk: Buffer) => {
        if (!out.push(chunk)) inner.pause();
      });
      inner.once('end', () => out.push(null));
      // `on`, not `once`: ssh2 may emit a second error (its close request failing on a dead session).
      inner.on('error', (err: unknown) => out.destroy(classify(err)));
      out.once('close', () => inner.destroy());
      return out;
    }
    return new SftpParallelReadStream(sftp, path, classify, options);
  }

  readFile(path: string): Promise<Buffer> {
    return this.#run(`read ${path}`, async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of this.createReadStream(path)) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    });
  }

  rename(from: string, to: string, options: { overwrite?: boolean } = {}): Promise<void> {
    return this.#run(`rename ${from} to ${to}`, async () => {
      if (!options.overwrite) {
        await this.#client.rename(from, to);
        return;
      }
      const sftp = this.#sftp;
      const extensions = (sftp as unknown as { _extensions?: Record<string, string> })._extensions ?? {};
      if (extensions['posix-rename@openssh.com'] === '1') {
        await new Promise<void>((resolve, reject) => sftp.ext_openssh_rename(from, to, (err) => (err ? reject(err) : resolve())));
        return;
      }
      // No atomic replace on this server: a reader may see `to` missing for a moment.
      await this.#client.delete(to, true);
      await this.#client.rename(from, to);
    });
  }

  mkdirp(dir: string): Promise<void> {
    return this.#run(`mkdir -p ${dir}`, async () => {
      if ((await this.#client.exists(dir)) === 'd') return;
      await this.#client.mkdir(dir, true);
    });
  }

  delete(path: string, options: { missingOk?: boolean } = {}): Promise<void> {
    return this.#run(`delete ${path}`, async () => {
      await this.#client.delete(path, options.missingOk ?? false);
    });
  }

  write(path: string, data: Buffer | string | Readable, options: { exclusive?: boolean } = {}): Promise<void> {
    return this.#run(`write ${path}`, async () => {
      const body = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      await this.#client.put(body, path, {
        // The library's types list 'a' and 'w'; ssh2 takes any fs flag ('wx': O_EXCL).
        writeStreamOptions: { flags: (options.exclusive ? 'wx' : 'w') as 'w', mode: 0o644 },
      });
    });
  }

  async end(): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    // ssh2-sftp-client's end() waits for the server's close; a server that never answers (gone,
    // half-closed) would hold it for ever, and with it the engine's stop. Bounded, then cut.
    let timer: NodeJS.Timeout | undefined;
    const cut = new Promise<'cut'>((resolve) => {
      timer = setTimeout(() => resolve('cut'), END_WAIT_MS);
      timer.unref?.();
    });
    try {
      const ended = await Promise.race([this.#client.end().then(() => 'ended' as const), cut]);
      if (ended === 'cut') (this.#client as unknown as { client?: { destroy?: () => void } }).client?.destroy?.();
    } catch {
      // The connection is gone either way.
    } finally {
      clearTimeout(timer);
    }
  }
}

/** How long end() waits for the server to close the connection before cutting it. */
const END_WAIT_MS = 3_000;

/** @see SftpReadOptions.concurrency */
export const DEFAULT_READ_CONCURRENCY = 16;
/** @see SftpReadOptions.chunkSize */
export const DEFAULT_READ_CHUNK_SIZE = 65_536;

/**
 * A remote file's bytes in order, read with up to `concurrency` requests in flight. Memory is
 * bounded: at most `concurrency` chunks are asked for or held beyond what the consumer has taken
 * (plus the stream's highWaterMark). A short read (the server may return less than asked without
 * being at the end) asks for the rest at once; the first empty read marks the end of the file.
 */
export class SftpParallelReadStream extends Readable {
  readonly #sftp: SFTPWrapper;
  readonly #path: string;
  readonly #classify: (err: unknown) => Error;
  readonly #concurrency: number;
  readonly #chunkSize: number;
  #handle: Buffer | undefined;
  /** Next offset to ask for. */
  #next = 0;
  /** Next offset to push. */
  #pushAt = 0;
  /** Offset of the first read that came back empty. */
  #eofAt = Number.POSITIVE_INFINITY;
  #inFlight = 0;
  #ended = false;
  /** Chunks that came back ahead of #pushAt, by offset. */
  readonly #ready = new Map<number, Buffer>();

  constructor(sftp: SFTPWrapper, path: string, classify: (err: unknown) => Error, options: SftpReadOptions = {}) {
    super({ highWaterMark: (options.chunkSize ?? DEFAULT_READ_CHUNK_SIZE) * 2 });
    this.#sftp = sftp;
    this.#path = path;
    this.#classify = classify;
    this.#concurrency = Math.max(1, options.concurrency ?? DEFAULT_READ_CONCURRENCY);
    this.#chunkSize = Math.max(1024, options.chunkSize ?? DEFAULT_READ_CHUNK_SIZE);
  }

  override _construct(callback: (error?: Error | null) => void): void {
    try {
      this.#sftp.open(this.#path, 'r', (err, handle) => {
        if (err) return callback(this.#classify(err));
        this.#handle = handle;
        callback();
      });
    } catch (err) {
      callback(this.#classify(err));
    }
  }

  override _read(): void {
    this.#fill();
  }

  #fill(): void {
    while (!this.destroyed && this.#next < this.#eofAt && this.#inFlight + this.#ready.size < this.#concurrency) {
      const offset = this.#next;
      this.#next += this.#chunkSize;
      this.#request(offset, this.#chunkSize);
    }
  }

  #request(offset: number, length: number): void {
    this.#inFlight++;
    const buffer = Buffer.allocUnsafe(length);
    try {
      this.#sftp.read(this.#handle!, buffer, 0, length, offset, (err, bytesRead) => {
        this.#inFlight--;
        if (this.destroyed) return;
        if (err) {
          this.destroy(this.#classify(err));
          return;
        }
        if (bytesRead === 0) {
          this.#eofAt = Math.min(this.#eofAt, offset);
        } else {
          this.#ready.set(offset, bytesRead === length ? buffer : buffer.subarray(0, bytesRead));
          if (bytesRead < length && offset + bytesRead < this.#eofAt) this.#request(offset + bytesRead, length - bytesRead);
        }
        this.#drain();
      });
    } catch (err) {
      // ssh2 throws synchronously when the session is already closed.
      this.#inFlight--;
      this.destroy(this.#classify(err));
    }
  }

  #drain(): void {
    if (this.#ended) return;
    let wantMore = true;
    for (let chunk = this.#ready.get(this.#pushAt); chunk !== undefined && this.#pushAt < this.#eofAt; chunk = this.#ready.get(this.#pushAt)) {
      this.#ready.delete(this.#pushAt);
      this.#pushAt += chunk.length;
      wantMore = this.push(chunk);
    }
    if (this.#pushAt >= this.#eofAt && this.#inFlight === 0) {
      this.#ended = true;
      this.push(null);
      return;
    }
    if (wantMore) this.#fill();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const handle = this.#handle;
    this.#handle = undefined;
    if (handle) {
      try {
        // Not awaited: on a dead connection the answer never comes.
        this.#sftp.close(handle, () => undefined);
      } catch {
        // the session is gone, and the handle with it
      }
    }
    callback(error);
  }
}
