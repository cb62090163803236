// SPDX-License-Identifier: Apache-2.0
/**
 * The CLI's dispatch and help: every command answers `--help` with its options (without running),
 * an unknown command or option says what was wrong, and the usage shows every option and the
 * environment the CLI reads. In process, with stdout and stderr captured.
 */
import { expect } from 'chai';
import { main } from '../../../engine/cli/main.ts';
import { COMMAND_USAGE, USAGE } from '../../../engine/cli/usage.ts';

async function run(argv: string[]): Promise<{ code: number | undefined; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const stdout = process.stdout.write;
  const stderr = process.stderr.write;
  process.stdout.write = ((chunk: string) => out.push(String(chunk)) > 0) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => err.push(String(chunk)) > 0) as typeof process.stderr.write;
  try {
    const code = await main(argv);
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    process.stdout.write = stdout;
    process.stderr.write = stderr;
  }
}

describe('cli/main', () => {
  for (const command of ['start', 'validate', 'test', 'send', 'messages', 'files']) {
    it(`osprey ${command} --help prints its options and the environment, and runs nothing`, async () => {
      for (const flag of ['--help', '-h']) {
        const res = await run([command, flag]);
        expect(res.code, res.stderr).to.equal(0);
        expect(res.stderr).to.equal('');
        expect(res.stdout).to.contain(`Usage: osprey ${command}`).and.contain('OSPREY_API_TOKEN');
      }
    });
  }

  it('validate --help does not validate (no summary line)', async () => {
    const res = await run(['validate', '--strict', '--help']);
    expect(res.stdout).to.not.contain('checked');
  });

  it('osprey, osprey --help and osprey help print the usage; osprey help <command> that command', async () => {
    for (const argv of [[], ['--help'], ['-h'], ['help']]) {
      const res = await run(argv);
      expect(res.code).to.equal(0);
      expect(res.stdout).to.equal(USAGE);
    }
    expect((await run(['help', 'send'])).stdout).to.contain(COMMAND_USAGE.send!);
  });

  it('an unknown command is named, with a suggestion, and the usage goes to stderr with exit 2', async () => {
    const res = await run(['mesages']);
    expect(res.code).to.equal(2);
    expect(res.stdout).to.equal('');
    expect(res.stderr).to.match(/^osprey: unknown command "mesages" — did you mean "messages"\?\n/);
    expect(res.stderr).to.contain(USAGE);
  });

  it('an unknown option names itself and points at the help, exit 2', async () => {
    const res = await run(['messages', '--patient', 'E1']);
    expect(res.code).to.equal(2);
    expect(res.stderr).to.contain("osprey messages: Unknown option '--patient'").and.contain('See: osprey messages --help');
    const validate = await run(['validate', '--strcit']);
    expect(validate.code).to.equal(2);
    expect(validate.stderr).to.contain("Unknown option '--strcit'");
  });

  it('a --since that is neither a duration nor a time is refused before any request, exit 2', async () => {
    const res = await run(['messages', '--since', 'yesterday', '--api', 'http://127.0.0.1:1']);
    expect(res.code, res.stderr).to.equal(2);
    expect(res.stderr).to.contain('--since "yesterday" is neither a duration');
  });

  it('the usage shows the options that were hidden and the environment the CLI reads', () => {
    for (const text of ['--api', '--timeout', '--insecure', '--until', 'OSPREY_API_URL', 'OSPREY_HTTP_PORT', 'OSPREY_API_TOKEN', 'OSPREY_CONFIG', 'OSPREY_SEND_VERBOSE']) {
      expect(USAGE, text).to.contain(text);
    }
  });
});
