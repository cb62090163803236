// SPDX-License-Identifier: Apache-2.0
/**
 * The one list of HTTP headers whose values are credentials. The REST client redacts them in the
 * request it reports, the store redacts them again before an attempt is written (a second line of
 * defence for any adapter), and the channel linter refuses them as literals in a channel file.
 */

/** Header names (lower case) that always carry credentials. */
export const SECRET_HEADER_NAMES: ReadonlySet<string> = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'api-key',
  'apikey',
  'x-auth-token',
]);

/** Vendor-specific names that carry a credential by their wording (`X-Tenant-Secret`, `X-Session-Token` …). */
const SECRET_HEADER_WORDS = /secret|token|passw|api-?key|auth/i;

/**
 * True when a header's value must never be stored, logged or written literally in a channel file.
 * `Idempotency-Key` is not a secret (it is the delivery id) and is shown.
 */
export function isSecretHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return lower !== 'idempotency-key' && (SECRET_HEADER_NAMES.has(lower) || SECRET_HEADER_WORDS.test(lower));
}
