// SPDX-License-Identifier: Apache-2.0
/**
 * `BillingReadiness@1`: tells the revenue-cycle (RCM) system that an encounter can be coded and
 * billed (`ready-to-bill`, on discharge), or that it no longer can (`withdrawn`, when the
 * discharge is cancelled).
 *
 * Identity: `readinessId` names the encounter's readiness record and is derived from business keys
 * only (sending facility + visit number), so a cancel-discharge message computes it alone; the RCM
 * system upserts by it (A03 → A13 → A03 ends ready again). `id` is this payload's own id, derived
 * from the canonical event, so a retried or replayed delivery carries the same id.
 */
import { Type, type Static } from '@sinclair/typebox';
import { DeterministicId, IsoDateTime, Patient, PersonName, Text } from '../canonical-events/common.ts';
import { EncounterClassSchema } from '../canonical-events/encounter-event.ts';

export const BILLING_READINESS = 'BillingReadiness@1';

/** The attending clinician as a claim needs it: with an NPI. */
const AttendingProvider = Type.Object(
  { id: Text, npi: Type.String({ pattern: '^\\d{10}$' }), name: Type.Optional(PersonName) },
  { additionalProperties: false },
);

const DepartmentRef = Type.Object({ code: Text, name: Text }, { additionalProperties: false });

const common = {
  schema: Type.Literal(BILLING_READINESS),
  id: DeterministicId,
  readinessId: { ...DeterministicId, description: 'deterministicId(BillingReadiness@1/readiness, MSH-4.1, visit number)' },
  asOf: { ...IsoDateTime, description: "When the change happened (the event's occurredAt); the RCM ignores older updates" },
  facility: Text,
  patient: Patient,
  sourceEventId: { ...DeterministicId, description: 'The EncounterEvent@1 id this payload was made from' },
};

export const ReadyToBill = Type.Object(
  {
    ...common,
    status: Type.Literal('ready-to-bill'),
    encounter: Type.Object(
      {
        visitNumber: Text,
        class: EncounterClassSchema,
        admittedAt: Type.Optional(IsoDateTime),
        dischargedAt: { ...IsoDateTime, description: 'PV1-45, else the discharge event time' },
        department: Type.Optional(DepartmentRef),
        attendingProvider: AttendingProvider,
        dischargeDisposition: Type.Optional(Text),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

export const ReadinessWithdrawn = Type.Object(
  {
    ...common,
    status: Type.Literal('withdrawn'),
    encounter: Type.Object(
      { visitNumber: Text, class: EncounterClassSchema, department: Type.Optional(DepartmentRef) },
      { additionalProperties: false },
    ),
    withdrawal: Type.Object(
      {
        of: { ...DeterministicId, description: 'The readinessId being withdrawn (equals readinessId)' },
        reason: Type.Literal('discharge-cancelled'),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

export const BillingReadiness = Type.Union([ReadyToBill, ReadinessWithdrawn], { title: BILLING_READINESS });
export type BillingReadiness = Static<typeof BillingReadiness>;
