// SPDX-License-Identifier: Apache-2.0
/**
 * The channel-file description of a CSV (or pipe- or tab-delimited) batch file: how to read it
 * (delimiter, header, encoding, trailer), how to rename its columns, what each row must hold, and
 * which columns are the record's business keys. {@link CsvRecordSchema} is the channel-file form
 * (the SFTP source composes it); {@link resolveCsvRecordSettings} checks a value against it and fills
 * in the defaults the readers in `csv-stream.ts` run with. Field names are the contract with channel
 * files: do not rename.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import iconv from 'iconv-lite';
import { OspreyError } from '../../errors/error-codes.ts';

/** Delimiters a channel may choose; anything else is almost always a mistake in the file. */
export const CSV_DELIMITERS = [',', '|', '\t', ';'] as const;
export type CsvDelimiter = (typeof CSV_DELIMITERS)[number];

/** Column types a row is checked against. */
export const CSV_COLUMN_TYPES = ['string', 'integer', 'decimal', 'date'] as const;
export type CsvColumnTypeName = (typeof CSV_COLUMN_TYPES)[number];

/** `YYYY`, `MM`, `DD`, `HH`, `mm`, `ss` with any separators: `YYYY-MM-DD`, `MM/DD/YYYY`, `YYYYMMDD`. */
export const CSV_DATE_FORMAT_PATTERN = '^(?=.*YYYY)(?=.*MM)(?=.*DD)[YMDHms/\\-.: T]+$';

const StringColumn = Type.Object(
  {
    type: Type.Literal('string'),
    maxLength: Type.Optional(Type.Integer({ minimum: 1, description: 'Longest accepted value, in characters.', examples: [64] })),
  },
  { additionalProperties: false },
);
const IntegerColumn = Type.Object({ type: Type.Literal('integer') }, { additionalProperties: false, description: 'Digits with an optional sign.' });
const DecimalColumn = Type.Object(
  {
    type: Type.Literal('decimal'),
    scale: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 18, description: 'Most digits accepted after the decimal point (2 for money).', examples: [2] }),
    ),
  },
  { additionalProperties: false, description: 'A decimal number with `.` as the point, no thousands separator: `-12.50`.' },
);
const DateColumn = Type.Object(
  {
    type: Type.Literal('date'),
    format: Type.String({
      pattern: CSV_DATE_FORMAT_PATTERN,
      default: 'YYYY-MM-DD',
      description: 'The date layout with tokens YYYY MM DD (and HH mm ss for a time); the value must be a real calendar date.',
      examples: ['YYYY-MM-DD', 'MM/DD/YYYY', 'YYYYMMDD'],
      'x-expected': 'a date layout made of YYYY, MM, DD (HH, mm, ss) and separators, such as MM/DD/YYYY',
    }),
  },
  { additionalProperties: false },
);

/** One column's type: a name (`decimal`) or an object with its options (`{type: date, format: MM/DD/YYYY}`). */
export const CsvColumnTypeSchema = Type.Union([
  Type.Union(CSV_COLUMN_TYPES.map((t) => Type.Literal(t))),
  StringColumn,
  IntegerColumn,
  DecimalColumn,
  DateColumn,
]);

/** The trailer line some vendors end a file with: `TRAILER|<count>|<total>` or `T,<count>,<total>`. */
export const CsvTrailerSchema = Type.Object(
  {
    tag: Type.String({
      minLength: 1,
      description: 'Value of the first field that marks the trailer line (compared after trimming).',
      examples: ['TRAILER', 'T'],
    }),
    countField: Type.Integer({
      minimum: 2,
      description: '1-based field of the trailer holding the number of data rows (header and trailer excluded).',
      examples: [2],
    }),
    totalField: Type.Optional(
      Type.Integer({ minimum: 2, description: '1-based field of the trailer holding the total of `totalOf` over all data rows.', examples: [3] }),
    ),
    totalOf: Type.Optional(
      Type.String({ minLength: 1, description: 'The column (after `rename`) whose values add up to the trailer total; compared exactly, as decimals.', examples: ['amount'] }),
    ),
    required: Type.Optional(
      Type.Boolean({ default: true, description: 'A file without its trailer fails the structural check (a truncated upload).' }),
    ),
  },
  { additionalProperties: false },
);

/** Which columns (after `rename`) are the record's business keys. */
export const CsvKeysSchema = Type.Object(
  {
    id: Type.Optional(Type.String({ minLength: 1, description: 'The record id in the sender’s numbering (the de-duplication key).', examples: ['charge_id'] })),
    patient: Type.Optional(Type.String({ minLength: 1, description: 'The patient id column.', examples: ['mrn'] })),
    visit: Type.Optional(Type.String({ minLength: 1, description: 'The visit or account number column.', examples: ['encounter_number'] })),
    facility: Type.Optional(Type.String({ minLength: 1, description: 'The facility column.', examples: ['facility'] })),
    kind: Type.Optional(
      Type.String({ minLength: 1, description: 'A column giving each record’s kind, for files that mix kinds (otherwise `kind`).', examples: ['record_type'] }),
    ),
    sender: Type.Optional(
      Type.String({ minLength: 1, description: 'A column naming the scope in which `id` is unique (otherwise `sender`).', examples: ['vendor_id'] }),
    ),
  },
  { additionalProperties: false },
);

