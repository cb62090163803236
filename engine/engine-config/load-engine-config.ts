// SPDX-License-Identifier: Apache-2.0
/**
 * Loads the engine configuration: the file named by `--config`, else `OSPREY_CONFIG`, else
 * `config/default.yaml`; `${VAR}` / `${VAR:-default}` interpolated from the environment; validated
 * against `EngineConfigSchema`; every default filled in. All problems are reported together in one
 * {@link EngineConfigError}, each positioned like a channel lint issue.
 *
 * Relative paths in the file (store path, folders, contracts module) stay relative: they are taken
 * from the project root by whoever opens them, as `engine/engine-components.ts` does.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { Document } from 'yaml';
import { EngineConfigSchema, type EngineConfig } from '../config-schemas/engine-config.schema.ts';
import { applyDefaults, checkAgainstSchema } from '../config-schemas/schema-validation.ts';
import { OspreyError } from '../errors/error-codes.ts';
import { sandboxExposureProblem } from './http-exposure.ts';
import { interpolateDocument } from './interpolate.ts';
import { compareIssues, formatLintIssue, type LintIssue } from './lint-issue.ts';
import { formatFieldPath, parseYamlSource, walkScalars } from './yaml-source.ts';

export type { EngineConfig } from '../config-schemas/engine-config.schema.ts';

/** Where the engine configuration is read from when nothing else is said. */
export const DEFAULT_CONFIG_FILE = 'config/default.yaml';

export interface LoadEngineConfigOptions {
  /** From `--config`; wins over `OSPREY_CONFIG`. */
  file?: string;
  /** Values for `${VAR}` and `OSPREY_CONFIG`. @defaultValue process.env */
  env?: NodeJS.ProcessEnv;
  /** Folder a relative `file` is taken from. @defaultValue process.cwd() */
  cwd?: string;
}

/** The engine configuration is invalid; `issues` lists every problem, positioned. */
export class EngineConfigError extends OspreyError {
  readonly issues: readonly LintIssue[];
  readonly file: string;

  constructor(file: string, issues: LintIssue[]) {
    const lines = issues.map((i) => `  ${formatLintIssue(i)}`).join('\n');
    super(issues[0]?.code ?? 'OSPREY_ERR_CONFIG_INVALID', `engine configuration ${file} has ${issues.length} problem${issues.length === 1 ? '' : 's'}:\n${lines}`);
    this.name = 'EngineConfigError';
    this.issues = issues;
    this.file = file;
  }
}

/** The file a load would read, after `--config` / `OSPREY_CONFIG` / default. */
export function resolveEngineConfigFile(options: LoadEngineConfigOptions = {}): string {
  const env = options.env ?? process.env;
  const chosen = options.file ?? (env.OSPREY_CONFIG || undefined) ?? DEFAULT_CONFIG_FILE;
  return isAbsolute(chosen) ? chosen : resolve(options.cwd ?? process.cwd(), chosen);
}

/**
 * Reads, interpolates and validates the engine configuration.
 * @throws EngineConfigError with every problem (OSPREY_ERR_CONFIG_INVALID, OSPREY_ERR_CONFIG_ENV).
 */
export function loadEngineConfig(options: LoadEngineConfigOptions = {}): EngineConfig {
  const file = resolveEngineConfigFile(options);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be read (${(err as Error).message})`;
    throw new EngineConfigError(file, [
      { severity: 'error', code: 'OSPREY_ERR_CONFIG_INVALID', file, line: 1, column: 1, field: '(file)', message: `the engine configuration file ${reason}`, hint: `--config <file>, OSPREY_CONFIG=<file>, or a ${DEFAULT_CONFIG_FILE}` },
    ]);
  }
  return parseEngineConfig(file, text, options.env ?? process.env);
}

/**
 * Interpolates and validates engine configuration text (`file` is only used in messages).
 * @throws EngineConfigError with every problem.
 */
export function parseEngineConfig(file: string, text: string, env: NodeJS.ProcessEnv = process.env): EngineConfig {
  const issues: LintIssue[] = [];
  const { source, errors } = parseYamlSource(file, text);
  if (errors.length > 0) {
    throw new EngineConfigError(
      file,
      errors.map((e) => ({ severity: 'error', code: 'OSPREY_ERR_CONFIG_INVALID', file, line: e.line, column: e.column, field: '(file)', message: e.message, ...(e.hint ? { hint: e.hint } : {}) })),
    );
  }
  const interpolation = interpolateDocument(source, env, { code: 'OSPREY_ERR_CONFIG_ENV' });
  issues.push(...interpolation.issues);
  // An empty file is a valid configuration: every default applies.
  const value: unknown = source.doc.contents === null ? {} : source.doc.toJS();

  const interpolated = new Set<string>();
  walkScalars(source.doc as Document, (node, path) => {
    if (interpolation.originals.has(node)) interpolated.add(formatFieldPath(path));
  });
  for (const p of checkAgainstSchema(EngineConfigSchema, value, { isLiteral: (path) => !interpolated.has(formatFieldPath(path)) })) {
    // A value that is still empty because its variable was unset is already reported as such.
    if (issues.some((i) => i.field === formatFieldPath(p.path))) continue;
    const pos = source.position(p.path, p.at);
    issues.push({ severity: 'error', code: 'OSPREY_ERR_CONFIG_INVALID', file, line: pos.line, column: pos.column, field: p.field, message: p.message, ...(p.hint ? { hint: p.hint } : {}) });
  }
  if (issues.length > 0) throw new EngineConfigError(file, issues.sort(compareIssues));
  const config = applyDefaults<EngineConfig>(EngineConfigSchema, value);
  const exposure = sandboxExposureProblem(config);
  if (exposure) {
    const pos = source.position(['sandbox', 'enabled']);
    throw new EngineConfigError(file, [
      { severity: 'error', code: 'OSPREY_ERR_CONFIG_INVALID', file, line: pos.line, column: pos.column, field: 'sandbox.enabled', message: exposure, hint: 'sandbox: { enabled: true, allowRemote: true }   (only on a network you trust)' },
    ]);
  }
  return config;
}
