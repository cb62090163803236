// SPDX-License-Identifier: Apache-2.0
/**
 * Splits an 835 file into claim-payment records, streamed: one record per CLP loop (CLP and its CAS,
 * NM1, MIA/MOA, REF, DTM, PER, AMT, QTY, SVC lines), each carrying the header context a claim needs
 * to stand alone — the ISA, the GS, the transaction set's header (ST, BPR amount and dates, TRN
 * check/EFT number, CUR/REF/DTM, the payer N1*PR loop, the payee N1*PE loop) and the LX/TS3/TS2 of
 * the claim's header-number loop. A record's text starts with its ISA, so it re-parses alone with
 * {@link X12Message.parse} and keeps its interchange's delimiters.
 *
 * Memory: the current transaction set's header and the current claim, nothing else; both are
 * bounded. PLB (provider-level adjustments) ends the last claim and is not a claim: it is not
 * emitted. Transaction sets other than 835 are skipped. The caller is expected to have run
 * `validateX12Envelope` on the file first; the splitter still refuses a file that ends inside a
 * segment or an open transaction set (the claim in progress is then not emitted).
 * See docs/design/0012-x12-splitter.md.
 */
import { OspreyError } from '../../errors/error-codes.ts';
import type { RecordLineage } from '../message-format.ts';
import { X12SegmentScanner, toBuffer } from './x12-segment-scanner.ts';
import type { X12ScannedSegment, X12ScanLimits } from './x12-segment-scanner.ts';

/** One claim payment, as a file source stores it. */
export interface X12ClaimRecord {
  /** The record's X12 text: ISA, GS, the 835 header, LX, the CLP loop; segments terminated, no line breaks. */
  readonly text: string;
  /** Index in the file (0-based) and the control numbers around the claim. */
  readonly lineage: RecordLineage & { recordIndex: number; envelope: { isa13: string; gs06: string; st02: string } };
  /** Bytes of the file holding the CLP loop: `start` inclusive, `end` exclusive (past its last terminator). */
  readonly byteRange: { readonly start: number; readonly end: number };
}

/** Options of {@link split835}. */
export interface Split835Options extends X12ScanLimits {
  /**
   * Most segments one claim's loop may have; more throws `OSPREY_ERR_X12_TOO_LARGE`.
   * @defaultValue 20000
   */
  maxClaimSegments?: number;
  /**
   * Most segments of a transaction set's header (ST to the first LX/CLP) kept as context.
   * @defaultValue 1000
   */
  maxHeaderSegments?: number;
}

/** Segments that end the claim in progress (a new loop or an envelope trailer/header). */
const CLAIM_ENDERS = new Set(['CLP', 'LX', 'PLB', 'SE', 'GE', 'IEA', 'ISA', 'GS', 'ST']);

/**
 * Streams claim-payment records out of an 835 byte stream (a `Readable`, or any async iterable of
 * Buffer/string chunks). Throws `OSPREY_ERR_X12_ENVELOPE` when the file ends inside a segment or a
 * transaction set, `OSPREY_ERR_X12_TOO_LARGE` past the limits, `OSPREY_ERR_X12_NO_ISA` /
 * `OSPREY_ERR_X12_BAD_ISA` when it is not X12.
 */
