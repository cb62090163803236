// SPDX-License-Identifier: Apache-2.0
/**
 * An MLLP sender that behaves like a real interface engine's sender (an EHR feed): it keeps one
 * connection open, pipelines a bounded window of messages, and resends every message it has no `AA`
 * for — after an `AE`/`AR`, an ACK that does not come within a bound, or a closed connection — on a
 * new connection to whichever engine instance `target()` names then (fail-over behind a load
 * balancer). Resends go in the original order, so a patient's messages stay in sequence as long as
 * the window never holds two messages of one patient (callers interleave patients and keep `window`
 * at most the number of patients on the connection).
 *
 * Everything is bounded: a run gives up at its deadline and says what was still unacknowledged.
 */
import { parseAck, RawMllpClient } from './mllp-raw-client.ts';
import { sleep } from './wait-for.ts';

export interface SenderMessage {
  controlId: string;
  text: string;
}

export interface ResilientSenderOptions {
  name: string;
  messages: readonly SenderMessage[];
  /** The MLLP port to (re)connect to now; undefined: none available yet (the sender waits). */
  target: () => number | undefined;
  /** Messages in flight at most (sent, not yet acknowledged). @defaultValue 8 */
  window?: number;
  /** Messages per second at most on this connection (a paced feed). @defaultValue unlimited */
  ratePerSecond?: number;
  /** An ACK slower than this counts as lost: reconnect and resend. @defaultValue 20_000 */
  ackTimeoutMs?: number;
  /** Called once per message on its first AA. */
  onAck?: (controlId: string) => void;
}

export class ResilientSender {
  /** Control ids answered AA (or CA). */
  readonly acked = new Set<string>();
  /** Frames written in all (first sends and resends). */
  framesSent = 0;
  /** Frames written again for a message that had been written before. */
  resent = 0;
  /** Connections opened after the first. */
  reconnects = 0;
  /** Non-AA answers by code (AE, AR …). */
  readonly rejected = new Map<string, number>();
  /** Ports connected to, in order (fail-over shows as a change). */
  readonly ports: number[] = [];
  readonly #written = new Set<string>();
  readonly #window: number;
  readonly #gapMs: number;
  readonly #ackTimeoutMs: number;

  constructor(private readonly options: ResilientSenderOptions) {
    this.#window = options.window ?? 8;
    this.#gapMs = options.ratePerSecond ? 1000 / options.ratePerSecond : 0;
    this.#ackTimeoutMs = options.ackTimeoutMs ?? 20_000;
  }

  get done(): boolean {
    return this.acked.size === this.options.messages.length;
  }

  /** Sends until every message is acknowledged; rejects at `deadlineMs` (epoch ms) with what is missing. */
  async run(deadlineMs: number): Promise<void> {
    let connections = 0;
    while (!this.done) {
      if (Date.now() > deadlineMs) {
        const missing = this.options.messages.filter((m) => !this.acked.has(m.controlId)).map((m) => m.controlId);
        throw new Error(`sender ${this.options.name}: ${missing.length} messages never acknowledged by the deadline (first: ${missing.slice(0, 5).join(', ')})`);
      }
      const port = this.options.target();
      if (port === undefined) {
        await sleep(100);
        continue;
      }
      let client: RawMllpClient;
      try {
        client = await RawMllpClient.connect(port, '127.0.0.1', 2000);
      } catch {
        await sleep(100);
        continue;
      }
      if (connections++ > 0) this.reconnects++;
      this.ports.push(port);
      try {
        const clean = await this.#session(client, deadlineMs);
        if (!clean) await sleep(200);
      } finally {
        client.close();
      }
    }
  }

  /** One connection's worth of sending. @returns false when it ended on a fault (resend needed). */
  async #session(client: RawMllpClient, deadlineMs: number): Promise<boolean> {
    const queue = this.options.messages.filter((m) => !this.acked.has(m.controlId));
    let sent = 0;
    let seen = 0;
    let nextSendAt = Date.now();
    while (seen < queue.length) {
      while (sent < queue.length && sent - seen < this.#window && !client.isClosed) {
        const wait = nextSendAt - Date.now();
        if (wait > 0) {
          // Paced: do not sit on ACKs while waiting for the next slot.
          if (client.acks.length > seen) break;
          await sleep(wait);
        }
        const m = queue[sent]!;
        if (this.#written.has(m.controlId)) this.resent++;
        this.#written.add(m.controlId);
        this.framesSent++;
        nextSendAt = Math.max(nextSendAt + this.#gapMs, Date.now() - 1000);
        await client.sendFrame(m.text).catch(() => undefined);
        sent++;
      }
      if (client.acks.length <= seen) {
        try {
          await client.waitForAcks(seen + 1, Math.max(1, Math.min(this.#ackTimeoutMs, deadlineMs - Date.now())));
        } catch {
          return false; // closed, or the ACK is late: resend on a new connection
        }
      }
      while (seen < client.acks.length) {
        const m = queue[seen]!;
        const ack = parseAck(client.acks[seen]!);
        seen++;
        if (ack.ackedControlId !== m.controlId) {
          throw new Error(`sender ${this.options.name}: ACK for ${ack.ackedControlId}, expected one for ${m.controlId} (ACKs out of order)`);
        }
        if (ack.code === 'AA' || ack.code === 'CA') {
          if (!this.acked.has(m.controlId)) {
            this.acked.add(m.controlId);
            this.options.onAck?.(m.controlId);
          }
        } else {
          this.rejected.set(ack.code, (this.rejected.get(ack.code) ?? 0) + 1);
          return false; // resend it (and whatever followed it unacknowledged) on a new connection
        }
      }
    }
    return true;
  }
}
