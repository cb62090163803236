// SPDX-License-Identifier: Apache-2.0
/**
 * HL7 v2 batch files read as streams: {@link readHl7BatchMessages} splits FHS/BHS…BTS/FTS files (or
 * plain concatenated messages, blank lines between) into messages with their lineage, and
 * {@link checkHl7BatchEnvelope} checks the envelope (BTS-1 / FTS-1 counts, missing or orphan
 * trailers) before a source commits anything. Both apply the rules of `hl7-batch.ts` (its
 * {@link Hl7BatchSplitter}) one line at a time, so a file of hundreds of MB never sits in memory:
 * only the current message does.
 *
 * Bytes are split as latin1 (one character per byte, lossless), so the line and segment rules,
 * which are ASCII, work whatever the charset; each message's bytes are then decoded on their own
 * with its MSH-18, exactly as an MLLP frame is (`decodeHl7`). UTF-16 files are refused: their line
 * terminators are two bytes.
 */
import type { Readable } from 'node:stream';
import { OspreyError } from '../../errors/error-codes.ts';
import type { StoredError } from '../../message-store/message-store.ts';
import type { RecordLineage } from '../message-format.ts';
import { Hl7BatchSplitter, type Hl7BatchIssue, type Hl7SplitMessage } from './hl7-batch.ts';
import { decodeHl7 } from './hl7-charset.ts';

/** What the readers accept: a Node readable (an SFTP download, a file) or any async iterable of chunks. */
export type Hl7BatchSource = Readable | NodeJS.ReadableStream | AsyncIterable<Buffer | string>;

/** An envelope check lists at most this many issues (the count goes on). */
export const MAX_LISTED_HL7_ISSUES = 100;

/** One message of a batch file, as {@link readHl7BatchMessages} yields it. */
export interface Hl7BatchRecord {
  /** The message's bytes, segments joined by CR, no trailing CR (what the store keeps). */
  raw: Buffer;
  /** The message decoded with its MSH-18 (or the fallback charset), ready for `Hl7Message.parse`. */
  text: string;
  /** The encoding used to decode it. */
  encoding: string;
  lineage: Required<Pick<RecordLineage, 'recordIndex' | 'line' | 'envelope'>>;
  /** OSPREY_ERR_HL7_CHARSET when its MSH-18 is unknown or its bytes are not valid in the charset (store as ERROR). */
  error?: StoredError;
}

/** Result of {@link checkHl7BatchEnvelope}. */
export interface Hl7EnvelopeCheck {
  /** True when nothing is wrong with the envelope. */
  ok: boolean;
  messages: number;
  batches: number;
  /** Whether the file has FHS / FTS. */
  fileHeader: boolean;
  fileTrailer: boolean;
  /** The first {@link MAX_LISTED_HL7_ISSUES} issues, in the order found. */
  issues: Array<Omit<Hl7BatchIssue, 'kind'>>;
  issueCount: number;
}

/** Options of the readers. */
export interface Hl7BatchReadOptions {
  /** Charset used when a message's MSH-18 is empty. @defaultValue 'UTF-8' */
  charset?: string;
}

/**
 * Lines of a byte stream (CR, LF or CRLF, mixed too) as latin1 strings with their 1-based number.
 * A CR at the end of a chunk is held back until the next chunk shows whether an LF follows, so a
 * CRLF split across chunks is one terminator, as in a whole string.
 */
async function* byteLines(source: Hl7BatchSource): AsyncGenerator<{ line: string; no: number; bom: boolean }> {
  let pending = '';
  let no = 0;
  let head: string | undefined = ''; // the file's first bytes until a byte-order mark can be told apart
  let bom = false;
  const sniff = (text: string, final: boolean): string | undefined => {
    if (text.startsWith('\xff\xfe') || text.startsWith('\xfe\xff')) {
      throw new OspreyError('OSPREY_ERR_HL7_CHARSET', 'The batch file is UTF-16 (byte-order mark); batch files are read as 8-bit or UTF-8 text.');
    }
    const undecided = ['\xef\xbb\xbf', '\xff\xfe', '\xfe\xff'].some((mark) => text.length < mark.length && mark.startsWith(text));
    if (undecided && !final) return undefined; // a mark split across chunks: wait for more bytes
    if (text.startsWith('\xef\xbb\xbf')) {
      bom = true;
      return text.slice(3);
    }
    return text;
  };
  for await (const chunk of source as AsyncIterable<Buffer | string>) {
    let text = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8').toString('latin1') : chunk.toString('latin1');
    if (head !== undefined) {
      const sniffed = sniff(head + text, false);
      if (sniffed === undefined) {
        head += text;
        continue;
      }
      head = undefined;
      text = sniffed;
    }
    const s = pending + text;
    let start = 0;
    let i = 0;
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      if (c === 13 && i === s.length - 1) break; // maybe CRLF across chunks: wait
      yield { line: s.slice(start, i), no: ++no, bom };
      if (c === 13 && s.charCodeAt(i + 1) === 10) i++;
      start = i + 1;
    }
    pending = s.slice(start);
  }
  if (head !== undefined) pending = sniff(head, true) ?? '';
  if (pending.endsWith('\r')) pending = pending.slice(0, -1);
  // Like String.split: the text after the last terminator is a line (empty ones are skipped by the splitter).
  yield { line: pending, no: ++no, bom };
}

