// SPDX-License-Identifier: Apache-2.0
/**
 * Renders `docs/reference/error-codes.md` from the registry, so the list operators read is the list
 * the code raises. `node --import tsx engine/errors/error-codes-doc.ts` rewrites it; a unit test
 * fails when the committed page drifts.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ErrorCodes } from './error-codes.ts';

export function renderErrorCodesDoc(): string {
  const rows = Object.entries(ErrorCodes).map(([code, spec]) => `| \`${code}\` | ${spec.class} | ${spec.description.replace(/\|/g, '\\|')} |`);
  return [
    '# Error codes',
    '',
    'Generated from `engine/errors/error-codes.ts` by `node --import tsx engine/errors/error-codes-doc.ts`; do not edit by hand.',
    '',
    'Every error Osprey reports (NAK ERR segments, stored message errors, delivery attempts, API errors) carries one of',
    'these codes. Codes are never reused or renamed. The class decides what happens next: `transient` is retried,',
    '`ambiguous` is retried because every request carries an Idempotency-Key, `permanent` stops (ERROR or DEAD_LETTERED).',
    '',
    '| code | class | meaning |',
    '|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(new URL('../../docs/reference/error-codes.md', import.meta.url), renderErrorCodesDoc());
}
