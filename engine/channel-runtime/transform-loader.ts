// SPDX-License-Identifier: Apache-2.0
/**
 * Loads transform modules from their TypeScript source (tsx is registered by the `osprey` command
 * and by the test runner), so an integration engineer edits a transform and runs it: no build step.
 */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { isTransform, type Transform } from '../transform-sdk/index.ts';
import { OspreyError } from '../errors/error-codes.ts';

export type AnyTransform = Transform<unknown, unknown>;

export async function loadTransform(projectRoot: string, path: string): Promise<AnyTransform> {
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(resolve(projectRoot, path)).href)) as { default?: unknown };
  } catch (err) {
    throw new OspreyError('OSPREY_ERR_CHANNEL_TRANSFORM', `cannot load transform ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (!isTransform(mod.default)) {
    throw new OspreyError('OSPREY_ERR_CHANNEL_TRANSFORM', `${path} must default-export defineTransform({...})`);
  }
  return mod.default;
}
