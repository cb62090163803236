// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { buildArtifacts, REPO_ROOT } from '../../../engine/config-schemas/build-json-schema.ts';

describe('config-schemas/generated artefacts', () => {
  // docs/conventions.md §1: generated files are committed and must match their source.
  for (const { path, content } of buildArtifacts()) {
    it(`${path} matches the schema (run "npm run schema:build" if not)`, () => {
      let committed: string;
      try {
        committed = readFileSync(join(REPO_ROOT, path), 'utf8');
      } catch {
        throw new Error(`${path} is missing: run "npm run schema:build" and commit it`);
      }
      expect(committed === content, `${path} is stale: run "npm run schema:build" and commit it`).to.equal(true);
    });
  }

  it('the editor schemas are valid draft-07 and accept the committed configs as written (with ${VAR})', () => {
    const ajv = new Ajv({ strict: false, allErrors: true });
    const schema = JSON.parse(readFileSync(join(REPO_ROOT, 'engine/config-schemas/generated/engine-config.schema.json'), 'utf8')) as object;
    const validate = ajv.compile(schema);
    for (const file of ['config/default.yaml', 'config/production.yaml']) {
      const ok = validate(parse(readFileSync(join(REPO_ROOT, file), 'utf8')));
      expect(ok, `${file}: ${ajv.errorsText(validate.errors)}`).to.equal(true);
    }
  });

  it('the editor channel schema accepts ${VAR} where the runtime expects a number', () => {
    const ajv = new Ajv({ strict: false });
    const schema = JSON.parse(readFileSync(join(REPO_ROOT, 'engine/config-schemas/generated/channel.schema.json'), 'utf8')) as object;
    const channel = {
      apiVersion: 'osprey/v1',
      kind: 'Channel',
      metadata: { name: 'adt-to-rcm', version: '1.0.0' },
      spec: {
        source: { type: 'mllp-listener', port: '${ADT_MLLP_PORT:-6661}', accept: ['ADT^A01'] },
        destinations: [{ name: 'rcm', type: 'rest', url: '${RCM_URL}/x', auth: { type: 'bearer', token: '${T}' } }],
      },
    };
    expect(ajv.validate(schema, channel), ajv.errorsText()).to.equal(true);
    expect(ajv.validate(schema, { ...channel, kind: '${KIND}' })).to.equal(false);
  });
});
