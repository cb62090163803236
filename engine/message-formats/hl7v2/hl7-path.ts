// SPDX-License-Identifier: Apache-2.0
/**
 * HL7 paths in the notation analysts use: `PID-5.1`, `PID-3[2].1`, `OBX[3]-5`, `PID-3.4.2`, `MSH-9`.
 * Every index is 1-based, as in the HL7 standard (medplum mixes 0- and 1-based indexes, which is
 * how off-by-one bugs get into transforms: docs/design/0001-hl7-v2-model.md).
 */
import { OspreyError } from '../../errors/error-codes.ts';

/** A parsed path. Absent parts are undefined (a path may stop at the segment, field or component). */
export interface Hl7Path {
  readonly segment: string;
  /** Which occurrence of the segment (1-based); undefined means "the first" for get, "all" for getAll. */
  readonly occurrence: number | undefined;
  readonly field: number | undefined;
  /** Which repetition of the field (1-based); undefined means "the first" for get, "all" for getAll. */
  readonly repetition: number | undefined;
  readonly component: number | undefined;
  readonly subcomponent: number | undefined;
}

const PATH = /^([A-Z][A-Z0-9]{2})(?:\[(\d{1,6})\])?(?:-(\d{1,4})(?:\[(\d{1,6})\])?(?:\.(\d{1,4})(?:\.(\d{1,4}))?)?)?$/;

// Transforms read the same handful of paths millions of times: parse each once.
const cache = new Map<string, Hl7Path>();
const CACHE_LIMIT = 4096;

/**
 * Parses a path; throws `OSPREY_ERR_HL7_BAD_PATH` naming the problem when it is not well formed.
 */
export function parseHl7Path(path: string): Hl7Path {
  const hit = cache.get(path);
  if (hit !== undefined) return hit;
  const m = typeof path === 'string' ? PATH.exec(path) : null;
  if (m === null) {
    throw new OspreyError(
      'OSPREY_ERR_HL7_BAD_PATH',
      `HL7 path ${JSON.stringify(String(path).slice(0, 40))} is not well formed; write SEG[occurrence]-field[repetition].component.subcomponent, e.g. PID-3[2].1 or OBX[3]-5`,
    );
  }
  const num = (s: string | undefined, what: string): number | undefined => {
    if (s === undefined) return undefined;
    const n = Number(s);
    if (n < 1) throw new OspreyError('OSPREY_ERR_HL7_BAD_PATH', `HL7 path ${JSON.stringify(path)}: ${what} is 1-based, 0 is not allowed`);
    return n;
  };
  const parsed: Hl7Path = {
    segment: m[1] as string,
    occurrence: num(m[2], 'the segment occurrence'),
    field: num(m[3], 'the field number'),
    repetition: num(m[4], 'the repetition'),
    component: num(m[5], 'the component'),
    subcomponent: num(m[6], 'the subcomponent'),
  };
  if (parsed.segment === 'MSH' && (parsed.field === 1 || parsed.field === 2) && (parsed.repetition !== undefined || parsed.component !== undefined)) {
    throw new OspreyError(
      'OSPREY_ERR_HL7_BAD_PATH',
      `HL7 path ${JSON.stringify(path)}: MSH-1 (field separator) and MSH-2 (encoding characters) have no repetitions or components`,
    );
  }
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(path, parsed);
  return parsed;
}