/**
 * Streams the messages of an HL7 batch file in file order, each with its lineage: 0-based record
 * index, the 1-based line of its MSH, and the envelope ids (`FHS-11`, `BHS-11`) when present. A
 * message starts only where a segment starts with `MSH` and its separator (never at "MSH" inside
 * data). Envelope problems do not stop the reading: run {@link checkHl7BatchEnvelope} first.
 */
export async function* readHl7BatchMessages(source: Hl7BatchSource, options: Hl7BatchReadOptions = {}): AsyncGenerator<Hl7BatchRecord> {
  const charset = options.charset ?? 'UTF-8';
  const ready: Hl7SplitMessage[] = [];
  const splitter = new Hl7BatchSplitter({ message: (m) => ready.push(m) });
  let recordIndex = 0;
  let bom = false;
  const toRecord = (m: Hl7SplitMessage): Hl7BatchRecord => {
    const raw = Buffer.from(m.text, 'latin1');
    // A UTF-8 byte-order mark at the head of the file speaks for every message in it.
    const decoded = bom ? { text: raw.toString('utf8'), encoding: 'utf-8' } : decodeHl7(raw, charset);
    const record: Hl7BatchRecord = {
      raw,
      text: decoded.text,
      encoding: decoded.encoding,
      lineage: { recordIndex: recordIndex++, line: m.line, envelope: { ...m.envelope } },
    };
    if ('error' in decoded && decoded.error !== undefined) record.error = decoded.error;
    return record;
  };
  for await (const l of byteLines(source)) {
    bom = l.bom;
    splitter.line(l.line, l.no);
    while (ready.length > 0) yield toRecord(ready.shift() as Hl7SplitMessage);
  }
  splitter.end();
  while (ready.length > 0) yield toRecord(ready.shift() as Hl7SplitMessage);
}

/**
 * Reads a whole batch file once and checks its envelope without keeping any message: BTS-1 against
 * each batch's messages, FTS-1 against the batches, a BHS without BTS or an FHS without FTS (a
 * truncated file), a BTS or FTS with no header, FHS out of place, messages after FTS, and lines
 * outside any message. Plain concatenated messages (no envelope) pass. With `requireTrailers:
 * false`, missing or orphan trailers are not issues (senders that never write them).
 */
export async function checkHl7BatchEnvelope(source: Hl7BatchSource, options: { requireTrailers?: boolean } = {}): Promise<Hl7EnvelopeCheck> {
  const requireTrailers = options.requireTrailers ?? true;
  const result: Hl7EnvelopeCheck = { ok: false, messages: 0, batches: 0, fileHeader: false, fileTrailer: false, issues: [], issueCount: 0 };
  const splitter = new Hl7BatchSplitter(
    {
      message: () => undefined,
      issue: (i) => {
        if (i.kind === 'trailer' && !requireTrailers) return;
        result.issueCount++;
        if (result.issues.length < MAX_LISTED_HL7_ISSUES) {
          const { kind: _kind, ...rest } = i;
          result.issues.push(rest);
        }
      },
    },
    { keepText: false },
  );
  for await (const l of byteLines(source)) splitter.line(l.line, l.no);
  splitter.end();
  result.messages = splitter.messageCount;
  result.batches = splitter.batchCount;
  result.fileHeader = splitter.fileHeader !== undefined;
  result.fileTrailer = splitter.fileTrailer !== undefined;
  result.ok = result.issueCount === 0;
  return result;
}
