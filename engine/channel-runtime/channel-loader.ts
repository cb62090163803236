// SPDX-License-Identifier: Apache-2.0
/**
 * Loads the channel files of a folder: every `*.channel.yaml` is read, interpolated, validated and
 * turned into a {@link LoadedChannel}; every problem of every file comes back as a positioned
 * {@link LintIssue}. A file with an error excludes only its own channel — the others load
 * (docs/design/0002-channel-files.md, "Rules").
 *
 * `*.channel.test.yaml` files (declarative channel tests) live in the same folder and are not
 * channels. Other `.yaml`/`.yml` files get a warning, because a channel saved as `adt.yaml` would
 * otherwise be silently ignored.
 */
import { readdir, readFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { CHANNEL_FILE_SUFFIX, CHANNEL_TEST_FILE_SUFFIX, type ChannelDefinition } from '../config-schemas/channel.schema.ts';
import { compareIssues, type LintIssue } from '../engine-config/lint-issue.ts';
import { lintAcrossChannels, lintChannelFile, type ChannelLintContext, type LintedChannelFile } from './channel-linter.ts';
import { toChannelRuntime, type ChannelRuntime } from './channel-runtime-view.ts';

export type { ChannelDefinition } from '../config-schemas/channel.schema.ts';
export type { LintIssue } from '../engine-config/lint-issue.ts';
export type * from './channel-runtime-view.ts';

export interface LoadChannelsOptions {
  /** Folder of the channel files (relative paths are taken from `projectRoot`). */
  dir: string;
  /** Values for `${VAR}`. @defaultValue process.env */
  env?: NodeJS.ProcessEnv;
  /** Root that transform paths are relative to. */
  projectRoot: string;
  /** Folder of lookup tables (relative paths are taken from `projectRoot`). */
  lookupsDir: string;
  /** Contract references (`Name@major`) that exist; unset: contract names are not checked. */
  contracts?: ReadonlySet<string>;
  /** Rate limit names defined in the engine config; unset: not checked. */
  rateLimits?: ReadonlySet<string>;
}

/** A channel that passed every check. */
export interface LoadedChannel {
  /** Absolute path of the channel file. */
  file: string;
  /** The file's content: interpolated, validated, defaults filled in; durations and sizes as written. */
  definition: ChannelDefinition;
  /** What the engine runs: ms and bytes, absolute TLS paths, loaded transforms. */
  runtime: ChannelRuntime;
}

export interface LoadChannelsResult {
  /** Channels without errors, in file name order. */
  channels: LoadedChannel[];
  /** Every problem found (errors and warnings), ordered by file and position. */
  issues: LintIssue[];
}

/** Loads and checks every channel file of `dir`. Never rejects for problems in files. */
export async function loadChannels(options: LoadChannelsOptions): Promise<LoadChannelsResult> {
  const projectRoot = resolve(options.projectRoot);
  const dir = isAbsolute(options.dir) ? options.dir : resolve(projectRoot, options.dir);
  const context: ChannelLintContext = {
    projectRoot,
    lookupsDir: isAbsolute(options.lookupsDir) ? options.lookupsDir : resolve(projectRoot, options.lookupsDir),
    env: options.env ?? process.env,
    transformCache: new Map(),
    ...(options.contracts ? { contracts: options.contracts } : {}),
    ...(options.rateLimits ? { rateLimits: options.rateLimits } : {}),
  };

  const issues: LintIssue[] = [];
  let names: string[];
  try {
    names = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name).sort();
  } catch (err) {
    issues.push({
      severity: 'error',
      code: 'OSPREY_ERR_CONFIG_INVALID',
      file: dir,
      line: 1,
      column: 1,
      field: 'channels.dir',
      message: `cannot read the channels folder: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      hint: 'channels: { dir: channels }   in config/*.yaml, or --dir <folder>',
    });
    return { channels: [], issues };
  }

  const channelFiles: string[] = [];
  for (const name of names) {
    if (name.endsWith(CHANNEL_TEST_FILE_SUFFIX) || name.endsWith('.channel.test.yml')) continue;
    if (name.endsWith(CHANNEL_FILE_SUFFIX)) channelFiles.push(join(dir, name));
    else if (/\.ya?ml$/.test(name)) {
      const stem = name.replace(/(\.channel)?\.ya?ml$/, '');
      issues.push({
        severity: 'warning',
        code: 'OSPREY_ERR_CHANNEL_NAME',
        file: join(dir, name),
        line: 1,
        column: 1,
        field: '(file)',
        message: `${name} is not loaded: channel files are named <name>${CHANNEL_FILE_SUFFIX}`,
        hint: `rename to ${stem}${CHANNEL_FILE_SUFFIX}`,
      });
    }
  }

  const linted = await Promise.all(
    channelFiles.map(async (file): Promise<LintedChannelFile> => {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        return {
          file,
          transforms: new Map(),
          issues: [{ severity: 'error', code: 'OSPREY_ERR_CHANNEL_YAML', file, line: 1, column: 1, field: '(file)', message: `cannot read the file: ${(err as Error).message}` }],
        };
      }
      return lintChannelFile(file, text, context);
    }),
  );
  for (const f of linted) issues.push(...f.issues);
  issues.push(...lintAcrossChannels(linted));

  const broken = new Set(issues.filter((i) => i.severity === 'error').map((i) => i.file));
  const channels: LoadedChannel[] = [];
  for (const f of linted) {
    if (broken.has(f.file) || !f.definition) continue;
    channels.push({ file: f.file, definition: f.definition, runtime: toChannelRuntime(f.definition, { file: f.file, projectRoot, transforms: f.transforms }) });
  }
  issues.sort(compareIssues);
  return { channels, issues };
}
