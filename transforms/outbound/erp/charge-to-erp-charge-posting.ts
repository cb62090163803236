// SPDX-License-Identifier: Apache-2.0
/**
 * `ChargeEvent@1` → `ErpChargePosting@1`: a charge line for the ERP's patient-accounts ledger, a
 * `credit` when the amount is negative (the vendor's correction). Pure; no business exception.
 */
import { defineTransform, type TransformContext } from '../../../engine/transform-sdk/index.ts';
import type { ChargeEvent } from '../../canonical-events/charge-event.ts';
import { ERP_CHARGE_POSTING, type ErpChargePosting } from '../../contracts/erp-charge-posting.ts';

export default defineTransform<ChargeEvent, ErpChargePosting>({
  name: 'erp/charge-to-erp-charge-posting',
  version: '1.0.0',
  input: 'event',
  map(event: ChargeEvent, ctx: TransformContext) {
    return {
      schema: ERP_CHARGE_POSTING,
      id: ctx.deterministicId(ERP_CHARGE_POSTING, event.id),
      kind: event.amount.startsWith('-') ? 'credit' : 'charge',
      chargeId: event.chargeId,
      facility: event.facility,
      accountNumber: event.encounter.visitNumber,
      postingDate: event.serviceDate,
      procedure: { ...event.procedure },
      units: event.units,
      amount: event.amount,
      ...(event.description === undefined ? {} : { description: event.description }),
      sourceEventId: event.id,
    };
  },
});
