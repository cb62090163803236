// SPDX-License-Identifier: Apache-2.0
/**
 * X12 delimiters, read from the ISA segment the way the standard defines them: the element
 * separator is the character right after `ISA`, the component separator is ISA16, the segment
 * terminator is the character after ISA16, and the repetition separator is ISA11 from version
 * 00501 on (in 00401 ISA11 is the standards identifier, usually `U`, and there are no repetitions).
 */
import { OspreyError } from '../../errors/error-codes.ts';

/** The four X12 delimiters of one interchange. */
export interface X12Delimiters {
  /** Usually `*`. */
  readonly element: string;
  /** ISA16, usually `:` or `>`. */
  readonly component: string;
  /** ISA11 in 5010 (usually `^`); undefined in 4010 and earlier, where ISA11 is not a separator. */
  readonly repetition: string | undefined;
  /** Usually `~`. */
  readonly segment: string;
}

/** The delimiters and the ISA segment's own extent in the text it was read from. */
export interface IsaRead {
  readonly delimiters: X12Delimiters;
  /** The ISA segment without its terminator. */
  readonly isa: string;
  /** Offset (in the text) of the character after the ISA's terminator. */
  readonly end: number;
}

/** ISA has 16 elements; a well-formed one is 106 characters, but senders mis-pad, so we count separators. */
const ISA_ELEMENTS = 16;
/** Past this many characters without the 16th separator the text is not an ISA (guards a scan of a huge file). */
const ISA_MAX_LENGTH = 512;

/**
 * Reads the delimiters from an ISA segment starting at `offset` of `text`. Returns undefined when
 * the text ends before the ISA does (a streaming caller then waits for more); throws
 * `OSPREY_ERR_X12_NO_ISA` / `OSPREY_ERR_X12_BAD_ISA` when it is not a usable ISA.
 */
export function readIsa(text: string, offset = 0): IsaRead | undefined {
  if (text.length - offset < 4) {
    if (!'ISA'.startsWith(text.slice(offset, offset + 3))) throw noIsa();
    return undefined;
  }
  if (text.slice(offset, offset + 3) !== 'ISA') throw noIsa();
  const element = text.charAt(offset + 3);
  if (/[A-Za-z0-9\s]/.test(element)) {
    throw new OspreyError('OSPREY_ERR_X12_BAD_ISA', 'The ISA element separator (the character after "ISA") is a letter, digit or white space');
  }
  let seps = 1;
  let i = offset + 4;
  for (; i < text.length && seps < ISA_ELEMENTS; i++) {
    if (i - offset > ISA_MAX_LENGTH) break;
    if (text.charAt(i) === element) seps++;
  }
  if (seps < ISA_ELEMENTS) {
    if (i - offset > ISA_MAX_LENGTH) throw new OspreyError('OSPREY_ERR_X12_BAD_ISA', `The ISA segment does not have ${ISA_ELEMENTS} elements`);
    return undefined;
  }
  // i is just past the 16th separator: ISA16 then the terminator.
  if (i + 1 >= text.length) return undefined;
  const component = text.charAt(i);
  const segment = text.charAt(i + 1);
  const isa = text.slice(offset, i + 1);
  const fields = isa.split(element);
  const version = fields[12] ?? '';
  const isa11 = fields[11] ?? '';
  const repetition = version >= '00501' && isa11.length === 1 && !/[A-Za-z0-9\s]/.test(isa11) ? isa11 : undefined;
  const all = [element, component, segment, ...(repetition === undefined ? [] : [repetition])];
  if (new Set(all).size !== all.length || /[A-Za-z0-9 ]/.test(component) || /[A-Za-z0-9 ]/.test(segment)) {
    throw new OspreyError('OSPREY_ERR_X12_BAD_ISA', 'The ISA delimiters (element, repetition, component, segment terminator) are not distinct non-alphanumeric characters');
  }
  return { delimiters: { element, component, repetition, segment }, isa, end: i + 2 };
}

function noIsa(): OspreyError {
  return new OspreyError('OSPREY_ERR_X12_NO_ISA', 'The text does not start with an ISA segment');
}

/** True for the characters formatting may put between segments (pretty-printed and CR/LF files). */
export function isX12Padding(ch: string): boolean {
  return ch === '\r' || ch === '\n' || ch === ' ' || ch === '\t' || ch === '\uFEFF';
}
