// SPDX-License-Identifier: Apache-2.0
/**
 * The SFTP destination: each delivery becomes one file, atomic from the reader's side. The file is
 * written under a temporary name (`name.tmp`, or `.name` …), renamed to its final name once
 * complete, and then, if configured, an empty marker file (`name.done`) is written. A reader that
 * takes only final names (or only names with a marker) never sees a partial file.
 *
 * Retries are safe: the final name is a function of the delivery (its idempotency key and the
 * message's receipt time, never the clock of the attempt), so a retry after a lost answer finds the
 * file it wrote; the same content there is success (and a missing marker is written), other content
 * is refused (`ifExists: fail`) or replaced atomically (`ifExists: replace`). The rename without
 * replace is SFTP's plain rename, which fails when the target exists, so a concurrent writer is
 * never overwritten either. `send` never throws: every failure is a classified
 * {@link OutboundResult}, as the REST client's (transient: the server unreachable or gone, a
 * generic server failure; permanent: host key, authentication, permissions, a taken name).
 */
import { posix } from 'node:path';
import { decodeTime } from 'ulid';
import type { OutboundRequest, OutboundResult, StoredError } from '../../../engine/adapter-sdk/index.ts';
import { isOspreyError, OspreyError } from '../../../engine/errors/error-codes.ts';
import { classifySftpError, connectSftp, type SftpConnection } from '../../shared/sftp/sftp-connection.ts';
import type { SftpWriterConfig } from './sftp-writer.config.ts';

/** Test seams. */
export interface SftpFileWriterOptions {
  /** Clock used for {date}/{time} when the idempotency key carries no message id with a time (epoch ms). @defaultValue Date.now */
  now?: () => number;
  /** Opens a connection (tests may count or wrap connections). @defaultValue connectSftp */
  connect?: typeof connectSftp;
}

/** What a file name template is filled with. */
export interface FileNameTokens {
  messageId: string;
  idempotencyKey: string;
  /** Epoch ms of the message's receipt. */
  at: number;
}

/** A ULID (the engine's message ids): 26 characters of Crockford base32. */
const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
/** Characters kept in file names; others become `-` (`:` becomes `_`, as delivery ids use it between parts). */
const UNSAFE = /[^A-Za-z0-9._-]/g;

const safe = (text: string): string => text.replace(/:/g, '_').replace(UNSAFE, '-');

/**
 * The tokens of a delivery. The engine's idempotency key is `<messageId>:<destination>:<output>`
 * with a ULID message id, whose first ten characters are the receipt time: {date} and {time} come
 * from it, so every attempt of a delivery gets the same name. A key of another shape (a batch key)
 * is its own message id, and the time is `now()`.
 */
export function fileNameTokens(idempotencyKey: string, now: () => number = Date.now): FileNameTokens {
  const messageId = idempotencyKey.split(':')[0] ?? idempotencyKey;
  let at: number | undefined;
  if (ULID.test(messageId)) {
    try {
      at = decodeTime(messageId);
    } catch {
      at = undefined;
    }
  }
  return { messageId, idempotencyKey, at: at ?? now() };
}

/** `template` with its tokens filled in (each made safe for a file name). */
export function renderFileName(template: string, tokens: FileNameTokens): string {
  const iso = new Date(tokens.at).toISOString();
  const values: Record<string, string> = {
    messageId: safe(tokens.messageId),
    idempotencyKey: safe(tokens.idempotencyKey),
    date: iso.slice(0, 10),
    time: iso.slice(11, 19).replace(/:/g, ''),
  };
  return template.replace(/\{(messageId|idempotencyKey|date|time)\}/g, (_, name: string) => values[name]!);
}

