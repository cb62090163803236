// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { validateCommand } from '../../../../engine/cli/commands/validate.ts';
import { createFixtureProject, validChannel, validEnv, type FixtureProject } from '../../channel-runtime/fixture-project.ts';

describe('cli/commands/validate', () => {
  let project: FixtureProject;
  let lines: string[];
  const run = (args: { dir?: string; config?: string; strict?: boolean; env?: NodeJS.ProcessEnv } = {}) =>
    validateCommand({ env: validEnv, ...args, cwd: project.root, write: (text) => lines.push(...text.trimEnd().split('\n')) });

  beforeEach(() => {
    project = createFixtureProject();
    lines = [];
    project.write('config/default.yaml', 'rateLimits:\n  rcm-api: { perSecond: 10, burst: 10 }\n');
    project.write('transforms/contracts/index.ts', "export const contracts = { 'BillingReadiness@1': { type: 'object' } };\n");
  });
  afterEach(() => project.remove());

  it('exits 0 with a summary when everything is valid', async () => {
    project.write('channels/adt-to-rcm.channel.yaml', validChannel());
    expect(await run()).to.equal(0);
    expect(lines).to.deep.equal(['1 channel file checked: 1 valid, 0 with errors; 0 errors, 0 warnings']);
  });

  it('prints file:line:col  CODE  message  → write: hint with relative paths, and exits 1', async () => {
    project.write('channels/adt-to-rcm.channel.yaml', validChannel().replace('rateLimit: rcm-api', 'rateLimit: rcm-apj').replace('BillingReadiness@1', 'BillingReadyness@1'));
    project.write('channels/other.channel.yaml', validChannel('other', '6662'));
    expect(await run()).to.equal(1);
    expect(lines).to.deep.equal([
      'channels/adt-to-rcm.channel.yaml:28:17  OSPREY_ERR_CHANNEL_CONTRACT  contract BillingReadyness@1 does not exist — did you mean BillingReadiness@1?  → write: contract: BillingReadiness@1',
      'channels/adt-to-rcm.channel.yaml:39:18  OSPREY_ERR_CHANNEL_RATE_LIMIT  rate limit "rcm-apj" is not defined in the engine config rateLimits — did you mean "rcm-api"?  → write: rateLimit: rcm-api',
      '2 channel files checked: 1 valid, 1 with errors; 2 errors, 0 warnings',
    ]);
  });

  it("shows a transform's syntax error as the compiler reports it, with file:line:col", async () => {
    project.write('transforms/adt-to-event.ts', "export default {\n  name: 'x',\n  map(m: unknown) { return m +; },\n};\n");
    project.write('channels/adt-to-rcm.channel.yaml', validChannel());
    expect(await run()).to.equal(1);
    const line = lines.find((l) => l.includes('OSPREY_ERR_CHANNEL_TRANSFORM'));
    expect(line, lines.join('\n')).to.match(/transform transforms\/adt-to-event\.ts cannot be loaded: transforms\/adt-to-event\.ts:3:30: Unexpected ";"$/);
  });

  it('passes warnings unless --strict', async () => {
    project.write('channels/adt-to-rcm.channel.yaml', validChannel().replace('  owner: integration-team\n', ''));
    expect(await run()).to.equal(0);
    expect(lines[0]).to.equal('channels/adt-to-rcm.channel.yaml:4:3  OSPREY_ERR_CHANNEL_SCHEMA  warning: metadata has no owner: say which team answers for this channel  → write: owner: integration-team');
    lines = [];
    expect(await run({ strict: true })).to.equal(1);
    expect(lines.at(-1)).to.equal('1 channel file checked: 1 valid, 0 with errors; 0 errors, 1 warning (--strict: warnings fail)');
  });

  it('reports a lookup table that does not parse as a warning naming the file (fails --strict)', async () => {
    project.write('config/lookups/departments.yaml', 'CARD: { costCenter: "4100"\n');
    project.write('channels/adt-to-rcm.channel.yaml', validChannel());
    expect(await run()).to.equal(0);
    expect(lines[0]).to.match(/^channels\/adt-to-rcm\.channel\.yaml:\d+:\d+ {2}OSPREY_ERR_CHANNEL_LOOKUP {2}warning: lookup table "departments" \(config\/lookups\/departments\.yaml\) is refused: \S/);
    lines = [];
    expect(await run({ strict: true })).to.equal(1);
  });

  it('reports engine config problems and still checks the channels', async () => {
    project.write('config/broken.yaml', 'rateLimit: {}\n');
    project.write('channels/adt-to-rcm.channel.yaml', validChannel().replace('port: ${ADT_PORT:-6661}', 'port: ${ADT_PORT}'));
    expect(await run({ config: 'config/broken.yaml' })).to.equal(1);
    expect(lines[0]).to.match(/^channels\/adt-to-rcm\.channel\.yaml:10:11 {2}OSPREY_ERR_CHANNEL_ENV {2}environment variable ADT_PORT is not set/);
    expect(lines[1]).to.equal('config/broken.yaml:1:1  OSPREY_ERR_CONFIG_INVALID  unknown field "rateLimit" — did you mean "rateLimits"?  → write: rateLimits:');
  });

  it('--dir overrides the configured folder', async () => {
    project.write('elsewhere/x.channel.yaml', validChannel('x', '7000'));
    expect(await run({ dir: 'elsewhere' })).to.equal(0);
    expect(lines).to.deep.equal(['1 channel file checked: 1 valid, 0 with errors; 0 errors, 0 warnings']);
  });
});
