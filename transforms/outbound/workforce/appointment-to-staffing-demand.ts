// SPDX-License-Identifier: Apache-2.0
/**
 * `AppointmentEvent@1` → `StaffingDemand@1` for the workforce system. Pure.
 *
 * - booked / rescheduled / modified → `open` with the whole current demand: one requirement per
 *   clinician still on the appointment (resources the message removes, AIP-2 = D, are left out),
 *   at the clinician's own start and duration when the message gives them;
 * - cancelled / deleted / no-show → `release` of the same `demandId` (sending facility + SCH-2.1,
 *   computable from the cancel message alone). A no-show releases too: the notice comes at or after
 *   the slot, and whatever of the slot remains is no longer needed.
 *
 * Business exceptions (on `open` only): `unmapped-department` when the appointment has no
 * department (no AIL) — demand is staffed per unit; `unknown-provider` when a clinician is not in
 * the providers lookup — the role to staff is unknown. A release is never blocked on master data:
 * holding it would keep staff booked for an appointment that no longer exists.
 */
import { defineTransform, type TransformContext } from '../../../engine/transform-sdk/index.ts';
import { AppointmentEventType, type AppointmentEvent } from '../../canonical-events/appointment-event.ts';
import { STAFFING_DEMAND, type StaffingDemand } from '../../contracts/staffing-demand.ts';
import { ExceptionCategory } from '../../lib/business-rules.ts';

type Requirement = Extract<StaffingDemand, { operation: 'open' }>['requirements'][number];

export default defineTransform<AppointmentEvent, StaffingDemand>({
  name: 'workforce/appointment-to-staffing-demand',
  version: '1.0.0',
  input: 'event',
  // Explicit parameter types: TypeScript narrows after `ctx.exception(...)` (returns never) only then.
  map(event: AppointmentEvent, ctx: TransformContext) {
    const { appointment } = event;
    const demandId = ctx.deterministicId(`${STAFFING_DEMAND}/demand`, event.source.sendingFacility, appointment.id);
    const head = { schema: STAFFING_DEMAND, id: ctx.deterministicId(STAFFING_DEMAND, event.id), demandId } as const;
    const slot = { appointmentId: appointment.id, facility: event.facility, start: appointment.start, end: appointment.end };
    const tail = { asOf: event.occurredAt, sourceEventId: event.id };

    switch (event.type) {
      case AppointmentEventType.cancelled:
      case AppointmentEventType.deleted:
      case AppointmentEventType.noShow:
        return {
          ...head,
          operation: 'release',
          ...slot,
          ...(appointment.department === undefined ? {} : { department: appointment.department }),
          release: {
            of: demandId,
            reason: event.type === AppointmentEventType.cancelled ? 'cancelled' : event.type === AppointmentEventType.deleted ? 'deleted' : 'no-show',
          },
          ...tail,
        };
      case AppointmentEventType.booked:
      case AppointmentEventType.rescheduled:
      case AppointmentEventType.modified: {
        const department = appointment.department;
        if (department === undefined) {
          ctx.exception(ExceptionCategory.unmappedDepartment, `appointment ${appointment.id} has no location (AIL-3.1): no unit to staff`, {
            facility: event.facility,
          });
        }
        const tags = { facility: event.facility, department: department.code };
        const requirements: Requirement[] = [];
        for (const p of event.resources.providers) {
          if (p.action === 'removed') continue;
          if (!p.known || p.role === undefined) {
            ctx.exception(ExceptionCategory.unknownProvider, `provider '${p.id}' (AIP-3.1) on appointment ${appointment.id} is not in lookup 'providers' or has no role`, {
              ...tags,
              provider: p.id,
            });
          }
          requirements.push({
            role: p.role,
            providerId: p.id,
            ...(p.npi === undefined ? {} : { npi: p.npi }),
            start: p.start ?? appointment.start,
            durationMinutes: p.durationMinutes ?? appointment.durationMinutes,
          });
        }
        return {
          ...head,
          operation: 'open',
          change: event.type === AppointmentEventType.booked ? 'booked' : event.type === AppointmentEventType.rescheduled ? 'rescheduled' : 'modified',
          ...slot,
          durationMinutes: appointment.durationMinutes,
          department,
          ...(appointment.service === undefined ? {} : { service: appointment.service }),
          requirements,
          ...tail,
        };
      }
      default:
        return event.type satisfies never;
    }
  },
});
