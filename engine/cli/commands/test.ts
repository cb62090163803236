// SPDX-License-Identifier: Apache-2.0
import { existsSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { channelEnvironment } from '../../engine-config/http-exposure.ts';
import { loadEngineConfig } from '../../engine-config/load-engine-config.ts';
import { loadProject } from '../../channel-runtime/load-project.ts';
import { readChannelTests, runChannelTest } from '../../channel-runtime/channel-tests.ts';

/**
 * `osprey test [channel…]`: runs each channel's declarative tests (`<name>.channel.test.yaml` next
 * to the channel file) through the real pipeline and prints a diff for each mismatch.
 */
export async function testCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { dir: { type: 'string' }, config: { type: 'string' } },
  });
  const projectRoot = process.cwd();
  const config = loadEngineConfig({ file: values.config, env: process.env });
  const dir = resolve(projectRoot, values.dir ?? config.channels.dir);
  const project = await loadProject({ config, projectRoot, env: channelEnvironment(config, process.env), channelsDir: dir });
  const { issues } = project;
  for (const issue of issues.filter((i) => i.severity === 'error')) {
    process.stdout.write(`✗ ${relative(projectRoot, issue.file)}:${issue.line}  ${issue.code}  ${issue.message}\n`);
  }

  let passed = 0;
  let failed = issues.filter((i) => i.severity === 'error').length;
  for (const spec of project.channels) {
    if (positionals.length > 0 && !positionals.includes(spec.name)) continue;
    const testFile = join(dir, `${spec.name}.channel.test.yaml`);
    if (!existsSync(testFile)) {
      process.stdout.write(`- ${spec.name}: no tests (${relative(projectRoot, testFile)})\n`);
      continue;
    }
    for (const test of readChannelTests(testFile)) {
      const result = await runChannelTest(spec, project.resourcesFor(spec), projectRoot, test);
      if (result.passed) {
        passed++;
        process.stdout.write(`✓ ${spec.name} › ${test.name}\n`);
      } else {
        failed++;
        process.stdout.write(`✗ ${spec.name} › ${test.name}\n${result.problems.map((p) => `    ${p.replace(/\n/g, '\n    ')}`).join('\n')}\n`);
      }
    }
  }
  process.stdout.write(`\n${passed} passed, ${failed} failed\n`);
  return failed > 0 ? 1 : 0;
}
