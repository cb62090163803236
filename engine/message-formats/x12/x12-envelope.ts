// SPDX-License-Identifier: Apache-2.0
/**
 * Structural checks of an X12 file's envelopes, streamed (one pass, memory bounded by the longest
 * segment): ISA13 = IEA02, GS06 = GE02, ST02 = SE02, GE01 = the number of transaction sets, IEA01 =
 * the number of functional groups, SE01 = the number of segments from ST to SE, and the file ends on
 * an IEA, not inside a segment. A file source runs this before committing any record of the file,
 * so a broken file is quarantined whole, never half processed.
 *
 * Issue messages carry control numbers and counts only, never segment content (they are logged).
 */
import { isOspreyError } from '../../errors/error-codes.ts';
import { X12SegmentScanner, toBuffer } from './x12-segment-scanner.ts';
import type { X12ScannedSegment, X12ScanLimits } from './x12-segment-scanner.ts';

/** What an envelope issue is about; stable strings, safe to match on. */
export const X12EnvelopeIssueCode = {
  /** The file is empty or does not start with an ISA. */
  noIsa: 'NO_ISA',
  /** An ISA is unusable (delimiters), or a segment is too long to be one. */
  badSegment: 'BAD_SEGMENT',
  /** IEA02 differs from ISA13. */
  ieaControl: 'IEA02_MISMATCH',
  /** GE02 differs from GS06. */
  geControl: 'GE02_MISMATCH',
  /** SE02 differs from ST02. */
  seControl: 'SE02_MISMATCH',
  /** IEA01 differs from the number of GS groups in the interchange. */
  ieaCount: 'IEA01_COUNT',
  /** GE01 differs from the number of ST transaction sets in the group. */
  geCount: 'GE01_COUNT',
  /** SE01 differs from the number of segments from ST to SE, both included. */
  seCount: 'SE01_COUNT',
  /** An interchange has no IEA (the file ends, or another ISA starts). */
  missingIea: 'MISSING_IEA',
  /** A group has no GE. */
  missingGe: 'MISSING_GE',
  /** A transaction set has no SE. */
  missingSe: 'MISSING_SE',
  /** A segment stands outside the envelope it belongs in (GS outside ISA, ST outside GS, data outside ST, a trailer with no header). */
  outside: 'OUTSIDE_ENVELOPE',
  /** The file ends inside a segment (bytes after the last terminator). */
  truncated: 'TRUNCATED',
} as const;
export type X12EnvelopeIssueCode = (typeof X12EnvelopeIssueCode)[keyof typeof X12EnvelopeIssueCode];

/** One envelope problem. */
export interface X12EnvelopeIssue {
  readonly code: X12EnvelopeIssueCode;
  /** Says what differs, with control numbers and counts (no message content). */
  readonly message: string;
  /** Byte offset in the file of the segment concerned. */
  readonly byteOffset?: number;
}

/** Counts from one pass over a file, with its issues. */
export interface X12EnvelopeSummary {
  readonly issues: X12EnvelopeIssue[];
  /** Issues found past `maxIssues` and not kept. */
  readonly moreIssues: number;
  readonly interchanges: number;
  readonly groups: number;
  readonly transactions: number;
  /** CLP segments inside 835 transaction sets: the number of records `split835` yields. */
  readonly claims: number;
  readonly segments: number;
  readonly bytes: number;
}

/** Options of {@link scanX12Envelope}. */
export interface X12EnvelopeOptions extends X12ScanLimits {
  /**
   * Issues kept, at most; a file broken everywhere is reported by its first ones (and a count).
   * @defaultValue 100
   */
  maxIssues?: number;
}

/**
 * Checks a file's envelopes; resolves to the issues found, in file order (empty when the file is
 * sound). Never rejects for a malformed file, only for a failing stream.
 */
export async function validateX12Envelope(readable: AsyncIterable<unknown>, options: X12EnvelopeOptions = {}): Promise<X12EnvelopeIssue[]> {
  return (await scanX12Envelope(readable, options)).issues;
}

interface Open {
  control: string;
  children: number;
  start: number;
}

/**
 * {@link validateX12Envelope} with the counts a file source shows as progress (records done of
 * `claims`).
 */
