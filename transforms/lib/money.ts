// SPDX-License-Identifier: Apache-2.0
/**
 * Money as decimal strings with exactly two decimals (`"412.00"`, `"-45.00"`), never as floats: a
 * float cannot hold most cent values exactly (0.1 + 0.2), and sums of them drift by a cent. Parsing
 * and sums go through integer cents (BigInt), so any amount an 835 or a charge file carries is kept
 * to the cent. Pure.
 */

const AMOUNT = /^([+-]?)(\d*)(?:\.(\d*))?$/;

/**
 * The amount as a two-decimal string, or undefined when `text` is not a decimal number or has
 * non-zero digits below the cent (`"12.345"`): such an amount is not a posting amount.
 * X12 writes `225`, `3.5` or `-12.00`; all become `225.00`, `3.50`, `-12.00`.
 */
export function toAmount(text: string | null | undefined): string | undefined {
  const cents = toCents(text);
  return cents === undefined ? undefined : centsToAmount(cents);
}

/** Integer cents of a decimal text (see {@link toAmount}), or undefined. */
export function toCents(text: string | null | undefined): bigint | undefined {
  if (text === undefined || text === null) return undefined;
  const m = AMOUNT.exec(text.trim());
  if (m === null) return undefined;
  const [, sign, whole = '', fraction = ''] = m;
  if (whole === '' && fraction === '') return undefined;
  if (/[1-9]/.test(fraction.slice(2))) return undefined;
  const cents = BigInt(whole === '' ? '0' : whole) * 100n + BigInt((fraction + '00').slice(0, 2));
  return sign === '-' ? -cents : cents;
}

/** Two-decimal text of integer cents; zero is never negative. */
export function centsToAmount(cents: bigint): string {
  const negative = cents < 0n;
  const abs = negative ? -cents : cents;
  const text = `${abs / 100n}.${(abs % 100n).toString().padStart(2, '0')}`;
  return negative ? `-${text}` : text;
}

/** Sum of two-decimal amounts, exact. */
export function sumAmounts(amounts: readonly string[]): string {
  return centsToAmount(amounts.reduce((total, a) => total + (toCents(a) ?? 0n), 0n));
}
