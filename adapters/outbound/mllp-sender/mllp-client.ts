// SPDX-License-Identifier: Apache-2.0
/**
 * An MLLP client: one connection (TCP or TLS), several sends outstanding at once, ACKs matched to
 * sends in order (MLLP has no correlation on the wire but order; MSA-2 is left to the caller to
 * check). Used by `osprey send`, the benchmark and the tests. Uses the listener's framer, so the
 * same tolerances apply to the ACKs it reads (split reads, missing CR, bytes between frames).
 */
import net from 'node:net';
import tls from 'node:tls';
import { OspreyError } from '../../../engine/errors/error-codes.ts';
import { MllpFramer, decodeHl7, encodeHl7, mllpFrame } from '../../../engine/message-formats/hl7v2/index.ts';

/** Options of {@link MllpClient}. */
export interface MllpClientOptions {
  host: string;
  port: number;
  /** TLS (PEM contents, not paths); `cert`/`key` for mutual TLS. */
  tls?: { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer; rejectUnauthorized?: boolean; servername?: string };
  /** Connect timeout and the longest wait for each ACK. @defaultValue 10000 */
  timeoutMs?: number;
  /** Encoding messages are written in and ACKs read with. @defaultValue 'utf-8' */
  encoding?: string;
  /** Largest ACK frame accepted. @defaultValue 1 MiB */
  maxFrameSize?: number;
}

interface Pending {
  resolve: (ack: string) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class MllpClient {
  readonly #options: MllpClientOptions;
  readonly #timeoutMs: number;
  readonly #encoding: string;
  #socket: net.Socket | undefined;
  #connecting: Promise<void> | undefined;
  readonly #pending: Pending[] = [];
  #framer: MllpFramer;

  constructor(options: MllpClientOptions) {
    this.#options = options;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#encoding = options.encoding ?? 'utf-8';
    this.#framer = new MllpFramer({ maxFrameSize: options.maxFrameSize ?? 1024 * 1024 });
  }

  /** Opens the connection (idempotent). Rejects with OSPREY_ERR_DELIVERY_NETWORK or OSPREY_ERR_DELIVERY_TIMEOUT. */
  connect(): Promise<void> {
    if (this.#socket !== undefined && !this.#socket.destroyed) return Promise.resolve();
    if (this.#connecting !== undefined) return this.#connecting;
    this.#framer = new MllpFramer({ maxFrameSize: this.#framer.maxFrameSize });
    this.#connecting = new Promise<void>((resolve, reject) => {
      const { host, port } = this.#options;
      const t = this.#options.tls;
      const socket =
        t === undefined
          ? net.connect({ host, port })
          : tls.connect({
              host,
              port,
              ...(t.ca !== undefined ? { ca: t.ca } : {}),
              ...(t.cert !== undefined ? { cert: t.cert } : {}),
              ...(t.key !== undefined ? { key: t.key } : {}),
              rejectUnauthorized: t.rejectUnauthorized ?? true,
              ...(t.servername !== undefined ? { servername: t.servername } : net.isIP(host) === 0 ? { servername: host } : {}),
            });
      const timer = setTimeout(() => {
        socket.destroy();
        fail(new OspreyError('OSPREY_ERR_DELIVERY_TIMEOUT', `MLLP connect to ${host}:${port} timed out after ${this.#timeoutMs} ms.`));
      }, this.#timeoutMs);
      let settled = false;
      const fail = (err: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#connecting = undefined;
        reject(err);
      };
      socket.once(t === undefined ? 'connect' : 'secureConnect', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.setNoDelay(true);
        this.#socket = socket;
        this.#connecting = undefined;
        resolve();
      });
      socket.on('error', (err: NodeJS.ErrnoException) => {
        const e = new OspreyError('OSPREY_ERR_DELIVERY_NETWORK', `MLLP connection to ${host}:${port} failed (${err.code ?? err.message}).`, { cause: err });
        fail(e);
        this.#failAll(e);
      });
      socket.on('close', () => {
        if (this.#socket === socket) this.#socket = undefined;
        this.#failAll(new OspreyError('OSPREY_ERR_DELIVERY_NETWORK', `MLLP connection to ${host}:${port} closed before the ACK arrived.`));
      });
      socket.on('data', (chunk: Buffer) => {
        for (const ev of this.#framer.push(chunk)) {
          if (ev.type !== 'frame') continue;
          const p = this.#pending.shift();
          if (p === undefined) continue; // an ACK nobody waits for (after a timeout): dropped
          clearTimeout(p.timer);
          p.resolve(decodeHl7(ev.payload, this.#encoding).text);
        }
      });
    });
    return this.#connecting;
  }

  /**
   * Sends one message (segments joined by CR) and resolves with the ACK text. Several sends may be
   * outstanding; ACKs are matched in order. A missing ACK rejects with OSPREY_ERR_DELIVERY_TIMEOUT
   * and closes the connection (later ACKs could no longer be matched); a lost connection rejects
   * every outstanding send with OSPREY_ERR_DELIVERY_NETWORK.
   */
  async send(text: string): Promise<string> {
    await this.connect();
    const socket = this.#socket;
    if (socket === undefined) throw new OspreyError('OSPREY_ERR_DELIVERY_NETWORK', 'MLLP connection is closed.');
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        const e = new OspreyError('OSPREY_ERR_DELIVERY_TIMEOUT', `No MLLP ACK within ${this.#timeoutMs} ms.`);
        this.#failAll(e);
        socket.destroy();
      }, this.#timeoutMs);
      this.#pending.push({ resolve, reject, timer });
      socket.write(mllpFrame(encodeHl7(text, this.#encoding)));
    });
  }

  /** Number of sends waiting for their ACK. */
  get outstanding(): number {
    return this.#pending.length;
  }

  /** Closes the connection; outstanding sends are rejected. */
  close(): Promise<void> {
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket === undefined || socket.destroyed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      socket.end();
      setTimeout(() => socket.destroy(), 1000).unref();
    });
  }

  #failAll(err: Error): void {
    for (const p of this.#pending.splice(0)) {
      clearTimeout(p.timer);
      p.reject(err);
    }
  }
}
