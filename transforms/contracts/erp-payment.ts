// SPDX-License-Identifier: Apache-2.0
/**
 * `ErpPayment@1`: one payer's settlement of one claim, posted to the ERP's finance API (cash,
 * contractual write-off, transfer to patient responsibility) — a `payment`, a `denial` (nothing
 * paid; the receivable stays open for follow-up with the denial reasons) or a `reversal` (the payer
 * takes back an earlier payment of the claim: amounts negative as the payer sent them; the ERP
 * matches it to the payment by `claimId` and `payerClaimControlNumber`).
 *
 * Identity: `id` derives from the RemittanceEvent@1 id (payer, TRN02, CLP01, CLP02), so a resent
 * remittance posts nothing twice. Money: two-decimal strings, never floats; `adjustments` sums the
 * claim's and its lines' CAS amounts by group. Minimum necessary: no patient name or member id.
 */
import { Type, type Static } from '@sinclair/typebox';
import { DeterministicId, IsoDate, Text } from '../canonical-events/common.ts';
import { Amount } from '../canonical-events/remittance-event.ts';

export const ERP_PAYMENT = 'ErpPayment@1';

export const ErpPayment = Type.Object(
  {
    schema: Type.Literal(ERP_PAYMENT),
    id: DeterministicId,
    kind: Type.Union([Type.Literal('payment'), Type.Literal('denial'), Type.Literal('reversal')]),
    claimId: Text,
    payerClaimControlNumber: Type.Optional(Text),
    payerId: Text,
    payerName: Type.Optional(Text),
    payeeId: Type.Optional(Text),
    traceNumber: { ...Text, description: 'TRN02: the check or EFT number the cash arrives under' },
    paymentMethod: Type.String({ description: 'BPR04: ACH, CHK, FWT, BOP, NON' }),
    postingDate: { ...IsoDate, description: 'BPR16 payment date, else the remittance production date (DTM*405)' },
    amounts: Type.Object(
      {
        charged: Amount,
        paid: Amount,
        patientResponsibility: Amount,
      },
      { additionalProperties: false },
    ),
    adjustments: Type.Object(
      {
        contractual: { ...Amount, description: 'CO: written off' },
        patientResponsibility: { ...Amount, description: 'PR: moved to the patient' },
        other: { ...Amount, description: 'OA, PI, CR' },
      },
      { additionalProperties: false },
    ),
    denialReasons: Type.Array(Type.String({ pattern: '^[A-Z]{2}-\\S+$' }), { description: 'GROUP-REASON (CO-50); empty unless kind is denial' }),
    sourceEventId: { ...DeterministicId, description: 'The RemittanceEvent@1 id this payload was made from' },
  },
  { additionalProperties: false, title: ERP_PAYMENT },
);
export type ErpPayment = Static<typeof ErpPayment>;