/** The file's bytes for a body in `format`; undefined with a reason when the body does not fit it. */
export function renderFileContent(body: unknown, format: SftpWriterConfig['format']): { content: Buffer } | { problem: string } {
  try {
    switch (format) {
      case 'json': {
        const text = JSON.stringify(body);
        return text === undefined ? { problem: 'payload is undefined or a function' } : { content: Buffer.from(`${text}\n`, 'utf8') };
      }
      case 'ndjson': {
        const items = Array.isArray(body) ? body : [body];
        const lines = items.map((item) => JSON.stringify(item));
        if (lines.some((l) => l === undefined)) return { problem: 'an element is undefined or a function' };
        return { content: Buffer.from(lines.map((l) => `${l}\n`).join(''), 'utf8') };
      }
      case 'text':
        if (typeof body === 'string') return { content: Buffer.from(body, 'utf8') };
        if (Buffer.isBuffer(body)) return { content: body };
        return { problem: `format text needs a string payload, got ${body === null ? 'null' : typeof body}` };
      default:
        return format satisfies never;
    }
  } catch (err) {
    return { problem: `payload is not JSON-serialisable (${(err as Error).name})` };
  }
}

/** One SFTP destination. Keeps one connection open between sends and opens a new one when it was lost. */
export class SftpFileWriter {
  readonly #config: SftpWriterConfig;
  readonly #now: () => number;
  readonly #connect: typeof connectSftp;
  #connection: Promise<SftpConnection> | undefined;
  #directoryReady: SftpConnection | undefined;
  #closed = false;

  constructor(config: SftpWriterConfig, options: SftpFileWriterOptions = {}) {
    this.#config = config;
    this.#now = options.now ?? Date.now;
    this.#connect = options.connect ?? connectSftp;
  }

