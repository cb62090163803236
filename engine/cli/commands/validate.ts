// SPDX-License-Identifier: Apache-2.0
/**
 * `osprey validate [--dir channels] [--config file] [--strict]`: checks the engine configuration
 * and every channel file, prints every problem at once as
 * `file:line:col  CODE  message  → write: <form>`, then a summary. Exit 1 on any error, or on any
 * warning with `--strict` (for CI). Runs no channel and opens no port.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { EngineConfigSchema, type EngineConfig } from '../../config-schemas/engine-config.schema.ts';
import { applyDefaults } from '../../config-schemas/schema-validation.ts';
import { loadChannels } from '../../channel-runtime/channel-loader.ts';
import { channelEnvironment } from '../../engine-config/http-exposure.ts';
import { EngineConfigError, loadEngineConfig, resolveEngineConfigFile } from '../../engine-config/load-engine-config.ts';
import { compareIssues, formatLintIssue, type LintIssue } from '../../engine-config/lint-issue.ts';

export interface ValidateArgs {
  /** Channel folder; default: `channels.dir` of the engine config. */
  dir?: string;
  /** Engine config file; default: `OSPREY_CONFIG`, else `config/default.yaml`. */
  config?: string;
  /** Warnings fail the run too. */
  strict?: boolean;
  /** @defaultValue process.env */
  env?: NodeJS.ProcessEnv;
  /** Project root: paths are relative to it, and printed relative to it. @defaultValue process.cwd() */
  cwd?: string;
  /** Where lines go. @defaultValue process.stdout */
  write?: (text: string) => void;
}

/** The command line of `osprey validate`; an unknown option throws (ERR_PARSE_ARGS_UNKNOWN_OPTION). */
export function parseValidateArgs(argv: string[]): ValidateArgs {
  const { values } = parseArgs({ args: argv, options: { dir: { type: 'string' }, config: { type: 'string' }, strict: { type: 'boolean' } } });
  return { ...(values.dir !== undefined ? { dir: values.dir } : {}), ...(values.config !== undefined ? { config: values.config } : {}), ...(values.strict ? { strict: true } : {}) };
}

/** Runs the validation; resolves to the process exit code (0 clean, 1 problems). */
export async function validateCommand(args: ValidateArgs): Promise<number> {
  const cwd = resolve(args.cwd ?? process.cwd());
  const env = args.env ?? process.env;
  const write = args.write ?? ((text: string) => void process.stdout.write(text));
  const issues: LintIssue[] = [];

  let config: EngineConfig | undefined;
  const configFile = resolveEngineConfigFile({ ...(args.config !== undefined ? { file: args.config } : {}), env, cwd });
  const explicit = args.config !== undefined || Boolean(env.OSPREY_CONFIG);
  if (!explicit && !existsSync(configFile)) {
    // A repository without a config file runs on the defaults; that is not a problem.
    config = applyDefaults<EngineConfig>(EngineConfigSchema, {});
  } else {
    try {
      config = loadEngineConfig({ file: configFile, env, cwd });
    } catch (err) {
      if (!(err instanceof EngineConfigError)) throw err;
      issues.push(...err.issues);
    }
  }
  const fallback = config ?? applyDefaults<EngineConfig>(EngineConfigSchema, {});

  const contracts = config ? await loadContractNames(cwd, config.contracts.module, issues) : undefined;
  const { channels, issues: channelIssues } = await loadChannels({
    dir: args.dir ?? fallback.channels.dir,
    env: channelEnvironment(fallback, env),
    projectRoot: cwd,
    lookupsDir: fallback.lookups.dir,
    ...(contracts ? { contracts } : {}),
    ...(config ? { rateLimits: new Set(Object.keys(config.rateLimits)) } : {}),
  });
  issues.push(...channelIssues);
  if (config && !existsSync(resolve(cwd, config.contracts.module)) && channels.some((c) => c.runtime.destinations.some((d) => d.contract !== undefined))) {
    issues.push({
      severity: 'warning',
      code: 'OSPREY_ERR_CHANNEL_CONTRACT',
      file: resolve(cwd, config.contracts.module),
      line: 1,
      column: 1,
      field: 'contracts.module',
      message: `the contract registry ${config.contracts.module} does not exist, so contract names were not checked`,
      hint: 'export const contracts = { "Name@1": schema }   in that module',
    });
  }

  issues.sort(compareIssues);
  for (const issue of issues) write(`${formatLintIssue(issue, cwd)}\n`);

  const errors = issues.filter((i) => i.severity === 'error').length;
  const warnings = issues.length - errors;
  const channelFiles = new Set([...channels.map((c) => c.file), ...channelIssues.filter((i) => i.file.endsWith('.channel.yaml')).map((i) => i.file)]);
  const broken = new Set(channelIssues.filter((i) => i.severity === 'error').map((i) => i.file));
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  write(
    `${plural(channelFiles.size, 'channel file')} checked: ${channels.length} valid, ${[...channelFiles].filter((f) => broken.has(f)).length} with errors; ` +
      `${plural(errors, 'error')}, ${plural(warnings, 'warning')}${args.strict && warnings > 0 ? ' (--strict: warnings fail)' : ''}\n`,
  );
  return errors > 0 || (args.strict === true && warnings > 0) ? 1 : 0;
}

/**
 * The `Name@major` keys of the contract registry module, or undefined when there is no module
 * (then contract names cannot be checked). A module that fails to load is an error.
 */
async function loadContractNames(cwd: string, modulePath: string, issues: LintIssue[]): Promise<Set<string> | undefined> {
  const file = resolve(cwd, modulePath);
  if (!existsSync(file)) return undefined;
  try {
    const mod = (await import(pathToFileURL(file).href)) as { contracts?: unknown; default?: unknown };
    const registry = mod.contracts ?? mod.default;
    if (registry instanceof Map) return new Set([...registry.keys()].map(String));
    if (typeof registry === 'object' && registry !== null) return new Set(Object.keys(registry));
    issues.push({ severity: 'error', code: 'OSPREY_ERR_CHANNEL_CONTRACT', file, line: 1, column: 1, field: 'contracts.module', message: `${modulePath} does not export "contracts"`, hint: 'export const contracts = { "Name@1": schema }' });
  } catch (err) {
    issues.push({ severity: 'error', code: 'OSPREY_ERR_CHANNEL_CONTRACT', file, line: 1, column: 1, field: 'contracts.module', message: `the contract registry ${modulePath} cannot be loaded: ${(err as Error).message.split('\n')[0]}` });
  }
  return undefined;
}
