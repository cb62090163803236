// SPDX-License-Identifier: Apache-2.0
/**
 * HL7 v2 ADT (A01 admit, A03 discharge, A04 register, A08 update, A11 cancel admit, A13 cancel
 * discharge) → `EncounterEvent@1`. Pure: no I/O, no clock, no randomness.
 *
 * Reads: MSH-3/4/7/9/10, EVN-2/6, PID-3/5/7/8/18, PV1-2/3/7/10/19/36/44/45.
 * Needs from the channel: `enrich: { lookup: departments, from: PV1-3.1, as: department, required: false }`.
 * Looks up: `providers` (attending NPI and role, not required here), `facilities` (time zone).
 *
 * Business exceptions: `unmapped-department` (PV1-3.1 not in departments — every destination of an
 * encounter posts by department, so the canonical event is not produced without one),
 * `incomplete-message` (no MSH-10, PID-3 or visit number; a malformed time), `unknown-time-zone`.
 * An unknown attending is NOT an exception here: the event records `known: false` and each
 * destination decides (RCM needs the NPI at discharge; ERP accruals do not).
 */
import { defineTransform, type Hl7Reader, type TransformContext } from '../../../engine/transform-sdk/index.ts';
import { ENCOUNTER_EVENT, EncounterEventType, type EncounterEvent } from '../../canonical-events/encounter-event.ts';
import { ExceptionCategory, requireDepartment, resolveProvider, timestampReader } from '../../lib/business-rules.ts';
import { mapAdministrativeSex, mapPatientClass } from '../../lib/code-maps.ts';
import { pickIdentifier, readLocation, text } from '../../lib/hl7-fields.ts';
import { hl7ToIsoDate } from '../../lib/hl7-timestamp.ts';
import { readPatientName, readProvider } from '../../lib/person-name.ts';

const TYPE_BY_TRIGGER: Readonly<Record<string, EncounterEventType>> = {
  A01: EncounterEventType.admitted,
  A03: EncounterEventType.discharged,
  A04: EncounterEventType.registered,
  A08: EncounterEventType.updated,
  A11: EncounterEventType.admitCancelled,
  A13: EncounterEventType.dischargeCancelled,
};

export default defineTransform<Hl7Reader, EncounterEvent>({
  name: 'hl7v2/adt-to-encounter-event',
  version: '1.0.0',
  input: 'hl7v2',
  // Explicit parameter types: TypeScript narrows after `ctx.exception(...)` (returns never) only then.
  map(msg: Hl7Reader, ctx: TransformContext) {
    // MSH-9.2 is the trigger; very old senders leave it empty and put it in EVN-1 only.
    const trigger = text(msg, 'MSH-9.2') ?? text(msg, 'EVN-1');
    const type = trigger === undefined ? undefined : TYPE_BY_TRIGGER[trigger];
    if (type === undefined) return ctx.filter(`ADT^${trigger ?? '?'} is not an encounter lifecycle event this channel maps`);

    const sendingApplication = text(msg, 'MSH-3.1') ?? '';
    const sendingFacility = text(msg, 'MSH-4.1') ?? '';
    const departmentCode = text(msg, 'PV1-3.1');
    const location = readLocation(msg, 'PV1-3');
    const baseTags = { facility: location?.facility ?? sendingFacility };

    const controlId = text(msg, 'MSH-10');
    if (controlId === undefined) ctx.exception(ExceptionCategory.incompleteMessage, 'MSH-10 (message control id) is empty', baseTags);

    const dept = requireDepartment(ctx, departmentCode, 'PV1-3.1', baseTags);
    const facility = dept?.facility ?? location?.facility ?? sendingFacility;
    const tags = departmentCode === undefined ? { facility } : { facility, department: departmentCode };
    if (facility === '') ctx.exception(ExceptionCategory.incompleteMessage, 'no facility: no department row, PV1-3.4 or MSH-4', tags);

    const mrn = pickIdentifier(msg, 'PID-3', 'MR');
    if (mrn === undefined) ctx.exception(ExceptionCategory.incompleteMessage, 'PID-3 (patient identifier list) is empty', tags);
    const name = readPatientName(msg, 'PID-5');
    if (name === undefined) ctx.exception(ExceptionCategory.incompleteMessage, 'PID-5 (patient name) is empty', tags);
    const visitNumber = text(msg, 'PV1-19.1') ?? text(msg, 'PID-18.1');
    if (visitNumber === undefined) ctx.exception(ExceptionCategory.incompleteMessage, 'no visit number in PV1-19 or PID-18', tags);

    const iso = timestampReader(ctx, msg, facility, tags);
    // EVN-6 is when it really happened (a late-entered admission), EVN-2 when it was recorded.
    const occurredAt = iso('EVN-6.1') ?? iso('EVN-2.1') ?? iso('MSH-7.1');
    if (occurredAt === undefined) ctx.exception(ExceptionCategory.incompleteMessage, 'no event time in EVN-6, EVN-2 or MSH-7', tags);

    const birthDate = hl7ToIsoDate(text(msg, 'PID-7.1'));
    const patient: EncounterEvent['patient'] = {
      mrn: mrn.id,
      ...(mrn.assigningAuthority === undefined ? {} : { assigningAuthority: mrn.assigningAuthority }),
      name,
      ...(birthDate === undefined ? {} : { birthDate }),
      sex: mapAdministrativeSex(text(msg, 'PID-8')),
    };

    const encounter: EncounterEvent['encounter'] = {
      visitNumber,
      class: mapPatientClass(text(msg, 'PV1-2.1')),
    };
    if (location !== undefined) encounter.location = location;
    if (dept !== undefined) encounter.department = dept.department;
    const hospitalService = text(msg, 'PV1-10.1');
    if (hospitalService !== undefined) encounter.hospitalService = hospitalService;
    const attending = readProvider(msg, 'PV1-7');
    if (attending !== undefined) encounter.attendingProvider = resolveProvider(ctx, attending);
    const admittedAt = iso('PV1-44.1');
    if (admittedAt !== undefined) encounter.admittedAt = admittedAt;
    const dischargedAt = iso('PV1-45.1');
    if (dischargedAt !== undefined) encounter.dischargedAt = dischargedAt;
    const disposition = text(msg, 'PV1-36.1');
    if (disposition !== undefined) encounter.dischargeDisposition = disposition;

    const source: EncounterEvent['source'] = {
      controlId,
      sendingApplication,
      sendingFacility,
      messageType: `ADT^${trigger}`,
    };
    const sentAt = iso('MSH-7.1');
    if (sentAt !== undefined) source.sentAt = sentAt;

    return {
      schema: ENCOUNTER_EVENT,
      // Channel-independent: the same ADT message routed through another channel gets the same id.
      id: ctx.deterministicId(ENCOUNTER_EVENT, sendingApplication, sendingFacility, controlId),
      type,
      occurredAt,
      patient,
      encounter,
      facility,
      source,
    };
  },
});
