// SPDX-License-Identifier: Apache-2.0
/**
 * "Did you mean …?" for misspelt keys and type names. A suggestion is only made when the edit
 * distance is small: a far-fetched guess sends the author down the wrong path, which is worse than
 * listing the allowed values (docs/conventions.md §2).
 */

/**
 * Optimal-string-alignment distance: Levenshtein plus adjacent transpositions (`tranfsorm` is one
 * edit from `transform`, the typo people actually make).
 */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  const at = (i: number, j: number): number => d[i]?.[j] ?? Number.POSITIVE_INFINITY;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1);
      const row = d[i];
      if (row) row[j] = best;
    }
  }
  return at(a.length, b.length);
}

/** The largest distance still worth a suggestion for a word of this length. */
export function suggestionThreshold(length: number): number {
  if (length <= 3) return 1;
  if (length <= 8) return 2;
  return 3;
}

/**
 * The closest candidate when it is close enough, else `undefined`. Case differences alone always
 * qualify (`ClientSecret` → `clientSecret`).
 */
export function didYouMean(input: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  const lower = input.toLowerCase();
  for (const candidate of candidates) {
    if (candidate === input) return undefined;
    const distance = candidate.toLowerCase() === lower ? 0.5 : editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  if (best === undefined) return undefined;
  return bestDistance <= suggestionThreshold(Math.max(input.length, best.length)) ? best : undefined;
}
