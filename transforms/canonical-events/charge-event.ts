// SPDX-License-Identifier: Apache-2.0
/**
 * `ChargeEvent@1`: one charge posted to a patient account, from one row of a billing vendor's
 * charge file. `charge.posted` is the only type; a correction is a charge with a negative amount,
 * as the vendor sends it. Money is a two-decimal string, never a float (transforms/lib/money.ts).
 */
import { Type, type Static } from '@sinclair/typebox';
import { DeterministicId, IsoDate, Text } from './common.ts';
import { Amount } from './remittance-event.ts';

export const CHARGE_EVENT = 'ChargeEvent@1';

export const ChargeEventType = { chargePosted: 'charge.posted' } as const;
export type ChargeEventType = (typeof ChargeEventType)[keyof typeof ChargeEventType];

export const ChargeEvent = Type.Object(
  {
    schema: Type.Literal(CHARGE_EVENT),
    id: { ...DeterministicId, description: 'deterministicId(ChargeEvent@1, facility, charge id)' },
    type: Type.Enum(ChargeEventType),
    chargeId: Text,
    patient: Type.Object({ mrn: Text }, { additionalProperties: false }),
    encounter: Type.Object({ visitNumber: Text }, { additionalProperties: false }),
    facility: Text,
    serviceDate: IsoDate,
    procedure: Type.Object(
      {
        system: Type.Union([Type.Literal('CPT'), Type.Literal('HCPCS')], { description: 'CPT for five-digit codes (and category II/III), HCPCS level II for a letter first' }),
        code: Text,
      },
      { additionalProperties: false },
    ),
    units: Type.Integer({ minimum: 1 }),
    amount: { ...Amount, description: 'The line amount as sent (negative for a correction)' },
    description: Type.Optional(Text),
  },
  { additionalProperties: false, title: CHARGE_EVENT },
);
export type ChargeEvent = Static<typeof ChargeEvent>;
