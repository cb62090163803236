// SPDX-License-Identifier: Apache-2.0
/**
 * House rules for transforms/ and the sample lookups, checked mechanically: transforms import
 * nothing of the engine but the transform SDK, use no clock, randomness or I/O, and the lookup
 * tables reference each other consistently.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { expect } from 'chai';
import { isValidTimeZone } from '../../../transforms/lib/hl7-timestamp.ts';
import { loadLookups, ROOT } from './sample-harness.ts';

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return tsFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

const MINE = ['canonical-events', 'contracts', 'inbound', 'outbound', 'lib'].flatMap((d) => tsFiles(join(ROOT, 'transforms', d)));

describe('transforms/ house rules', () => {
  it('import nothing of engine/ except engine/transform-sdk/index.ts', () => {
    for (const file of MINE) {
      const imports = [...readFileSync(file, 'utf8').matchAll(/from '([^']+)'/g)].map((m) => m[1]!);
      for (const spec of imports.filter((s) => s.includes('engine/'))) {
        expect(spec, relative(ROOT, file)).to.match(/engine\/transform-sdk\/index\.ts$/);
      }
      for (const spec of imports.filter((s) => s.startsWith('node:'))) expect.fail(`${relative(ROOT, file)} imports ${spec}`);
    }
  });

  it('use no clock, randomness or I/O', () => {
    for (const file of MINE) {
      const code = readFileSync(file, 'utf8');
      for (const banned of [/Date\.now\(/, /new Date\(\)/, /Math\.random\(/, /\bfetch\(/, /process\.env/, /randomUUID/]) {
        expect(banned.test(code), `${relative(ROOT, file)} uses ${banned}`).to.equal(false);
      }
    }
  });

  it('carry the SPDX header', () => {
    for (const file of MINE) expect(readFileSync(file, 'utf8').startsWith('// SPDX-License-Identifier: Apache-2.0'), relative(ROOT, file)).to.equal(true);
  });
});

describe('config/lookups (sample master data)', () => {
  const tables = loadLookups();
  const rows = (table: string): Array<[string, Record<string, string>]> =>
    [...(tables.table(table) ?? new Map()).entries()].map(([k, v]) => [k, v as Record<string, string>]);

  it('has departments with a name, a cost center and a known facility', () => {
    expect(rows('departments')).to.not.be.empty;
    for (const [code, row] of rows('departments')) {
      expect(row, code).to.include.keys('name', 'costCenter', 'facility');
      expect(tables.table('facilities')?.has(row['facility']!), `${code} facility`).to.equal(true);
    }
  });

  it('has providers with a 10-digit NPI, a name and a kebab-case role', () => {
    for (const [id, row] of rows('providers')) {
      expect(row['npi'], id).to.match(/^\d{10}$/);
      expect(row['name'], id).to.match(/^[^,]+, .+$/);
      expect(row['role'], id).to.match(/^[a-z]+(-[a-z]+)*$/);
    }
  });

  it('has facilities with a valid IANA time zone', () => {
    for (const [code, row] of rows('facilities')) expect(isValidTimeZone(row['timeZone'] ?? ''), code).to.equal(true);
  });
});
