// SPDX-License-Identifier: Apache-2.0
/**
 * Checks of one CSV value against its column type, and an exact decimal sum for trailer totals.
 * Sums are kept as a BigInt of units at the largest scale seen, because adding money as floats
 * drifts (0.1 + 0.2) and a trailer total compared with a drifted sum would fail a good file.
 */
import type { CsvColumnType } from './csv-record-schema.ts';

const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^([+-]?)(\d*)(?:\.(\d*))?$/;

/** Why a value does not fit its type (a phrase without the value: values may be PHI), or undefined. */
export function checkCsvValue(value: string, t: CsvColumnType): string | undefined {
  switch (t.type) {
    case 'string':
      return t.maxLength !== undefined && value.length > t.maxLength ? `is longer than ${t.maxLength} characters` : undefined;
    case 'integer':
      return INTEGER.test(value) ? undefined : 'is not an integer';
    case 'decimal': {
      const d = parseDecimal(value);
      if (d === undefined) return 'is not a decimal number';
      return t.scale !== undefined && d.scale > t.scale ? `has more than ${t.scale} decimal places` : undefined;
    }
    case 'date':
      return checkDate(value, t.format) ? undefined : `is not a date in the format ${t.format}`;
    default:
      t satisfies never;
      return undefined;
  }
}

/** An exact decimal: `units / 10^scale`. */
export interface CsvDecimal {
  units: bigint;
  scale: number;
}

/** Parses `-12.50`, `3`, `.5`; undefined for anything else (no exponent, no thousands separator). */
export function parseDecimal(value: string): CsvDecimal | undefined {
  const m = DECIMAL.exec(value.trim());
  if (m === null) return undefined;
  const intPart = m[2] ?? '';
  const frac = m[3] ?? '';
  if (intPart === '' && frac === '') return undefined;
  const units = BigInt((intPart || '0') + frac);
  return { units: m[1] === '-' ? -units : units, scale: frac.length };
}

function rescale(d: CsvDecimal, scale: number): bigint {
  return d.units * 10n ** BigInt(scale - d.scale);
}

/** Adds two decimals exactly. */
export function addDecimal(a: CsvDecimal, b: CsvDecimal): CsvDecimal {
  const scale = Math.max(a.scale, b.scale);
  return { units: rescale(a, scale) + rescale(b, scale), scale };
}

/** True when the two decimals are the same number (`12.5` equals `12.50`). */
export function decimalEquals(a: CsvDecimal, b: CsvDecimal): boolean {
  const scale = Math.max(a.scale, b.scale);
  return rescale(a, scale) === rescale(b, scale);
}

/** Plain text of a decimal at its own scale (`-0.30`). */
export function formatDecimal(d: CsvDecimal): string {
  const negative = d.units < 0n;
  const digits = (negative ? -d.units : d.units).toString().padStart(d.scale + 1, '0');
  const text = d.scale === 0 ? digits : `${digits.slice(0, -d.scale)}.${digits.slice(-d.scale)}`;
  return negative ? `-${text}` : text;
}

const formatCache = new Map<string, { re: RegExp; order: string[] }>();

/** The format's tokens as a regular expression, built once per format. */
function compileDateFormat(format: string): { re: RegExp; order: string[] } {
  let compiled = formatCache.get(format);
  if (compiled === undefined) {
    const order: string[] = [];
    const source = format.replace(/YYYY|MM|DD|HH|mm|ss|[^YMDHms]/g, (token) => {
      if (token.length === 1) return token.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
      order.push(token);
      return token === 'YYYY' ? '(\\d{4})' : '(\\d{2})';
    });
    compiled = { re: new RegExp(`^${source}$`), order };
    formatCache.set(format, compiled);
  }
  return compiled;
}

/** True when `value` has the layout of `format` and is a real calendar date (no 02-30) and time. */
export function checkDate(value: string, format: string): boolean {
  const { re, order } = compileDateFormat(format);
  const m = re.exec(value);
  if (m === null) return false;
  const part: Record<string, number> = {};
  order.forEach((token, i) => (part[token] = Number(m[i + 1])));
  const year = part.YYYY ?? 0;
  const month = part.MM ?? 0;
  const day = part.DD ?? 0;
  if (month < 1 || month > 12 || day < 1) return false;
  // Day 0 of the next month is the last day of this one (leap years included).
  if (day > new Date(Date.UTC(year, month, 0)).getUTCDate()) return false;
  return (part.HH ?? 0) <= 23 && (part.mm ?? 0) <= 59 && (part.ss ?? 0) <= 59;
}
