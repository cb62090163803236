// SPDX-License-Identifier: Apache-2.0
/**
 * `RemittanceEvent@1`: what a payer did with one claim, from one claim payment of an X12 835
 * remittance (the CLP loop with its header context), independent of the file it came in.
 *
 * Types: `payment.posted` (the claim was paid, in full, in part or at zero towards the patient's
 * responsibility), `claim.denied` (CLP02 = 4, or nothing paid with a denial adjustment), and
 * `payment.reversed` (CLP02 = 22: the payer takes back an earlier payment of the claim; its amounts
 * are negative as sent, and a corrected payment usually follows as its own `payment.posted`).
 *
 * Money: every amount is a decimal string with exactly two decimals (`"225.00"`, `"-95.00"`), as
 * sent but normalised, never a float (transforms/lib/money.ts). Versioning as EncounterEvent@1.
 */
import { Type, type Static } from '@sinclair/typebox';
import { DeterministicId, IsoDate, PersonName, Text } from './common.ts';

export const REMITTANCE_EVENT = 'RemittanceEvent@1';

export const RemittanceEventType = {
  paymentPosted: 'payment.posted',
  claimDenied: 'claim.denied',
  paymentReversed: 'payment.reversed',
} as const;
export type RemittanceEventType = (typeof RemittanceEventType)[keyof typeof RemittanceEventType];

/** A two-decimal amount, sign as sent. */
export const Amount = Type.String({ pattern: '^-?\\d+\\.\\d{2}$', description: 'Decimal string, two decimals (never a float)', examples: ['225.00', '-95.00'] });

/** A CAS adjustment: group code (CO, PR, OA, PI, CR), claim adjustment reason code, amount. */
export const Adjustment = Type.Object(
  {
    group: Type.String({ pattern: '^[A-Z]{2}$', description: 'CAS01 group code: CO contractual, PR patient responsibility, OA other, PI payer initiated, CR correction' }),
    reason: Type.String({ minLength: 1, maxLength: 5, description: 'Claim adjustment reason code (CARC), e.g. 45, 1, 50' }),
    amount: Amount,
    quantity: Type.Optional(Text),
  },
  { additionalProperties: false },
);
export type Adjustment = Static<typeof Adjustment>;

export const ServiceLine = Type.Object(
  {
    procedure: Type.Object(
      {
        qualifier: Type.String({ description: 'SVC01-1: HC (HCPCS/CPT), NU (revenue code), …' }),
        code: Text,
        modifiers: Type.Array(Text),
      },
      { additionalProperties: false },
    ),
    charged: Amount,
    paid: Amount,
    units: Type.String({ pattern: '^\\d+(\\.\\d+)?$', description: 'SVC05, 1 when not sent' }),
    serviceDate: Type.Optional(IsoDate),
    allowed: Type.Optional(Amount),
    controlNumber: Type.Optional(Type.String({ description: 'REF*6R: the provider’s line item control number' })),
    adjustments: Type.Array(Adjustment),
  },
  { additionalProperties: false },
);
export type ServiceLine = Static<typeof ServiceLine>;

export const RemittanceEvent = Type.Object(
  {
    schema: Type.Literal(REMITTANCE_EVENT),
    id: { ...DeterministicId, description: 'deterministicId(RemittanceEvent@1, payer id, TRN02, CLP01, CLP02): the same claim payment, the same id' },
    type: Type.Enum(RemittanceEventType),
    claim: Type.Object(
      {
        id: Type.String({ minLength: 1, description: 'CLP01: the provider’s claim (patient control) number' }),
        payerClaimControlNumber: Type.Optional(Type.String({ description: 'CLP07' })),
        statusCode: Type.String({ description: 'CLP02 as sent' }),
        status: Type.String({ description: 'CLP02 in words: processed-as-primary, denied, reversal … (unknown-<code> otherwise)' }),
        filingIndicator: Type.Optional(Type.String({ description: 'CLP06 (MC Medicaid, MB Medicare B, 12 PPO …)' })),
        statementPeriod: Type.Optional(Type.Object({ start: Type.Optional(IsoDate), end: Type.Optional(IsoDate) }, { additionalProperties: false })),
        receivedDate: Type.Optional(IsoDate),
      },
      { additionalProperties: false },
    ),
    amounts: Type.Object(
      {
        charged: { ...Amount, description: 'CLP03' },
        paid: { ...Amount, description: 'CLP04' },
        patientResponsibility: { ...Amount, description: 'CLP05 (0.00 when not sent)' },
      },
      { additionalProperties: false },
    ),
    adjustments: Type.Array(Adjustment, { description: 'Claim-level CAS (service lines carry their own)' }),
    denialReasons: Type.Array(Type.String({ pattern: '^[A-Z]{2}-\\S+$' }), { description: 'The adjustments that make the claim a denial, as GROUP-REASON (CO-50); empty unless claim.denied' }),
    serviceLines: Type.Array(ServiceLine),
    payer: Type.Object(
      {
        id: Type.String({ minLength: 1, description: 'N1*PR N104, else REF*2U, else TRN03' }),
        name: Type.Optional(Text),
      },
      { additionalProperties: false },
    ),
    payee: Type.Optional(Type.Object({ id: Type.Optional(Text), name: Type.Optional(Text) }, { additionalProperties: false, description: 'N1*PE' })),
    patient: Type.Optional(
      Type.Object(
        {
          memberId: Type.Optional(Type.String({ description: 'NM1*QC NM109' })),
          name: Type.Optional(PersonName),
        },
        { additionalProperties: false },
      ),
    ),
    payment: Type.Object(
      {
        traceNumber: Type.String({ minLength: 1, description: 'TRN02: the check or EFT trace number' }),
        method: Type.String({ description: 'BPR04: ACH, CHK, FWT, BOP, NON' }),
        handling: Type.String({ description: 'BPR01: I remittance with payment, H notification only …' }),
        total: { ...Amount, description: 'BPR02: the whole check/EFT (every claim of the transaction set)' },
        date: Type.Optional({ ...IsoDate, description: 'BPR16: payment effective date' }),
      },
      { additionalProperties: false },
    ),
    source: Type.Object(
      {
        interchangeControlNumber: Type.String({ description: 'ISA13' }),
        groupControlNumber: Type.String({ description: 'GS06' }),
        transactionSetControlNumber: Type.String({ description: 'ST02' }),
        productionDate: Type.Optional({ ...IsoDate, description: 'DTM*405' }),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false, title: REMITTANCE_EVENT },
);
export type RemittanceEvent = Static<typeof RemittanceEvent>;
