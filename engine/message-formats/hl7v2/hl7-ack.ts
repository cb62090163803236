// SPDX-License-Identifier: Apache-2.0
/**
 * HL7 v2 acknowledgements. No library ACK was fully correct on the corpus: MSH-10 collisions
 * (26/1000 and 1/1000 unique), headers not swapped or only their first component kept, MSH-11
 * forced to P, MSH-12 hard-coded (docs/design/0010-hl7-libraries.md). This builder copies what must be
 * copied as sent, and never reuses a control id.
 */
import { randomBytes } from 'node:crypto';
import { DEFAULT_HL7_DELIMITERS, Hl7Message, normalizeHl7Text, type Hl7Delimiters } from './hl7-message.ts';
import { encodeHl7Escapes } from './hl7-escape.ts';

/** Acknowledgment codes (HL7 table 0008): original mode AA/AE/AR, enhanced-mode commit CA/CE/CR. */
export const AckCode = { AA: 'AA', AE: 'AE', AR: 'AR', CA: 'CA', CE: 'CE', CR: 'CR' } as const;
export type AckCode = (typeof AckCode)[keyof typeof AckCode];

/**
 * Where in the message an error is (HL7 ERL, ERR-2 from v2.5; the first components of ERR-1 before):
 * segment id, its occurrence, and optionally field and component (all 1-based).
 */
export interface Hl7ErrorLocation {
  segment: string;
  /** Which occurrence of the segment. @defaultValue 1 */
  sequence?: number;
  field?: number;
  component?: number;
}

/** The reason of an AE/AR, as the ERR segment carries it. */
export interface AckError {
  /** An Osprey error code (or any short code): ERR-5 from v2.5. */
  code: string;
  /** Safe text for the sender, never message content: ERR-8 from v2.5, MSA-3 before. */
  detail: string;
  /** HL7 table 0357 code (ERR-3); derived from `code` by {@link hl7ErrorCodeFor} when absent. */
  hl7ErrorCode?: string;
  /** ERR-2 (v2.5+) or the location part of ERR-1 (up to v2.4). */
  location?: Hl7ErrorLocation;
}

/** Options of {@link buildAck}. */
export interface AckOptions {
  /** The outcome. Mapped to the mode of the original: AA/AE/AR ⇄ CA/CE/CR (see {@link buildAck}). */
  code: AckCode;
  /**
   * The code of an enhanced-mode commit ACK when it is not the mapping of `code`: a message
   * refused by validation after it was stored is AE in original mode but CA (committed) in
   * enhanced mode.
   */
  enhancedCode?: 'CA' | 'CE' | 'CR';
  /** The reason, for AE/AR (CE/CR). */
  error?: AckError;
  /** The text received, when it could not be parsed: header fields are salvaged from it. */
  rawText?: string;
  /** The clock, for tests. */
  now?: Date;
  /** A fixed MSH-10, for tests; by default a unique id is generated. */
  controlId?: string;
}

/** HL7 table 0357 (message error condition codes) used by Osprey, with their table text. */
export const Hl7ErrorCondition = {
  '100': 'Segment sequence error',
  '101': 'Required field missing',
  '102': 'Data type error',
  '103': 'Table value not found',
  '200': 'Unsupported message type',
  '201': 'Unsupported event code',
  '202': 'Unsupported processing id',
  '203': 'Unsupported version id',
  '204': 'Unknown key identifier',
  '205': 'Duplicate key identifier',
  '206': 'Application record locked',
  '207': 'Application internal error',
} as const;
export type Hl7ErrorCondition = keyof typeof Hl7ErrorCondition;

