// SPDX-License-Identifier: Apache-2.0
/**
 * Cuts a byte stream into X12 segments without holding the file: it keeps only the bytes of the
 * segment not yet terminated. Delimiters are read from each ISA (a file may hold several
 * interchanges, each free to declare its own). Offsets are byte offsets in the file, so a record's
 * byte range can be cited whatever the text's encoding. Used by the envelope validator and the 835
 * splitter (docs/design/0012-x12-splitter.md).
 */
import { OspreyError } from '../../errors/error-codes.ts';
import { readIsa } from './x12-delimiters.ts';
import type { X12Delimiters } from './x12-delimiters.ts';

/** One segment as found in the stream. */
export interface X12ScannedSegment {
  /** Segment id (`ISA`, `CLP`, `N1`). */
  readonly id: string;
  /** The segment's text without its terminator (decoded as UTF-8; X12 has no escapes). */
  readonly text: string;
  /** Byte offset of the segment's first character in the stream. */
  readonly start: number;
  /** Byte offset just past its terminator. */
  readonly end: number;
  /** The delimiters of the interchange the segment belongs to. */
  readonly delimiters: X12Delimiters;
}

/** What is left when the stream ends. */
export interface X12ScanEnd {
  /** Bytes after the last terminator that are not formatting: the file stops inside a segment. */
  readonly truncated: boolean;
  /** Byte offset of that unterminated tail, when there is one. */
  readonly truncatedAt: number | undefined;
  /** Bytes in the stream. */
  readonly bytes: number;
}

/** Limits that keep memory bounded whatever the file holds. */
export interface X12ScanLimits {
  /**
   * Longest segment accepted, in bytes; a longer one throws `OSPREY_ERR_X12_TOO_LARGE` (a file
   * whose terminator is not the one its ISA declares would otherwise be held whole).
   * @defaultValue 1 MiB
   */
  maxSegmentBytes?: number;
}

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const TAB = 0x09;
const BOM = [0xef, 0xbb, 0xbf] as const;
/** Bytes needed to be sure an ISA is complete (106 when padded right; senders mis-pad). */
const ISA_WINDOW = 520;

/** Converts what a Readable yields (Buffer, Uint8Array or string chunks) to Buffers. */
export function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8');
  throw new TypeError('X12 streams must yield Buffer, Uint8Array or string chunks');
}

/**
 * A push scanner: feed chunks with `push()`, get the segments they complete; call `end()` once the
 * stream is done. Synchronous so a caller pays one `await` per chunk, not per segment.
 */
export class X12SegmentScanner {
  #pending: Buffer = Buffer.alloc(0);
  /** Absolute offset of `#pending[0]`. */
  #base = 0;
  #delimiters: X12Delimiters | undefined;
  /** True before the first ISA and after each IEA: the next segment must be read as an ISA. */
  #expectIsa = true;
  readonly #maxSegmentBytes: number;

  constructor(limits: X12ScanLimits = {}) {
    this.#maxSegmentBytes = limits.maxSegmentBytes ?? 1024 * 1024;
  }

  /** The delimiters of the current interchange (undefined before the first ISA). */
  get delimiters(): X12Delimiters | undefined {
    return this.#delimiters;
  }

  /** Adds a chunk; returns the segments it completes, in order. */
  push(chunk: Buffer): X12ScannedSegment[] {
    const buf = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const out: X12ScannedSegment[] = [];
    const pos = this.#scan(buf, out, false);
    this.#base += pos;
    // Copy the tail so the big chunk it came from can be collected.
    this.#pending = pos >= buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(pos));
    return out;
  }

  /** Ends the stream: returns the last segments (an ISA at the very end) and whether the file was cut. */
  end(): { segments: X12ScannedSegment[]; end: X12ScanEnd } {
    const out: X12ScannedSegment[] = [];
    const buf = this.#pending;
    const pos = this.#scan(buf, out, true);
    const rest = skipPadding(buf, pos);
    const truncated = rest < buf.length;
    const bytes = this.#base + buf.length;
    this.#base = bytes;
    this.#pending = Buffer.alloc(0);
    return { segments: out, end: { truncated, truncatedAt: truncated ? bytes - (buf.length - rest) : undefined, bytes } };
  }

  /** Scans `buf` from 0; returns the offset of the first byte not consumed. */
  #scan(buf: Buffer, out: X12ScannedSegment[], atEnd: boolean): number {
    let pos = 0;
    for (;;) {
      pos = skipPadding(buf, pos);
      if (pos >= buf.length) return pos;
      // A BOM cut by a chunk boundary: wait for its other bytes.
      if (!atEnd && buf[pos] === BOM[0] && buf.length - pos < BOM.length) return pos;
      if (this.#expectIsa || this.#delimiters === undefined) {
        const startsIsa = buf[pos] === 0x49 && (pos + 1 >= buf.length || buf[pos + 1] === 0x53) && (pos + 2 >= buf.length || buf[pos + 2] === 0x41);
        if (!startsIsa && this.#delimiters !== undefined) {
          // Not an ISA after an IEA: go on with the last delimiters, the validator reports the stray segment.
          this.#expectIsa = false;
          continue;
        }
        const window = buf.toString('latin1', pos, Math.min(buf.length, pos + ISA_WINDOW));
        const read = readIsa(window);
        if (read === undefined) {
          if (!atEnd && buf.length - pos < ISA_WINDOW) return pos;
          if (atEnd) return pos;
          throw new OspreyError('OSPREY_ERR_X12_BAD_ISA', 'The ISA segment does not end where its 16 elements say');
        }
        this.#delimiters = read.delimiters;
        this.#expectIsa = false;
        const end = pos + read.end;
        out.push({ id: 'ISA', text: read.isa, start: this.#base + pos, end: this.#base + end, delimiters: read.delimiters });
        pos = end;
        continue;
      }
      const d = this.#delimiters;
      const term = d.segment.charCodeAt(0);
      const t = buf.indexOf(term, pos);
      if (t < 0) {
        if (buf.length - pos > this.#maxSegmentBytes) throw tooLarge(this.#maxSegmentBytes);
        return pos;
      }
      if (t - pos > this.#maxSegmentBytes) throw tooLarge(this.#maxSegmentBytes);
      let stop = t;
      if (term === LF && stop > pos && buf[stop - 1] === CR) stop--;
      const text = buf.toString('utf8', pos, stop);
      const k = text.indexOf(d.element);
      const id = k < 0 ? text : text.slice(0, k);
      out.push({ id, text, start: this.#base + pos, end: this.#base + t + 1, delimiters: d });
      if (id === 'IEA') this.#expectIsa = true;
      pos = t + 1;
    }
  }
}

function skipPadding(buf: Buffer, pos: number): number {
  let p = pos;
  for (;;) {
    const b = buf[p];
    if (b === undefined) return p;
    if (b === CR || b === LF || b === SP || b === TAB) p++;
    else if (b === BOM[0] && buf[p + 1] === BOM[1] && buf[p + 2] === BOM[2]) p += 3;
    else return p;
  }
}

function tooLarge(max: number): OspreyError {
  return new OspreyError('OSPREY_ERR_X12_TOO_LARGE', `An X12 segment is longer than ${max} bytes (is the segment terminator the one the ISA declares?)`);
}
