// SPDX-License-Identifier: Apache-2.0
/**
 * Incremental MLLP framer: `VT <payload> FS CR` (0x0B … 0x1C 0x0D) over a byte stream.
 * It lives here, not in the listener, because both the listener and the MLLP client use it and
 * adapters may not import each other (adapters/README.md); the listener re-exports it.
 *
 * Every library server failed at least two of four framing tests on the HL7 corpus: a message
 * lost when FS and CR arrive in different reads, the second of two frames in one read lost, a
 * truncated frame merged into the next one, a process crash on a non-HL7 frame
 * (docs/design/0010-hl7-libraries.md). This framer works on Buffers and keeps explicit state:
 *
 * - Frames split across reads are reassembled; several frames in one read are all returned.
 * - Bytes outside a frame are discarded and reported (`garbage`).
 * - A VT inside a frame means the sender restarted: the partial frame is discarded (`truncated`)
 *   and a new frame starts (resync on VT).
 * - **FS ends the frame, CR is optional.** 0x1C cannot occur inside HL7 text in any
 *   ASCII-compatible charset (it is a control character; multi-byte sets such as UTF-8, GB 18030,
 *   Big5, Shift_JIS and EUC never use bytes below 0x40 as trail bytes), so FS alone is an
 *   unambiguous end: the frame is returned at once, and a sender that omits the CR still gets its
 *   ACK without waiting. The byte after FS is swallowed only when it is CR; a VT there starts the
 *   next frame; anything else is garbage. (UTF-16/32 payloads are not MLLP release 1 and are not
 *   supported.)
 * - A frame larger than `maxFrameSize` is reported once (`oversize`, with the first bytes so a NAK
 *   can name the control id), then everything is discarded until the next VT.
 * - After any error the state is back to "outside a frame": nothing leaks into the next frame.
 */

/** Start block, end block, carriage return. */
export const MLLP_VT = 0x0b;
export const MLLP_FS = 0x1c;
export const MLLP_CR = 0x0d;

/** What one {@link MllpFramer.push} found, in stream order. */
export type MllpFrameEvent =
  /** A complete frame: the bytes between VT and FS (a copy, safe to keep). */
  | { type: 'frame'; payload: Buffer }
  /**
   * Bytes outside any frame were discarded. `data` is a view of them in the chunk just pushed:
   * valid only until the next push (copy what you keep).
   */
  | { type: 'garbage'; bytes: number; data: Buffer }
  /** A VT arrived inside a frame: the partial frame (of `bytes`) was discarded. */
  | { type: 'truncated'; bytes: number }
  /** A frame went past maxFrameSize; `head` is its first bytes (≤ 4 KiB) for the NAK; the rest is discarded until the next VT. */
  | { type: 'oversize'; head: Buffer; limit: number };

const State = { outside: 0, inside: 1, afterFs: 2, discarding: 3 } as const;
type State = (typeof State)[keyof typeof State];

const HEAD_BYTES = 4096;

/** Options of {@link MllpFramer}. */
export interface MllpFramerOptions {
  /** Largest payload accepted, in bytes. @defaultValue 1 MiB */
  maxFrameSize?: number;
}

export class MllpFramer {
  readonly maxFrameSize: number;
  #state: State = State.outside;
  #parts: Buffer[] = [];
  #size = 0;
  #garbage = 0;
  /** Where the current run of garbage starts in the chunk being pushed (a run never spans pushes). */
  #garbageFrom = 0;

  constructor(options: MllpFramerOptions = {}) {
    this.maxFrameSize = options.maxFrameSize ?? 1024 * 1024;
  }

  /** True while a frame has started (VT seen) and not ended: the sender may be stalled mid-frame. */
  get inFrame(): boolean {
    return this.#state === State.inside || this.#state === State.discarding;
  }

  /** Bytes held for the frame in progress. */
  get bufferedBytes(): number {
    return this.#size;
  }

