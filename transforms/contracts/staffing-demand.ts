// SPDX-License-Identifier: Apache-2.0
/**
 * `StaffingDemand@1`: the staff an appointment needs (`open`, with one requirement per clinician
 * and role), or that it no longer needs them (`release`, on cancellation, deletion or no-show).
 *
 * Identity: `demandId` is derived from business keys only (sending facility + filler appointment
 * id SCH-2.1), so booking, reschedule, modification and cancellation all address the same demand;
 * the workforce system upserts by it and ignores a payload whose `asOf` is older than what it has.
 * Each `open` carries the whole demand (not a diff), as SIU messages carry the whole appointment.
 * Minimum necessary: no patient identity is sent.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Department, DeterministicId, IsoDateTime, Text } from '../canonical-events/common.ts';

export const STAFFING_DEMAND = 'StaffingDemand@1';

const Service = Type.Object(
  { code: Type.Optional(Text), text: Type.Optional(Text), system: Type.Optional(Text) },
  { additionalProperties: false },
);

const common = {
  schema: Type.Literal(STAFFING_DEMAND),
  id: DeterministicId,
  demandId: { ...DeterministicId, description: 'deterministicId(StaffingDemand@1/demand, MSH-4.1, SCH-2.1)' },
  appointmentId: Text,
  facility: Text,
  start: IsoDateTime,
  end: IsoDateTime,
  asOf: IsoDateTime,
  sourceEventId: { ...DeterministicId, description: 'The AppointmentEvent@1 id this payload was made from' },
};

export const StaffingRequirement = Type.Object(
  {
    role: Text,
    providerId: Text,
    npi: Type.Optional(Type.String({ pattern: '^\\d{10}$' })),
    start: IsoDateTime,
    durationMinutes: Type.Number({ minimum: 0 }),
  },
  { additionalProperties: false },
);

export const DemandOpen = Type.Object(
  {
    ...common,
    operation: Type.Literal('open'),
    change: Type.Union([Type.Literal('booked'), Type.Literal('rescheduled'), Type.Literal('modified')]),
    department: Department,
    durationMinutes: Type.Number({ minimum: 0 }),
    service: Type.Optional(Service),
    requirements: Type.Array(StaffingRequirement),
  },
  { additionalProperties: false },
);

export const DemandRelease = Type.Object(
  {
    ...common,
    operation: Type.Literal('release'),
    department: Type.Optional(Department),
    release: Type.Object(
      {
        of: { ...DeterministicId, description: 'The demandId released (equals demandId)' },
        reason: Type.Union([Type.Literal('cancelled'), Type.Literal('deleted'), Type.Literal('no-show')]),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

export const StaffingDemand = Type.Union([DemandOpen, DemandRelease], { title: STAFFING_DEMAND });
export type StaffingDemand = Static<typeof StaffingDemand>;
