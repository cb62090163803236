// SPDX-License-Identifier: Apache-2.0
/**
 * `AppointmentEvent@1`: a step in an appointment's lifecycle (booked, rescheduled, modified,
 * cancelled, deleted, no-show) with the appointment's state as of that step, independent of the
 * SIU message it came from.
 *
 * Each event carries the appointment's full current state (time, resources), not a diff, because
 * SIU messages do: a consumer that only keeps the latest event per `appointment.id` is correct.
 * Versioning as for `EncounterEvent@1`: additive and optional within a major.
 */
import { Type, type Static } from '@sinclair/typebox';
import { DeterministicId, Department, IsoDateTime, Location, Patient, PersonName, Source, Text } from './common.ts';

export const APPOINTMENT_EVENT = 'AppointmentEvent@1';

/** Trigger → type: S12 booked, S13 rescheduled, S14 modified, S15 cancelled, S17 deleted, S26 no-show. */
export const AppointmentEventType = {
  booked: 'appointment.booked',
  rescheduled: 'appointment.rescheduled',
  modified: 'appointment.modified',
  cancelled: 'appointment.cancelled',
  deleted: 'appointment.deleted',
  noShow: 'appointment.no-show',
} as const;
export type AppointmentEventType = (typeof AppointmentEventType)[keyof typeof AppointmentEventType];

/** Types after which the appointment no longer consumes anyone's time. */
export const ENDING_TYPES: ReadonlySet<AppointmentEventType> = new Set([
  AppointmentEventType.cancelled,
  AppointmentEventType.deleted,
  AppointmentEventType.noShow,
]);

const Coded = Type.Object(
  { code: Type.Optional(Text), text: Type.Optional(Text), system: Type.Optional(Text) },
  { additionalProperties: false },
);

const ResourceAction = Type.Union([Type.Literal('added'), Type.Literal('removed'), Type.Literal('updated')], {
  description: 'AIx-2 segment action code (table 0206): what this message does to the resource',
});

/** A clinician booked on the appointment (AIP). */
export const AppointmentProvider = Type.Object(
  {
    id: Type.String({ minLength: 1, description: 'AIP-3.1' }),
    name: Type.Optional(PersonName),
    npi: Type.Optional(Type.String({ pattern: '^\\d{10}$' })),
    role: Type.Optional(Type.String({ minLength: 1, description: 'From the providers lookup' })),
    resourceType: Type.Optional(Coded),
    known: Type.Boolean({ description: 'True when the id is in config/lookups/providers.yaml' }),
    action: Type.Optional(ResourceAction),
    start: Type.Optional(IsoDateTime),
    durationMinutes: Type.Optional(Type.Number({ minimum: 0 })),
  },
  { additionalProperties: false },
);
export type AppointmentProvider = Static<typeof AppointmentProvider>;

/** A room or clinic booked on the appointment (AIL). */
export const AppointmentLocation = Type.Object(
  {
    code: Type.String({ minLength: 1, description: 'AIL-3.1' }),
    location: Type.Optional(Location),
    locationType: Type.Optional(Coded),
    action: Type.Optional(ResourceAction),
  },
  { additionalProperties: false },
);

export const AppointmentEvent = Type.Object(
  {
    schema: Type.Literal(APPOINTMENT_EVENT),
    id: { ...DeterministicId, description: 'deterministicId(AppointmentEvent@1, MSH-3.1, MSH-4.1, MSH-10)' },
    type: Type.Enum(AppointmentEventType),
    occurredAt: { ...IsoDateTime, description: 'MSH-7 (SIU has no EVN)' },
    appointment: Type.Object(
      {
        id: Type.String({ minLength: 1, description: 'Filler appointment id SCH-2.1 (the scheduling system owns it)' }),
        placerId: Type.Optional(Type.String({ minLength: 1, description: 'SCH-1.1' })),
        start: IsoDateTime,
        end: IsoDateTime,
        durationMinutes: Type.Number({ minimum: 0 }),
        service: Type.Optional(Coded),
        reason: Type.Optional(Coded),
        appointmentType: Type.Optional(Coded),
        fillerStatus: Type.Optional(Text),
        department: Type.Optional(Department),
      },
      { additionalProperties: false },
    ),
    patient: Type.Optional(Patient),
    resources: Type.Object(
      {
        providers: Type.Array(AppointmentProvider),
        locations: Type.Array(AppointmentLocation),
      },
      { additionalProperties: false },
    ),
    facility: Type.String({ minLength: 1, description: 'Department lookup facility, else AIL-3.4, else MSH-4.1' }),
    source: Source,
  },
  { additionalProperties: false, title: APPOINTMENT_EVENT },
);
export type AppointmentEvent = Static<typeof AppointmentEvent>;
