// SPDX-License-Identifier: Apache-2.0
/**
 * Test kit for the MLLP specs: a listener on 127.0.0.1:0 with a recording handler and logger, and
 * a raw socket client that writes exact bytes and collects the ACK frames it gets back.
 */
import net from 'node:net';
import type { InboundHandler, InboundMessage, IngestOutcome } from '../../../../engine/adapter-sdk/index.ts';
import { MllpFramer, mllpFrame, Hl7Message } from '../../../../engine/message-formats/hl7v2/index.ts';
import { createMllpListener, type MllpListenerConfig, type MllpListenerSeams, type MllpLogger } from '../../../../adapters/inbound/mllp-listener/index.ts';
import type { InboundAdapter } from '../../../../engine/adapter-sdk/index.ts';

export const VT = Buffer.from([0x0b]);
export const FS = Buffer.from([0x1c]);
export const CR = Buffer.from([0x0d]);

export function msg(controlId: string, extra = 'PID|1||MRN123^^^H||DOE^JANE'): string {
  return `MSH|^~\\&|SENDAPP|SENDFAC|RCVAPP|RCVFAC|20260101120000||ADT^A04^ADT_A01|${controlId}|P|2.5.1\rEVN|A04\r${extra}\rPV1|1|O`;
}

export function frame(text: string | Buffer): Buffer {
  return mllpFrame(typeof text === 'string' ? Buffer.from(text, 'utf8') : text);
}

export interface LogEntry {
  level: string;
  message: string;
  meta: Record<string, unknown> | undefined;
}

export function recordingLogger(): MllpLogger & {
  entries: LogEntry[];
  waitFor(message: string, where?: (meta: Record<string, unknown>) => boolean): Promise<LogEntry>;
} {
  const entries: LogEntry[] = [];
  const waiters: Array<{ matches: (e: LogEntry) => boolean; resolve: (e: LogEntry) => void }> = [];
  const at = (level: string) => (message: string, meta?: Record<string, unknown>) => {
    const entry = { level, message, meta };
    entries.push(entry);
    for (const w of waiters.filter((x) => x.matches(entry))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(entry);
    }
  };
  /**
   * Resolves with the first entry logged with this message (and meta matching `where`), at once if
   * it was logged already: the listener's log lines are the events tests wait on.
   */
  const waitFor = (message: string, where: (meta: Record<string, unknown>) => boolean = () => true): Promise<LogEntry> => {
    const matches = (e: LogEntry): boolean => e.message === message && where(e.meta ?? {});
    const seen = entries.find(matches);
    return seen ? Promise.resolve(seen) : new Promise((resolve) => waiters.push({ matches, resolve }));
  };
  return { entries, waitFor, info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') };
}

/** The listener's debug line after a read that leaves a frame incomplete (it has read that far). */
export const PARTIAL_FRAME = 'mllp partial frame held until the rest arrives';

/** The HL7 message the listener handed over (its `message`, in the hl7v2 format), when it parsed. */
export function hl7Of(m: InboundMessage | undefined): Hl7Message | undefined {
  return m?.message as Hl7Message | undefined;
}

/** The default engine stand-in: AA for what parsed, AR with the parse error otherwise. */
export const acceptAll: InboundHandler = async (m: InboundMessage): Promise<IngestOutcome> =>
  (m.refused ?? m.parseError) !== undefined ? { ackCode: 'AR', error: (m.refused ?? m.parseError)! } : { ackCode: 'AA', messageId: `id-${hl7Of(m)?.controlId}` };

export interface Running {
  listener: InboundAdapter;
  port: number;
  received: InboundMessage[];
  logger: ReturnType<typeof recordingLogger>;
  stop(): Promise<void>;
}

export async function startListener(config: Partial<MllpListenerConfig> = {}, handler: InboundHandler = acceptAll, seams: MllpListenerSeams = {}): Promise<Running> {
  const logger = recordingLogger();
  const listener = createMllpListener({ host: '127.0.0.1', port: 0, ...config }, logger, seams);
  const received: InboundMessage[] = [];
  await listener.start(async (m) => {
    received.push(m);
    return handler(m);
  });
  const port = listener.address()?.port as number;
  return { listener, port, received, logger, stop: () => listener.stop() };
}

/** A raw MLLP peer: exact bytes out, ACK frames in. */
export class RawPeer {
  readonly socket: net.Socket;
  readonly acks: string[] = [];
  readonly closed: Promise<void>;
  #framer = new MllpFramer();
  #waiters: Array<{ n: number; resolve: () => void }> = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.on('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => {
      for (const ev of this.#framer.push(chunk)) if (ev.type === 'frame') this.acks.push(ev.payload.toString('latin1'));
      this.#waiters = this.#waiters.filter((w) => (this.acks.length >= w.n ? (w.resolve(), false) : true));
    });
  }

  static connect(port: number): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => resolve(new RawPeer(s)));
      s.once('error', reject);
    });
  }

  write(bytes: Buffer | string): Promise<void> {
    return new Promise((resolve) => this.socket.write(bytes, () => resolve()));
  }

  /** Resolves once `n` ACKs in total have arrived (or rejects if the connection closes first). */
  waitForAcks(n: number): Promise<string[]> {
    if (this.acks.length >= n) return Promise.resolve(this.acks.slice(0, n));
    return Promise.race([
      new Promise<string[]>((resolve) => this.#waiters.push({ n, resolve: () => resolve(this.acks.slice(0, n)) })),
      this.closed.then(() => {
        if (this.acks.length >= n) return this.acks.slice(0, n);
        throw new Error(`connection closed after ${this.acks.length} of ${n} ACKs`);
      }),
    ]);
  }

  end(): void {
    this.socket.destroy();
  }
}

/** Lets the event loop turn so that separate writes go out as separate TCP segments. */
export const pause = (ms = 25): Promise<void> => new Promise((r) => setTimeout(r, ms));

export const ack = (text: string): Hl7Message => Hl7Message.parse(text);
