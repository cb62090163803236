// SPDX-License-Identifier: Apache-2.0
/**
 * `EncounterEvent@1`: an encounter's lifecycle step (admission, discharge, registration, update and
 * their cancellations), independent of the HL7 message it came from.
 *
 * Versioning: a field may be added as optional within a major; renaming, removing or tightening a
 * field is a new major (`EncounterEvent@2`) published next to this one until consumers move.
 */
import { Type, type Static } from '@sinclair/typebox';
import { EncounterClass } from '../lib/code-maps.ts';
import { DeterministicId, Department, IsoDateTime, Location, Patient, Provider, Source, Text } from './common.ts';

export const ENCOUNTER_EVENT = 'EncounterEvent@1';

/** Trigger → type: A01 admitted, A03 discharged, A04 registered, A08 updated, A11 admit-cancelled, A13 discharge-cancelled. */
export const EncounterEventType = {
  admitted: 'encounter.admitted',
  discharged: 'encounter.discharged',
  registered: 'encounter.registered',
  updated: 'encounter.updated',
  admitCancelled: 'encounter.admit-cancelled',
  dischargeCancelled: 'encounter.discharge-cancelled',
} as const;
export type EncounterEventType = (typeof EncounterEventType)[keyof typeof EncounterEventType];

export const EncounterClassSchema = Type.Enum(EncounterClass, { description: 'PV1-2 (HL7 table 0004) in words' });

export const EncounterEvent = Type.Object(
  {
    schema: Type.Literal(ENCOUNTER_EVENT),
    id: { ...DeterministicId, description: 'deterministicId(EncounterEvent@1, MSH-3.1, MSH-4.1, MSH-10): same message, same id, on any channel' },
    type: Type.Enum(EncounterEventType),
    occurredAt: { ...IsoDateTime, description: 'EVN-6 (event occurred) else EVN-2 (recorded) else MSH-7' },
    patient: Patient,
    encounter: Type.Object(
      {
        visitNumber: Type.String({ minLength: 1, description: 'PV1-19.1, else PID-18.1 (account number)' }),
        class: EncounterClassSchema,
        location: Type.Optional(Location),
        department: Type.Optional(Department),
        hospitalService: Type.Optional(Text),
        attendingProvider: Type.Optional(Provider),
        admittedAt: Type.Optional(IsoDateTime),
        dischargedAt: Type.Optional(IsoDateTime),
        dischargeDisposition: Type.Optional(Text),
      },
      { additionalProperties: false },
    ),
    facility: Type.String({ minLength: 1, description: 'Department lookup facility, else PV1-3.4, else MSH-4.1' }),
    source: Source,
  },
  { additionalProperties: false, title: ENCOUNTER_EVENT },
);
export type EncounterEvent = Static<typeof EncounterEvent>;
