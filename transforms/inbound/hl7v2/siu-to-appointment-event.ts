// SPDX-License-Identifier: Apache-2.0
/**
 * HL7 v2 SIU (S12 booked, S13 rescheduled, S14 modified, S15 cancelled, S17 deleted, S26 no-show)
 * → `AppointmentEvent@1`. Pure: no I/O, no clock, no randomness.
 *
 * Reads: MSH, SCH-1/2/7/8/9/10/11/25, TQ1-6/7/8, PID-3/5/7/8, AIS-3/4/7/8, AIL-2/3/4,
 * AIP-2/3/4/6/9/10 (every occurrence of AIL and AIP, across all RGS groups).
 * Needs from the channel: `enrich: { lookup: departments, from: AIL-3.1, as: department, required: false }`
 * (the first AIL is the appointment's department). Looks up: `providers`, `facilities`.
 *
 * Timing precedence, newest standard first: TQ1-7/8 (v2.5+), then SCH-11.4/5 (TQ, deprecated but
 * still what many schedulers send), then AIS-4; duration from start/end, else SCH-9/10, else AIS-7/8.
 *
 * Business exceptions: `unmapped-department`, `incomplete-message` (no SCH-2.1, no start time or
 * duration, a malformed time), `unknown-time-zone`. An unknown provider is recorded
 * (`known: false`), not raised: staffing needs the role, ERP labour planning does not.
 */
import { defineTransform, type Hl7Reader, type TransformContext } from '../../../engine/transform-sdk/index.ts';
import {
  APPOINTMENT_EVENT,
  AppointmentEventType,
  type AppointmentEvent,
  type AppointmentProvider,
} from '../../canonical-events/appointment-event.ts';
import { ExceptionCategory, requireDepartment, resolveProvider, timestampReader } from '../../lib/business-rules.ts';
import { mapAdministrativeSex, mapSegmentAction } from '../../lib/code-maps.ts';
import { pickIdentifier, readCoded, readLocation, text } from '../../lib/hl7-fields.ts';
import { addMinutes, durationToMinutes, hl7ToIsoDate, minutesBetween } from '../../lib/hl7-timestamp.ts';
import { readPatientName, readProvider } from '../../lib/person-name.ts';

const TYPE_BY_TRIGGER: Readonly<Record<string, AppointmentEventType>> = {
  S12: AppointmentEventType.booked,
  S13: AppointmentEventType.rescheduled,
  S14: AppointmentEventType.modified,
  S15: AppointmentEventType.cancelled,
  S17: AppointmentEventType.deleted,
  S26: AppointmentEventType.noShow,
};

