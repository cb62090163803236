// SPDX-License-Identifier: Apache-2.0
/**
 * Person names from HL7 XPN (patients) and XCN (providers), and their display forms. Pure.
 *
 * Components are read one by one (never the whole field's text) so that escapes such as `\T\`
 * are decoded by the reader and non-ASCII letters come through untouched.
 */
import type { Hl7Reader } from '../../engine/transform-sdk/index.ts';
import { repetitions, text } from './hl7-fields.ts';

export interface PersonName {
  family: string;
  given?: string;
  middle?: string;
}

function build(family: string | undefined, given: string | undefined, middle: string | undefined): PersonName | undefined {
  if (family === undefined && given === undefined) return undefined;
  // A name with only a given name still names someone; family is required by the schemas, so an
  // absent surname is carried as '' rather than dropping the person.
  const name: PersonName = { family: family ?? '' };
  if (given !== undefined) name.given = given;
  if (middle !== undefined) name.middle = middle;
  return name;
}

/**
 * A patient's name from an XPN list (PID-5). Picks the legal name (XPN.7 = `L`) when several
 * repetitions are sent (aliases, maiden names), else the first. XPN.1 is FN since v2.3.1, so the
 * surname is its first subcomponent (`EVERYMAN&&&&Aniston` → `EVERYMAN`).
 */
export function readPatientName(msg: Hl7Reader, fieldPath: string): PersonName | undefined {
  const n = Math.max(repetitions(msg, fieldPath), 1);
  let chosen = 1;
  for (let i = 1; i <= n; i++) {
    if (text(msg, `${fieldPath}[${i}].7`) === 'L') {
      chosen = i;
      break;
    }
  }
  const p = `${fieldPath}[${chosen}]`;
  return build(text(msg, `${p}.1.1`), text(msg, `${p}.2`), text(msg, `${p}.3`));
}

/** A provider from an XCN (PV1-7, AIP-3): id (XCN.1) and name (XCN.2.1, .3, .4). */
export interface ProviderRef {
  id: string;
  name?: PersonName;
}

export function readProvider(msg: Hl7Reader, fieldPath: string): ProviderRef | undefined {
  const id = text(msg, `${fieldPath}.1`);
  if (id === undefined) return undefined;
  const ref: ProviderRef = { id };
  const name = build(text(msg, `${fieldPath}.2.1`), text(msg, `${fieldPath}.3`), text(msg, `${fieldPath}.4`));
  if (name !== undefined) ref.name = name;
  return ref;
}

/** `Family, Given Middle` — the form billing and ERP screens sort by. */
export function formatNameFamilyFirst(name: PersonName): string {
  const rest = [name.given, name.middle].filter((s): s is string => s !== undefined && s !== '').join(' ');
  return rest === '' ? name.family : `${name.family}, ${rest}`;
}

/** `Given Middle Family` — the form people read on a roster. */
export function formatNameGivenFirst(name: PersonName): string {
  return [name.given, name.middle, name.family].filter((s): s is string => s !== undefined && s !== '').join(' ');
}
