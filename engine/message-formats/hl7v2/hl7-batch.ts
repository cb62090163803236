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

/** Field n (1-based, the separator not counted) of an envelope segment, split on its own field separator (the 4th character). */
function envelopeField(line: string, n: number): string | undefined {
  const fs = line[3];
  if (fs === undefined) return undefined;
  return line.split(fs)[n];
}

function declaredCount(line: string): number | undefined {
  const v = envelopeField(line, 1)?.trim();
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
}

/** FHS-11 / BHS-11 (file / batch control id): field 11 counting the separator as field 1, like MSH. */
function controlId(line: string): string | undefined {
  const v = envelopeField(line, 10)?.trim();
  return v === undefined || v === '' ? undefined : v;
}

/** A message as {@link Hl7BatchSplitter} hands it on. */
export interface Hl7SplitMessage {
  /** Segments joined by CR, no trailing CR (as `Hl7Message.toString()`); '' when the splitter does not keep text. */
  text: string;
  /** 1-based line of its MSH in the file. */
  line: number;
  /** 0-based index of its batch (BHS…BTS, or an implicit batch) in the file. */
  batchIndex: number;
  /** `FHS-11` and `BHS-11` (file and batch control ids), when the envelope carries them. */
  envelope: Record<string, string>;
}

/** A batch as {@link Hl7BatchSplitter} reports it once it is closed. */
export interface Hl7BatchSummary {
  index: number;
  header?: string;
  trailer?: string;
  declaredMessageCount?: number;
  messageCount: number;
}

/** What a splitter found in the envelope: the kind of each issue decides who cares. */
export interface Hl7BatchIssue {
  code: ErrorCode;
  detail: string;
  /** `count`: declared counts, stray lines, FHS out of place (what {@link splitBatch} reports). `trailer`: an envelope opened and not closed, or closed and never opened. */
  kind: 'count' | 'trailer';
  line?: number;
}

/** Callbacks of {@link Hl7BatchSplitter}. */
export interface Hl7BatchSplitterListener {
  message(m: Hl7SplitMessage): void;
  batch?(b: Hl7BatchSummary): void;
  issue?(i: Hl7BatchIssue): void;
}

/**
 * The batch-file rules, one line at a time, so the same code splits a string ({@link splitBatch})
 * and a stream (`hl7-batch-stream.ts`) without the whole file in memory: only the current
 * message's segments are held (none with `keepText: false`, for counting). Blank lines are skipped;
 * the caller splits lines on CR, LF or CRLF and numbers them from 1.
 */
export class Hl7BatchSplitter {
  readonly #listener: Hl7BatchSplitterListener;
  readonly #keepText: boolean;
  #current: string[] | undefined;
  #currentLine = 0;
  #batch: Hl7BatchSummary | undefined;
  #batchLine = 0;
  #batchTrailerLine = 0;
  #batches = 0;
  #messages = 0;
  #stray = 0;
  #fileHeader: string | undefined;
  #fileHeaderLine = 0;
  #fileTrailer: string | undefined;
  #fileTrailerLine = 0;
  #declaredBatchCount: number | undefined;
  #envelope: Record<string, string> = {};

  constructor(listener: Hl7BatchSplitterListener, options: { keepText?: boolean } = {}) {
    this.#listener = listener;
    this.#keepText = options.keepText ?? true;
  }

  /** Messages handed on so far. */
  get messageCount(): number {
    return this.#messages;
  }

  /** Batches opened so far (explicit or implicit). */
  get batchCount(): number {
    return this.#batches;
  }

  get fileHeader(): string | undefined {
    return this.#fileHeader;
  }

  get fileTrailer(): string | undefined {
    return this.#fileTrailer;
  }

  get declaredBatchCount(): number | undefined {
    return this.#declaredBatchCount;
  }