/** A CSV batch file's record description, as written in a channel file. */
export const CsvRecordSchema = Type.Object(
  {
    delimiter: Type.Optional(
      Type.Union(
        CSV_DELIMITERS.map((d) => Type.Literal(d)),
        { default: ',', description: 'Field delimiter.', examples: [',', '|', '\t'] },
      ),
    ),
    header: Type.Optional(
      Type.Union([Type.Literal(true), Type.Array(Type.String({ minLength: 1 }), { minItems: 1, uniqueItems: true })], {
        default: true,
        description: '`true`: the first line names the columns. A list: the file has no header line and these are its columns, in order.',
        examples: [true, ['charge_id', 'mrn', 'amount']],
      }),
    ),
    rename: Type.Optional(
      Type.Record(Type.String({ minLength: 1 }), Type.String({ minLength: 1 }), {
        description: 'File column name → the name transforms and the rest of this block use.',
        examples: [{ 'Charge ID': 'charge_id', 'Svc Date': 'service_date' }],
      }),
    ),
    required: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        uniqueItems: true,
        description: 'Columns (after `rename`) that must exist in the header and be non-empty in every row.',
        examples: [['charge_id', 'mrn', 'amount']],
      }),
    ),
    types: Type.Optional(
      Type.Record(Type.String({ minLength: 1 }), CsvColumnTypeSchema, {
        description: 'Per-column type checks (after `rename`); an empty value is not checked (use `required`).',
        examples: [{ amount: 'decimal', units: 'integer', service_date: { type: 'date', format: 'MM/DD/YYYY' } }],
      }),
    ),
    keys: Type.Optional(CsvKeysSchema),
    kind: Type.Optional(
      Type.String({ minLength: 1, default: 'record', description: 'The records’ kind (the message type shown and searched), e.g. `charge`.', examples: ['charge'] }),
    ),
    sender: Type.Optional(
      Type.String({ minLength: 1, description: 'The scope in which `keys.id` is unique (the vendor); with it, duplicates are recognised.', examples: ['acme-billing'] }),
    ),
    trailer: Type.Optional(CsvTrailerSchema),
    encoding: Type.Optional(
      Type.String({ minLength: 1, default: 'utf-8', description: 'Character encoding of the file (any name iconv-lite knows).', examples: ['utf-8', 'windows-1252'] }),
    ),
    trim: Type.Optional(Type.Boolean({ default: false, description: 'Trim spaces around every value.' })),
  },
  { additionalProperties: false },
);
export type CsvRecordSchemaInput = Static<typeof CsvRecordSchema>;

/** A column type, with its options filled in. */
export type CsvColumnType =
  | { type: 'string'; maxLength?: number }
  | { type: 'integer' }
  | { type: 'decimal'; scale?: number }
  | { type: 'date'; format: string };

/** {@link CsvRecordSchema} with defaults applied: what the readers run with. */
export interface CsvRecordSettings {
  delimiter: CsvDelimiter;
  header: true | string[];
  rename: Record<string, string>;
  required: string[];
  types: Record<string, CsvColumnType>;
  keys: Static<typeof CsvKeysSchema>;
  kind: string;
  sender?: string;
  trailer?: { tag: string; countField: number; totalField?: number; totalOf?: string; required: boolean };
  encoding: string;
  trim: boolean;
}

/**
 * Checks a channel file's CSV block and fills in its defaults. Throws `OSPREY_ERR_CHANNEL_SCHEMA`
 * naming the first problem (the channel linter reports every problem through the composed schema;
 * this guards direct callers and tests).
 */
export function resolveCsvRecordSettings(input: unknown): CsvRecordSettings {
  if (!Value.Check(CsvRecordSchema, input)) {
    const first = Value.Errors(CsvRecordSchema, input).First();
    throw new OspreyError('OSPREY_ERR_CHANNEL_SCHEMA', `CSV record schema: ${first?.path || '/'} ${first?.message ?? 'is invalid'}.`);
  }
  const v = input;
  if (v.encoding !== undefined && !iconv.encodingExists(v.encoding)) {
    throw new OspreyError('OSPREY_ERR_CHANNEL_SCHEMA', `CSV record schema: encoding ${v.encoding} is not a known character encoding.`);
  }
  const types: Record<string, CsvColumnType> = {};
  for (const [column, t] of Object.entries(v.types ?? {})) {
    if (typeof t === 'string') types[column] = t === 'date' ? { type: 'date', format: 'YYYY-MM-DD' } : { type: t };
    else types[column] = t.type === 'date' ? { type: 'date', format: t.format ?? 'YYYY-MM-DD' } : t;
  }
  const settings: CsvRecordSettings = {
    delimiter: v.delimiter ?? ',',
    header: v.header ?? true,
    rename: v.rename ?? {},
    required: v.required ?? [],
    types,
    keys: v.keys ?? {},
    kind: v.kind ?? 'record',
    encoding: v.encoding ?? 'utf-8',
    trim: v.trim ?? false,
  };
  if (v.sender !== undefined) settings.sender = v.sender;
  if (v.trailer !== undefined) {
    const t = v.trailer;
    if ((t.totalField === undefined) !== (t.totalOf === undefined)) {
      throw new OspreyError('OSPREY_ERR_CHANNEL_SCHEMA', 'CSV record schema: trailer.totalField and trailer.totalOf go together.');
    }
    if (t.totalOf !== undefined && types[t.totalOf] !== undefined && types[t.totalOf]?.type !== 'decimal' && types[t.totalOf]?.type !== 'integer') {
      throw new OspreyError('OSPREY_ERR_CHANNEL_SCHEMA', `CSV record schema: trailer.totalOf names column ${t.totalOf}, which is not numeric.`);
    }
    settings.trailer = { tag: t.tag, countField: t.countField, required: t.required ?? true };
    if (t.totalField !== undefined) settings.trailer.totalField = t.totalField;
    if (t.totalOf !== undefined) settings.trailer.totalOf = t.totalOf;
  }
  return settings;
}
