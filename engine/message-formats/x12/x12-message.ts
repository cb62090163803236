// SPDX-License-Identifier: Apache-2.0
/**
 * A lossless X12 segment model: the text is cut into segments with the delimiters its own ISA
 * declares, each segment kept exactly as sent (X12 has no escape sequences, so a value is its
 * bytes), and read with `CLP-1` / `CAS[2]-3` / `SVC-1.2` paths. No transaction-set dictionary is
 * applied: loops are the reader's business, which keeps the model valid for 4010 and 5010 alike.
 */
import { OspreyError } from '../../errors/error-codes.ts';
import type { FormatMessage } from '../message-format.ts';
import { isX12Padding, readIsa } from './x12-delimiters.ts';
import type { X12Delimiters } from './x12-delimiters.ts';
import { parseX12Path } from './x12-path.ts';

/**
 * One X12 text (a whole interchange, or one stored claim-payment record that starts with its ISA).
 * Formatting between segments (CR/LF, indentation, a BOM) is not part of the model; every segment's
 * own characters are kept, so `toString()` re-parses to the same segments.
 */
export class X12Message implements FormatMessage {
  readonly format = 'x12' as const;
  readonly delimiters: X12Delimiters;
  /** Every segment without its terminator, in order; the first is the ISA. */
  readonly segments: readonly string[];
  #byId: Map<string, number[]> | undefined;
  #elements: Array<string[] | undefined> = [];

  private constructor(delimiters: X12Delimiters, segments: string[]) {
    this.delimiters = delimiters;
    this.segments = segments;
  }

  /**
   * Parses X12 text that starts with an ISA segment (a UTF-8 BOM and white space before it are
   * allowed). CR/LF and indentation after a terminator are tolerated; a last segment without a
   * terminator is kept. Throws `OSPREY_ERR_X12_NO_ISA` or `OSPREY_ERR_X12_BAD_ISA`.
   */
  static parse(text: string): X12Message {
    let start = 0;
    while (start < text.length && isX12Padding(text.charAt(start))) start++;
    if (start >= text.length) throw new OspreyError('OSPREY_ERR_X12_NO_ISA', 'The X12 text is empty');
    const read = readIsa(text, start);
    if (read === undefined) throw new OspreyError('OSPREY_ERR_X12_BAD_ISA', 'The text ends inside its ISA segment');
    const { delimiters } = read;
    const segments = [read.isa];
    const term = delimiters.segment;
    let i = read.end;
    while (i < text.length) {
      while (i < text.length && isX12Padding(text.charAt(i)) && text.charAt(i) !== term) i++;
      if (i >= text.length) break;
      let j = text.indexOf(term, i);
      if (j < 0) j = text.length;
      let seg = text.slice(i, j);
      // A '\n' terminator with CRLF files leaves a CR at the end of every segment: formatting, not data.
      if (term === '\n' && seg.endsWith('\r')) seg = seg.slice(0, -1);
      if (seg.length > 0) segments.push(seg);
      i = j + 1;
    }
    return new X12Message(delimiters, segments);
  }

  /** The message as X12 text: every segment followed by the terminator, no line breaks. */
  toString(): string {
    const t = this.delimiters.segment;
    return this.segments.join(t) + t;
  }

  /** One segment per line, each with its terminator (for people: the API, the CLI). */
  render(): string {
    const t = this.delimiters.segment;
    return this.segments.map((s) => s + (t === '\n' ? '' : t)).join('\n') + '\n';
  }

  /** How many segments with this id the message holds. */
  count(segmentId: string): number {
    return this.#index().get(segmentId)?.length ?? 0;
  }

  /** The id of the segment at a 0-based position. */
  segmentId(position: number): string | undefined {
    const seg = this.segments[position];
    return seg === undefined ? undefined : this.#idOf(seg);
  }

  /**
   * The value at a path: the first occurrence / first repetition unless the path names one.
   * `undefined` for an absent or empty element; the whole segment for a path with no element; the
   * whole element (components and repetitions as sent) for a path with no component. Never `null`:
   * X12 has no explicit null.
   */
  get(path: string): string | undefined {
    const p = parseX12Path(path);
    const positions = this.#index().get(p.segment);
    const si = positions?.[(p.occurrence ?? 1) - 1];
    if (si === undefined) return undefined;
    if (p.element === undefined) return this.segments[si];
    const el = this.#elementsOf(si)[p.element];
    if (el === undefined || el === '') return undefined;
    return this.#extract(el, p.repetition ?? (p.component === undefined ? undefined : 1), p.component);
  }

  /**
   * Every value at a path: each occurrence of the segment (or the one named), each repetition of the
   * element (or the one named). Absent and empty values are left out.
   */
  getAll(path: string): string[] {
    const p = parseX12Path(path);
    const positions = this.#index().get(p.segment) ?? [];
    const chosen = p.occurrence === undefined ? positions : positions.slice(p.occurrence - 1, p.occurrence);
    const out: string[] = [];
    for (const si of chosen) {
      if (p.element === undefined) {
        out.push(this.segments[si] as string);
        continue;
      }
      const el = this.#elementsOf(si)[p.element];
      if (el === undefined || el === '') continue;
      const rep = this.delimiters.repetition;
      const reps = p.repetition !== undefined || rep === undefined ? 1 : el.split(rep).length;
      for (let r = 1; r <= reps; r++) {
        const v = this.#extract(el, p.repetition ?? (rep === undefined ? undefined : r), p.component);
        if (v !== undefined) out.push(v);
      }
    }
    return out;
  }

  /** The elements of a segment at a 0-based position: index 0 is the segment id, 1 the first element. */
  elements(position: number): readonly string[] {
    return this.#elementsOf(position);
  }

  #extract(el: string, repetition: number | undefined, component: number | undefined): string | undefined {
    let v: string | undefined = el;
    const rep = this.delimiters.repetition;
    if (repetition !== undefined) {
      if (rep !== undefined) v = el.split(rep)[repetition - 1];
      else if (repetition > 1) return undefined;
    }
    if (v === undefined) return undefined;
    if (component !== undefined) v = v.split(this.delimiters.component)[component - 1];
    return v === undefined || v === '' ? undefined : v;
  }

  #idOf(seg: string): string {
    const k = seg.indexOf(this.delimiters.element);
    return k < 0 ? seg : seg.slice(0, k);
  }

  #elementsOf(si: number): string[] {
    let els = this.#elements[si];
    if (els === undefined) {
      els = (this.segments[si] ?? '').split(this.delimiters.element);
      this.#elements[si] = els;
    }
    return els;
  }

  #index(): Map<string, number[]> {
    if (this.#byId === undefined) {
      const byId = new Map<string, number[]>();
      this.segments.forEach((seg, i) => {
        const id = this.#idOf(seg);
        const list = byId.get(id);
        if (list === undefined) byId.set(id, [i]);
        else list.push(i);
      });
      this.#byId = byId;
    }
    return this.#byId;
  }
}
