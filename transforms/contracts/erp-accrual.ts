// SPDX-License-Identifier: Apache-2.0
/**
 * `ErpAccrual@1`: a statistical accrual posted to the ERP general ledger by cost center —
 * admissions (1 per inpatient admission) and patient days (per inpatient discharge) — and the
 * reversal of one when the admission or the discharge is cancelled.
 *
 * Identity: `accrualId` names the accrual and is derived from business keys only (sending facility
 * + visit number + kind), so the cancel message (A11/A13) computes the id of what it reverses
 * without any state. The ERP keeps one open accrual per `accrualId`: `accrue` opens or replaces it
 * (a re-sent A03 does not double count), `reverse` closes it in full — the reference is
 * authoritative, so a reversal carries no quantity (an A13 does not reliably repeat the discharge
 * date the patient days were computed from). After a reversal, a new `accrue` on the same id
 * reopens it (A03 → A13 → A03). `id` is this payload's own id, derived from the canonical event.
 *
 * Minimum necessary: no patient identity is sent; the visit number is enough for finance.
 */
import { Type, type Static } from '@sinclair/typebox';
import { DeterministicId, IsoDate, IsoDateTime, Text } from '../canonical-events/common.ts';

export const ERP_ACCRUAL = 'ErpAccrual@1';

const common = {
  schema: Type.Literal(ERP_ACCRUAL),
  id: DeterministicId,
  accrualId: { ...DeterministicId, description: 'deterministicId(ErpAccrual@1/accrual, MSH-4.1, visit number, kind)' },
  kind: Type.Union([Type.Literal('admission'), Type.Literal('discharge')]),
  postingDate: { ...IsoDate, description: "Local calendar date of the business event in the facility's offset" },
  costCenter: Text,
  departmentCode: Text,
  facility: Text,
  visitNumber: Text,
  asOf: IsoDateTime,
  sourceEventId: { ...DeterministicId, description: 'The EncounterEvent@1 id this payload was made from' },
};

export const AccrualPosting = Type.Object(
  {
    ...common,
    operation: Type.Literal('accrue'),
    measure: Type.Union([Type.Literal('admissions'), Type.Literal('patient-days')]),
    quantity: Type.Integer({ minimum: 1 }),
  },
  { additionalProperties: false },
);

export const AccrualReversal = Type.Object(
  {
    ...common,
    operation: Type.Literal('reverse'),
    reversal: Type.Object(
      {
        of: { ...DeterministicId, description: 'The accrualId being reversed (equals accrualId)' },
        reason: Type.Union([Type.Literal('admit-cancelled'), Type.Literal('discharge-cancelled')]),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

export const ErpAccrual = Type.Union([AccrualPosting, AccrualReversal], { title: ERP_ACCRUAL });
export type ErpAccrual = Static<typeof ErpAccrual>;
