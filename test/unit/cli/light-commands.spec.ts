// SPDX-License-Identifier: Apache-2.0
/**
 * `osprey messages`, `osprey files` and `osprey send` start fast because they load little: no engine, no store
 * driver, no transform — and on Node 22.18+/24 no tsx, which needs their modules to use only
 * TypeScript that erases to JavaScript (bin/osprey.js). This walks their static imports (type-only
 * imports excepted, as they vanish) and fails when one of those grows back.
 */
import { readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { expect } from 'chai';
import { REPO_ROOT } from '../../helpers/test-engine.ts';

/** The repository files a module loads at run time, itself included, following relative imports. */
function runtimeGraph(entry: string): string[] {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/^(?:import|export)\s+(?!type\b)(?:[^'"]*?\sfrom\s+)?['"](\.[^'"]+)['"]/gm)) visit(resolve(dirname(file), m[1]!));
  };
  visit(resolve(REPO_ROOT, entry));
  return [...seen].map((f) => relative(REPO_ROOT, f)).sort();
}

describe('cli: the light commands stay light', () => {
  const graphs = Object.fromEntries(['engine/cli/main.ts', 'engine/cli/commands/messages.ts', 'engine/cli/commands/files.ts', 'engine/cli/commands/send.ts'].map((e) => [e, runtimeGraph(e)]));

  it('main, messages, files and send load no engine, store, bus, channel runtime, API server or transform', () => {
    for (const [entry, files] of Object.entries(graphs)) {
      const heavy = files.filter((f) => /^engine\/(engine\.ts|engine-components\.ts|message-store\/|message-bus\/|channel-runtime\/|management-api\/|config-schemas\/(?!did-you-mean)|engine-config\/)|^transforms\//.test(f));
      expect(heavy, `${entry} loads ${heavy.join(', ')}`).to.deep.equal([]);
    }
    expect(graphs['engine/cli/main.ts'], 'main imports its commands lazily').to.not.include('engine/cli/commands/messages.ts');
  });

  it('their modules use only TypeScript that erases (no enum, namespace or constructor parameter property)', () => {
    const files = new Set(Object.values(graphs).flat());
    for (const file of files) {
      const text = readFileSync(resolve(REPO_ROOT, file), 'utf8');
      expect(/^\s*(export\s+)?(const\s+)?enum\s/m.test(text), `${file}: enum`).to.equal(false);
      expect(/^\s*(export\s+)?namespace\s/m.test(text), `${file}: namespace`).to.equal(false);
      // A modifier opening a parameter (`constructor(private x: T)`), not a `readonly T[]` type.
      expect(/constructor\s*\((?:[^)]*,)?\s*(?:(?:private|protected|public|readonly|override)\s+)+\w+\s*[:?,)]/s.test(text), `${file}: constructor parameter property`).to.equal(false);
    }
  });
});
