// SPDX-License-Identifier: Apache-2.0
/**
 * Durations and sizes are written with units in YAML (`500ms`, `5m`, `1MB`) so that a reviewer
 * never has to guess whether `60` meant seconds or milliseconds; the runtime works in ms and bytes.
 */
import { DURATION_PATTERN, SIZE_PATTERN } from './common.schema.ts';

const DURATION_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
/** Binary multiples: message size limits are about buffers, and 1MB = 1 MiB is what people expect there. */
const SIZE_BYTES = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 } as const;

const durationRe = new RegExp(DURATION_PATTERN);
const sizeRe = new RegExp(SIZE_PATTERN);

/**
 * Milliseconds of a duration string such as `15s`.
 * @throws RangeError when the string is not a duration (the schema rejects those before this runs).
 */
export function parseDuration(text: string): number {
  const m = durationRe.exec(text);
  if (!m) throw new RangeError(`not a duration: ${JSON.stringify(text)} (write e.g. 500ms, 15s, 5m, 24h, 30d)`);
  return Number.parseInt(text, 10) * DURATION_MS[m[1] as keyof typeof DURATION_MS];
}

/**
 * Bytes of a size string such as `1MB` (1KB = 1024 bytes).
 * @throws RangeError when the string is not a size.
 */
export function parseSize(text: string): number {
  const m = sizeRe.exec(text);
  if (!m) throw new RangeError(`not a size: ${JSON.stringify(text)} (write e.g. 512KB, 1MB)`);
  return Number.parseInt(text, 10) * SIZE_BYTES[m[1] as keyof typeof SIZE_BYTES];
}
