// SPDX-License-Identifier: Apache-2.0
/**
 * Small readers over the transform SDK's `Hl7Reader` for the data types the sample transforms use
 * (CX identifiers, PL locations). Pure.
 */
import type { Hl7Reader } from '../../engine/transform-sdk/index.ts';

/**
 * The value at a path as plain text, or undefined.
 *
 * The HL7 null `""` ("delete this value") is read as absent: canonical events carry the current
 * state of a record, not a diff, so "cleared" and "not sent" both mean "no value now".
 * Surrounding spaces are trimmed because senders pad fixed-width fields (`HHR   `).
 */
export function text(msg: Hl7Reader, path: string): string | undefined {
  const v = msg.get(path);
  if (v === null || v === undefined) return undefined;
  const t = v.trim();
  return t === '' ? undefined : t;
}

/** The number of repetitions of a field (0 when absent). */
export function repetitions(msg: Hl7Reader, fieldPath: string): number {
  return msg.getAll(fieldPath).length;
}

/** An identifier (CX) picked out of a repeating list such as PID-3. */
export interface Identifier {
  id: string;
  assigningAuthority?: string;
  typeCode?: string;
}

/**
 * The repetition of a CX list whose identifier type code (CX.5) is `typeCode` (e.g. `MR`), else
 * the first repetition that has an id. Why: feeds put the SSN, the enterprise id or an external MRN
 * first as often as the local MRN; ordering by PID-3.1 only works when the MRN comes first, so the
 * canonical event reads by type and the channel's `orderBy` must be set accordingly.
 */
export function pickIdentifier(msg: Hl7Reader, fieldPath: string, typeCode: string): Identifier | undefined {
  const n = repetitions(msg, fieldPath);
  let first: Identifier | undefined;
  for (let i = 1; i <= n; i++) {
    const id = text(msg, `${fieldPath}[${i}].1`);
    if (id === undefined) continue;
    const ident: Identifier = { id };
    const authority = text(msg, `${fieldPath}[${i}].4.1`);
    if (authority !== undefined) ident.assigningAuthority = authority;
    const type = text(msg, `${fieldPath}[${i}].5`);
    if (type !== undefined) ident.typeCode = type;
    if (type === typeCode) return ident;
    first ??= ident;
  }
  return first;
}

/** A person location (PL) as the canonical events carry it. */
export interface Location {
  pointOfCare?: string;
  room?: string;
  bed?: string;
  facility?: string;
  description?: string;
}

/** Reads a PL field (PV1-3, AIL-3): point of care, room, bed, facility (HD.1), description (PL.9). */
export function readLocation(msg: Hl7Reader, fieldPath: string): Location | undefined {
  const loc: Location = {};
  const set = (key: keyof Location, path: string): void => {
    const v = text(msg, path);
    if (v !== undefined) loc[key] = v;
  };
  set('pointOfCare', `${fieldPath}.1`);
  set('room', `${fieldPath}.2`);
  set('bed', `${fieldPath}.3`);
  set('facility', `${fieldPath}.4.1`);
  set('description', `${fieldPath}.9`);
  return Object.keys(loc).length === 0 ? undefined : loc;
}

/** A coded element (CE/CWE) reduced to code, text and coding system. */
export interface Coded {
  code?: string;
  text?: string;
  system?: string;
}

export function readCoded(msg: Hl7Reader, fieldPath: string): Coded | undefined {
  const c: Coded = {};
  const code = text(msg, `${fieldPath}.1`);
  const txt = text(msg, `${fieldPath}.2`);
  const system = text(msg, `${fieldPath}.3`);
  if (code !== undefined) c.code = code;
  if (txt !== undefined) c.text = txt;
  if (system !== undefined) c.system = system;
  return Object.keys(c).length === 0 ? undefined : c;
}
