// SPDX-License-Identifier: Apache-2.0
/**
 * Checks channel files and reports every problem at once, each positioned at the line and column
 * to fix, with a stable code and the form to write (docs/conventions.md §2, docs/design/0002).
 *
 * Per file: YAML syntax; `${VAR}` interpolation; literal secrets; the schema (every field); file
 * name = `metadata.name`; unique destination names; charset and allow-list values; transforms
 * exist and default-export a transform; lookup tables exist; contract and rate-limit names exist
 * (when the caller knows them). Across files: duplicate channel names and inbound ports.
 *
 * Checks after the schema run on the raw value too, guarded by type tests, so a file with a schema
 * error still gets its missing transform reported in the same run.
 */
import { sourceDefinition } from './adapter-registry.ts';
import { HL7_PATH_PATTERN } from '../config-schemas/common.schema.ts';
import { access, readdir, readFile, stat } from 'node:fs/promises';
import { constants } from 'node:fs';
import { basename, dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { isIP } from 'node:net';
import { pathToFileURL } from 'node:url';
import iconv from 'iconv-lite';
import type { Document } from 'yaml';
import { isSecretHeader } from '../adapter-sdk/secret-headers.ts';
import { ChannelSchema, CHANNEL_FILE_SUFFIX, type ChannelDefinition } from '../config-schemas/channel.schema.ts';
import { didYouMean } from '../config-schemas/did-you-mean.ts';
import { applyDefaults, checkAgainstSchema } from '../config-schemas/schema-validation.ts';
import type { ErrorCode } from '../errors/error-codes.ts';
import { interpolateDocument } from '../engine-config/interpolate.ts';
import type { LintIssue } from '../engine-config/lint-issue.ts';
import { formatFieldPath, parseYamlSource, walkScalars, type FieldPath, type YamlSource } from '../engine-config/yaml-source.ts';
import { isTransform, type Transform } from '../transform-sdk/index.ts';
import { describeLookupError, LOOKUP_EXTENSIONS, parseTable } from './lookup-tables.ts';

export type { LintIssue, LintSeverity } from '../engine-config/lint-issue.ts';
export { compareIssues, formatLintIssue } from '../engine-config/lint-issue.ts';

type AnyTransform = Transform<unknown, unknown>;
type TransformLoad = { transform: AnyTransform } | { error: string };

/** What a lint run shares across files: the references to check against, and an import cache. */
export interface ChannelLintContext {
  projectRoot: string;
  /** Absolute folder of lookup tables. */
  lookupsDir: string;
  /** Contract references (`Name@major`) that exist; entries without `@` accept any major. Unset: not checked. */
  contracts?: ReadonlySet<string>;
  /** Rate limit names of the engine config. Unset: not checked. */
  rateLimits?: ReadonlySet<string>;
  env: NodeJS.ProcessEnv;
  /** Transform imports by absolute path (one import per module per run). */
  transformCache?: Map<string, Promise<TransformLoad>>;
  /** Why each lookup file read so far is refused ('' when it parses), by absolute path. */
  lookupCache?: Map<string, Promise<string>>;
}

/** The result of checking one channel file. */
export interface LintedChannelFile {
  file: string;
  issues: LintIssue[];
  /** `metadata.name` when it is a string. */
  name?: string;
  /** The parsed source (absent when the file could not be read). */
  source?: YamlSource;
  /** The interpolated value (absent on a YAML syntax error). */
  value?: unknown;
  /** The validated definition with defaults, when the file has no errors. */
  definition?: ChannelDefinition;
  /** Loaded transforms by the path as written. */
  transforms: Map<string, AnyTransform>;
}

const SECRET_KEYS = new Set(['token', 'password', 'clientSecret']);
const ENV_ONLY = /^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/;

/** Checks one channel file's text. Never throws for problems in the file: they become issues. */
export async function lintChannelFile(file: string, text: string, context: ChannelLintContext): Promise<LintedChannelFile> {
  const result: LintedChannelFile = { file, issues: [], transforms: new Map() };
  const { source, errors } = parseYamlSource(file, text);
  result.source = source;
  const add = (code: ErrorCode, path: FieldPath, message: string, hint?: string, options: { at?: 'key' | 'value'; severity?: 'error' | 'warning'; field?: string } = {}) => {
    const pos = source.position(path, options.at ?? 'value');
    result.issues.push({
      severity: options.severity ?? 'error',
      code,
      file,
      line: pos.line,
      column: pos.column,
      field: options.field ?? formatFieldPath(path),
      message,
      ...(hint !== undefined ? { hint } : {}),
      ...(result.name !== undefined ? { channel: result.name } : {}),
    });
  };

  if (errors.length > 0) {
    for (const e of errors) {
      result.issues.push({ severity: 'error', code: 'OSPREY_ERR_CHANNEL_YAML', file, line: e.line, column: e.column, field: '(file)', message: e.message, ...(e.hint ? { hint: e.hint } : {}) });
    }
    return result;
  }
  if (source.doc.contents === null) {
    add('OSPREY_ERR_CHANNEL_YAML', [], 'the channel file is empty', 'apiVersion: osprey/v1, kind: Channel, metadata, spec (see docs/reference/channel-schema.md)');
    return result;
  }

  const rawName = source.doc.getIn(['metadata', 'name']);
  if (typeof rawName === 'string') result.name = rawName;

  const interpolation = interpolateDocument(source, context.env, { code: 'OSPREY_ERR_CHANNEL_ENV', ...(result.name ? { channel: result.name } : {}) });
  result.issues.push(...interpolation.issues);
  checkLiteralSecrets(source, interpolation.originals, add);

  let value: unknown;
  try {
    value = source.doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    add('OSPREY_ERR_CHANNEL_YAML', [], `YAML: ${(err as Error).message}`);
    return result;
  }
  result.value = value;

  const interpolated = new Set<string>();
  walkScalars(source.doc as Document, (node, path) => {
    if (interpolation.originals.has(node)) interpolated.add(formatFieldPath(path));
  });
  const envFields = new Set(interpolation.issues.map((i) => i.field));
  for (const p of checkAgainstSchema(ChannelSchema, value, { isLiteral: (path) => !interpolated.has(formatFieldPath(path)) })) {
    // An unset variable leaves an empty value; its ENV issue already says what to do.
    if (envFields.has(formatFieldPath(p.path))) continue;
    add('OSPREY_ERR_CHANNEL_SCHEMA', p.path, p.message, p.hint, { at: p.at, field: p.field });
  }

  await checkSemantics(file, value, context, result, add);

  if (!result.issues.some((i) => i.severity === 'error')) {
    result.definition = applyDefaults<ChannelDefinition>(ChannelSchema, value);
  }
  return result;
}

type Add = (code: ErrorCode, path: FieldPath, message: string, hint?: string, options?: { at?: 'key' | 'value'; severity?: 'error' | 'warning'; field?: string }) => void;

/**
 * Secret fields must be exactly `${VAR}`: a literal would land in git, and a default
 * (`${VAR:-s3cret}`) is a literal too. Checked on the text as written, before interpolation.
 */
function checkLiteralSecrets(source: YamlSource, originals: Map<unknown, string>, add: Add): void {
  walkScalars(source.doc as Document, (node, path) => {
    const key = path[path.length - 1];
    const parent = path[path.length - 2];
    if (typeof key !== 'string') return;
    const isSecret =
      SECRET_KEYS.has(key) ||
      (key === 'value' && parent === 'auth') ||
      (key === 'key' && parent === 'tls') ||
      (parent === 'headers' && isSecretHeader(key));
    if (!isSecret) return;
    const written = originals.get(node) ?? node.value;
    if (typeof written === 'string' && ENV_ONLY.test(written.trim())) return;
    if (written === null || written === '') return; // an empty value is a schema problem, not a leak
    const hasDefault = typeof written === 'string' && /^\$\{[A-Za-z_][A-Za-z0-9_]*:-/.test(written);
    const varName = suggestVarName(path);
    const where = formatFieldPath(path);
    add(
      'OSPREY_ERR_CHANNEL_LITERAL_SECRET',
      path,
      hasDefault
        ? `${where} gives the secret a default; a default is a literal secret in the file`
        : parent === 'headers'
          ? `header ${key} carries a credential written literally; credentials come from the environment (use auth, or \${VAR})`
          : `${where} is written literally; secrets must come from the environment`,
      `${key}: \${${varName}}`,
    );
  });
}

function suggestVarName(path: FieldPath): string {
  const words = path
    .filter((s): s is string => typeof s === 'string' && s !== 'spec' && s !== 'destinations' && s !== 'source')
    .map((s) => s.replace(/([a-z])([A-Z])/g, '$1_$2').replace(/-/g, '_').toUpperCase());
  return words.slice(-2).join('_') || 'SECRET';
}

async function checkSemantics(file: string, value: unknown, context: ChannelLintContext, result: LintedChannelFile, add: Add): Promise<void> {
  if (!isRecord(value)) return;
  const metadata = isRecord(value.metadata) ? value.metadata : undefined;
  const spec = isRecord(value.spec) ? value.spec : undefined;

  // The file name is the channel's identity in git; the two must not drift apart.
  const stem = basename(file).endsWith(CHANNEL_FILE_SUFFIX) ? basename(file).slice(0, -CHANNEL_FILE_SUFFIX.length) : undefined;
  if (metadata && typeof metadata.name === 'string' && stem !== undefined && metadata.name !== stem) {
    add('OSPREY_ERR_CHANNEL_NAME', ['metadata', 'name'], `metadata.name "${metadata.name}" does not match the file name ${basename(file)}`, `name: ${stem}   (or rename the file to ${metadata.name}${CHANNEL_FILE_SUFFIX})`);
  }
  if (metadata && metadata.owner === undefined) {
    add('OSPREY_ERR_CHANNEL_SCHEMA', ['metadata'], 'metadata has no owner: say which team answers for this channel', 'owner: integration-team', { severity: 'warning', field: 'metadata.owner' });
  }
  if (!spec) return;

  const sourceSpec = isRecord(spec.source) ? spec.source : undefined;
  if (sourceSpec) {
    if (typeof sourceSpec.charset === 'string' && !iconv.encodingExists(sourceSpec.charset)) {
      add('OSPREY_ERR_CHANNEL_SCHEMA', ['spec', 'source', 'charset'], `unknown charset "${sourceSpec.charset}"`, 'charset: UTF-8   (or ISO-8859-1, windows-1252 …)');
    }
    if (Array.isArray(sourceSpec.allowFrom)) {
      sourceSpec.allowFrom.forEach((address, i) => {
        if (typeof address === 'string' && isIP(address) === 0) {
          add('OSPREY_ERR_CHANNEL_SCHEMA', ['spec', 'source', 'allowFrom', i], `allowFrom entry "${address}" is not an IP address`, 'allowFrom: [10.20.0.15, 127.0.0.1]');
        }
      });
    }
  }

  const steps = Array.isArray(spec.steps) ? spec.steps : [];
  const format = sourceFormat(sourceSpec);
  // The schema takes a segment path or a column name; only CSV records have columns.
  const segmentPath = new RegExp(HL7_PATH_PATTERN);
  const checkPath = (value: unknown, at: FieldPath) => {
    if (format !== undefined && format !== 'csv-record' && typeof value === 'string' && !segmentPath.test(value)) {
      add('OSPREY_ERR_CHANNEL_SCHEMA', at, `"${value}" is a column name, but ${format} messages are read by segment path`, `${String(at[at.length - 1])}: PID-3.1   (segment-field[.component])`);
    }
  };
  checkPath(spec.orderBy, ['spec', 'orderBy']);
  let firstTransform = true;
  for (const [i, step] of steps.entries()) {
    if (!isRecord(step)) continue;
    if (isRecord(step.filter)) checkPath(step.filter.field, ['spec', 'steps', i, 'filter', 'field']);
    if (isRecord(step.enrich)) checkPath(step.enrich.from, ['spec', 'steps', i, 'enrich', 'from']);
    if (step.validate === 'hl7' && format !== undefined && format !== 'hl7v2') {
      add('OSPREY_ERR_CHANNEL_SCHEMA', ['spec', 'steps', i, 'validate'], `validate: hl7 checks HL7 v2 messages; this channel's source gives ${format} records`, '(remove the step: the source checks its own format)');
    }
    if (isRecord(step.filter)) {
      const hasIn = step.filter.in !== undefined;
      const hasNotIn = step.filter.notIn !== undefined;
      if (hasIn === hasNotIn) {
        add('OSPREY_ERR_CHANNEL_SCHEMA', ['spec', 'steps', i, 'filter'], `a filter needs exactly one of in, notIn${hasIn ? ' (it has both)' : ''}`, `filter: { field: ${String(step.filter.field ?? 'PV1-2')}, in: [I, O, E] }`);
      }
    }
    if (typeof step.transform === 'string') {
      await checkTransform(step.transform, ['spec', 'steps', i, 'transform'], context, result, add);
      // The first transform reads the source's message; every later one the events before it.
      const expected = firstTransform ? format : 'event';
      const input = result.transforms.get(step.transform)?.input;
      if (expected !== undefined && input !== undefined && input !== expected) {
        add('OSPREY_ERR_CHANNEL_TRANSFORM', ['spec', 'steps', i, 'transform'], `transform ${step.transform} reads ${input} input, but here it gets ${expected === 'event' ? 'the events of the step before' : `${expected} messages from the source`}`, `input: '${expected}'   (in the transform)`);
      }
      firstTransform = false;
    }
    if (isRecord(step.enrich) && typeof step.enrich.lookup === 'string') {
      await checkLookup(step.enrich.lookup, ['spec', 'steps', i, 'enrich', 'lookup'], context, add);
    }
  }

  const destinations = Array.isArray(spec.destinations) ? spec.destinations : [];
  const seen = new Map<string, number>();
  for (const [i, destination] of destinations.entries()) {
    if (!isRecord(destination)) continue;
    if (typeof destination.name === 'string') {
      const first = seen.get(destination.name);
      if (first !== undefined) {
        add('OSPREY_ERR_CHANNEL_DESTINATION_NAME', ['spec', 'destinations', i, 'name'], `destination name "${destination.name}" is already used by spec.destinations[${first}]`, `name: ${destination.name}-2   (names are unique in a channel: they name the queues)`);
      } else {
        seen.set(destination.name, i);
      }
    }
    if (typeof destination.transform === 'string') await checkTransform(destination.transform, ['spec', 'destinations', i, 'transform'], context, result, add);
    if (context.contracts && typeof destination.contract === 'string' && destination.contract.includes('@')) {
      checkContract(destination.contract, ['spec', 'destinations', i, 'contract'], context.contracts, add);
    }
    if (context.rateLimits && typeof destination.rateLimit === 'string') {
      const name = destination.rateLimit;
      if (!context.rateLimits.has(name)) {
        const suggestion = didYouMean(name, context.rateLimits);
        const known = [...context.rateLimits].sort();
        add(
          'OSPREY_ERR_CHANNEL_RATE_LIMIT',
          ['spec', 'destinations', i, 'rateLimit'],
          `rate limit "${name}" is not defined in the engine config rateLimits${suggestion ? ` — did you mean "${suggestion}"?` : known.length ? ` (defined: ${known.join(', ')})` : ' (none are defined)'}`,
          suggestion ? `rateLimit: ${suggestion}` : `rateLimits: { ${name}: { perSecond: 50, burst: 50 } }   in config/*.yaml`,
        );
      }
    }
  }
}

/** Whether a source type binds its port on this machine (unknown types: reported elsewhere, not here). */
function listens(type: unknown): boolean {
  try {
    return typeof type === 'string' && sourceDefinition(type).listens === true;
  } catch {
    return false;
  }
}

/** The message format the channel's source gives (undefined when the source block is not valid enough to tell). */
function sourceFormat(source: Record<string, unknown> | undefined): string | undefined {
  if (!source || typeof source.type !== 'string') return undefined;
  try {
    return sourceDefinition(source.type).ingest(source).format;
  } catch {
    return undefined;
  }
}

async function checkTransform(path: string, at: FieldPath, context: ChannelLintContext, result: LintedChannelFile, add: Add): Promise<void> {
  if (!path.endsWith('.ts')) return; // the schema reports it
  const root = resolve(context.projectRoot);
  const absolute = isAbsolute(path) ? path : resolve(root, path);
  const rel = relative(root, absolute);
  if (rel.startsWith('..') || isAbsolute(rel)) {
    add('OSPREY_ERR_CHANNEL_TRANSFORM', at, `transform ${path} is outside the project`, 'transform: transforms/<folder>/<name>.ts   (relative to the project root)');
    return;
  }
  if (!(await isReadableFile(absolute))) {
    const suggestion = await closestFile(absolute, ['.ts']);
    add(
      'OSPREY_ERR_CHANNEL_TRANSFORM',
      at,
      `transform ${path} does not exist${suggestion ? ` — did you mean ${relative(root, suggestion).split(sep).join('/')}?` : ''}`,
      suggestion ? `transform: ${relative(root, suggestion).split(sep).join('/')}` : 'transform: transforms/<folder>/<name>.ts   (relative to the project root)',
    );
    return;
  }
  const cache = (context.transformCache ??= new Map());
  let load = cache.get(absolute);
  if (!load) {
    load = importTransform(absolute, root);
    cache.set(absolute, load);
  }
  const loaded = await load;
  if ('error' in loaded) {
    // A module that does not compile or throws gets no hint: the compiler's message is the fix.
    add('OSPREY_ERR_CHANNEL_TRANSFORM', at, `transform ${path} ${loaded.error}`, loaded.error.startsWith('cannot be loaded') ? undefined : 'export default defineTransform({ name, version, input, map })');
    return;
  }
  result.transforms.set(path, loaded.transform);
}

async function importTransform(absolute: string, root: string): Promise<TransformLoad> {
  try {
    const mod = (await import(pathToFileURL(absolute).href)) as { default?: unknown };
    if (mod.default === undefined) return { error: 'has no default export' };
    if (!isTransform(mod.default)) return { error: 'does not default-export a transform (an object with name and map)' };
    return { transform: mod.default };
  } catch (err) {
    return { error: `cannot be loaded: ${describeLoadError(err, root)}` };
  }
}

/**
 * One line for why a module could not be loaded. The TypeScript compiler's (esbuild's, through
 * tsx) message is "Transform failed with N error(s):" and then one `file:line:col: ERROR: text`
 * line per error: those lines are what the author needs, with the path relative to the project.
 */
export function describeLoadError(err: unknown, root: string): string {
  const message = err instanceof Error ? err.message : String(err);
  const [first = '', ...rest] = message.split('\n');
  if (!/^(Transform|Build) failed with \d+ error/.test(first)) return first;
  const located = rest
    .map((line) => /^(.*?):(\d+):(\d+): ERROR: (.*)$/.exec(line.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => `${relative(root, m[1]!).split(sep).join('/')}:${m[2]}:${m[3]}: ${m[4]}`);
  return located.length > 0 ? located.join('; ') : message.replace(/\s*\n\s*/g, ' ');
}

async function checkLookup(name: string, at: FieldPath, context: ChannelLintContext, add: Add): Promise<void> {
  for (const ext of LOOKUP_EXTENSIONS) {
    const file = join(context.lookupsDir, `${name}${ext}`);
    if (!(await isReadableFile(file))) continue;
    // A warning, not an error: at start a running engine keeps the table's last good version
    // (lookup-tables.ts), and the channel must not be skipped for a table it may not need yet.
    // `osprey validate --strict` fails on it, so a broken edit does not pass CI.
    const cache = (context.lookupCache ??= new Map());
    let refusal = cache.get(file);
    if (!refusal) {
      refusal = readFile(file, 'utf8').then(
        (text) => {
          try {
            parseTable(file, text);
            return '';
          } catch (err) {
            return describeLookupError(err);
          }
        },
        (err: unknown) => describeLookupError(err),
      );
      cache.set(file, refusal);
    }
    const why = await refusal;
    if (why) add('OSPREY_ERR_CHANNEL_LOOKUP', at, `lookup table "${name}" (${relative(context.projectRoot, file)}) is refused: ${why}`, 'fix the file: the engine keeps using its last good version meanwhile', { severity: 'warning' });
    return;
  }
  let names: string[] = [];
  try {
    names = (await readdir(context.lookupsDir))
      .filter((f) => (LOOKUP_EXTENSIONS as readonly string[]).includes(extname(f)))
      .map((f) => f.slice(0, -extname(f).length));
  } catch {
    // No lookups folder: the message below says where the table was expected.
  }
  const suggestion = didYouMean(name, names);
  const dir = relative(context.projectRoot, context.lookupsDir) || '.';
  add(
    'OSPREY_ERR_CHANNEL_LOOKUP',
    at,
    `lookup table "${name}" not found (looked for ${dir}/${name}.yaml, .json, .csv)${suggestion ? ` — did you mean "${suggestion}"?` : ''}`,
    suggestion ? `lookup: ${suggestion}` : `a file ${dir}/${name}.yaml (or .json, .csv)`,
  );
}

function checkContract(ref: string, at: FieldPath, contracts: ReadonlySet<string>, add: Add): void {
  const name = ref.slice(0, ref.indexOf('@'));
  if (contracts.has(ref) || contracts.has(name)) return;
  const sameName = [...contracts].filter((c) => c.startsWith(`${name}@`)).sort();
  const suggestion = sameName.length ? undefined : didYouMean(ref, contracts);
  const message =
    sameName.length > 0
      ? `contract ${ref} does not exist; ${name} has ${sameName.map((c) => c.slice(c.indexOf('@') + 1)).join(', ')} as major version(s)`
      : `contract ${ref} does not exist${suggestion ? ` — did you mean ${suggestion}?` : ''}`;
  add('OSPREY_ERR_CHANNEL_CONTRACT', at, message, sameName.length ? `contract: ${sameName[sameName.length - 1]}` : suggestion ? `contract: ${suggestion}` : 'contract: Name@major   (a key of the contract registry)');
}

/**
 * Across files: duplicate channel names and duplicate inbound ports. The first file (in name
 * order) keeps the name or port; each later one gets the error, so one new file cannot take down
 * a channel that is already running.
 */
export function lintAcrossChannels(files: readonly LintedChannelFile[]): LintIssue[] {
  const issues: LintIssue[] = [];
  const names = new Map<string, LintedChannelFile>();
  const ports = new Map<number, LintedChannelFile>();
  const position = (f: LintedChannelFile, path: FieldPath) => f.source?.position(path) ?? { line: 1, column: 1 };
  for (const f of [...files].sort((a, b) => a.file.localeCompare(b.file))) {
    if (!isRecord(f.value)) continue;
    if (f.name !== undefined) {
      const first = names.get(f.name);
      if (first) {
        const at = position(f, ['metadata', 'name']);
        const there = position(first, ['metadata', 'name']);
        issues.push({ severity: 'error', code: 'OSPREY_ERR_CHANNEL_DUPLICATE', file: f.file, ...at, field: 'metadata.name', channel: f.name, message: `channel name "${f.name}" is already used by ${basename(first.file)}:${there.line}`, hint: 'name: <a name of its own>   (and rename the file to match)' });
      } else {
        names.set(f.name, f);
      }
    }
    const spec = isRecord(f.value.spec) ? f.value.spec : undefined;
    const src = spec && isRecord(spec.source) ? spec.source : undefined;
    const port = src?.port;
    // Only a listener binds its port here (an SFTP poller's port is the server's). Port 0 asks the
    // OS for a free port (tests): never a conflict.
    if (listens(src?.type) && typeof port === 'number' && Number.isInteger(port) && port > 0) {
      const first = ports.get(port);
      if (first) {
        const at = position(f, ['spec', 'source', 'port']);
        const there = position(first, ['spec', 'source', 'port']);
        issues.push({
          severity: 'error',
          code: 'OSPREY_ERR_CHANNEL_DUPLICATE',
          file: f.file,
          ...at,
          field: 'spec.source.port',
          ...(f.name !== undefined ? { channel: f.name } : {}),
          message: `port ${port} is already used by channel ${first.name ?? basename(first.file)} (${basename(first.file)}:${there.line})`,
          hint: 'port: <a free port>   (each listener needs its own)',
        });
      } else {
        ports.set(port, f);
      }
    }
  }
  return issues;
}

async function isReadableFile(path: string): Promise<boolean> {
  try {
    if (!(await stat(path)).isFile()) return false;
    await access(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/** The closest existing file name in the same folder, for "did you mean …?". */
async function closestFile(absolute: string, extensions: readonly string[]): Promise<string | undefined> {
  try {
    const dir = dirname(absolute);
    const entries = (await readdir(dir)).filter((f) => extensions.includes(extname(f)));
    const match = didYouMean(basename(absolute), entries);
    return match ? join(dir, match) : undefined;
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
