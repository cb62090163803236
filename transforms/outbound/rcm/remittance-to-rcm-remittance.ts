// SPDX-License-Identifier: Apache-2.0
/**
 * `RemittanceEvent@1` → `RcmRemittance@1`: the claim's remittance for the RCM's posting and denial
 * work queues — every event type, the line-level detail kept. Pure; no business exception (the
 * event already has what the RCM needs).
 */
import { defineTransform, type TransformContext } from '../../../engine/transform-sdk/index.ts';
import { RemittanceEventType, type RemittanceEvent } from '../../canonical-events/remittance-event.ts';
import { RCM_REMITTANCE, type RcmRemittance } from '../../contracts/rcm-remittance.ts';

const STATUS = {
  [RemittanceEventType.paymentPosted]: 'paid',
  [RemittanceEventType.claimDenied]: 'denied',
  [RemittanceEventType.paymentReversed]: 'reversed',
} as const satisfies Record<RemittanceEventType, RcmRemittance['status']>;

export default defineTransform<RemittanceEvent, RcmRemittance>({
  name: 'rcm/remittance-to-rcm-remittance',
  version: '1.0.0',
  input: 'event',
  map(event: RemittanceEvent, ctx: TransformContext) {
    return {
      schema: RCM_REMITTANCE,
      id: ctx.deterministicId(RCM_REMITTANCE, event.id),
      status: STATUS[event.type],
      claimId: event.claim.id,
      claimStatusCode: event.claim.statusCode,
      ...(event.claim.payerClaimControlNumber === undefined ? {} : { payerClaimControlNumber: event.claim.payerClaimControlNumber }),
      payer: { ...event.payer },
      ...(event.patient === undefined ? {} : { patient: { ...event.patient } }),
      traceNumber: event.payment.traceNumber,
      ...(event.payment.date === undefined ? {} : { paymentDate: event.payment.date }),
      amounts: { ...event.amounts },
      adjustments: event.adjustments.map((a) => ({ ...a })),
      denialReasons: [...event.denialReasons],
      serviceLines: event.serviceLines.map((l) => ({
        procedureCode: l.procedure.code,
        modifiers: [...l.procedure.modifiers],
        charged: l.charged,
        paid: l.paid,
        ...(l.allowed === undefined ? {} : { allowed: l.allowed }),
        units: l.units,
        ...(l.serviceDate === undefined ? {} : { serviceDate: l.serviceDate }),
        ...(l.controlNumber === undefined ? {} : { controlNumber: l.controlNumber }),
        adjustments: l.adjustments.map((a) => ({ ...a })),
      })),
      sourceEventId: event.id,
    };
  },
});