  /** Forgets any partial frame. */
  reset(): void {
    this.#state = State.outside;
    this.#parts = [];
    this.#size = 0;
    this.#garbage = 0;
  }

  /** Feeds one read; returns what it completed, in order. */
  push(chunk: Buffer): MllpFrameEvent[] {
    const events: MllpFrameEvent[] = [];
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      switch (this.#state) {
        case State.afterFs: {
          if (chunk[i] === MLLP_CR) i++;
          this.#state = State.outside;
          break;
        }
        case State.outside: {
          const vt = chunk.indexOf(MLLP_VT, i);
          const end = vt < 0 ? n : vt;
          if (this.#garbage === 0) this.#garbageFrom = i;
          this.#garbage += end - i;
          i = end;
          if (vt >= 0) {
            this.#flushGarbage(events, chunk);
            this.#state = State.inside;
            i++;
          }
          break;
        }
        case State.discarding: {
          // The rest of an oversize frame: its FS ends it; a VT starts the next frame.
          const vt = chunk.indexOf(MLLP_VT, i);
          const fs = chunk.indexOf(MLLP_FS, i);
          if (fs >= 0 && (vt < 0 || fs < vt)) {
            this.#state = State.afterFs;
            i = fs + 1;
          } else if (vt >= 0) {
            this.#state = State.inside;
            i = vt + 1;
          } else {
            i = n;
          }
          break;
        }
        case State.inside: {
          const fs = chunk.indexOf(MLLP_FS, i);
          const vt = chunk.indexOf(MLLP_VT, i);
          const stop = fs < 0 ? vt : vt < 0 ? fs : Math.min(fs, vt);
          const end = stop < 0 ? n : stop;
          if (this.#size + (end - i) > this.maxFrameSize) {
            this.#collect(chunk, i, Math.min(end, i + Math.max(0, HEAD_BYTES - this.#size)));
            const head = Buffer.concat(this.#parts).subarray(0, HEAD_BYTES);
            events.push({ type: 'oversize', head: Buffer.from(head), limit: this.maxFrameSize });
            this.#parts = [];
            this.#size = 0;
            // Resume at the stop byte (VT or FS), which the discarding state handles, or at the end.
            this.#state = State.discarding;
            i = stop < 0 ? n : stop;
            break;
          }
          this.#collect(chunk, i, end);
          if (stop < 0) {
            i = n;
          } else if (stop === fs) {
            events.push({ type: 'frame', payload: this.#take() });
            this.#state = State.afterFs;
            i = fs + 1;
          } else {
            // VT inside a frame: the sender started over.
            events.push({ type: 'truncated', bytes: this.#size });
            this.#parts = [];
            this.#size = 0;
            i = vt + 1;
          }
          break;
        }
        default:
          this.#state satisfies never;
      }
    }
    this.#flushGarbage(events, chunk);
    return events;
  }

  #collect(chunk: Buffer, from: number, to: number): void {
    if (to > from) {
      this.#parts.push(chunk.subarray(from, to));
      this.#size += to - from;
    }
  }

  #take(): Buffer {
    // Always a copy: the caller keeps the payload (store, handler) after the read buffer is reused.
    const payload = this.#parts.length === 1 ? Buffer.from(this.#parts[0] as Buffer) : Buffer.concat(this.#parts, this.#size);
    this.#parts = [];
    this.#size = 0;
    return payload;
  }

  #flushGarbage(events: MllpFrameEvent[], chunk: Buffer): void {
    if (this.#garbage > 0) {
      events.push({ type: 'garbage', bytes: this.#garbage, data: chunk.subarray(this.#garbageFrom, this.#garbageFrom + this.#garbage) });
      this.#garbage = 0;
    }
  }
}

/** Wraps a payload (an encoded message or ACK) in an MLLP frame: VT payload FS CR. */
export function mllpFrame(payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(payload.length + 3);
  out[0] = MLLP_VT;
  payload.copy(out, 1);
  out[payload.length + 1] = MLLP_FS;
  out[payload.length + 2] = MLLP_CR;
  return out;
}
