// SPDX-License-Identifier: Apache-2.0
/**
 * `RemittanceEvent@1` → `ErpPayment@1`: a claim's settlement for the ERP's finance API. Pure.
 *
 * payment.posted → `payment`, claim.denied → `denial`, payment.reversed → `reversal`. Adjustments
 * are summed by group over the claim and all its lines (exact, in cents): CO is written off, PR
 * moves to the patient, OA/PI/CR are other. The posting date is the payment's effective date (BPR16),
 * else the remittance's production date.
 *
 * Business exceptions: `incomplete-message` when the remittance has neither date (nothing to post on).
 */
import { defineTransform, type TransformContext } from '../../../engine/transform-sdk/index.ts';
import { RemittanceEventType, type RemittanceEvent } from '../../canonical-events/remittance-event.ts';
import { ERP_PAYMENT, type ErpPayment } from '../../contracts/erp-payment.ts';
import { ExceptionCategory } from '../../lib/business-rules.ts';
import { sumAmounts } from '../../lib/money.ts';

const KIND = {
  [RemittanceEventType.paymentPosted]: 'payment',
  [RemittanceEventType.claimDenied]: 'denial',
  [RemittanceEventType.paymentReversed]: 'reversal',
} as const satisfies Record<RemittanceEventType, ErpPayment['kind']>;

export default defineTransform<RemittanceEvent, ErpPayment>({
  name: 'erp/remittance-to-erp-payment',
  version: '1.0.0',
  input: 'event',
  map(event: RemittanceEvent, ctx: TransformContext) {
    const postingDate = event.payment.date ?? event.source.productionDate;
    if (postingDate === undefined) {
      ctx.exception(ExceptionCategory.incompleteMessage, `claim ${event.claim.id}: no payment date (BPR16) or production date (DTM*405) to post on`, event.payee?.id ? { facility: event.payee.id } : {});
    }
    const all = [...event.adjustments, ...event.serviceLines.flatMap((l) => l.adjustments)];
    const byGroup = (groups: readonly string[], include: boolean) => sumAmounts(all.filter((a) => groups.includes(a.group) === include).map((a) => a.amount));
    return {
      schema: ERP_PAYMENT,
      id: ctx.deterministicId(ERP_PAYMENT, event.id),
      kind: KIND[event.type],
      claimId: event.claim.id,
      ...(event.claim.payerClaimControlNumber === undefined ? {} : { payerClaimControlNumber: event.claim.payerClaimControlNumber }),
      payerId: event.payer.id,
      ...(event.payer.name === undefined ? {} : { payerName: event.payer.name }),
      ...(event.payee?.id === undefined ? {} : { payeeId: event.payee.id }),
      traceNumber: event.payment.traceNumber,
      paymentMethod: event.payment.method,
      postingDate,
      amounts: { ...event.amounts },
      adjustments: {
        contractual: byGroup(['CO'], true),
        patientResponsibility: byGroup(['PR'], true),
        other: byGroup(['CO', 'PR'], false),
      },
      denialReasons: [...event.denialReasons],
      sourceEventId: event.id,
    };
  },
});