/** The HL7 table 0357 code that best names an Osprey error code; 207 (internal error) otherwise. */
export function hl7ErrorCodeFor(code: string): Hl7ErrorCondition {
  switch (code) {
    case 'OSPREY_ERR_HL7_EMPTY':
    case 'OSPREY_ERR_HL7_NO_MSH':
    case 'OSPREY_ERR_HL7_BAD_SEGMENT':
    case 'OSPREY_ERR_HL7_STRUCTURE':
    case 'OSPREY_ERR_HL7_BATCH_COUNT':
      return '100';
    case 'OSPREY_ERR_HL7_MISSING_FIELD':
      return '101';
    case 'OSPREY_ERR_HL7_BAD_MSH':
    case 'OSPREY_ERR_HL7_BAD_DELIMITERS':
    case 'OSPREY_ERR_HL7_CHARSET':
    case 'OSPREY_ERR_MLLP_FRAME_TOO_LARGE':
      return '102';
    case 'OSPREY_ERR_HL7_UNSUPPORTED_TYPE':
      return '200';
    case 'OSPREY_ERR_HL7_UNKNOWN_VERSION':
      return '203';
    default:
      return '207';
  }
}

// MSH-10: ≤ 20 characters, unique across calls (counter) and processes (random per-process part):
// 8 base-36 chars of epoch ms + 5 random + 5 counter = 18 characters, upper case.
const PROCESS_PART = (randomBytes(4).readUInt32BE(0) % 36 ** 5).toString(36).padStart(5, '0');
let counter = randomBytes(4).readUInt32BE(0) % 36 ** 5;

/** A new message control id: unique across calls and processes, 18 characters. */
export function newControlId(now = Date.now()): string {
  counter = (counter + 1) % 36 ** 5;
  return (now.toString(36).padStart(8, '0') + PROCESS_PART + counter.toString(36).padStart(5, '0')).toUpperCase();
}

