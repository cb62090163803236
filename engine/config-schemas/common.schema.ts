// SPDX-License-Identifier: Apache-2.0
/**
 * Field blocks shared by the channel and engine-config schemas: durations, sizes, names, HL7
 * paths. Each carries `x-expected`, the phrase the linter uses when a value does not match
 * ("must be a duration with a unit …"), because Ajv's own "must match pattern ^…$" tells an
 * integration engineer nothing.
 *
 * Custom keywords (all annotations; Ajv ignores them once registered with {@link OSPREY_KEYWORDS}):
 * - `x-expected`: words for a pattern mismatch.
 * - `x-key-expected`: the same for the keys of a map of named entries (rate limits, headers).
 * - `x-discriminator`: on a union, the property whose value picks the variant (`type`).
 * - `x-one-key`: on a union of single-key objects (channel steps), the key picks the variant.
 * - `x-secret`: the field must be a `${VAR}` reference, never a literal (docs and linter).
 */
import { Type, type SchemaOptions, type StringOptions } from '@sinclair/typebox';

/** Custom annotation keywords used by Osprey's schemas; register them with Ajv. */
export const OSPREY_KEYWORDS = ['x-expected', 'x-key-expected', 'x-discriminator', 'x-one-key', 'x-secret', 'x-advanced', 'x-since'] as const;

/** `500ms`, `15s`, `5m`, `24h`, `30d`: a whole number and a unit. */
export const DURATION_PATTERN = '^[0-9]+(ms|s|m|h|d)$';
/** `512KB`, `1MB`: a whole number and a unit (binary multiples: 1KB = 1024 bytes). */
export const SIZE_PATTERN = '^[0-9]+(B|KB|MB|GB)$';
/** kebab-case identifier: lower-case letters, digits and single dashes. */
export const KEBAB_PATTERN = '^[a-z][a-z0-9]*(-[a-z0-9]+)*$';
/** HL7 v2 path: `PID-3.1`, `PID-3[2].1`, `OBX[3]-5`, `MSH-9.1.2`. */
export const HL7_PATH_PATTERN = '^[A-Z][A-Z0-9]{2}(\\[[0-9]+\\])?-[0-9]+(\\[[0-9]+\\])?(\\.[0-9]+){0,2}$';
/** HL7 v2 message type as MSH-9.1^MSH-9.2: `ADT^A01`. */
export const MESSAGE_TYPE_PATTERN = '^[A-Z0-9]{3}\\^[A-Z0-9]{2,3}$';
/** Semantic version `1.2.3` (pre-release and build suffixes allowed). */
export const SEMVER_PATTERN = '^(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\\+[0-9A-Za-z.-]+)?$';
/** A TypeScript module path relative to the project root. */
export const TS_PATH_PATTERN = '^[^\\s]+\\.ts$';
/** A contract reference: `Name@major`. */
export const CONTRACT_REF_PATTERN = '^[A-Za-z][A-Za-z0-9]*@[0-9]+$';

/** A duration string; the loader converts it to milliseconds. */
export function Duration(options: StringOptions = {}) {
  return Type.String({
    pattern: DURATION_PATTERN,
    'x-expected': 'a duration: a whole number and a unit, one of ms, s, m, h, d (500ms, 15s, 5m, 24h)',
    ...options,
  });
}

/** A size string; the loader converts it to bytes. */
export function Size(options: StringOptions = {}) {
  return Type.String({
    pattern: SIZE_PATTERN,
    'x-expected': 'a size: a whole number and a unit, one of B, KB, MB, GB (512KB, 1MB)',
    ...options,
  });
}

/** A kebab-case name (channels, destinations, rate limits, lookups). */
export function KebabName(options: StringOptions = {}) {
  return Type.String({
    pattern: KEBAB_PATTERN,
    'x-expected': 'a kebab-case name: lower-case letters, digits and dashes (adt-to-erp)',
    ...options,
  });
}

/** An HL7 v2 path in the notation analysts use. */
export function Hl7Path(options: StringOptions = {}) {
  return Type.String({
    pattern: HL7_PATH_PATTERN,
    'x-expected': 'an HL7 path: segment-field[.component[.subcomponent]], e.g. PID-3.1 or PID-3[2].1',
    ...options,
  });
}

/** A CSV column name, as a path into a `csv-record` message. */
export const COLUMN_NAME_PATTERN = '^[A-Za-z_][A-Za-z0-9_]*$';

/**
 * A path into the channel's message, in its format's notation: `PID-3.1` (HL7 v2), `CLP-1` (X12)
 * or a column name (CSV). `osprey validate` holds HL7 and X12 channels to the segment notation.
 */
export function MessagePath(options: StringOptions = {}) {
  return Type.String({
    pattern: `^(?:${HL7_PATH_PATTERN.slice(1, -1)}|${COLUMN_NAME_PATTERN.slice(1, -1)})$`,
    'x-expected': 'a path of the source format: segment-field[.component] such as PID-3.1 or CLP-1, or a CSV column name such as account_id',
    ...options,
  });
}

/** A field that holds a credential or a key file path: only `${VAR}` references are accepted. */
export function SecretString(options: StringOptions = {}) {
  return Type.String({ minLength: 1, 'x-secret': true, ...options });
}

/** A closed set of string values. TypeBox unions of literals give poor errors; `enum` gives one. */
export function StringEnum<const T extends readonly string[]>(values: T, options: SchemaOptions = {}) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });
}
