// SPDX-License-Identifier: Apache-2.0
/**
 * `RcmRemittance@1`: a claim's remittance as the revenue-cycle system posts it to the patient
 * account — status, amounts, claim- and line-level adjustments with their reason codes (what the
 * denial-management work queues read), and the patient the payer named, to match the account.
 * `status`: `paid` (payment.posted), `denied` (claim.denied), `reversed` (payment.reversed).
 *
 * Identity: `id` derives from the RemittanceEvent@1 id. Money: two-decimal strings, never floats.
 */
import { Type, type Static } from '@sinclair/typebox';
import { DeterministicId, IsoDate, PersonName, Text } from '../canonical-events/common.ts';
import { Adjustment, Amount } from '../canonical-events/remittance-event.ts';

export const RCM_REMITTANCE = 'RcmRemittance@1';

export const RcmRemittance = Type.Object(
  {
    schema: Type.Literal(RCM_REMITTANCE),
    id: DeterministicId,
    status: Type.Union([Type.Literal('paid'), Type.Literal('denied'), Type.Literal('reversed')]),
    claimId: Text,
    claimStatusCode: Type.String({ description: 'CLP02 as sent' }),
    payerClaimControlNumber: Type.Optional(Text),
    payer: Type.Object({ id: Text, name: Type.Optional(Text) }, { additionalProperties: false }),
    patient: Type.Optional(Type.Object({ memberId: Type.Optional(Text), name: Type.Optional(PersonName) }, { additionalProperties: false })),
    traceNumber: Text,
    paymentDate: Type.Optional(IsoDate),
    amounts: Type.Object({ charged: Amount, paid: Amount, patientResponsibility: Amount }, { additionalProperties: false }),
    adjustments: Type.Array(Adjustment, { description: 'Claim-level CAS' }),
    denialReasons: Type.Array(Type.String({ pattern: '^[A-Z]{2}-\\S+$' })),
    serviceLines: Type.Array(
      Type.Object(
        {
          procedureCode: Text,
          modifiers: Type.Array(Text),
          charged: Amount,
          paid: Amount,
          allowed: Type.Optional(Amount),
          units: Text,
          serviceDate: Type.Optional(IsoDate),
          controlNumber: Type.Optional(Text),
          adjustments: Type.Array(Adjustment),
        },
        { additionalProperties: false },
      ),
    ),
    sourceEventId: DeterministicId,
  },
  { additionalProperties: false, title: RCM_REMITTANCE },
);
export type RcmRemittance = Static<typeof RcmRemittance>;
