// SPDX-License-Identifier: Apache-2.0
/**
 * HL7 batches (FHS/BHS … BTS/FTS) that arrive in one MLLP frame: telling one from a message, and
 * finding each message's bytes as received inside it. The structure (where messages start, the
 * BTS/FTS counts) is `splitBatch`'s, the one segment-aware splitter the engine has; this file only
 * maps its message lines back onto the frame's bytes, so that every message is stored with its own
 * bytes untouched (terminators included), as a single message is.
 */

/** True for `ID` + a non-alphanumeric field separator at `at` (so `BHSX` or `MSHA` is not a header). */
function segmentAt(bytes: Buffer, at: number, id: string): boolean {
  if (bytes[at] !== id.charCodeAt(0) || bytes[at + 1] !== id.charCodeAt(1) || bytes[at + 2] !== id.charCodeAt(2)) return false;
  const sep = bytes[at + 3];
  if (sep === undefined || sep === 0x0d || sep === 0x0a) return true;
  return !((sep >= 0x30 && sep <= 0x39) || (sep >= 0x41 && sep <= 0x5a) || (sep >= 0x61 && sep <= 0x7a));
}

/**
 * True when the frame is an HL7 batch: its first segment (after a UTF-8 byte-order mark and blank
 * lines) is FHS or BHS. A frame that starts with MSH stays a single message, as before: plain
 * back-to-back messages in one frame are not a batch a sender announced. (A UTF-16 frame is never
 * taken for a batch: its first bytes are a byte-order mark.)
 */
export function isBatchFrame(payload: Buffer): boolean {
  let p = payload[0] === 0xef && payload[1] === 0xbb && payload[2] === 0xbf ? 3 : 0;
  while (p < payload.length && (payload[p] === 0x0d || payload[p] === 0x0a || payload[p] === 0x20 || payload[p] === 0x09)) p++;
  return segmentAt(payload, p, 'FHS') || segmentAt(payload, p, 'BHS');
}

const ENVELOPE = ['MSH', 'FHS', 'BHS', 'BTS', 'FTS'] as const;

/** A byte range of the frame: `[start, end)`. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * The bytes of each message of a batch frame, from the start of its MSH line to the end of its
 * last non-blank line, that line's terminator included. `messageLines` are `splitBatch`'s 1-based
 * line numbers of each MSH; `lineCount` the number of lines `splitBatch` saw (text split on CRLF,
 * CR or LF). Lines are found in the bytes by the same rule, which holds for every ASCII-compatible
 * charset; for UTF-16 (its byte-order mark), or when the counts disagree, it returns undefined and
 * the caller re-encodes each message's text instead.
 */
export function messageByteRanges(payload: Buffer, messageLines: readonly number[], lineCount: number): ByteRange[] | undefined {
  // A UTF-16 CR is two bytes, one of them 0x0d: the line rule below would cut characters in half.
  if ((payload[0] === 0xff && payload[1] === 0xfe) || (payload[0] === 0xfe && payload[1] === 0xff)) return undefined;
  // starts[i] is where line i + 1 starts; ends[i] where its content ends (before its terminator).
  const starts: number[] = [0];
  const ends: number[] = [];
  for (let i = 0; i < payload.length; i++) {
    const b = payload[i];
    if (b !== 0x0d && b !== 0x0a) continue;
    ends.push(i);
    if (b === 0x0d && payload[i + 1] === 0x0a) i++;
    starts.push(i + 1);
  }
  ends.push(payload.length);
  if (starts.length !== lineCount) return undefined;
  const blank = (line: number): boolean => {
    for (let i = starts[line] as number; i < (ends[line] as number); i++) {
      const b = payload[i];
      if (b !== 0x20 && b !== 0x09) return false;
    }
    return true;
  };
  const envelope = (line: number): boolean => ENVELOPE.some((id) => segmentAt(payload, starts[line] as number, id));
  return messageLines.map((oneBased) => {
    const first = oneBased - 1;
    let last = first;
    for (let line = first + 1; line < starts.length && !envelope(line); line++) if (!blank(line)) last = line;
    return { start: starts[first] as number, end: last + 1 < starts.length ? (starts[last + 1] as number) : payload.length };
  });
}
