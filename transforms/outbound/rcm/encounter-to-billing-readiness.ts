// SPDX-License-Identifier: Apache-2.0
/**
 * `EncounterEvent@1` → `BillingReadiness@1` for the revenue-cycle system. Pure.
 *
 * - discharged → `ready-to-bill` (coding and billing may start). The claim needs the attending's
 *   NPI, so an attending that is absent or not in the providers lookup is `unknown-provider`:
 *   better a visible exception now than a claim the payer rejects weeks later.
 * - discharge-cancelled (A13) → `withdrawn`, addressed to the same `readinessId` (computed from
 *   the sending facility and visit number, so the A13 alone is enough).
 * - anything else is filtered: RCM readiness starts at discharge (admissions, registrations and
 *   updates before it change nothing billable; an A11 cancels an admission that was never ready).
 */
import { defineTransform, type TransformContext } from '../../../engine/transform-sdk/index.ts';
import { EncounterEventType, type EncounterEvent } from '../../canonical-events/encounter-event.ts';
import { BILLING_READINESS, type BillingReadiness } from '../../contracts/billing-readiness.ts';
import { ExceptionCategory } from '../../lib/business-rules.ts';

export default defineTransform<EncounterEvent, BillingReadiness>({
  name: 'rcm/encounter-to-billing-readiness',
  version: '1.0.0',
  input: 'event',
  // Explicit parameter types: TypeScript narrows after `ctx.exception(...)` (returns never) only then.
  map(event: EncounterEvent, ctx: TransformContext) {
    if (event.type !== EncounterEventType.discharged && event.type !== EncounterEventType.dischargeCancelled) {
      return ctx.filter(`RCM billing readiness does not use ${event.type}`);
    }
    const { encounter } = event;
    const readinessId = ctx.deterministicId(`${BILLING_READINESS}/readiness`, event.source.sendingFacility, encounter.visitNumber);
    const head = { schema: BILLING_READINESS, id: ctx.deterministicId(BILLING_READINESS, event.id), readinessId } as const;
    const tail = { asOf: event.occurredAt, sourceEventId: event.id };
    const department = encounter.department === undefined ? undefined : { code: encounter.department.code, name: encounter.department.name };

    if (event.type === EncounterEventType.dischargeCancelled) {
      return {
        ...head,
        status: 'withdrawn',
        facility: event.facility,
        patient: event.patient,
        encounter: {
          visitNumber: encounter.visitNumber,
          class: encounter.class,
          ...(department === undefined ? {} : { department }),
        },
        withdrawal: { of: readinessId, reason: 'discharge-cancelled' },
        ...tail,
      };
    }

    const attending = encounter.attendingProvider;
    const tags = { facility: event.facility, ...(encounter.department === undefined ? {} : { department: encounter.department.code }) };
    if (attending === undefined) {
      ctx.exception(ExceptionCategory.unknownProvider, `discharge of visit ${encounter.visitNumber} has no attending provider (PV1-7); the claim needs one`, tags);
    }
    if (!attending.known || attending.npi === undefined) {
      ctx.exception(ExceptionCategory.unknownProvider, `attending provider '${attending.id}' (PV1-7.1) is not in lookup 'providers' or has no NPI`, {
        ...tags,
        provider: attending.id,
      });
    }
    return {
      ...head,
      status: 'ready-to-bill',
      facility: event.facility,
      patient: event.patient,
      encounter: {
        visitNumber: encounter.visitNumber,
        class: encounter.class,
        ...(encounter.admittedAt === undefined ? {} : { admittedAt: encounter.admittedAt }),
        // PV1-45 is optional on an A03 from some senders; the discharge event's time is then the discharge time.
        dischargedAt: encounter.dischargedAt ?? event.occurredAt,
        ...(department === undefined ? {} : { department }),
        attendingProvider: {
          id: attending.id,
          npi: attending.npi,
          ...(attending.name === undefined ? {} : { name: attending.name }),
        },
        ...(encounter.dischargeDisposition === undefined ? {} : { dischargeDisposition: encounter.dischargeDisposition }),
      },
      ...tail,
    };
  },
});
