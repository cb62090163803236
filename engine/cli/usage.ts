// SPDX-License-Identifier: Apache-2.0
/**
 * The CLI's help texts: the overview (`osprey`, `osprey --help`) and one per command
 * (`osprey <command> --help`). Plain strings with no imports, so printing help loads nothing else.
 */

/** The environment variables the CLI itself reads (the engine's own are in config/.env.example). */
const ENVIRONMENT = `Environment:
  OSPREY_CONFIG         engine configuration file when --config is not given (start, validate, test)
  OSPREY_API_URL        management API of messages, files and send when --api is not given
  OSPREY_HTTP_PORT      port of that API when OSPREY_API_URL is not set either (default 8080)
  OSPREY_API_TOKEN      bearer token sent to the API (the first, when it lists several)
  OSPREY_SEND_VERBOSE   any value: send prints each whole ACK too
`;

/** One entry per command: what it does, then its options. */
export const COMMAND_USAGE: Record<string, string> = {
  start: `Usage: osprey start [--config FILE]

Runs the engine (channels, management API) until SIGINT or SIGTERM.

Options:
  --config FILE   engine configuration (default: $OSPREY_CONFIG, else config/default.yaml)
  -h, --help      this help
`,
  validate: `Usage: osprey validate [--config FILE] [--dir DIR] [--strict]

Checks the engine configuration and every channel file (transforms, lookups, contracts, rate
limits, environment variables), prints every problem at once as file:line:col  CODE  message.
Runs no channel and opens no port. Exit 1 on any error.

Options:
  --config FILE   engine configuration (default: $OSPREY_CONFIG, else config/default.yaml)
  --dir DIR       channel folder (default: channels.dir of the configuration)
  --strict        warnings fail too (for CI)
  -h, --help      this help
`,
  test: `Usage: osprey test [--config FILE] [--dir DIR] [CHANNEL…]

Runs each channel's declarative tests (<name>.channel.test.yaml next to the channel file) through
the real pipeline, and prints a diff for each mismatch. Exit 1 on any failure.

Options:
  --config FILE   engine configuration (default: $OSPREY_CONFIG, else config/default.yaml)
  --dir DIR       channel folder (default: channels.dir of the configuration)
  CHANNEL…        only these channels
  -h, --help      this help
`,
  send: `Usage: osprey send FILE|DIR… [--port N] [--host H] [--tls [--ca F] [--cert F] [--key F] [--insecure]]
                   [--api URL] [--timeout MS]

Sends each message of each file over MLLP (batch and multi-message files are split) and prints
its ACK. Without --port, each message goes to the running channel that accepts its type, asked
from the management API; each line names that channel, and a warning says when several accept it.

Options:
  --port N        send everything to this MLLP port (no API needed)
  --host H        MLLP host (default 127.0.0.1)
  --tls           MLLP over TLS; --ca F trusts that CA, --cert F / --key F present a client
                  certificate, --insecure skips the server certificate check (testing only)
  --api URL       management API (default: $OSPREY_API_URL, else http://127.0.0.1:$OSPREY_HTTP_PORT,
                  else http://127.0.0.1:8080)
  --timeout MS    how long to wait for each ACK (default 10000)
  -h, --help      this help
`,
  messages: `Usage: osprey messages [--channel C] [--state S] [--control-id X] [--patient-id P]
                       [--since T] [--until T] [--limit N] [--json] [--api URL]
       osprey messages --id ID [--attempts N] [--attempts-before SEQ] [--api URL]
       osprey messages --replay ID [--api URL]

Searches messages through the management API (newest first), shows one message's whole
history (--id), or replays one (--replay).

Options:
  --channel C       one channel
  --state S         RECEIVED, FILTERED, QUEUED, SENT, ERROR, BUSINESS_EXCEPTION, DEAD_LETTERED
  --control-id X    MSH-10
  --patient-id P    the patient identifier (PID-3.1)
  --since T         received at or after T: a duration ago (30s, 10m, 2h, 7d) or an ISO 8601 time
  --until T         received before T (same forms)
  --limit N         at most N messages (1–1000)
  --json            JSON instead of a table
  --attempts N      with --id: the newest N attempts of each delivery (default 20, at most 500)
  --attempts-before SEQ  with --id: the attempts older than SEQ (a delivery's attemptsBefore)
  --api URL         management API (default: $OSPREY_API_URL, else http://127.0.0.1:$OSPREY_HTTP_PORT,
                    else http://127.0.0.1:8080)
  -h, --help        this help
`,
  files: `Usage: osprey files [--channel C] [--state S] [--limit N] [--json] [--api URL]

Lists the files the file sources (SFTP) took, newest first, through the management API: name
(with its version when a corrected file came under the same name), channel, state, records
stored / in the file, records stored as ERROR or BUSINESS_EXCEPTION, and when it was picked up.

Options:
  --channel C       one channel
  --state S         PROCESSING, DONE, QUARANTINED, DUPLICATE
  --limit N         at most N files (1–1000, default 50)
  --json            JSON instead of a table (with path, content hash, error, where it was moved)
  --api URL         management API (default: $OSPREY_API_URL, else http://127.0.0.1:$OSPREY_HTTP_PORT,
                    else http://127.0.0.1:8080)
  -h, --help        this help
`,
};

/** The overview: every command, its main options, and the environment. */
export const USAGE = `osprey — healthcare interface engine

Usage:
  osprey start [--config FILE]                        run the engine (channels, management API on :8080)
  osprey validate [--config FILE] [--dir DIR] [--strict]
                                                       check every channel file; all problems at once
  osprey test [--config FILE] [--dir DIR] [CHANNEL…]  run the channels' sample tests, diff on mismatch
  osprey send FILE|DIR… [--port N] [--host H] [--tls] [--ca F] [--cert F] [--key F] [--insecure]
              [--api URL] [--timeout MS]               send HL7 files over MLLP and print each ACK
  osprey messages [--channel C] [--state S] [--control-id X] [--patient-id P] [--since T] [--until T]
                  [--limit N] [--json] [--id ID] [--replay ID] [--api URL]
                                                       query (or replay) messages through the API
  osprey files [--channel C] [--state S] [--limit N] [--json] [--api URL]
                                                       files taken by file sources, with their progress
  osprey <command> --help                             a command's options in full

${ENVIRONMENT}`;

/** A command's help, with the environment it reads. */
export function commandUsage(command: string): string | undefined {
  const text = COMMAND_USAGE[command];
  return text === undefined ? undefined : `${text}\n${ENVIRONMENT}`;
}

/** A command line the command cannot run with (a bad value): exit 2 with a pointer to the help. */
export class UsageError extends Error {
  override name = 'UsageError';
}