export async function* split835(readable: AsyncIterable<unknown>, options: Split835Options = {}): AsyncGenerator<X12ClaimRecord> {
  const maxClaim = options.maxClaimSegments ?? 20000;
  const maxHeader = options.maxHeaderSegments ?? 1000;
  const scanner = new X12SegmentScanner(options);

  let isa: X12ScannedSegment | undefined;
  let gs: X12ScannedSegment | undefined;
  let st: X12ScannedSegment | undefined;
  let is835 = false;
  /** ST … up to the first LX/CLP of the transaction set. */
  let header: string[] = [];
  let inHeader = false;
  /** LX and what follows it up to the first CLP (TS3, TS2). */
  let lx: string[] = [];
  let inLx = false;
  let claim: string[] = [];
  let claimStart = 0;
  let claimEnd = 0;
  let recordIndex = 0;

  const element = (seg: X12ScannedSegment | undefined, n: number): string => (seg === undefined ? '' : (seg.text.split(seg.delimiters.element)[n] ?? '').trim());

  const flush = (): X12ClaimRecord | undefined => {
    if (claim.length === 0 || isa === undefined) {
      claim = [];
      return undefined;
    }
    const term = isa.delimiters.segment;
    const parts = [isa.text, ...(gs === undefined ? [] : [gs.text]), ...header, ...lx, ...claim];
    const record: X12ClaimRecord = {
      text: parts.join(term) + term,
      lineage: { recordIndex, envelope: { isa13: element(isa, 13), gs06: element(gs, 6), st02: element(st, 2) } },
      byteRange: { start: claimStart, end: claimEnd },
    };
    recordIndex++;
    claim = [];
    return record;
  };

  // At most one record ends per segment; a plain return (not a generator) keeps the per-segment cost to a call.
  const onSegment = (seg: X12ScannedSegment): X12ClaimRecord | undefined => {
    const done = CLAIM_ENDERS.has(seg.id) ? flush() : undefined;
    switch (seg.id) {
      case 'ISA':
        isa = seg;
        gs = undefined;
        st = undefined;
        inHeader = inLx = false;
        return done;
      case 'GS':
        gs = seg;
        st = undefined;
        inHeader = inLx = false;
        return done;
      case 'ST':
        st = seg;
        is835 = element(seg, 1) === '835';
        header = [seg.text];
        lx = [];
        inHeader = true;
        inLx = false;
        return done;
      case 'SE':
      case 'GE':
      case 'IEA':
        if (seg.id === 'SE') st = undefined;
        header = [];
        lx = [];
        inHeader = inLx = false;
        return done;
      case 'LX':
        inHeader = false;
        lx = [seg.text];
        inLx = true;
        return done;
      case 'PLB':
        inHeader = inLx = false;
        return done;
      case 'CLP':
        inHeader = inLx = false;
        if (!is835 || st === undefined) return done;
        claim = [seg.text];
        claimStart = seg.start;
        claimEnd = seg.end;
        return done;
      default:
        if (claim.length > 0) {
          if (claim.length >= maxClaim) throw new OspreyError('OSPREY_ERR_X12_TOO_LARGE', `A claim payment (record ${recordIndex}) has more than ${maxClaim} segments`);
          claim.push(seg.text);
          claimEnd = seg.end;
        } else if (inHeader) {
          if (header.length >= maxHeader) throw new OspreyError('OSPREY_ERR_X12_TOO_LARGE', `An 835 header (ST02=${element(st, 2)}) has more than ${maxHeader} segments before its first claim`);
          header.push(seg.text);
        } else if (inLx) {
          if (lx.length >= maxHeader) throw new OspreyError('OSPREY_ERR_X12_TOO_LARGE', `An 835 LX loop header (ST02=${element(st, 2)}) has more than ${maxHeader} segments before its first claim`);
          lx.push(seg.text);
        }
        return done;
    }
  };
  for await (const chunk of readable) {
    for (const seg of scanner.push(toBuffer(chunk))) {
      const r = onSegment(seg);
      if (r !== undefined) yield r;
    }
  }
  const last = scanner.end();
  for (const seg of last.segments) {
    const r = onSegment(seg);
    if (r !== undefined) yield r;
  }
  if (last.end.truncated) {
    throw new OspreyError('OSPREY_ERR_X12_ENVELOPE', `The X12 file ends inside a segment at byte ${last.end.truncatedAt}; ${recordIndex} claim payments were complete before it`);
  }
  if (claim.length > 0 || st !== undefined) {
    throw new OspreyError('OSPREY_ERR_X12_ENVELOPE', `The X12 file ends inside transaction set ST02=${element(st, 2)} (no SE); ${recordIndex} claim payments were complete before it`);
  }
}
