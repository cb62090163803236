// SPDX-License-Identifier: Apache-2.0
/**
 * HL7 batch files: `FHS BHS MSH… MSH… BTS FTS` envelopes, envelopes without trailers, and plain
 * back-to-back messages (often separated by blank lines). The splitter is segment-aware: a message
 * starts only where a *segment* starts with `MSH` followed by its field separator, never where the
 * text "MSH" appears inside data (node-hl7-client split the corpus FHS/BTS file into 4 messages
 * instead of 2 on an OBX-5 of "MSH": docs/design/0010-hl7-libraries.md).
 */
import type { ErrorCode } from '../../errors/error-codes.ts';

/** One BHS…BTS batch (or the implicit batch of a file without BHS). */
export interface Hl7Batch {
  /** The BHS segment as sent, when there is one. */
  header?: string;
  /** The BTS segment as sent, when there is one. */
  trailer?: string;
  /** BTS-1 (batch message count), when present and numeric. */
  declaredMessageCount?: number;
  /** The messages of this batch, each normalised (segments joined by CR, no trailing CR). */
  messages: string[];
}

/** Result of {@link splitBatch}. */
export interface Hl7BatchFile {
  /** Every message of the file, in order, each normalised like `Hl7Message.toString()`. */
  messages: string[];
  /** 1-based line number of each message's MSH in the file (for per-record checkpoints and error reports). */
  messageLines: number[];
  /** The FHS segment as sent. */
  fileHeader?: string;
  /** The FTS segment as sent. */
  fileTrailer?: string;
  /** FTS-1 (file batch count), when present and numeric. */
  declaredBatchCount?: number;
  batches: Hl7Batch[];
  /** Declared counts that do not match, lines outside any message, envelope segments out of place. */
  issues: Array<{ code: ErrorCode; detail: string }>;
}

function isSegment(line: string, id: string): boolean {
  return line.startsWith(id) && (line.length === 3 || !/[A-Za-z0-9]/.test(line[3] as string));
}

/** Field n (1-based) of an envelope segment, split on its own field separator (the 4th character). */
function envelopeField(line: string, n: number): string | undefined {
  const fs = line[3];
  if (fs === undefined) return undefined;
  return line.split(fs)[n];
}

function declaredCount(line: string): number | undefined {
  const v = envelopeField(line, 1)?.trim();
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
}

/**
 * Splits a batch or multi-message file into messages. Terminators CR, LF and CRLF (mixed too) are
 * accepted, a BOM and blank lines are skipped. Never throws: problems are listed in `issues`
 * (`OSPREY_ERR_HL7_BATCH_COUNT`) so a caller can refuse to commit a file whose trailer disagrees.
 */
export function splitBatch(text: string): Hl7BatchFile {
  const t = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const lines = t.split(/\r\n|\r|\n/);
  const result: Hl7BatchFile = { messages: [], messageLines: [], batches: [], issues: [] };
  let batch: Hl7Batch | undefined;
  let current: string[] | undefined;
  let stray = 0;
  let headerSeen = false;
  const close = (): void => {
    if (current !== undefined) {
      const m = current.join('\r');
      result.messages.push(m);
      (batch as Hl7Batch).messages.push(m);
      current = undefined;
    }
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.trim() === '') continue;
    if (isSegment(line, 'MSH')) {
      close();
      if (batch === undefined) {
        batch = { messages: [] };
        result.batches.push(batch);
      }
      current = [line];
      result.messageLines.push(i + 1);
    } else if (isSegment(line, 'FHS')) {
      close();
      if (headerSeen || result.messages.length > 0) {
        result.issues.push({ code: 'OSPREY_ERR_HL7_BATCH_COUNT', detail: `FHS on line ${i + 1} is not at the start of the file.` });
      }
      headerSeen = true;
      result.fileHeader = line;
    } else if (isSegment(line, 'BHS')) {
      close();
      batch = { header: line, messages: [] };
      result.batches.push(batch);
    } else if (isSegment(line, 'BTS')) {
      close();
      if (batch === undefined) {
        batch = { messages: [] };
        result.batches.push(batch);
      }
      batch.trailer = line;
      const n = declaredCount(line);
      if (n !== undefined) batch.declaredMessageCount = n;
      batch = undefined; // a message after BTS without a new BHS opens an implicit batch
    } else if (isSegment(line, 'FTS')) {
      close();
      result.fileTrailer = line;
      const n = declaredCount(line);
      if (n !== undefined) result.declaredBatchCount = n;
    } else if (current !== undefined) {
      current.push(line);
    } else {
      stray++;
    }
  }
  close();
  if (stray > 0) {
    result.issues.push({ code: 'OSPREY_ERR_HL7_BATCH_COUNT', detail: `${stray} line(s) outside any message (not MSH, FHS, BHS, BTS or FTS) were skipped.` });
  }
  result.batches.forEach((b, i) => {
    if (b.declaredMessageCount !== undefined && b.declaredMessageCount !== b.messages.length) {
      result.issues.push({
        code: 'OSPREY_ERR_HL7_BATCH_COUNT',
        detail: `BTS-1 of batch ${i + 1} declares ${b.declaredMessageCount} message(s) but the batch holds ${b.messages.length}.`,
      });
    }
  });
  if (result.declaredBatchCount !== undefined && result.declaredBatchCount !== result.batches.length) {
    result.issues.push({
      code: 'OSPREY_ERR_HL7_BATCH_COUNT',
      detail: `FTS-1 declares ${result.declaredBatchCount} batch(es) but the file holds ${result.batches.length}.`,
    });
  }
  return result;
}
