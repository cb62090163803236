// SPDX-License-Identifier: Apache-2.0
/**
 * Loop structure of one 835 claim-payment record, for transforms. `msg.get('CLP-1')` reads a value,
 * but which CAS belongs to the claim and which to a service line depends on where it stands: claim
 * CAS segments come between CLP and the first SVC, a line's after its SVC. The record's text
 * (`msg.toString()`: segments with their terminator, no line breaks, starting with the ISA) is cut
 * here with the delimiters its own ISA declares, so the order is known. Pure; imports nothing of
 * the engine.
 */
import type { MessageReader } from '../../engine/transform-sdk/index.ts';

/** One segment: its id and elements (index 1 is the first element, as `CLP-1` counts). */
export interface X12Segment {
  readonly id: string;
  /** `el[0]` is the id; an absent element reads as ''. */
  element(n: number): string;
  /** Component `c` (1-based) of element `n`, '' when absent. */
  component(n: number, c: number): string;
}

/** The segments of a record, in order, cut with its ISA's delimiters. */
export function x12Segments(msg: MessageReader): X12Segment[] {
  const text = msg.toString();
  if (!text.startsWith('ISA') || text.length < 4) throw new Error('an X12 record starts with its ISA');
  const element = text.charAt(3);
  // ISA has 16 elements: past the 16th separator come ISA16 (the component separator) and the terminator.
  let seps = 0;
  let i = 3;
  for (; i < text.length && seps < 16; i++) if (text.charAt(i) === element) seps++;
  const component = text.charAt(i);
  const terminator = text.charAt(i + 1);
  return text
    .split(terminator)
    .map((s) => s.replace(/^[\r\n\t ]+/, ''))
    .filter((s) => s !== '')
    .map((s) => {
      const els = s.split(element);
      const el = (n: number): string => (els[n] ?? '').trim();
      return { id: el(0), element: el, component: (n: number, c: number) => (el(n).split(component)[c - 1] ?? '').trim() };
    });
}

/** A CAS segment's adjustments: up to six reason / amount / quantity triplets under one group code. */
export function casAdjustments(seg: X12Segment): Array<{ group: string; reason: string; amount: string; quantity?: string }> {
  const out: Array<{ group: string; reason: string; amount: string; quantity?: string }> = [];
  for (let k = 0; k < 6; k++) {
    const reason = seg.element(2 + k * 3);
    if (reason === '') continue;
    const quantity = seg.element(4 + k * 3);
    out.push({ group: seg.element(1), reason, amount: seg.element(3 + k * 3), ...(quantity === '' ? {} : { quantity }) });
  }
  return out;
}

/** The claim loop (CLP to the end of the record) split into its claim-level segments and its service lines. */
export function claimLoop(segments: readonly X12Segment[]): { claim: X12Segment[]; lines: X12Segment[][] } {
  const start = segments.findIndex((s) => s.id === 'CLP');
  const claim: X12Segment[] = [];
  const lines: X12Segment[][] = [];
  if (start < 0) return { claim, lines };
  for (const seg of segments.slice(start)) {
    if (seg.id === 'SE' || seg.id === 'GE' || seg.id === 'IEA' || seg.id === 'PLB') break;
    if (seg.id === 'SVC') lines.push([seg]);
    else if (lines.length > 0) (lines[lines.length - 1] as X12Segment[]).push(seg);
    else claim.push(seg);
  }
  return { claim, lines };
}

/** The first segment with this id whose first element is `qualifier` (N1*PR, NM1*QC, DTM*232). */
export function qualified(segments: readonly X12Segment[], id: string, qualifier: string): X12Segment | undefined {
  return segments.find((s) => s.id === id && s.element(1) === qualifier);
}

/** `CCYYMMDD` → `CCYY-MM-DD`, undefined when not a date. */
export function x12Date(value: string | undefined): string | undefined {
  if (value === undefined || !/^\d{8}$/.test(value)) return undefined;
  const iso = `${value.slice(0, 4)}-${value.slice(4, 6)}-${value.slice(6, 8)}`;
  const d = new Date(`${iso}T00:00:00Z`);
  return Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== iso ? undefined : iso;
}