export async function scanX12Envelope(readable: AsyncIterable<unknown>, options: X12EnvelopeOptions = {}): Promise<X12EnvelopeSummary> {
  const maxIssues = options.maxIssues ?? 100;
  const issues: X12EnvelopeIssue[] = [];
  let dropped = 0;
  const issue = (code: X12EnvelopeIssueCode, message: string, byteOffset?: number): void => {
    if (issues.length < maxIssues) issues.push(byteOffset === undefined ? { code, message } : { code, message, byteOffset });
    else dropped++;
  };
  let isa: Open | undefined;
  let gs: Open | undefined;
  let st: (Open & { is835: boolean }) | undefined;
  let interchanges = 0;
  let groups = 0;
  let transactions = 0;
  let claims = 0;
  let segments = 0;
  let outsideReported = false;

  const closeSt = (at: number): void => {
    if (st !== undefined) issue(X12EnvelopeIssueCode.missingSe, `Transaction set ST02=${st.control} has no SE`, at);
    st = undefined;
  };
  const closeGs = (at: number): void => {
    closeSt(at);
    if (gs !== undefined) issue(X12EnvelopeIssueCode.missingGe, `Functional group GS06=${gs.control} has no GE`, at);
    gs = undefined;
  };
  const closeIsa = (at: number): void => {
    closeGs(at);
    if (isa !== undefined) issue(X12EnvelopeIssueCode.missingIea, `Interchange ISA13=${isa.control} has no IEA`, at);
    isa = undefined;
  };

  const onSegment = (seg: X12ScannedSegment): void => {
    segments++;
    const el = seg.text.split(seg.delimiters.element);
    const e = (n: number): string => (el[n] ?? '').trim();
    switch (seg.id) {
      case 'ISA':
        closeIsa(seg.start);
        isa = { control: e(13), children: 0, start: seg.start };
        interchanges++;
        return;
      case 'GS':
        if (isa === undefined) issue(X12EnvelopeIssueCode.outside, `GS06=${e(6)} stands outside an interchange`, seg.start);
        else isa.children++;
        closeGs(seg.start);
        gs = { control: e(6), children: 0, start: seg.start };
        groups++;
        return;
      case 'ST':
        if (gs === undefined) issue(X12EnvelopeIssueCode.outside, `ST02=${e(2)} stands outside a functional group`, seg.start);
        else gs.children++;
        closeSt(seg.start);
        st = { control: e(2), children: 1, start: seg.start, is835: e(1) === '835' };
        transactions++;
        return;
      case 'SE':
        if (st === undefined) {
          issue(X12EnvelopeIssueCode.outside, `SE02=${e(2)} closes no transaction set`, seg.start);
          return;
        }
        st.children++;
        if (e(2) !== st.control) issue(X12EnvelopeIssueCode.seControl, `SE02=${e(2)} does not match ST02=${st.control}`, seg.start);
        if (Number(e(1)) !== st.children || e(1) === '') {
          issue(X12EnvelopeIssueCode.seCount, `SE01=${e(1)} but transaction set ST02=${st.control} has ${st.children} segments`, seg.start);
        }
        st = undefined;
        return;
      case 'GE':
        closeSt(seg.start);
        if (gs === undefined) {
          issue(X12EnvelopeIssueCode.outside, `GE02=${e(2)} closes no functional group`, seg.start);
          return;
        }
        if (e(2) !== gs.control) issue(X12EnvelopeIssueCode.geControl, `GE02=${e(2)} does not match GS06=${gs.control}`, seg.start);
        if (Number(e(1)) !== gs.children || e(1) === '') {
          issue(X12EnvelopeIssueCode.geCount, `GE01=${e(1)} but functional group GS06=${gs.control} has ${gs.children} transaction sets`, seg.start);
        }
        gs = undefined;
        return;
      case 'IEA':
        closeGs(seg.start);
        if (isa === undefined) {
          issue(X12EnvelopeIssueCode.outside, `IEA02=${e(2)} closes no interchange`, seg.start);
          return;
        }
        if (e(2) !== isa.control) issue(X12EnvelopeIssueCode.ieaControl, `IEA02=${e(2)} does not match ISA13=${isa.control}`, seg.start);
        if (Number(e(1)) !== isa.children || e(1) === '') {
          issue(X12EnvelopeIssueCode.ieaCount, `IEA01=${e(1)} but interchange ISA13=${isa.control} has ${isa.children} functional groups`, seg.start);
        }
        isa = undefined;
        return;
      default:
        if (st === undefined) {
          // One report per file: a file with data outside its envelopes would otherwise fill the list.
          if (!outsideReported) issue(X12EnvelopeIssueCode.outside, `A ${seg.id.slice(0, 3)} segment stands outside a transaction set`, seg.start);
          outsideReported = true;
          return;
        }
        st.children++;
        if (st.is835 && seg.id === 'CLP') claims++;
    }
  };

  const scanner = new X12SegmentScanner(options);
  let bytes = 0;
  try {
    for await (const chunk of readable) {
      for (const seg of scanner.push(toBuffer(chunk))) onSegment(seg);
    }
    const last = scanner.end();
    for (const seg of last.segments) onSegment(seg);
    bytes = last.end.bytes;
    if (interchanges === 0 && !last.end.truncated) {
      issue(X12EnvelopeIssueCode.noIsa, 'The file holds no ISA segment', 0);
    }
    if (last.end.truncated) {
      issue(X12EnvelopeIssueCode.truncated, `The file ends inside a segment (${last.end.bytes - (last.end.truncatedAt ?? 0)} bytes after the last terminator)`, last.end.truncatedAt);
    }
    closeIsa(bytes);
  } catch (err) {
    if (!isOspreyError(err)) throw err;
    const code = err.code === 'OSPREY_ERR_X12_NO_ISA' ? X12EnvelopeIssueCode.noIsa : X12EnvelopeIssueCode.badSegment;
    issue(code, `${err.message} (${err.code})`);
  }
  return { issues, moreIssues: dropped, interchanges, groups, transactions, claims, segments, bytes };
}
