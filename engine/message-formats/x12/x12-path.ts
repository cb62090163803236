// SPDX-License-Identifier: Apache-2.0
/**
 * X12 paths in the notation remittance analysts use: `CLP-1`, `CAS[2]-3` (the second CAS segment),
 * `SVC-1.2` (a component), `NM1-9`, `REF-2[2]` (a repetition, 5010). Every index is 1-based; the
 * element number may be written with a leading zero (`CLP-01`), as implementation guides print it.
 */
import { OspreyError } from '../../errors/error-codes.ts';

/** A parsed path. Absent parts are undefined (a path may stop at the segment, element or component). */
export interface X12Path {
  /** Segment id, two or three upper-case letters or digits (`N1`, `CLP`). */
  readonly segment: string;
  /** Which occurrence of the segment (1-based); undefined means "the first" for get, "all" for getAll. */
  readonly occurrence: number | undefined;
  readonly element: number | undefined;
  /** Which repetition of the element (1-based); undefined means "the first" for get, "all" for getAll. */
  readonly repetition: number | undefined;
  readonly component: number | undefined;
}

const PATH = /^([A-Z][A-Z0-9]{1,2})(?:\[(\d{1,7})\])?(?:-(\d{1,3})(?:\[(\d{1,4})\])?(?:\.(\d{1,3}))?)?$/;

// Transforms read the same few paths for every claim: parse each once.
const cache = new Map<string, X12Path>();
const CACHE_LIMIT = 4096;

/** Parses a path; throws `OSPREY_ERR_X12_BAD_PATH` naming the problem when it is not well formed. */
export function parseX12Path(path: string): X12Path {
  const hit = cache.get(path);
  if (hit !== undefined) return hit;
  const m = typeof path === 'string' ? PATH.exec(path) : null;
  if (m === null) {
    throw new OspreyError(
      'OSPREY_ERR_X12_BAD_PATH',
      `X12 path ${JSON.stringify(String(path).slice(0, 40))} is not well formed; write SEG[occurrence]-element[repetition].component, e.g. CLP-1, CAS[2]-3 or SVC-1.2`,
    );
  }
  const num = (s: string | undefined, what: string): number | undefined => {
    if (s === undefined) return undefined;
    const n = Number(s);
    if (n < 1) throw new OspreyError('OSPREY_ERR_X12_BAD_PATH', `X12 path ${JSON.stringify(path)}: ${what} is 1-based, 0 is not allowed`);
    return n;
  };
  const parsed: X12Path = {
    segment: m[1] as string,
    occurrence: num(m[2], 'the segment occurrence'),
    element: num(m[3], 'the element number'),
    repetition: num(m[4], 'the repetition'),
    component: num(m[5], 'the component'),
  };
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(path, parsed);
  return parsed;
}
