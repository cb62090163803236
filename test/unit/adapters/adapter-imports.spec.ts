// SPDX-License-Identifier: Apache-2.0
/**
 * The adapters' house rule, checked mechanically: an adapter imports only the adapter SDK, the
 * errors module and the message formats of the engine, and code shared between adapters under
 * `adapters/shared/` (plus npm packages and `node:` builtins), and never another adapter. What else
 * it needs, the SDK re-exports. Shared code follows the same rule, so it never reaches into an adapter.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const ADAPTERS = join(ROOT, 'adapters');
const ALLOWED = ['engine/adapter-sdk/', 'engine/errors/', 'engine/message-formats/', 'adapters/shared/'];

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return tsFiles(path);
    return name.endsWith('.ts') ? [path] : [];
  });
}

/** `adapters/<direction>/<name>/`: the folder of one adapter. */
function adapterRoot(file: string): string {
  return relative(ROOT, file).split(sep).slice(0, 3).join('/') + '/';
}

/** Every module specifier of a file: static imports, re-exports and dynamic imports. */
function specifiers(code: string): string[] {
  return [...code.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)'([^']+)'/gm)].map((m) => m[1]!);
}

describe('adapters/ house rules', () => {
  const files = tsFiles(ADAPTERS).filter((f) => relative(ADAPTERS, f).split(sep).length >= 3);

  it('finds the adapters', () => {
    expect(files.map(adapterRoot)).to.include.members(['adapters/inbound/mllp-listener/', 'adapters/outbound/rest/']);
  });

  it('import of the engine only the adapter SDK, the errors module and the message formats, and no other adapter (adapters/shared/ is allowed)', () => {
    const offences: string[] = [];
    for (const file of files) {
      const own = adapterRoot(file);
      for (const spec of specifiers(readFileSync(file, 'utf8'))) {
        if (!spec.startsWith('.')) continue; // npm packages and node: builtins
        const target = relative(ROOT, resolve(dirname(file), spec)).split(sep).join('/');
        if (target.startsWith(own) || ALLOWED.some((a) => target.startsWith(a))) continue;
        offences.push(`${relative(ROOT, file)} imports ${spec}`);
      }
    }
    expect(offences).to.deep.equal([]);
  });

  it('holds shared code to the same rule: adapters/shared/ imports no adapter', () => {
    const offences: string[] = [];
    for (const file of files.filter((f) => adapterRoot(f).startsWith('adapters/shared/'))) {
      for (const spec of specifiers(readFileSync(file, 'utf8'))) {
        if (!spec.startsWith('.')) continue;
        const target = relative(ROOT, resolve(dirname(file), spec)).split(sep).join('/');
        if (target.startsWith('adapters/') && !target.startsWith('adapters/shared/')) offences.push(`${relative(ROOT, file)} imports ${spec}`);
      }
    }
    expect(offences).to.deep.equal([]);
  });

  it('catches an offending import (the check can fail)', () => {
    expect(specifiers("import type { X } from '../../../engine/message-store/message-store.ts';\nexport { y } from './y.ts';")).to.deep.equal([
      '../../../engine/message-store/message-store.ts',
      './y.ts',
    ]);
  });
});
