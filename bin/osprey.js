#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// The `osprey` command. Registers the TypeScript loader (tsx) so that the engine, channels'
// transforms and the CLI run from source with no manual build step.
import { register } from 'tsx/esm/api';

register();
await import('../engine/cli/main.ts');
