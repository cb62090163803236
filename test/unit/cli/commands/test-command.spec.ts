// SPDX-License-Identifier: Apache-2.0
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const root = fileURLToPath(new URL('../../../../', import.meta.url));
const osprey = (args: string[]) => spawnSync(process.execPath, ['bin/osprey.js', ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });

describe('osprey test', function () {
  this.timeout(90_000);

  it('passes every sample of the shipped channels', () => {
    const run = osprey(['test']);
    expect(run.status, run.stdout + run.stderr).to.equal(0);
    expect(run.stdout).to.match(/\d+ passed, 0 failed/);
  });

  it('fails with a diff when an output differs from the expected file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'osprey-channel-test-'));
    try {
      copyFileSync(join(root, 'channels/adt-to-rcm-erp.channel.yaml'), join(dir, 'adt-to-rcm-erp.channel.yaml'));
      const expectedFile = join(root, 'samples/expected/adt-to-rcm-erp/adt-a01-admit-icu.erp-accruals.json');
      const tampered = join(dir, 'tampered.json');
      writeFileSync(tampered, readFileSync(expectedFile, 'utf8').replace(/"costCenter": "[^"]*"/, '"costCenter": "CC-WRONG"'));
      writeFileSync(
        join(dir, 'adt-to-rcm-erp.channel.test.yaml'),
        `cases:\n  - name: tampered expectation\n    input: samples/hl7v2/adt/adt-a01-admit-icu.hl7\n    expect:\n      erp-accruals: ${relative(root, tampered)}\n`,
      );
      const run = osprey(['test', '--dir', dir]);
      expect(run.status).to.equal(1);
      expect(run.stdout).to.contain('✗ adt-to-rcm-erp › tampered expectation');
      expect(run.stdout).to.match(/^\s+- +"costCenter": "CC-WRONG",$/m).and.match(/^\s+\+ +"costCenter": "CC-\d+",$/m);
      expect(run.stdout).to.contain('0 passed, 1 failed');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
