#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// The `osprey` command. Registers the TypeScript loader (tsx) so that the engine, channels'
// transforms and the CLI run from source with no manual build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../engine/cli/main.ts');
const code = await main(process.argv.slice(2));
// `start` keeps running (undefined); the others end with their exit code, open handles or not.
if (code !== undefined) process.exit(code);
