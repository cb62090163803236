#!/usr/bin/env -S node --max-semi-space-size=8 --max-old-space-size=1024
// SPDX-License-Identifier: Apache-2.0
// The `osprey` command. Registers the TypeScript loader (tsx) so that the engine, channels'
// transforms and the CLI run from source with no manual build step. The shebang's V8 heap settings
// are the engine's (engine/engine-config/node-options.ts).
//
// `messages`, `send` and the help only talk to a running engine: they load no transform and no
// engine module, and their modules use only TypeScript that erases to JavaScript. On a Node that
// strips types itself (22.18+, 24), they skip tsx, whose loader is most of their start-up time.
const command = process.argv[2];
const light = command === undefined || ['messages', 'send', 'help', '--help', '-h'].includes(command);
if (!(light && process.features.typescript)) {
  const { register } = await import('tsx/esm/api');
  register();
}
// `osprey messages | head`: a reader that has seen enough is not an error.
process.stdout.on('error', (err) => process.exit(err.code === 'EPIPE' ? 0 : 1));
const { main } = await import('../engine/cli/main.ts');
const code = await main(process.argv.slice(2));
// `start` keeps running (undefined); the others end with their exit code, open handles or not.
if (code !== undefined) process.exit(code);
