// SPDX-License-Identifier: Apache-2.0
/**
 * Osprey's own lossless HL7 v2 message model (docs/design/0001-hl7-v2-model.md).
 *
 * Why not a library: on the HL7 corpus (test/fixtures/corpus) `hl7v2` rewrote 91 of 98 messages
 * on serialisation (time-zone sign lost, `0001` → `1`), medplum decodes no escapes and throws on a
 * missing repetition, node-hl7-client trims a trailing space (docs/design/0010-hl7-libraries.md). This model
 * keeps the text, splits segments once and lazily, splits fields only when a path is read, and
 * decodes escapes only on read. Nothing is ever re-serialised, so nothing can be rewritten.
 */
import { OspreyError } from '../../errors/error-codes.ts';
import type { Hl7Reader } from '../../transform-sdk/index.ts';
import { decodeHl7Escapes } from './hl7-escape.ts';
import { parseHl7Path } from './hl7-path.ts';

/**
 * The delimiters of one message, read from its MSH-1 and MSH-2 (positionally: component,
 * repetition, escape, subcomponent, truncation). MSH-2 may carry only 3 characters (no
 * subcomponent separator) and, from v2.7, a 5th: the truncation character.
 */
export interface Hl7Delimiters {
  /** MSH-1, usually `|`. Also the segment's own separator in BHS/FHS. */
  readonly field: string;
  /** Usually `^`. */
  readonly component: string;
  /** Usually `~`. */
  readonly repetition: string;
  /** Usually `\`; undefined only when MSH-2 has 2 characters, which parse() refuses, so always set on a parsed message. */
  readonly escape: string | undefined;
  /** Usually `&`; undefined when MSH-2 has only 3 characters. */
  readonly subcomponent: string | undefined;
  /** The v2.7+ truncation character (usually `#`), when MSH-2 declares a 5th character. */
  readonly truncation: string | undefined;
}

/** The delimiters Osprey writes when it has nothing better (an ACK to an unreadable message). */
export const DEFAULT_HL7_DELIMITERS: Hl7Delimiters = Object.freeze({
  field: '|',
  component: '^',
  repetition: '~',
  escape: '\\',
  subcomponent: '&',
  truncation: undefined,
});

/** Options of {@link Hl7Message.parse}. */
export interface Hl7ParseOptions {
  /**
   * Also refuse (OSPREY_ERR_HL7_BAD_SEGMENT) any segment whose id is not 3 upper-case letters or
   * digits. Off by default: real feeds carry line-wrapped segments (corpus `nhc_mdm_T04.hl7`), and a
   * message must still parse so it can be stored, read and answered; `validateStructure()` reports
   * the bad ids instead.
   * @defaultValue false
   */
  strict?: boolean;
}

const SEGMENT_ID = /^[A-Z][A-Z0-9]{2}$/;
const ALNUM_OR_SPACE = /[A-Za-z0-9\s]/;

/**
 * What {@link Hl7Message.parse} accepted although the standard does not allow it, each read as the
 * sender meant it:
 * - `msh2-escape-doubled`: MSH-2 `^~\\&`, the escape character written twice (a string escaped
 *   once too often on the sender's side, common in real feeds; HAPI-based engines accept it), read
 *   as `^~\&`. The text is kept as received.
 */
export type Hl7Leniency = 'msh2-escape-doubled';

const NO_LENIENCY: readonly Hl7Leniency[] = Object.freeze([]);
const ESCAPE_DOUBLED: readonly Hl7Leniency[] = Object.freeze(['msh2-escape-doubled'] as const);

/**
 * The normalisation a framer applies before parsing, and the only change `toString()` ever shows:
 * - a leading U+FEFF (UTF-8 BOM) is removed;
 * - leading blank lines (only spaces/tabs before a terminator) are removed;
 * - CRLF and lone LF become CR (mixed terminators are accepted);
 * - trailing segment terminators, and blank lines after the last segment, are removed: the
 *   result never ends with CR. Spaces at the end of the last segment are data and stay.
 * Everything else, blank lines between segments included, is kept byte for byte.
 */