/** HL7 DTM with milliseconds and the local UTC offset: `YYYYMMDDHHMMSS.SSS±ZZZZ`. */
export function hl7Timestamp(d: Date): string {
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const a = Math.abs(off);
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}${sign}${p(Math.floor(a / 60))}${p(a % 60)}`;
}

/** The header fields an ACK needs, as raw field texts in the delimiters `d`. */
interface AckHeader {
  d: Hl7Delimiters;
  /** MSH-3 … MSH-6 as sent (whole HD, all components). */
  sendingApp: string;
  sendingFacility: string;
  receivingApp: string;
  receivingFacility: string;
  trigger: string;
  controlId: string;
  processingId: string;
  versionField: string;
  version: string;
  acceptAckType: string;
  charset: string;
}

function headerFromMessage(m: Hl7Message): AckHeader {
  const f = (n: number): string => m.rawField('MSH', n) ?? '';
  const msh9 = f(9);
  const comps = msh9.split(m.delimiters.component);
  return {
    d: m.delimiters,
    sendingApp: f(3),
    sendingFacility: f(4),
    receivingApp: f(5),
    receivingFacility: f(6),
    trigger: comps[1] ?? '',
    controlId: f(10),
    processingId: f(11),
    versionField: f(12),
    version: m.version ?? '',
    acceptAckType: f(15),
    charset: f(18),
  };
}

const EMPTY_HEADER: AckHeader = Object.freeze({
  d: DEFAULT_HL7_DELIMITERS,
  sendingApp: '',
  sendingFacility: '',
  receivingApp: '',
  receivingFacility: '',
  trigger: '',
  controlId: '',
  processingId: '',
  versionField: '',
  version: '',
  acceptAckType: '',
  charset: '',
});

/**
 * Salvages an ACK header from text that did not parse: the first line that starts with `MSH`.
 * When its MSH-1/MSH-2 are usable, its fields are copied as sent (the sender reads its own
 * delimiters back); when only MSH-1 is usable, the fields are split on it and escaped for the
 * default delimiters `|^~\&`; otherwise the ACK carries defaults only.
 */
function headerFromRaw(rawText: string | undefined): AckHeader {
  if (rawText === undefined) return EMPTY_HEADER;
  const t = normalizeHl7Text(rawText);
  const at = t.startsWith('MSH') ? 0 : t.indexOf('\rMSH') + 1;
  if (at === 0 && !t.startsWith('MSH')) return EMPTY_HEADER;
  const end = t.indexOf('\r', at);
  const line = t.slice(at, end < 0 ? undefined : end);
  try {
    return headerFromMessage(Hl7Message.parse(line));
  } catch {
    // MSH-2 is unusable: fall through to a split on MSH-1 alone.
  }
  const fs = line[3];
  if (fs === undefined || /[A-Za-z0-9\s]/.test(fs)) return EMPTY_HEADER;
  const fields = line.split(fs); // fields[n - 1] is MSH-n
  const d0 = DEFAULT_HL7_DELIMITERS;
  const copy = (n: number): string => encodeHl7Escapes(fields[n - 1] ?? '', d0);
  const version = /^\d+(?:\.\d+)*/.exec(fields[11] ?? '')?.[0] ?? '';
  const trigger = /^[A-Za-z0-9]+[^A-Za-z0-9]([A-Za-z0-9]+)/.exec(fields[8] ?? '')?.[1] ?? '';
  return {
    d: d0,
    sendingApp: copy(3),
    sendingFacility: copy(4),
    receivingApp: copy(5),
    receivingFacility: copy(6),
    trigger,
    controlId: copy(10),
    processingId: copy(11),
    versionField: version,
    version,
    acceptAckType: copy(15),
    charset: copy(18),
  };
}

function versionAtLeast(version: string, major: number, minor: number, patch = 0): boolean {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(version);
  if (m === null) return true; // unknown: write the modern form
  const v = [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] as const;
  if (v[0] !== major) return v[0] > major;
  if (v[1] !== minor) return v[1] > minor;
  return v[2] >= patch;
}

function num(n: number | undefined): string {
  return n === undefined ? '' : String(n);
}

/** Drops trailing empty components (`PV1^1^^^` → `PV1^1`). */
function trimEmpty(parts: string[]): string[] {
  let n = parts.length;
  while (n > 0 && parts[n - 1] === '') n--;
  return parts.slice(0, n);
}

const ENHANCED: Record<AckCode, AckCode> = { AA: 'CA', AE: 'CE', AR: 'CR', CA: 'CA', CE: 'CE', CR: 'CR' };
const ORIGINAL: Record<AckCode, AckCode> = { AA: 'AA', AE: 'AE', AR: 'AR', CA: 'AA', CE: 'AE', CR: 'AR' };

/**
 * Builds the ACK for a message, segments joined by CR (no trailing CR; the framer adds FS CR).
 *
 * - MSH-1/MSH-2: the original's delimiters, so the sender reads its own; MSH-3/4 ↔ MSH-5/6 swapped
 *   as whole HD fields (all components, as sent); MSH-7 now; MSH-9 `ACK^<trigger>^ACK` (the `^ACK`
 *   structure component only from v2.3.1, where MSH-9.3 exists); MSH-10 a new unique id
 *   ({@link newControlId}); MSH-11, MSH-12 and MSH-18 copied.
 * - MSA-1 the code, MSA-2 the original MSH-10 as sent.
 * - On AE/AR (CE/CR) with an `error`: v2.5+ gets `ERR|||…|E` with ERR-2 the error location (ERL
 *   `PV1^1^3`, when known), ERR-3 the table 0357 code, ERR-5 the Osprey code and ERR-8 the detail;
 *   up to v2.4, MSA-3 carries the detail and ERR-1 the location and code (ELD:
 *   `<segment>^<sequence>^<field>^<0357 code>&<text>&HL70357`).
 * - Enhanced mode: when the original has MSH-15 (accept acknowledgment type) set, this is the
 *   *commit* ACK and AA/AE/AR become CA/CE/CR; without MSH-15 (original mode) CA/CE/CR become
 *   AA/AE/AR. The application ACK of enhanced mode is not the listener's to send.
 * - With no parsed original, the header is salvaged from `rawText` (see the listener: a message
 *   that did not parse still gets a NAK that names its control id when it can be read).
 */
export function buildAck(original: Hl7Message | undefined, options: AckOptions): string {
  const h = original !== undefined ? headerFromMessage(original) : headerFromRaw(options.rawText);
  const d = h.d;
  const fs = d.field;
  const enc = d.component + d.repetition + (d.escape ?? '') + (d.subcomponent ?? '') + (d.truncation ?? '');
  const code = h.acceptAckType !== '' ? (options.enhancedCode ?? ENHANCED[options.code]) : ORIGINAL[options.code];
  const version = h.version === '' && h.versionField === '' ? '2.5.1' : h.version;
  const modern = versionAtLeast(version, 2, 5);
  const msh9 = versionAtLeast(version, 2, 3, 1) ? `ACK${d.component}${h.trigger}${d.component}ACK` : h.trigger !== '' ? `ACK${d.component}${h.trigger}` : 'ACK';
  const msh = [
    'MSH',
    enc,
    h.receivingApp,
    h.receivingFacility,
    h.sendingApp,
    h.sendingFacility,
    hl7Timestamp(options.now ?? new Date()),
    '',
    msh9,
    options.controlId ?? newControlId(),
    h.processingId === '' ? 'P' : h.processingId,
    h.versionField === '' ? version : h.versionField,
  ];
  if (h.charset !== '') msh.push('', '', '', '', '', h.charset);
  const segments = [msh.join(fs)];
  const failed = code !== 'AA' && code !== 'CA';
  const err = failed ? options.error : undefined;
  const esc = (s: string): string => encodeHl7Escapes(s, d);
  if (err === undefined) {
    segments.push(['MSA', code, h.controlId].join(fs));
  } else {
    const cond = (err.hl7ErrorCode ?? hl7ErrorCodeFor(err.code)) as string;
    const condText = Hl7ErrorCondition[cond as Hl7ErrorCondition] ?? '';
    const at = err.location;
    if (modern) {
      segments.push(['MSA', code, h.controlId].join(fs));
      const err2 = at === undefined ? '' : trimEmpty([esc(at.segment), String(at.sequence ?? 1), num(at.field), '', num(at.component)]).join(d.component);
      const err3 = [esc(cond), esc(condText), 'HL70357'].join(d.component);
      const err5 = [esc(err.code), '', 'OSPREY'].join(d.component);
      segments.push(['ERR', '', err2, err3, 'E', err5, '', '', esc(err.detail)].join(fs));
    } else {
      segments.push(['MSA', code, h.controlId, esc(err.detail)].join(fs));
      const ss = d.subcomponent;
      // ELD: segment id ^ sequence ^ field position ^ code (CE, its parts as subcomponents).
      const where = at === undefined ? ['', '', ''] : [esc(at.segment), String(at.sequence ?? 1), num(at.field)];
      const ce = ss === undefined ? esc(cond) : [esc(cond), esc(condText), 'HL70357'].join(ss);
      segments.push(['ERR', [...where, ce].join(d.component)].join(fs));
    }
  }
  return segments.join('\r');
}

// ---------------------------------------------------------------------------------------------
// Batch acknowledgements

/** One received batch (BHS … BTS, or the implicit batch of a file without BHS), as its ACK batch answers it. */
export interface BatchAckBatch {
  /** The BHS as received; absent for an implicit batch (the ACK batch then references nothing). */
  header?: string;
  /**
   * The acknowledgements this batch carries back, in the order of the messages they answer (each
   * as {@link buildAck} returns it). Empty in errors-only mode when every message was accepted:
   * HL7 reads a batch of zero negative acknowledgements as "all accepted".
   */
  acks: string[];
  /** BTS-2 (batch comment): why the batch was refused, in safe text (no message content). */
  comment?: string;
}

/** Options of {@link buildBatchAck}. */
export interface BatchAckOptions {
  /** The FHS as received. When present the answer is a file (FHS … FTS) referencing it; otherwise batches only. */
  fileHeader?: string;
  batches: BatchAckBatch[];
  /** FTS-2 (file trailer comment), in safe text. */
  comment?: string;
  /** The clock, for tests. */
  now?: Date;
  /** Control ids for FHS-11 and each BHS-11, in that order, for tests; by default unique ids ({@link newControlId}). */
  controlIds?: () => string;
}

/** The delimiters an FHS/BHS declares (its 4th character and FHS-2/BHS-2); the defaults where unusable. */
function envelopeDelimiters(line: string | undefined): Hl7Delimiters {
  const fs = line?.[3];
  if (line === undefined || fs === undefined || /[A-Za-z0-9\s]/.test(fs)) return DEFAULT_HL7_DELIMITERS;
  const enc = line.slice(4).split(fs, 1)[0] ?? '';
  if (enc.length < 2) return DEFAULT_HL7_DELIMITERS;
  return { field: fs, component: enc[0] as string, repetition: enc[1] as string, escape: enc[2], subcomponent: enc[3], truncation: enc[4] };
}

/**
 * The answering envelope segment (FHS or BHS) for a received one: the received delimiters, its
 * sender and receiver swapped as whole fields (as sent, like an ACK's MSH), a new control id in
 * field 11, and field 12 (reference file / batch control id) the received field 11, as sent — the
 * HL7 batch protocol's way of saying which file or batch this answers (HL7 v2.5 §2.10.3.3).
 */
function answeringEnvelope(id: 'FHS' | 'BHS', received: string | undefined, fallback: string | undefined, now: Date, controlId: string): string {
  const source = received ?? fallback;
  const d = envelopeDelimiters(source);
  const fs = d.field;
  const enc = d.component + d.repetition + (d.escape ?? '') + (d.subcomponent ?? '') + (d.truncation ?? '');
  // fields[n - 1] is field n (the separator itself is field 1, so fields[1] is field 2).
  const fields = source !== undefined && source[3] === fs ? source.split(fs) : [];
  const f = (n: number): string => fields[n - 1] ?? '';
  return [id, enc, f(5), f(6), f(3), f(4), hl7Timestamp(now), '', '', '', controlId, received !== undefined ? f(11) : ''].join(fs);
}

/**
 * Builds the acknowledgement of a received HL7 batch (HL7 v2.5 §2.10.3, "HL7 batch protocol"):
 * `FHS` (only when the received file had one) `{ BHS ACK… BTS }` `FTS`, segments joined by CR
 * (no trailing CR; the framer adds FS CR).
 *
 * - FHS-12 / BHS-12 (reference file / batch control id) carry the received FHS-11 / BHS-11 as
 *   sent; FHS-11 / BHS-11 are new unique ids; FHS-3…6 / BHS-3…6 are the received ones swapped
 *   (sender ↔ receiver); the received envelope's delimiters are kept.
 * - One BHS … BTS per received batch (an implicit batch, without BHS, gets one too, referencing
 *   nothing), with its ACK messages and BTS-1 their count; FTS-1 is the number of batches.
 * - BTS-2 / FTS-2 carry a refusal's reason, escaped.
 */
export function buildBatchAck(options: BatchAckOptions): string {
  const now = options.now ?? new Date();
  const nextId = options.controlIds ?? (() => newControlId(now.getTime()));
  const file = options.fileHeader;
  const segments: string[] = [];
  if (file !== undefined) segments.push(answeringEnvelope('FHS', file, undefined, now, nextId()));
  const fileD = envelopeDelimiters(file);
  for (const batch of options.batches) {
    const bhs = answeringEnvelope('BHS', batch.header, file, now, nextId());
    segments.push(bhs);
    for (const ack of batch.acks) segments.push(normalizeHl7Text(ack));
    const d = envelopeDelimiters(bhs);
    const bts = ['BTS', String(batch.acks.length)];
    if (batch.comment !== undefined) bts.push(encodeHl7Escapes(batch.comment, d));
    segments.push(bts.join(d.field));
  }
  if (file !== undefined) {
    const fts = ['FTS', String(options.batches.length)];
    if (options.comment !== undefined) fts.push(encodeHl7Escapes(options.comment, fileD));
    segments.push(fts.join(fileD.field));
  }
  return segments.join('\r');
}
