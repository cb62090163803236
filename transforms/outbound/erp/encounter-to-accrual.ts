// SPDX-License-Identifier: Apache-2.0
/**
 * `EncounterEvent@1` → `ErpAccrual@1`: statistical accruals by cost center for inpatient
 * encounters. Pure.
 *
 * - admitted (A01) → accrue `admissions` 1 on the admission date;
 * - discharged (A03) → accrue `patient-days` (midnights from admission to discharge, at least 1:
 *   a same-day inpatient stay still counts a day) on the discharge date;
 * - admit-cancelled (A11) → reverse the admission accrual; discharge-cancelled (A13) → reverse the
 *   discharge accrual. The reversed `accrualId` is computed from the sending facility, visit number
 *   and kind alone, so no state is needed;
 * - other classes (outpatient, emergency…) and other events (A04, A08) are filtered: admissions and
 *   patient days are inpatient statistics.
 *
 * Business exceptions: `unmapped-department` when the encounter has no department (PV1-3 empty) —
 * there is no cost center to post to; `incomplete-message` for an inpatient discharge without an
 * admission time (PV1-44), since patient days cannot be counted.
 */
import { defineTransform, type TransformContext } from '../../../engine/transform-sdk/index.ts';
import { EncounterEventType, type EncounterEvent } from '../../canonical-events/encounter-event.ts';
import { ERP_ACCRUAL, type ErpAccrual } from '../../contracts/erp-accrual.ts';
import { ExceptionCategory } from '../../lib/business-rules.ts';
import { calendarDaysBetween, localDateOf } from '../../lib/hl7-timestamp.ts';

export default defineTransform<EncounterEvent, ErpAccrual>({
  name: 'erp/encounter-to-accrual',
  version: '1.0.0',
  input: 'event',
  // Explicit parameter types: TypeScript narrows after `ctx.exception(...)` (returns never) only then.
  map(event: EncounterEvent, ctx: TransformContext) {
    const { encounter } = event;
    const kind =
      event.type === EncounterEventType.admitted || event.type === EncounterEventType.admitCancelled
        ? 'admission'
        : event.type === EncounterEventType.discharged || event.type === EncounterEventType.dischargeCancelled
          ? 'discharge'
          : undefined;
    if (kind === undefined) return ctx.filter(`ERP accruals do not use ${event.type}`);
    if (encounter.class !== 'inpatient') return ctx.filter(`ERP accruals cover inpatient encounters only (class ${encounter.class})`);

    const department = encounter.department;
    if (department === undefined) {
      ctx.exception(ExceptionCategory.unmappedDepartment, `visit ${encounter.visitNumber} has no department (PV1-3.1): no cost center to post to`, {
        facility: event.facility,
      });
    }
    const accrualId = ctx.deterministicId(`${ERP_ACCRUAL}/accrual`, event.source.sendingFacility, encounter.visitNumber, kind);
    const head = { schema: ERP_ACCRUAL, id: ctx.deterministicId(ERP_ACCRUAL, event.id), accrualId } as const;
    const where = {
      kind,
      costCenter: department.costCenter,
      departmentCode: department.code,
      facility: event.facility,
      visitNumber: encounter.visitNumber,
    } as const;
    const tail = { asOf: event.occurredAt, sourceEventId: event.id };

    if (event.type === EncounterEventType.admitCancelled || event.type === EncounterEventType.dischargeCancelled) {
      return {
        ...head,
        operation: 'reverse',
        ...where,
        // Posted on the day of the cancellation: the original's period may already be closed.
        postingDate: localDateOf(event.occurredAt),
        reversal: { of: accrualId, reason: event.type === EncounterEventType.admitCancelled ? 'admit-cancelled' : 'discharge-cancelled' },
        ...tail,
      };
    }
    if (event.type === EncounterEventType.admitted) {
      return {
        ...head,
        operation: 'accrue',
        ...where,
        postingDate: localDateOf(encounter.admittedAt ?? event.occurredAt),
        measure: 'admissions',
        quantity: 1,
        ...tail,
      };
    }
    const tags = { facility: event.facility, department: department.code };
    if (encounter.admittedAt === undefined) {
      ctx.exception(ExceptionCategory.incompleteMessage, `inpatient discharge of visit ${encounter.visitNumber} has no admission time (PV1-44): patient days unknown`, tags);
    }
    const dischargedAt = encounter.dischargedAt ?? event.occurredAt;
    const days = calendarDaysBetween(encounter.admittedAt, dischargedAt);
    if (days < 0) {
      ctx.exception(ExceptionCategory.incompleteMessage, `visit ${encounter.visitNumber} is discharged (${dischargedAt}) before it was admitted (${encounter.admittedAt})`, tags);
    }
    return {
      ...head,
      operation: 'accrue',
      ...where,
      postingDate: localDateOf(dischargedAt),
      measure: 'patient-days',
      quantity: Math.max(1, days),
      ...tail,
    };
  },
});