export function normalizeHl7Text(text: string): string {
  let t = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  if (t.indexOf('\n') >= 0) t = t.replace(/\r\n|\n/g, '\r');
  // Leading blank lines.
  let start = 0;
  for (;;) {
    let j = start;
    while (j < t.length && (t.charCodeAt(j) === 0x20 || t.charCodeAt(j) === 0x09)) j++;
    if (j < t.length && t.charCodeAt(j) === 0x0d) start = j + 1;
    else break;
  }
  // Trailing terminators and blank lines.
  let end = t.length;
  for (;;) {
    let j = end;
    while (j > start && (t.charCodeAt(j - 1) === 0x20 || t.charCodeAt(j - 1) === 0x09)) j--;
    if (j > start && t.charCodeAt(j - 1) === 0x0d) end = j - 1;
    else break;
  }
  return start === 0 && end === t.length ? t : t.slice(start, end);
}

/** Segment id: the text before the first field separator (a whole line when it has none). */
function segmentIdOf(segment: string, fs: string): string {
  if (segment.length > 3 && segment[3] === fs) return segment.slice(0, 3);
  const k = segment.indexOf(fs);
  return k < 0 ? segment : segment.slice(0, k);
}

/** The n-th (1-based) piece of `text` split on `sep`, without splitting the rest. */
function nthPiece(text: string, sep: string, n: number): string | undefined {
  let from = 0;
  for (let i = 1; i < n; i++) {
    const k = text.indexOf(sep, from);
    if (k < 0) return undefined;
    from = k + 1;
  }
  const end = text.indexOf(sep, from);
  return end < 0 ? text.slice(from) : text.slice(from, end);
}

function countPieces(text: string, sep: string): number {
  let n = 1;
  for (let k = text.indexOf(sep); k >= 0; k = text.indexOf(sep, k + 1)) n++;
  return n;
}

function describeFirstSegment(t: string): string {
  const id = t.slice(0, 3);
  // A segment id is not patient data; anything else at the start might be, so it is not quoted.
  return SEGMENT_ID.test(id) && !/[A-Za-z0-9]/.test(t[3] ?? '|') ? `segment ${id}` : 'text that is not a segment id';
}

/**
 * One HL7 v2 message. Immutable; safe to share between steps.
 *
 * Reading rules (see {@link Hl7Reader}): 1-based paths; without `[n]` a path means the first
 * occurrence / first repetition; `get` decodes escapes, returns `null` for the HL7 null `""`,
 * `undefined` for absent or empty, and the raw text (escapes as sent) for a composite value.
 */
export class Hl7Message implements Hl7Reader {
  /** The message format (engine/message-formats/message-format.ts). */
  readonly format = 'hl7v2' as const;
  /** The message's own delimiters, from MSH-1 and MSH-2. */
  readonly delimiters: Hl7Delimiters;
  /** What parsing tolerated (see {@link Hl7Leniency}); empty for a conforming header. Worth a warning, not a rejection. */
  readonly leniencies: readonly Hl7Leniency[];
  readonly #text: string;
  readonly #msh: string[];
  #segments: string[] | undefined;
  #ids: string[] | undefined;
  #byId: Map<string, number[]> | undefined;
  #fields: Array<string[] | undefined> = [];
  #truncation: string | undefined | null = null;

  private constructor(text: string, delimiters: Hl7Delimiters, msh: string[], leniencies: readonly Hl7Leniency[]) {
    this.#text = text;
    this.delimiters = delimiters;
    this.#msh = msh;
    this.leniencies = leniencies;
  }

