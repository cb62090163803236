// SPDX-License-Identifier: Apache-2.0
/**
 * A raw MLLP peer for end-to-end tests: writes exact bytes (whole frames, partial frames, garbage)
 * over a real TCP socket and collects the ACK frames the engine sends back. Every wait is bounded.
 */
import net from 'node:net';
import { Hl7Message, MllpFramer, mllpFrame } from '../../engine/message-formats/hl7v2/index.ts';

export const VT = 0x0b;
export const FS = 0x1c;
export const CR = 0x0d;

/** Wraps a message (segments joined by CR) in VT … FS CR. */
export function frame(text: string | Buffer): Buffer {
  return mllpFrame(typeof text === 'string' ? Buffer.from(text, 'utf8') : text);
}

export class RawMllpClient {
  readonly socket: net.Socket;
  /** ACK frames received so far, decoded as UTF-8, in arrival order. */
  readonly acks: string[] = [];
  /** Resolves when the engine (or we) closed the connection. */
  readonly closed: Promise<void>;
  #isClosed = false;
  readonly #framer = new MllpFramer({ maxFrameSize: 4 * 1024 * 1024 });
  #waiters: Array<() => void> = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.#isClosed = true;
        this.#wake();
        resolve();
      }),
    );
    socket.on('data', (chunk: Buffer) => {
      for (const ev of this.#framer.push(chunk)) if (ev.type === 'frame') this.acks.push(ev.payload.toString('utf8'));
      this.#wake();
    });
  }

  static connect(port: number, host = '127.0.0.1', timeoutMs = 5000): Promise<RawMllpClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`MLLP connect to ${host}:${port} timed out`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.setNoDelay(true);
        resolve(new RawMllpClient(socket));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** Writes bytes as they are (no framing). */
  write(bytes: Buffer | string): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(bytes, (err) => (err ? reject(err) : resolve())));
  }

  /** Writes one framed message. */
  sendFrame(text: string | Buffer): Promise<void> {
    return this.write(frame(text));
  }

  /** Resolves with the first `n` ACKs once they have arrived; rejects on close or after `timeoutMs`. */
  async waitForAcks(n: number, timeoutMs = 10_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.acks.length < n) {
      if (this.#isClosed) throw new Error(`connection closed after ${this.acks.length} of ${n} ACKs`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ACK ${n} (have ${this.acks.length})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.acks.slice(0, n);
  }

  /** Sends one framed message and resolves with its ACK (the next ACK on this connection). */
  async request(text: string | Buffer, timeoutMs = 10_000): Promise<string> {
    const n = this.acks.length + 1;
    await this.sendFrame(text);
    const acks = await this.waitForAcks(n, timeoutMs);
    return acks[n - 1] as string;
  }

  /** Resolves true once the connection is closed, false if it is still open after `timeoutMs`. */
  async waitForClose(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([this.closed.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs)))]);
    if (timer) clearTimeout(timer);
    return result;
  }

  close(): void {
    this.socket.destroy();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}

/** Sends one message on a fresh connection and returns its ACK. */
export async function sendOne(port: number, text: string | Buffer, timeoutMs = 10_000): Promise<string> {
  const client = await RawMllpClient.connect(port);
  try {
    return await client.request(text, timeoutMs);
  } finally {
    client.close();
  }
}

/** The parts of an ACK the tests check. */
export interface ParsedAck {
  hl7: Hl7Message;
  code: string;
  /** MSA-2: the control id it acknowledges. */
  ackedControlId: string | undefined;
  /** ERR-5.1 (the Osprey error code) when present. */
  errorCode: string | undefined;
  /** ERR-3.1 (HL7 table 0357) when present. */
  hl7ErrorCondition: string | undefined;
  text: string;
}

export function parseAck(text: string): ParsedAck {
  const hl7 = Hl7Message.parse(text);
  return {
    hl7,
    text,
    code: hl7.get('MSA-1') ?? '',
    ackedControlId: hl7.get('MSA-2') ?? undefined,
    errorCode: hl7.get('ERR-5.1') ?? undefined,
    hl7ErrorCondition: hl7.get('ERR-3.1') ?? undefined,
  };
}
