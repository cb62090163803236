// SPDX-License-Identifier: Apache-2.0
/**
 * `osprey <command>`: start | validate | test | send | messages. Each command lives in
 * `commands/`; this file only dispatches and prints usage.
 */
import { startCommand } from './commands/start.ts';
import { validateCommand } from './commands/validate.ts';
import { testCommand } from './commands/test.ts';
import { sendCommand } from './commands/send.ts';
import { messagesCommand } from './commands/messages.ts';

const USAGE = `osprey — healthcare interface engine

Usage:
  osprey start [--config config/default.yaml]        run the engine (channels, management API on :8080)
  osprey validate [--dir channels] [--strict]         check every channel file; all problems at once
  osprey test [--dir channels] [channel…]             run the channels' sample tests, diff on mismatch
  osprey send <file|dir…> [--host 127.0.0.1] [--port N] [--tls] [--ca F] [--cert F] [--key F]
                                                       send HL7 files over MLLP and print each ACK
  osprey messages [--channel C] [--state S] [--control-id X] [--patient-id P] [--since T]
                  [--limit N] [--id ID] [--json] [--replay ID] [--api URL]
                                                       query (or replay) messages through the API
`;

const commands: Record<string, (argv: string[]) => Promise<number>> = {
  start: startCommand,
  validate: (argv) => validateCommand(parseValidateArgs(argv)),
  test: testCommand,
  send: sendCommand,
  messages: messagesCommand,
};

function parseValidateArgs(argv: string[]): { dir?: string; config?: string; strict?: boolean } {
  const args: { dir?: string; config?: string; strict?: boolean } = {};
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--dir') args.dir = argv[++i];
    else if (argv[i] === '--config') args.config = argv[++i];
    else if (argv[i] === '--strict') args.strict = true;
  }
  return args;
}

/** The error and its causes ("store could not be opened: connect ECONNREFUSED …"), so an operator sees why. */
function describeWithCauses(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err; e instanceof Error && parts.length < 5; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    parts.push(typeof code === 'string' && !e.message.includes(code) ? `${e.message} (${code})` : e.message);
  }
  return parts.length > 0 ? parts.join(': ') : String(err);
}

const [name, ...rest] = process.argv.slice(2);
const command = name ? commands[name] : undefined;
if (!command) {
  process.stdout.write(USAGE);
  process.exitCode = name && name !== 'help' && name !== '--help' ? 2 : 0;
} else {
  try {
    const code = await command(rest);
    // `start` keeps running; the others end with their exit code.
    if (name !== 'start') process.exit(code);
  } catch (err) {
    process.stderr.write(`osprey ${name}: ${describeWithCauses(err)}\n`);
    process.exit(1);
  }
}
