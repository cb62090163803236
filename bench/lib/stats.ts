// SPDX-License-Identifier: Apache-2.0
/** Percentiles of latency samples (nearest rank, as load tools report them). */

/** Sorts a copy of the finite values. */
export function sorted(values: Iterable<number>): Float64Array {
  const finite: number[] = [];
  for (const v of values) if (Number.isFinite(v)) finite.push(v);
  return Float64Array.from(finite).sort();
}

/** Nearest-rank percentile of sorted values (p in 0–100); NaN when there are none. */
export function percentile(sortedValues: Float64Array, p: number): number {
  if (sortedValues.length === 0) return NaN;
  const rank = Math.min(sortedValues.length, Math.max(1, Math.ceil((p / 100) * sortedValues.length)));
  return sortedValues[rank - 1] as number;
}

/** Rounds for the report: 2 decimals under 10, 1 under 1000, integers above; null for NaN (JSON). */
export function round(v: number): number | null {
  if (!Number.isFinite(v)) return null;
  if (Math.abs(v) < 10) return Math.round(v * 100) / 100;
  if (Math.abs(v) < 1000) return Math.round(v * 10) / 10;
  return Math.round(v);
}
