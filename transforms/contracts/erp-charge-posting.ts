// SPDX-License-Identifier: Apache-2.0
/**
 * `ErpChargePosting@1`: one charge line posted to the ERP's patient-accounts ledger — a `charge`,
 * or a `credit` when the vendor sent a negative amount (a correction). Identity: `id` derives from
 * the ChargeEvent@1 id (facility + the vendor's charge id), so a re-sent file posts nothing twice.
 * Money: a two-decimal string, never a float. Minimum necessary: the account number, no MRN.
 */
import { Type, type Static } from '@sinclair/typebox';
import { DeterministicId, IsoDate, Text } from '../canonical-events/common.ts';
import { Amount } from '../canonical-events/remittance-event.ts';

export const ERP_CHARGE_POSTING = 'ErpChargePosting@1';

export const ErpChargePosting = Type.Object(
  {
    schema: Type.Literal(ERP_CHARGE_POSTING),
    id: DeterministicId,
    kind: Type.Union([Type.Literal('charge'), Type.Literal('credit')]),
    chargeId: Text,
    facility: Text,
    accountNumber: { ...Text, description: 'The encounter (visit) number the charge belongs to' },
    postingDate: { ...IsoDate, description: 'The service date' },
    procedure: Type.Object({ system: Type.Union([Type.Literal('CPT'), Type.Literal('HCPCS')]), code: Text }, { additionalProperties: false }),
    units: Type.Integer({ minimum: 1 }),
    amount: Amount,
    description: Type.Optional(Text),
    sourceEventId: DeterministicId,
  },
  { additionalProperties: false, title: ERP_CHARGE_POSTING },
);
export type ErpChargePosting = Static<typeof ErpChargePosting>;
