// SPDX-License-Identifier: Apache-2.0
/**
 * `LaborPlanLine@1`: planned clinical labour hours for one appointment, posted to the ERP's labour
 * plan by cost center and date (sent in batches: the destination groups lines into one call).
 *
 * Identity and lifecycle (one line per appointment):
 * - `lineId` is derived from business keys only (sending facility + filler appointment id
 *   SCH-2.1), so every message of the appointment — including the cancellation — computes it alone.
 * - `plan` (booking, reschedule, modification) creates or REPLACES the line: a reschedule moves
 *   the same line to its new date rather than reversing it and adding a new one, because an S13
 *   carries the new slot only, so the old line's date is not knowable without state; replacing by
 *   `lineId` needs none. Hours are absolute, not deltas.
 * - `reverse` (cancellation, deletion, no-show) posts negative hours against the line and closes
 *   it; `reversal.of` is the booking's `lineId`. The reference is authoritative; `hours` is the
 *   negated hours the cancel message describes (omitted when it lists no personnel).
 * `id` is this payload's own id (from the canonical event), stable across retries and replays.
 */
import { Type, type Static } from '@sinclair/typebox';
import { DeterministicId, IsoDate, IsoDateTime, Text } from '../canonical-events/common.ts';

export const LABOR_PLAN_LINE = 'LaborPlanLine@1';

export const StaffHours = Type.Object(
  { providerId: Text, role: Type.Optional(Text), hours: Type.Number() },
  { additionalProperties: false },
);

const common = {
  schema: Type.Literal(LABOR_PLAN_LINE),
  id: DeterministicId,
  lineId: { ...DeterministicId, description: 'deterministicId(LaborPlanLine@1/line, MSH-4.1, SCH-2.1)' },
  appointmentId: Text,
  facility: Text,
  planDate: { ...IsoDate, description: 'Local calendar date of the appointment start' },
  start: IsoDateTime,
  asOf: IsoDateTime,
  sourceEventId: { ...DeterministicId, description: 'The AppointmentEvent@1 id this payload was made from' },
};

export const LaborPlanEntry = Type.Object(
  {
    ...common,
    operation: Type.Literal('plan'),
    change: Type.Union([Type.Literal('booked'), Type.Literal('rescheduled'), Type.Literal('modified')]),
    costCenter: Text,
    departmentCode: Text,
    hours: Type.Number({ minimum: 0 }),
    staff: Type.Array(StaffHours),
  },
  { additionalProperties: false },
);

export const LaborPlanReversal = Type.Object(
  {
    ...common,
    operation: Type.Literal('reverse'),
    costCenter: Type.Optional(Text),
    departmentCode: Type.Optional(Text),
    hours: Type.Optional(Type.Number({ maximum: 0 })),
    staff: Type.Array(StaffHours),
    reversal: Type.Object(
      {
        of: { ...DeterministicId, description: "The booking's lineId (equals lineId)" },
        reason: Type.Union([Type.Literal('cancelled'), Type.Literal('deleted'), Type.Literal('no-show')]),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

export const LaborPlanLine = Type.Union([LaborPlanEntry, LaborPlanReversal], { title: LABOR_PLAN_LINE });
export type LaborPlanLine = Static<typeof LaborPlanLine>;