  #issue(kind: Hl7BatchIssue['kind'], detail: string, line?: number): void {
    const code: ErrorCode = kind === 'count' ? 'OSPREY_ERR_HL7_BATCH_COUNT' : 'OSPREY_ERR_HL7_BATCH_TRAILER';
    this.#listener.issue?.(line === undefined ? { code, detail, kind } : { code, detail, kind, line });
  }

  #closeMessage(): void {
    if (this.#current === undefined) return;
    const batch = this.#batch as Hl7BatchSummary;
    batch.messageCount++;
    this.#messages++;
    this.#listener.message({ text: this.#current.join('\r'), line: this.#currentLine, batchIndex: batch.index, envelope: this.#envelope });
    this.#current = undefined;
  }

  #openBatch(header: string | undefined, line: number): Hl7BatchSummary {
    const batch: Hl7BatchSummary = { index: this.#batches++, messageCount: 0 };
    if (header !== undefined) batch.header = header;
    this.#batch = batch;
    this.#batchLine = line;
    const envelope: Record<string, string> = {};
    const fileId = this.#fileHeader === undefined ? undefined : controlId(this.#fileHeader);
    if (fileId !== undefined) envelope['FHS-11'] = fileId;
    const batchId = header === undefined ? undefined : controlId(header);
    if (batchId !== undefined) envelope['BHS-11'] = batchId;
    this.#envelope = envelope;
    return batch;
  }

  #closeBatch(): void {
    const b = this.#batch;
    if (b === undefined) return;
    if (b.header !== undefined && b.trailer === undefined) {
      this.#issue('trailer', `The batch opened by BHS on line ${this.#batchLine} has no BTS.`, this.#batchLine);
    }
    if (b.declaredMessageCount !== undefined && b.declaredMessageCount !== b.messageCount) {
      this.#issue('count', `BTS-1 of batch ${b.index + 1} declares ${b.declaredMessageCount} message(s) but the batch holds ${b.messageCount}.`, this.#batchTrailerLine);
    }
    this.#listener.batch?.(b);
    this.#batch = undefined;
  }

  /** Feeds one line (without its terminator) and its 1-based number. */
  line(line: string, lineNo: number): void {
    if (line.trim() === '') return;
    if (isSegment(line, 'MSH')) {
      this.#closeMessage();
      if (this.#fileTrailer !== undefined) this.#issue('trailer', `A message on line ${lineNo} comes after FTS.`, lineNo);
      if (this.#batch === undefined) this.#openBatch(undefined, lineNo);
      this.#current = this.#keepText ? [line] : [];
      this.#currentLine = lineNo;
    } else if (isSegment(line, 'FHS')) {
      this.#closeMessage();
      if (this.#fileHeader !== undefined || this.#messages > 0 || this.#batch !== undefined) {
        this.#issue('count', `FHS on line ${lineNo} is not at the start of the file.`, lineNo);
      }
      this.#fileHeader = line;
      this.#fileHeaderLine = lineNo;
    } else if (isSegment(line, 'BHS')) {
      this.#closeMessage();
      this.#closeBatch();
      this.#openBatch(line, lineNo);
    } else if (isSegment(line, 'BTS')) {
      this.#closeMessage();
      // A BTS with no BHS closes the implicit batch of the messages before it.
      const batch = this.#batch ?? this.#openBatch(undefined, lineNo);
      if (batch.header === undefined) this.#issue('trailer', `BTS on line ${lineNo} closes a batch that has no BHS.`, lineNo);
      batch.trailer = line;
      this.#batchTrailerLine = lineNo;
      const n = declaredCount(line);
      if (n !== undefined) batch.declaredMessageCount = n;
      this.#closeBatch(); // a message after BTS without a new BHS opens an implicit batch
    } else if (isSegment(line, 'FTS')) {
      this.#closeMessage();
      this.#closeBatch();
      if (this.#fileHeader === undefined) this.#issue('trailer', `FTS on line ${lineNo} closes a file that has no FHS.`, lineNo);
      this.#fileTrailer = line;
      this.#fileTrailerLine = lineNo;
      const n = declaredCount(line);
      if (n !== undefined) this.#declaredBatchCount = n;
    } else if (this.#current !== undefined) {
      if (this.#keepText) this.#current.push(line);
    } else {
      this.#stray++;
    }
  }

  /** Ends the file: closes the last message and batch, and reports what the envelope lacks. */
  end(): void {
    this.#closeMessage();
    this.#closeBatch();
    if (this.#fileHeader !== undefined && this.#fileTrailer === undefined) {
      this.#issue('trailer', `The file opened by FHS on line ${this.#fileHeaderLine} has no FTS.`, this.#fileHeaderLine);
    }
    if (this.#stray > 0) {
      this.#issue('count', `${this.#stray} line(s) outside any message (not MSH, FHS, BHS, BTS or FTS) were skipped.`);
    }
    if (this.#declaredBatchCount !== undefined && this.#declaredBatchCount !== this.#batches) {
      this.#issue('count', `FTS-1 declares ${this.#declaredBatchCount} batch(es) but the file holds ${this.#batches}.`, this.#fileTrailerLine);
    }
  }
}

/**
 * Splits a batch or multi-message file into messages. Terminators CR, LF and CRLF (mixed too) are
 * accepted, a BOM and blank lines are skipped. Never throws: problems are listed in `issues`
 * (`OSPREY_ERR_HL7_BATCH_COUNT`) so a caller can refuse to commit a file whose trailer disagrees.
 * Missing trailers are not listed here (files without BTS/FTS are common and whole in one MLLP
 * frame); `checkHl7BatchEnvelope` reports them for files picked up from a directory.
 */
export function splitBatch(text: string): Hl7BatchFile {
  const t = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const lines = t.split(/\r\n|\r|\n/);
  const result: Hl7BatchFile = { messages: [], messageLines: [], batches: [], issues: [] };
  let pending: string[] = [];
  const splitter = new Hl7BatchSplitter({
    message: (m) => {
      result.messages.push(m.text);
      result.messageLines.push(m.line);
      pending.push(m.text);
    },
    batch: (b) => {
      const batch: Hl7Batch = { messages: pending };
      if (b.header !== undefined) batch.header = b.header;
      if (b.trailer !== undefined) batch.trailer = b.trailer;
      if (b.declaredMessageCount !== undefined) batch.declaredMessageCount = b.declaredMessageCount;
      result.batches.push(batch);
      pending = [];
    },
    issue: (i) => {
      if (i.kind === 'count') result.issues.push({ code: i.code, detail: i.detail });
    },
  });
  for (let i = 0; i < lines.length; i++) splitter.line(lines[i] as string, i + 1);
  splitter.end();
  if (splitter.fileHeader !== undefined) result.fileHeader = splitter.fileHeader;
  if (splitter.fileTrailer !== undefined) result.fileTrailer = splitter.fileTrailer;
  if (splitter.declaredBatchCount !== undefined) result.declaredBatchCount = splitter.declaredBatchCount;
  return result;
}