  /** The final remote path of a delivery (what `send` writes for this key). */
  finalPath(idempotencyKey: string): string {
    return posix.join(this.#config.directory, renderFileName(this.#config.fileName, fileNameTokens(idempotencyKey, this.#now)));
  }

  /**
   * Writes `body` as the delivery's file. Pass the same key on every retry of one delivery: that is
   * what makes the retry find its own file. Never throws.
   */
  async send(body: unknown, idempotencyKey: string): Promise<OutboundResult> {
    const started = performance.now();
    const finalPath = this.finalPath(idempotencyKey);
    const { host, port, user } = this.#config;
    const sent: OutboundRequest = { method: 'PUT', url: `sftp://${user}@${host}:${port}${finalPath.startsWith('/') ? '' : '/'}${finalPath}`, headers: {}, body: '' };
    const finish = (rest: Omit<OutboundResult, 'durationMs' | 'sentRequest'>): OutboundResult => ({ ...rest, durationMs: Math.round(performance.now() - started), sentRequest: sent });
    const failed = (err: OspreyError): OutboundResult => {
      const error: StoredError = { code: err.code, detail: err.message };
      return finish({ outcome: err.errorClass === 'permanent' ? 'permanent' : 'transient', error });
    };

    const rendered = renderFileContent(body, this.#config.format);
    if ('problem' in rendered) return finish({ outcome: 'permanent', error: { code: 'OSPREY_ERR_DELIVERY_BAD_PAYLOAD', detail: rendered.problem } });
    const content = rendered.content;
    sent.body = content.toString('utf8');
    if (this.#closed) return finish({ outcome: 'transient', error: { code: 'OSPREY_ERR_SFTP_CONNECTION_LOST', detail: 'writer is closed' } });

    let connection: SftpConnection | undefined;
    try {
      connection = await this.#connection_();
      const outcome = await this.#write(connection, finalPath, content);
      return finish({ outcome: 'success', responseBody: outcome });
    } catch (err) {
      const classified = classifySftpError(err, `write ${finalPath} on ${host}:${port}`, connection?.closed ?? false);
      // A connection that failed is not reused: the next send opens a new one.
      if (connection && (connection.closed || classified.code === 'OSPREY_ERR_SFTP_CONNECTION_LOST')) this.#drop(connection);
      return failed(classified);
    }
  }

  async #write(c: SftpConnection, finalPath: string, content: Buffer): Promise<string> {
    const { directory, tempPrefix, tempSuffix, marker, ifExists } = this.#config;
    if (this.#directoryReady !== c) {
      await c.mkdirp(directory);
      this.#directoryReady = c;
    }
    const markerPath = marker === undefined ? undefined : `${finalPath}${marker}`;
    const writeMarker = async (): Promise<void> => {
      if (markerPath !== undefined) await c.write(markerPath, Buffer.alloc(0));
    };

    // A retry of a delivery that got as far as the rename finds its file.
    const existing = await this.#sameContent(c, finalPath, content);
    if (existing === 'same') {
      if (markerPath !== undefined && !(await c.exists(markerPath))) await writeMarker();
      return `already in place: ${posix.basename(finalPath)} (${content.length} bytes)`;
    }
    if (existing === 'other' && ifExists === 'fail') throw this.#taken(finalPath);

    const tempPath = posix.join(posix.dirname(finalPath), `${tempPrefix}${posix.basename(finalPath)}${tempSuffix}`);
    // 'w' truncates: a temp file left by an attempt that died is simply written over.
    await c.write(tempPath, content);
    try {
      await c.rename(tempPath, finalPath, { overwrite: ifExists === 'replace' });
    } catch (err) {
      // Plain rename fails when the target appeared meanwhile (another attempt, another writer):
      // the same content there is the same delivery done.
      if (ifExists === 'fail' && isOspreyError(err) && err.code === 'OSPREY_ERR_SFTP_FAILURE' && (await this.#sameContent(c, finalPath, content)) !== 'missing') {
        await c.delete(tempPath, { missingOk: true });
        if ((await this.#sameContent(c, finalPath, content)) !== 'same') throw this.#taken(finalPath);
        await writeMarker();
        return `already in place: ${posix.basename(finalPath)} (${content.length} bytes)`;
      }
      throw err;
    }
    await writeMarker();
    return `written: ${posix.basename(finalPath)} (${content.length} bytes)${markerPath !== undefined ? ` and ${posix.basename(markerPath)}` : ''}`;
  }

  #taken(finalPath: string): OspreyError {
    return new OspreyError('OSPREY_ERR_SFTP_FILE_EXISTS', `write ${finalPath}: the file name is taken by other content (ifExists: fail); nothing was overwritten`);
  }

  /** Whether `path` holds `content`, other content, or nothing. */
  async #sameContent(c: SftpConnection, path: string, content: Buffer): Promise<'same' | 'other' | 'missing'> {
    if (!(await c.exists(path))) return 'missing';
    const stat = await c.stat(path);
    if (stat.size !== content.length) return 'other';
    return (await c.readFile(path)).equals(content) ? 'same' : 'other';
  }

  #connection_(): Promise<SftpConnection> {
    const current = this.#connection;
    if (current) {
      return current.then(
        (c) => {
          if (!c.closed) return c;
          this.#drop(c);
          return this.#connection_();
        },
        () => {
          this.#connection = undefined;
          return this.#connection_();
        },
      );
    }
    const { host, port, user, keyFile, privateKey, passphrase, password, hostKey, connectTimeoutMs } = this.#config;
    const opening = this.#connect({
      host,
      port,
      user,
      hostKey,
      connectTimeoutMs,
      ...(keyFile !== undefined ? { keyFile } : {}),
      ...(privateKey !== undefined ? { privateKey } : {}),
      ...(passphrase !== undefined ? { passphrase } : {}),
      ...(password !== undefined ? { password } : {}),
    });
    this.#connection = opening;
    // A failed open is not cached: the caller gets its error, the next send tries again.
    opening.catch(() => {
      if (this.#connection === opening) this.#connection = undefined;
    });
    return opening;
  }

  #drop(c: SftpConnection): void {
    void c.end();
    this.#connection = undefined;
    if (this.#directoryReady === c) this.#directoryReady = undefined;
  }

  /** Closes the connection. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    const current = this.#connection;
    this.#connection = undefined;
    if (current) await current.then((c) => c.end(), () => undefined);
  }
}
