// SPDX-License-Identifier: Apache-2.0
/**
 * `AppointmentEvent@1` → `LaborPlanLine@1` for the ERP's labour plan (a batched destination).
 * Pure. One line per appointment, addressed by `lineId` (sending facility + SCH-2.1).
 *
 * - booked → `plan` the line: hours = sum over the clinicians on the appointment of their own
 *   duration (AIP-9/10) or the appointment's; a booking with no clinician is filtered (no labour);
 * - rescheduled / modified → `plan` the same line again, REPLACING it (new date, new hours). Chosen
 *   over reverse-and-rebook because an S13 carries only the new slot: the old line's date is not in
 *   the message, while its `lineId` is. Clinicians removed by the message (AIP-2 = D) drop out;
 * - cancelled / deleted / no-show → `reverse`: negative hours of the clinicians the message lists,
 *   and `reversal.of` = the booking's `lineId`. No-show reverses too (judgement: the plan is of
 *   patient-driven demand; the ERP tells no-shows apart by `reversal.reason`).
 *
 * Business exceptions: `unmapped-department` when a line to plan has no department (no AIL): the ERP
 * plans by cost center. An unknown provider is NOT an exception here: hours count by cost center;
 * the role is informative (workforce staffing is where an unknown clinician stops the message).
 */
import { defineTransform, type TransformContext } from '../../../engine/transform-sdk/index.ts';
import { AppointmentEventType, type AppointmentEvent, type AppointmentProvider } from '../../canonical-events/appointment-event.ts';
import { LABOR_PLAN_LINE, type LaborPlanLine } from '../../contracts/labor-plan-line.ts';
import { ExceptionCategory, round2 } from '../../lib/business-rules.ts';
import { localDateOf } from '../../lib/hl7-timestamp.ts';

interface StaffHours {
  providerId: string;
  role?: string;
  hours: number;
}

function staffHours(providers: readonly AppointmentProvider[], appointmentMinutes: number, sign: 1 | -1): StaffHours[] {
  return providers
    .filter((p) => p.action !== 'removed')
    .map((p) => ({
      providerId: p.id,
      ...(p.role === undefined ? {} : { role: p.role }),
      hours: round2((sign * (p.durationMinutes ?? appointmentMinutes)) / 60),
    }));
}

export default defineTransform<AppointmentEvent, LaborPlanLine>({
  name: 'erp/appointment-to-labor-plan',
  version: '1.0.0',
  input: 'event',
  // Explicit parameter types: TypeScript narrows after `ctx.exception(...)` (returns never) only then.
  map(event: AppointmentEvent, ctx: TransformContext) {
    const { appointment } = event;
    const lineId = ctx.deterministicId(`${LABOR_PLAN_LINE}/line`, event.source.sendingFacility, appointment.id);
    const head = { schema: LABOR_PLAN_LINE, id: ctx.deterministicId(LABOR_PLAN_LINE, event.id), lineId } as const;
    const slot = { appointmentId: appointment.id, facility: event.facility, planDate: localDateOf(appointment.start), start: appointment.start };
    const tail = { asOf: event.occurredAt, sourceEventId: event.id };
    const department = appointment.department;

    switch (event.type) {
      case AppointmentEventType.cancelled:
      case AppointmentEventType.deleted:
      case AppointmentEventType.noShow: {
        const staff = staffHours(event.resources.providers, appointment.durationMinutes, -1);
        return {
          ...head,
          operation: 'reverse',
          ...slot,
          ...(department === undefined ? {} : { costCenter: department.costCenter, departmentCode: department.code }),
          // Omitted when the cancel lists no clinicians: the ERP reverses the referenced line in full anyway.
          ...(staff.length === 0 ? {} : { hours: round2(staff.reduce((sum, s) => sum + s.hours, 0)) }),
          staff,
          reversal: {
            of: lineId,
            reason: event.type === AppointmentEventType.cancelled ? 'cancelled' : event.type === AppointmentEventType.deleted ? 'deleted' : 'no-show',
          },
          ...tail,
        };
      }
      case AppointmentEventType.booked:
      case AppointmentEventType.rescheduled:
      case AppointmentEventType.modified: {
        const staff = staffHours(event.resources.providers, appointment.durationMinutes, 1);
        // A reschedule or modification that leaves nobody on the appointment still replaces the
        // line (with 0 hours); only a booking without clinicians creates nothing.
        if (staff.length === 0 && event.type === AppointmentEventType.booked) {
          return ctx.filter(`appointment ${appointment.id} books no clinician (AIP): no labour to plan`);
        }
        if (department === undefined) {
          ctx.exception(ExceptionCategory.unmappedDepartment, `appointment ${appointment.id} has no location (AIL-3.1): no cost center to plan on`, {
            facility: event.facility,
          });
        }
        return {
          ...head,
          operation: 'plan',
          change: event.type === AppointmentEventType.booked ? 'booked' : event.type === AppointmentEventType.rescheduled ? 'rescheduled' : 'modified',
          ...slot,
          costCenter: department.costCenter,
          departmentCode: department.code,
          hours: round2(staff.reduce((sum, s) => sum + s.hours, 0)),
          staff,
          ...tail,
        };
      }
      default:
        return event.type satisfies never;
    }
  },
});