export default defineTransform<Hl7Reader, AppointmentEvent>({
  name: 'hl7v2/siu-to-appointment-event',
  version: '1.0.0',
  input: 'hl7v2',
  // Explicit parameter types: TypeScript narrows after `ctx.exception(...)` (returns never) only then.
  map(msg: Hl7Reader, ctx: TransformContext) {
    const trigger = text(msg, 'MSH-9.2');
    const type = trigger === undefined ? undefined : TYPE_BY_TRIGGER[trigger];
    if (type === undefined) return ctx.filter(`SIU^${trigger ?? '?'} is not an appointment lifecycle event this channel maps`);

    const sendingApplication = text(msg, 'MSH-3.1') ?? '';
    const sendingFacility = text(msg, 'MSH-4.1') ?? '';
    const departmentCode = text(msg, 'AIL-3.1');
    const baseTags = { facility: text(msg, 'AIL-3.4.1') ?? sendingFacility };

    const controlId = text(msg, 'MSH-10');
    if (controlId === undefined) ctx.exception(ExceptionCategory.incompleteMessage, 'MSH-10 (message control id) is empty', baseTags);
    // The filler (the scheduling system) owns SCH-2; the channel orders by SCH-2.1, and every
    // downstream key is derived from it, so it is required and never replaced by the placer id.
    const appointmentId = text(msg, 'SCH-2.1');
    if (appointmentId === undefined) ctx.exception(ExceptionCategory.incompleteMessage, 'SCH-2.1 (filler appointment id) is empty', baseTags);

    const dept = requireDepartment(ctx, departmentCode, 'AIL-3.1', baseTags);
    const facility = dept?.facility ?? text(msg, 'AIL-3.4.1') ?? sendingFacility;
    const tags = departmentCode === undefined ? { facility } : { facility, department: departmentCode };
    if (facility === '') ctx.exception(ExceptionCategory.incompleteMessage, 'no facility: no department row, AIL-3.4 or MSH-4', tags);

    const iso = timestampReader(ctx, msg, facility, tags);
    const occurredAt = iso('MSH-7.1');
    if (occurredAt === undefined) ctx.exception(ExceptionCategory.incompleteMessage, 'MSH-7 (message time) is empty', tags);

    const start = iso('TQ1-7.1') ?? iso('SCH-11.4.1') ?? iso('AIS-4.1');
    if (start === undefined) ctx.exception(ExceptionCategory.incompleteMessage, 'no start time in TQ1-7, SCH-11.4 or AIS-4', tags);
    const statedEnd = iso('TQ1-8.1') ?? iso('SCH-11.5.1');
    const durationMinutes =
      (statedEnd !== undefined ? minutesBetween(start, statedEnd) : undefined) ??
      durationToMinutes(text(msg, 'SCH-9'), text(msg, 'SCH-10.1')) ??
      durationToMinutes(text(msg, 'AIS-7'), text(msg, 'AIS-8.1')) ??
      durationToMinutes(text(msg, 'TQ1-6.1'), text(msg, 'TQ1-6.2.1'));
    if (durationMinutes === undefined || durationMinutes < 0) {
      ctx.exception(ExceptionCategory.incompleteMessage, 'no usable duration (TQ1-8, SCH-11.5, SCH-9/10, AIS-7/8, TQ1-6)', tags);
    }
    const end = statedEnd ?? addMinutes(start, durationMinutes);

    const appointment: AppointmentEvent['appointment'] = { id: appointmentId, start, end, durationMinutes };
    const placerId = text(msg, 'SCH-1.1');
    if (placerId !== undefined) appointment.placerId = placerId;
    const service = readCoded(msg, 'AIS-3');
    if (service !== undefined) appointment.service = service;
    const reason = readCoded(msg, 'SCH-7');
    if (reason !== undefined) appointment.reason = reason;
    const appointmentType = readCoded(msg, 'SCH-8');
    if (appointmentType !== undefined) appointment.appointmentType = appointmentType;
    const fillerStatus = text(msg, 'SCH-25.1');
    if (fillerStatus !== undefined) appointment.fillerStatus = fillerStatus;
    if (dept !== undefined) appointment.department = dept.department;

    const providers: AppointmentProvider[] = [];
    for (let i = 1; i <= msg.count('AIP'); i++) {
      const ref = readProvider(msg, `AIP[${i}]-3`);
      if (ref === undefined) continue;
      const { id, npi, name, role, known } = resolveProvider(ctx, ref);
      const p: AppointmentProvider = { id, known };
      if (name !== undefined) p.name = name;
      if (npi !== undefined) p.npi = npi;
      if (role !== undefined) p.role = role;
      const resourceType = readCoded(msg, `AIP[${i}]-4`);
      if (resourceType !== undefined) p.resourceType = resourceType;
      const action = mapSegmentAction(text(msg, `AIP[${i}]-2`));
      if (action !== undefined) p.action = action;
      const pStart = iso(`AIP[${i}]-6.1`);
      if (pStart !== undefined) p.start = pStart;
      const pDuration = durationToMinutes(text(msg, `AIP[${i}]-9`), text(msg, `AIP[${i}]-10.1`));
      if (pDuration !== undefined) p.durationMinutes = pDuration;
      providers.push(p);
    }

    const locations: AppointmentEvent['resources']['locations'] = [];
    for (let i = 1; i <= msg.count('AIL'); i++) {
      const code = text(msg, `AIL[${i}]-3.1`);
      if (code === undefined) continue;
      const l: AppointmentEvent['resources']['locations'][number] = { code };
      const loc = readLocation(msg, `AIL[${i}]-3`);
      if (loc !== undefined) l.location = loc;
      const locationType = readCoded(msg, `AIL[${i}]-4`);
      if (locationType !== undefined) l.locationType = locationType;
      const action = mapSegmentAction(text(msg, `AIL[${i}]-2`));
      if (action !== undefined) l.action = action;
      locations.push(l);
    }

    // PID is optional in SIU (a block of time for staff only); a patient without an id is not sent.
    const mrn = pickIdentifier(msg, 'PID-3', 'MR');
    const name = readPatientName(msg, 'PID-5');
    const birthDate = hl7ToIsoDate(text(msg, 'PID-7.1'));
    const patient: AppointmentEvent['patient'] =
      mrn === undefined || name === undefined
        ? undefined
        : {
            mrn: mrn.id,
            ...(mrn.assigningAuthority === undefined ? {} : { assigningAuthority: mrn.assigningAuthority }),
            name,
            ...(birthDate === undefined ? {} : { birthDate }),
            sex: mapAdministrativeSex(text(msg, 'PID-8')),
          };

    return {
      schema: APPOINTMENT_EVENT,
      id: ctx.deterministicId(APPOINTMENT_EVENT, sendingApplication, sendingFacility, controlId),
      type,
      occurredAt,
      appointment,
      ...(patient === undefined ? {} : { patient }),
      resources: { providers, locations },
      facility,
      source: { controlId, sendingApplication, sendingFacility, messageType: `SIU^${trigger}`, sentAt: occurredAt },
    };
  },
});
