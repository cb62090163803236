// SPDX-License-Identifier: Apache-2.0
/**
 * Code maps from HL7 tables to the canonical vocabulary. Pure. Kept in code (not lookups) because
 * they are HL7-defined tables that do not vary by site; site-specific codes belong in config/lookups.
 */

/** Canonical encounter classes (HL7 table 0004, Patient Class, in words). */
export const EncounterClass = {
  inpatient: 'inpatient',
  outpatient: 'outpatient',
  emergency: 'emergency',
  preadmit: 'preadmit',
  recurring: 'recurring',
  obstetrics: 'obstetrics',
  commercial: 'commercial',
  notApplicable: 'not-applicable',
  unknown: 'unknown',
} as const;
export type EncounterClass = (typeof EncounterClass)[keyof typeof EncounterClass];

/** PV1-2 → canonical class. An unlisted or absent code is `unknown`, never a guess. */
export function mapPatientClass(code: string | undefined): EncounterClass {
  switch (code?.toUpperCase()) {
    case 'I':
      return EncounterClass.inpatient;
    case 'O':
      return EncounterClass.outpatient;
    case 'E':
      return EncounterClass.emergency;
    case 'P':
      return EncounterClass.preadmit;
    case 'R':
      return EncounterClass.recurring;
    case 'B':
      return EncounterClass.obstetrics;
    case 'C':
      return EncounterClass.commercial;
    case 'N':
      return EncounterClass.notApplicable;
    default:
      return EncounterClass.unknown;
  }
}

/** Canonical administrative sex (HL7 table 0001 reduced to the four values FHIR uses). */
export const AdministrativeSex = { male: 'male', female: 'female', other: 'other', unknown: 'unknown' } as const;
export type AdministrativeSex = (typeof AdministrativeSex)[keyof typeof AdministrativeSex];

/** PID-8 → canonical sex. `A` (ambiguous) and `O` map to other; N, U and absent to unknown. */
export function mapAdministrativeSex(code: string | undefined): AdministrativeSex {
  switch (code?.toUpperCase()) {
    case 'M':
      return AdministrativeSex.male;
    case 'F':
      return AdministrativeSex.female;
    case 'O':
    case 'A':
      return AdministrativeSex.other;
    default:
      return AdministrativeSex.unknown;
  }
}

/** AIx-2 segment action code (HL7 table 0206) → what happened to that resource in this message. */
export type ResourceAction = 'added' | 'removed' | 'updated';

export function mapSegmentAction(code: string | undefined): ResourceAction | undefined {
  switch (code?.toUpperCase()) {
    case 'A':
      return 'added';
    case 'D':
      return 'removed';
    case 'U':
      return 'updated';
    default:
      return undefined;
  }
}
