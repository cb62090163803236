// SPDX-License-Identifier: Apache-2.0
/**
 * Schema pieces shared by the canonical events and the destination contracts.
 *
 * Patterns are used instead of Ajv `format`s on purpose: a schema with `format: 'date-time'` fails
 * to compile in an Ajv instance that has no ajv-formats plugin (strict mode), and the contracts
 * must validate identically wherever they are loaded (engine, `osprey test`, a receiver's CI).
 */
import { Type, type Static } from '@sinclair/typebox';
import { AdministrativeSex } from '../lib/code-maps.ts';

/** ISO 8601 date-time with seconds and an explicit offset, e.g. `2026-03-02T08:15:00-05:00`. */
export const IsoDateTime = Type.String({
  pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?([+-]\\d{2}:\\d{2}|Z)$',
  description: 'ISO 8601 date-time with an explicit offset (the sender\'s local offset is kept)',
  examples: ['2026-03-02T08:15:00-05:00'],
});

/** Calendar date `YYYY-MM-DD`. */
export const IsoDate = Type.String({ pattern: '^\\d{4}-\\d{2}-\\d{2}$', examples: ['1968-11-04'] });

/** A deterministic id as produced by `ctx.deterministicId` (UUID-shaped, version nibble 5). */
export const DeterministicId = Type.String({
  pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$',
  description: 'Deterministic id (SHA-256 of business keys, UUID-shaped): same input, same id',
});

/** A non-empty string. */
export const Text = Type.String({ minLength: 1 });

export const PersonName = Type.Object(
  {
    family: Type.String({ description: 'Surname; empty when the sender gave only a given name' }),
    given: Type.Optional(Text),
    middle: Type.Optional(Text),
  },
  { additionalProperties: false },
);
export type PersonName = Static<typeof PersonName>;

export const AdministrativeSexSchema = Type.Enum(AdministrativeSex, { description: 'PID-8 (HL7 table 0001) reduced to male/female/other/unknown' });

export const Patient = Type.Object(
  {
    mrn: Type.String({ minLength: 1, description: 'Medical record number: PID-3 repetition with type MR, else the first' }),
    assigningAuthority: Type.Optional(Text),
    name: PersonName,
    birthDate: Type.Optional(IsoDate),
    sex: AdministrativeSexSchema,
  },
  { additionalProperties: false },
);
export type Patient = Static<typeof Patient>;

/** A department as resolved from `config/lookups/departments.yaml`. */
export const Department = Type.Object(
  {
    code: Type.String({ minLength: 1, description: 'Department/location code as sent (PV1-3.1, AIL-3.1)' }),
    name: Text,
    costCenter: Text,
  },
  { additionalProperties: false },
);
export type Department = Static<typeof Department>;

export const Location = Type.Object(
  {
    pointOfCare: Type.Optional(Text),
    room: Type.Optional(Text),
    bed: Type.Optional(Text),
    facility: Type.Optional(Text),
    description: Type.Optional(Text),
  },
  { additionalProperties: false },
);
export type Location = Static<typeof Location>;

/** A clinician: id as sent, with NPI and role when the providers lookup knows them. */
export const Provider = Type.Object(
  {
    id: Type.String({ minLength: 1, description: 'Provider id as sent (XCN.1)' }),
    npi: Type.Optional(Type.String({ pattern: '^\\d{10}$' })),
    name: Type.Optional(PersonName),
    role: Type.Optional(Text),
    known: Type.Boolean({ description: 'True when the id is in config/lookups/providers.yaml' }),
  },
  { additionalProperties: false },
);
export type Provider = Static<typeof Provider>;

/** Where the event came from: the keys the id is derived from, and the HL7 message's identity. */
export const Source = Type.Object(
  {
    controlId: Type.String({ minLength: 1, description: 'MSH-10' }),
    sendingApplication: Type.String({ description: 'MSH-3.1' }),
    sendingFacility: Type.String({ description: 'MSH-4.1' }),
    messageType: Type.String({ pattern: '^[A-Z0-9]{3}\\^[A-Z0-9]{3}$', description: 'MSH-9.1^MSH-9.2' }),
    sentAt: Type.Optional(IsoDateTime),
  },
  { additionalProperties: false },
);
export type Source = Static<typeof Source>;
