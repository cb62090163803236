// SPDX-License-Identifier: Apache-2.0
/**
 * `osprey <command>`: start | validate | test | send | messages | files. Each command lives in
 * `commands/` and is imported only when it runs: `messages`, `files` and `send` never load the engine,
 * its store drivers or any transform, so they start in a fraction of the time `start` needs.
 * This file only dispatches and prints help (`usage.ts`).
 */
import { didYouMean } from '../config-schemas/did-you-mean.ts';
import { commandUsage, USAGE, UsageError } from './usage.ts';

type Command = (argv: string[]) => Promise<number>;

const commands: Record<string, () => Promise<Command>> = {
  start: async () => (await import('./commands/start.ts')).startCommand,
  validate: async () => {
    const { validateCommand, parseValidateArgs } = await import('./commands/validate.ts');
    return (argv) => validateCommand(parseValidateArgs(argv));
  },
  test: async () => (await import('./commands/test.ts')).testCommand,
  send: async () => (await import('./commands/send.ts')).sendCommand,
  messages: async () => (await import('./commands/messages.ts')).messagesCommand,
  files: async () => (await import('./commands/files.ts')).filesCommand,
};

/** The error and its causes ("store could not be opened: connect ECONNREFUSED …"), so an operator sees why. */
function describeWithCauses(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err; e instanceof Error && parts.length < 5; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    parts.push(typeof code === 'string' && !e.message.includes(code) ? `${e.message} (${code})` : e.message);
  }
  return parts.length > 0 ? parts.join(': ') : String(err);
}

/** Runs the CLI on `argv` (without node and the script); resolves to the exit code, or undefined while `start` runs on. */
export async function main(argv: string[]): Promise<number | undefined> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    const topic = name === 'help' && rest[0] !== undefined ? commandUsage(rest[0]) : undefined;
    process.stdout.write(topic ?? USAGE);
    return 0;
  }
  const load = commands[name];
  if (!load) {
    const guess = didYouMean(name, Object.keys(commands));
    process.stderr.write(`osprey: unknown command "${name}"${guess ? ` — did you mean "${guess}"?` : ''}\n\n${USAGE}`);
    return 2;
  }
  // Before the command parses anything: `validate --help` must not validate.
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(commandUsage(name)!);
    return 0;
  }
  try {
    const command = await load();
    const code = await command(rest);
    return name === 'start' ? undefined : code;
  } catch (err) {
    const parseError = typeof (err as { code?: unknown }).code === 'string' && (err as { code: string }).code.startsWith('ERR_PARSE_ARGS');
    // By name: a command module may see its own copy of the class (another loader's instance).
    if (parseError || (err as Error).name === UsageError.name) {
      process.stderr.write(`osprey ${name}: ${(err as Error).message}\nSee: osprey ${name} --help\n`);
      return 2;
    }
    process.stderr.write(`osprey ${name}: ${describeWithCauses(err)}\n`);
    return 1;
  }
}
