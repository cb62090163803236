// SPDX-License-Identifier: Apache-2.0
/**
 * `${VAR}` and `${VAR:-default}` in YAML values, resolved from the environment before validation
 * (docs/design/0002-channel-files.md, "Rules").
 *
 * Interpolation runs on the parsed document's scalar values, not on the raw text, for two reasons:
 * a variable's value can never inject YAML structure (a `:` or a newline in a password stays part
 * of the password), and every node keeps its position, so an unset variable is reported at the line
 * and column where it is written.
 *
 * Grammar: `${NAME}` (NAME is `[A-Za-z_][A-Za-z0-9_]*`); `${NAME:-default}` uses the default when
 * NAME is unset or empty, as in the shell; the default may itself hold `${OTHER}` references (one
 * level: `${RCM_URL:-${OSPREY_SANDBOX_URL}/rcm}`); `$${` writes a literal `${`. Anything else that
 * starts with `${` is an error, so a typo never ends up as a literal URL or password.
 *
 * Typing: a plain (unquoted) scalar is typed after interpolation as YAML would type it, so
 * `port: ${PORT:-6661}` is the integer 6661; a quoted scalar stays a string.
 */
import type { Document, Scalar } from 'yaml';
import type { ErrorCode } from '../errors/error-codes.ts';
import type { LintIssue } from './lint-issue.ts';
import { formatFieldPath, walkScalars, type FieldPath, type YamlSource } from './yaml-source.ts';

/** One `${…}` found in a string. */
export interface EnvReference {
  /** The text as written, e.g. `${RCM_URL:-http://127.0.0.1:8080}`. */
  text: string;
  /** Offset of `text` in the string. */
  index: number;
  /** The variable name; undefined when the reference is malformed. */
  name?: string;
  /** The default after `:-`, when there is one. */
  defaultValue?: string;
  /** Why the reference is malformed, when it is. */
  malformed?: string;
  /** The form to write instead of a malformed reference. */
  suggestion?: string;
  /** For a reference in another's default: that variable's name (`RCM_URL` in `${RCM_URL:-${X}}`). */
  within?: string;
}

export interface InterpolatedString {
  value: string;
  references: EnvReference[];
  /** References whose variable is unset (or empty) and that have no default. */
  missing: EnvReference[];
  malformed: EnvReference[];
}

/** Provided by the engine while its sandbox is enabled (engine-config/http-exposure.ts). */
const SANDBOX_URL = 'OSPREY_SANDBOX_URL';
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
// A body is anything up to the closing `}`, where a nested `${…}` (in a default) is skipped whole.
const TOKEN = /\$\$\{|\$\{((?:[^}$]|\$\{[^}]*\}|\$(?!\{))*)(\}|$)/g;

/** Finds the `${…}` references of a string (the `$${` escape is not one). */
export function findEnvReferences(text: string): EnvReference[] {
  const refs: EnvReference[] = [];
  for (const m of text.matchAll(TOKEN)) {
    if (m[0] === '$${') continue;
    const index = m.index ?? 0;
    const body = m[1] ?? '';
    const closed = m[2] === '}';
    const ref: EnvReference = { text: m[0], index };
    if (!closed) {
      ref.malformed = `"${m[0]}" has no closing "}"`;
      ref.suggestion = `\${${body.split(/[^A-Za-z0-9_:-]/)[0] ?? 'NAME'}}`;
    } else {
      const sep = body.indexOf(':-');
      const name = sep === -1 ? body : body.slice(0, sep);
      if (NAME.test(name)) {
        ref.name = name;
        if (sep !== -1) ref.defaultValue = body.slice(sep + 2);
      } else {
        // An early sketch of the format used `${env:NAME:default}` / `${secret:name}` (docs/conventions.md §7); say what to write instead.
        const prefixed = /^(env|secret):([A-Za-z_][A-Za-z0-9_-]*)(?::(.*))?$/.exec(body);
        const shellish = /^([A-Za-z_][A-Za-z0-9_]*)(-|:=|=|:\?)(.*)$/.exec(body);
        ref.malformed = `"${m[0]}" is not a variable reference`;
        if (prefixed) {
          const varName = (prefixed[2] ?? '').replace(/-/g, '_').toUpperCase();
          ref.suggestion = prefixed[3] !== undefined ? `\${${varName}:-${prefixed[3]}}` : `\${${varName}}`;
        } else if (shellish) {
          ref.suggestion = `\${${shellish[1]}:-${shellish[3]}}`;
        } else {
          ref.suggestion = '${NAME} or ${NAME:-default}';
        }
      }
    }
    refs.push(ref);
  }
  return refs;
}