  /**
   * Parses one message (a batch file goes through `splitBatch` first). Only the MSH header is
   * examined now; segments are split on first use and fields when a path is read.
   *
   * @throws OspreyError OSPREY_ERR_HL7_EMPTY, OSPREY_ERR_HL7_NO_MSH, OSPREY_ERR_HL7_BAD_MSH,
   *   OSPREY_ERR_HL7_BAD_DELIMITERS, and with `strict` OSPREY_ERR_HL7_BAD_SEGMENT. Messages name
   *   what is wrong and never quote message content.
   */
  static parse(text: string, options: Hl7ParseOptions = {}): Hl7Message {
    if (typeof text !== 'string') throw new OspreyError('OSPREY_ERR_HL7_EMPTY', 'The HL7 message is not text.');
    const t = normalizeHl7Text(text);
    if (t.trim() === '') throw new OspreyError('OSPREY_ERR_HL7_EMPTY', 'The HL7 message is empty (no segments).');
    if (!t.startsWith('MSH')) {
      const first = describeFirstSegment(t);
      const hint = /^(FHS|BHS)/.test(t) ? '; it is a batch: split it with splitBatch() first' : '';
      throw new OspreyError('OSPREY_ERR_HL7_NO_MSH', `The HL7 message does not start with an MSH segment (it starts with ${first})${hint}.`);
    }
    let lineEnd = t.indexOf('\r');
    if (lineEnd < 0) lineEnd = t.length;
    if (lineEnd < 7) {
      throw new OspreyError('OSPREY_ERR_HL7_BAD_MSH', `MSH is ${lineEnd} characters long: too short to carry MSH-1 and MSH-2 (at least "MSH|^~\\" is needed).`);
    }
    const fs = t[3] as string;
    if (ALNUM_OR_SPACE.test(fs)) {
      throw new OspreyError('OSPREY_ERR_HL7_BAD_DELIMITERS', 'MSH-1 (the field separator, the 4th character of the message) is a letter, digit or white space.');
    }
    let encEnd = t.indexOf(fs, 4);
    if (encEnd < 0 || encEnd > lineEnd) encEnd = lineEnd;
    let enc = t.slice(4, encEnd);
    let leniencies = NO_LENIENCY;
    if (enc.length === 5 && enc[2] === '\\' && enc[3] === '\\') {
      // `^~\\&`: the escape character doubled (see Hl7Leniency). Read as `^~\&`; a real 5th
      // character (v2.7 truncation) never repeats the escape, which must be distinct anyway.
      enc = enc.slice(0, 3) + enc.slice(4);
      leniencies = ESCAPE_DOUBLED;
    }
    if (enc.length < 3 || enc.length > 5) {
      throw new OspreyError(
        'OSPREY_ERR_HL7_BAD_DELIMITERS',
        `MSH-2 (encoding characters) has ${enc.length} characters; expected 4 (component, repetition, escape, subcomponent), 3 to 5 accepted.`,
      );
    }
    const all = fs + enc;
    for (let i = 0; i < all.length; i++) {
      const c = all[i] as string;
      if (ALNUM_OR_SPACE.test(c)) {
        throw new OspreyError('OSPREY_ERR_HL7_BAD_DELIMITERS', `MSH-2 character ${i} is a letter, digit or white space; delimiters must be punctuation.`);
      }
      if (all.indexOf(c) !== i) {
        throw new OspreyError('OSPREY_ERR_HL7_BAD_DELIMITERS', `MSH-1/MSH-2 use the same delimiter character twice (positions ${all.indexOf(c) + 1} and ${i + 1}); every delimiter must be distinct.`);
      }
    }
    const delimiters: Hl7Delimiters = Object.freeze({
      field: fs,
      component: enc[0] as string,
      repetition: enc[1] as string,
      escape: enc[2],
      subcomponent: enc[3],
      truncation: enc[4],
    });
    const msg = new Hl7Message(t, delimiters, t.slice(0, lineEnd).split(fs), leniencies);
    if (options.strict === true) {
      const ids = msg.segmentIds();
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i] as string;
        if (!SEGMENT_ID.test(id)) {
          throw new OspreyError('OSPREY_ERR_HL7_BAD_SEGMENT', `Segment ${i + 1} has an id of ${id.length} characters that is not 3 upper-case letters or digits.`);
        }
      }
    }
    return msg;
  }

  /** The message after normalisation ({@link normalizeHl7Text}): segments joined by CR, no trailing CR. */
  toString(): string {
    return this.#text;
  }

  /** `MSH-9.1^MSH-9.2`, e.g. `ADT^A01` (always joined with `^`, whatever the message's own component separator); `ACK` when there is no trigger. */
  get messageType(): string | undefined {
    const type = this.get('MSH-9.1');
    if (typeof type !== 'string') return undefined;
    const trigger = this.get('MSH-9.2');
    return typeof trigger === 'string' ? `${type}^${trigger}` : type;
  }

  /** MSH-10, the message control id. */
  get controlId(): string | undefined {
    return this.get('MSH-10') ?? undefined;
  }

  /** MSH-12.1, the HL7 version id, e.g. `2.5.1`. */
  get version(): string | undefined {
    return this.get('MSH-12.1') ?? undefined;
  }

  /** Number of segments (blank lines between segments are not segments). */
  get segmentCount(): number {
    return this.#segs().length;
  }

  get(path: string): string | null | undefined {
    const p = parseHl7Path(path);
    const si = this.#find(p.segment, p.occurrence ?? 1);
    if (si < 0) return undefined;
    if (p.field === undefined) return this.#segs()[si];
    const ft = this.#fieldText(si, p.segment, p.field);
    if (ft === undefined || ft === '') return undefined;
    if (p.segment === 'MSH' && p.field <= 2 && si === 0) return ft;
    return this.#extract(ft, p.repetition ?? 1, p.component, p.subcomponent);
  }

  /**
   * Every value at a path: the field in every occurrence of the segment (unless `SEG[n]` names
   * one), every repetition of the field (unless `[r]` names one). Absent and empty values are
   * left out; HL7 nulls are kept as `null`. For positional reading use `count()` and `SEG[n]`.
   */
  getAll(path: string): Array<string | null> {
    const p = parseHl7Path(path);
    const out: Array<string | null> = [];
    const indexes = this.#occurrences(p.segment);
    const chosen = p.occurrence === undefined ? indexes : indexes.slice(p.occurrence - 1, p.occurrence);
    for (const si of chosen) {
      if (p.field === undefined) {
        out.push(this.#segs()[si] as string);
        continue;
      }
      const ft = this.#fieldText(si, p.segment, p.field);
      if (ft === undefined || ft === '') continue;
      if (p.segment === 'MSH' && p.field <= 2 && si === 0) {
        out.push(ft);
        continue;
      }
      const reps = p.repetition === undefined ? countPieces(ft, this.delimiters.repetition) : p.repetition;
      for (let r = p.repetition ?? 1; r <= reps; r++) {
        const v = this.#extract(ft, r, p.component, p.subcomponent);
        if (v !== undefined) out.push(v);
      }
    }
    return out;
  }

  /**
   * A whole field exactly as sent (all repetitions, escapes not decoded), or undefined when absent.
   * The ACK builder copies header fields with it so that nothing is re-encoded.
   */
  rawField(segment: string, field: number, occurrence = 1): string | undefined {
    const si = this.#find(segment, occurrence);
    return si < 0 ? undefined : this.#fieldText(si, segment, field);
  }

  count(segmentId: string): number {
    return this.#occurrences(segmentId).length;
  }

  segmentIds(): string[] {
    this.#index();
    return (this.#ids as string[]).slice();
  }

  #segs(): string[] {
    if (this.#segments === undefined) {
      const lines = this.#text.split('\r');
      // A blank line between segments is kept in the text (lossless) but is not a segment.
      this.#segments = lines.length === 1 || !lines.includes('') ? lines : lines.filter((l) => l !== '');
    }
    return this.#segments;
  }

  #index(): Map<string, number[]> {
    if (this.#byId === undefined) {
      const segs = this.#segs();
      const fs = this.delimiters.field;
      const ids: string[] = new Array(segs.length);
      const byId = new Map<string, number[]>();
      for (let i = 0; i < segs.length; i++) {
        const id = segmentIdOf(segs[i] as string, fs);
        ids[i] = id;
        const list = byId.get(id);
        if (list === undefined) byId.set(id, [i]);
        else list.push(i);
      }
      this.#ids = ids;
      this.#byId = byId;
    }
    return this.#byId;
  }

  #occurrences(id: string): number[] {
    return this.#index().get(id) ?? [];
  }

  #find(id: string, occurrence: number): number {
    if (id === 'MSH' && occurrence === 1) return 0;
    return this.#occurrences(id)[occurrence - 1] ?? -1;
  }

  #fieldText(si: number, segmentId: string, field: number): string | undefined {
    let fields: string[] | undefined;
    if (si === 0) fields = this.#msh;
    else {
      fields = this.#fields[si];
      if (fields === undefined) {
        fields = (this.#segs()[si] as string).split(this.delimiters.field);
        this.#fields[si] = fields;
      }
    }
    if (segmentId === 'MSH') {
      // HL7 numbers MSH-1 as the field separator itself, so MSH-n is the (n-1)-th piece.
      if (field === 1) return this.delimiters.field;
      return fields[field - 1];
    }
    return fields[field];
  }

  #extract(fieldText: string, rep: number, comp: number | undefined, sub: number | undefined): string | null | undefined {
    const d = this.delimiters;
    let v: string | undefined = fieldText;
    if (v.indexOf(d.repetition) >= 0) v = nthPiece(v, d.repetition, rep);
    else if (rep > 1) return undefined;
    if (v === undefined) return undefined;
    if (comp === undefined) return this.#leaf(v, true);
    v = v.indexOf(d.component) >= 0 ? nthPiece(v, d.component, comp) : comp === 1 ? v : undefined;
    if (v === undefined) return undefined;
    if (sub === undefined) return this.#leaf(v, false);
    const ss = d.subcomponent;
    v = ss !== undefined && v.indexOf(ss) >= 0 ? nthPiece(v, ss, sub) : sub === 1 ? v : undefined;
    if (v === undefined) return undefined;
    return this.#leaf(v, false);
  }

  #leaf(v: string, checkComponent: boolean): string | null | undefined {
    if (v === '') return undefined;
    if (v === '""') return null;
    const d = this.delimiters;
    // A composite is returned as sent: decoding it would turn \S\ into a real ^ and lose the structure.
    if (checkComponent && v.indexOf(d.component) >= 0) return v;
    if (d.subcomponent !== undefined && v.indexOf(d.subcomponent) >= 0) return v;
    if (d.escape === undefined || v.indexOf(d.escape) < 0) return v;
    return decodeHl7Escapes(v, d, this.#truncationChar());
  }

  /** `\P\` stands for the declared truncation character, or `#` in v2.7+ where it is the default. */
  #truncationChar(): string | undefined {
    if (this.#truncation === null) {
      const declared = this.delimiters.truncation;
      if (declared !== undefined) this.#truncation = declared;
      else {
        // Raw MSH-12: reading it through get() would decode escapes and come back here.
        const v = /^(\d+)\.(\d+)/.exec(this.#msh[11] ?? '');
        const atLeast27 = v !== null && (Number(v[1]) > 2 || (Number(v[1]) === 2 && Number(v[2]) >= 7));
        this.#truncation = atLeast27 ? '#' : undefined;
      }
    }
    return this.#truncation;
  }
}
