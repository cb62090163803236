// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ENGINE_NODE_OPTIONS } from '../../../engine/engine-config/node-options.ts';
import { REPO_ROOT } from '../../helpers/test-engine.ts';

describe('engine-config: the engine process’s V8 heap settings', () => {
  const flags = ENGINE_NODE_OPTIONS.join(' ');

  it('npm start passes them', () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).to.equal(`node ${flags} bin/osprey.js start`);
  });

  it('the osprey command’s shebang passes them', () => {
    const first = readFileSync(join(REPO_ROOT, 'bin', 'osprey.js'), 'utf8').split('\n')[0];
    expect(first).to.equal(`#!/usr/bin/env -S node ${flags}`);
  });

  it('are flags this Node accepts', () => {
    for (const flag of ENGINE_NODE_OPTIONS) expect(process.allowedNodeEnvironmentFlags.has(flag.split('=')[0]!), flag).to.equal(true);
  });
});