/** Interpolates one string. */
export function interpolateString(text: string, env: NodeJS.ProcessEnv): InterpolatedString {
  const references = findEnvReferences(text);
  const missing: EnvReference[] = [];
  const malformed = references.filter((r) => r.malformed !== undefined);
  let value = '';
  let last = 0;
  const unescape = (s: string) => s.replace(/\$\$\{/g, '${');
  for (const ref of references) {
    value += unescape(text.slice(last, ref.index));
    last = ref.index + ref.text.length;
    if (ref.name === undefined) {
      value += ref.text;
      continue;
    }
    const set = env[ref.name];
    if (set !== undefined && set !== '') value += set;
    else if (ref.defaultValue !== undefined) {
      // A default is interpolated only when used: `${RCM_URL:-${OSPREY_SANDBOX_URL}/rcm}` needs
      // OSPREY_SANDBOX_URL only while RCM_URL is unset.
      const inner = interpolateString(ref.defaultValue, env);
      value += inner.value;
      missing.push(...inner.missing.map((m) => ({ ...m, within: ref.name })));
      malformed.push(...inner.malformed);
    }
    // Set but empty, with no default: the author chose empty; only an unset variable is an error.
    else if (set === undefined) missing.push(ref);
  }
  value += unescape(text.slice(last));
  return { value, references, missing, malformed };
}

export interface InterpolationResult {
  issues: LintIssue[];
  /** The text as written of every scalar that held a reference (the node's value is now resolved). */
  originals: Map<Scalar, string>;
}

/**
 * Interpolates every scalar value of a parsed YAML document in place. Unset variables without a
 * default and malformed references become issues with `code` (OSPREY_ERR_CHANNEL_ENV for channel
 * files, OSPREY_ERR_CONFIG_ENV for the engine configuration), positioned at the `${`.
 */
export function interpolateDocument(
  source: YamlSource,
  env: NodeJS.ProcessEnv,
  options: { code?: ErrorCode; channel?: string } = {},
): InterpolationResult {
  const code = options.code ?? 'OSPREY_ERR_CHANNEL_ENV';
  const issues: LintIssue[] = [];
  const originals = new Map<Scalar, string>();
  walkScalars(source.doc as Document, (node, path) => {
    if (typeof node.value !== 'string' || !node.value.includes('${')) return;
    const original = node.value;
    const result = interpolateString(original, env);
    if (result.references.length === 0 && !original.includes('$${')) return;
    originals.set(node, original);
    for (const ref of result.malformed) {
      issues.push(issueAt(source, node, path, ref, code, options.channel, `${ref.malformed} in ${formatFieldPath(path)}`, ref.suggestion));
    }
    for (const ref of result.missing) {
      issues.push(
        issueAt(
          source,
          node,
          path,
          ref,
          code,
          options.channel,
          `environment variable ${ref.name} is not set (used in ${formatFieldPath(path)}) and has no default`,
          ref.name === SANDBOX_URL && ref.within
            ? `export ${ref.within}=<the receiving system's URL>, or enable the sandbox (sandbox.enabled: true), for which the engine sets ${SANDBOX_URL}`
            : `export ${ref.name}=… before starting, or give a default: \${${ref.name}:-<value>}`,
        ),
      );
    }
    node.value = node.type === 'PLAIN' ? typePlainScalar(result.value) : result.value;
  });
  return { issues, originals };
}

function issueAt(
  source: YamlSource,
  node: Scalar,
  path: FieldPath,
  ref: EnvReference,
  code: ErrorCode,
  channel: string | undefined,
  message: string,
  hint: string | undefined,
): LintIssue {
  // Find the reference in the node's own source text so the column is exact even in quoted
  // scalars; fall back to the start of the node.
  let offset = node.range?.[0] ?? 0;
  if (node.range) {
    const raw = source.text.slice(node.range[0], node.range[1]);
    const at = raw.indexOf(ref.text);
    if (at !== -1) offset = node.range[0] + at;
  }
  const pos = source.positionOf(offset);
  return {
    severity: 'error',
    code,
    file: source.file,
    line: pos.line,
    column: pos.column,
    field: formatFieldPath(path),
    message,
    ...(hint !== undefined ? { hint } : {}),
    ...(channel !== undefined ? { channel } : {}),
  };
}

/** YAML 1.2 core-schema typing of a plain scalar's text (null stays the empty string). */
function typePlainScalar(text: string): string | number | boolean {
  if (/^[-+]?[0-9]+$/.test(text)) {
    const n = Number(text);
    if (Number.isSafeInteger(n)) return n;
  }
  if (/^0o[0-7]+$/.test(text)) return Number.parseInt(text.slice(2), 8);
  if (/^0x[0-9a-fA-F]+$/.test(text)) return Number.parseInt(text.slice(2), 16);
  if (/^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/.test(text)) return Number(text);
  if (/^(true|True|TRUE)$/.test(text)) return true;
  if (/^(false|False|FALSE)$/.test(text)) return false;
  return text;
}
