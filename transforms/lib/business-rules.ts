// SPDX-License-Identifier: Apache-2.0
/**
 * Business-exception categories and the master-data resolution the sample transforms share:
 * departments (enriched by the channel), providers and facilities (looked up here). Pure.
 *
 * An exception is raised with `ctx.exception(category, detail, tags)`: the message stops in
 * BUSINESS_EXCEPTION, an operator sees it by category, facility and department, fixes the lookup
 * and replays. Categories are stable identifiers: monitoring and alerts key on them.
 */
import type { ExceptionTags, Hl7Reader, LookupValue, TransformContext } from '../../engine/transform-sdk/index.ts';
import type { Department, Provider } from '../canonical-events/common.ts';
import { hl7Offset, hl7ToIsoDateTime, parseHl7DateTime } from './hl7-timestamp.ts';
import { text } from './hl7-fields.ts';
import type { ProviderRef } from './person-name.ts';

export const ExceptionCategory = {
  /** A department/location code that `config/lookups/departments.yaml` does not map (or maps without a cost center). */
  unmappedDepartment: 'unmapped-department',
  /** A provider id that `config/lookups/providers.yaml` does not know (or knows without the NPI a flow needs). */
  unknownProvider: 'unknown-provider',
  /** The message lacks, or has malformed, data the flow cannot do without (MSH-10, PID-3, a visit number, a start time). */
  incompleteMessage: 'incomplete-message',
  /** A time without an offset from a facility with no time zone in `config/lookups/facilities.yaml`. */
  unknownTimeZone: 'unknown-time-zone',
  /** An 835 claim payment whose payer has no id (N1*PR N104, REF*2U, TRN03): it cannot be posted to a payer. */
  missingPayer: 'missing-payer',
} as const;
export type ExceptionCategory = (typeof ExceptionCategory)[keyof typeof ExceptionCategory];

/** A lookup row as a record; a plain-string row has no columns and reads as absent. */
export function asRow(value: LookupValue | undefined): Readonly<Record<string, string>> | undefined {
  return typeof value === 'object' ? value : undefined;
}

/** A resolved department row: name, cost center and the facility it belongs to. */
export interface DepartmentRow {
  department: Department;
  facility?: string;
}

/**
 * The department for a code from the channel's enrich result, or a business exception.
 * A row without a cost center counts as unmapped: every consumer downstream posts to cost centers.
 * Returns undefined when no code was sent at all (nothing to map; a flow that needs a department
 * then raises its own exception with that detail).
 */
export function requireDepartment(
  ctx: TransformContext,
  code: string | undefined,
  fieldPath: string,
  tags: ExceptionTags,
): DepartmentRow | undefined {
  if (code === undefined) return undefined;
  const row = asRow(ctx.enrichment['department']);
  const name = row?.['name'];
  const costCenter = row?.['costCenter'];
  if (name === undefined || costCenter === undefined) {
    ctx.exception(
      ExceptionCategory.unmappedDepartment,
      `department '${code}' (${fieldPath}) is not in lookup 'departments' or has no name/costCenter`,
      { ...tags, department: code },
    );
  }
  const resolved: DepartmentRow = { department: { code, name, costCenter } };
  const facility = row?.['facility'];
  if (facility !== undefined) resolved.facility = facility;
  return resolved;
}

/** A provider reference enriched from the `providers` lookup (NPI, role); `known` says whether it was found. */
export function resolveProvider(ctx: TransformContext, ref: ProviderRef): Provider {
  const row = asRow(ctx.lookup('providers', ref.id));
  const provider: Provider = { id: ref.id, known: row !== undefined };
  const npi = row?.['npi'];
  const role = row?.['role'];
  if (npi !== undefined) provider.npi = npi;
  if (ref.name !== undefined) provider.name = ref.name;
  if (role !== undefined) provider.role = role;
  return provider;
}

/**
 * Reads HL7 timestamps of one message as ISO date-times, resolving absent offsets with the
 * facility's IANA zone (`facilities` lookup, column `timeZone`), then MSH-7's offset.
 * A malformed value is `incomplete-message`; a value whose offset cannot be resolved is
 * `unknown-time-zone` — never a silent guess of UTC.
 */
export function timestampReader(
  ctx: TransformContext,
  msg: Hl7Reader,
  facility: string,
  tags: ExceptionTags,
): (path: string) => string | undefined {
  const timeZone = asRow(ctx.lookup('facilities', facility))?.['timeZone'];
  const fallbackOffset = hl7Offset(text(msg, 'MSH-7.1'));
  return (path) => {
    const raw = text(msg, path);
    if (raw === undefined) return undefined;
    if (parseHl7DateTime(raw) === undefined) {
      ctx.exception(ExceptionCategory.incompleteMessage, `${path} '${raw}' is not an HL7 date/time`, tags);
    }
    const iso = hl7ToIsoDateTime(raw, { timeZone, fallbackOffset });
    if (iso === undefined) {
      ctx.exception(
        ExceptionCategory.unknownTimeZone,
        `${path} '${raw}' has no UTC offset, MSH-7 has none, and facility '${facility}' has no timeZone in lookup 'facilities'`,
        tags,
      );
    }
    return iso;
  };
}

/** Rounds to 2 decimals (hours on ERP lines), avoiding `-0`. */
export function round2(n: number): number {
  const r = Math.round(n * 100) / 100;
  return r === 0 ? 0 : r;
}
