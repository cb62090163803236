// SPDX-License-Identifier: Apache-2.0
/**
 * Lookup tables (departments, providers, cost centers …) are data files under `config/lookups/`:
 * `<name>.yaml` / `<name>.json` (a mapping of key → value or flat record) or `<name>.csv` (header
 * row; the first column is the key). Every table of the folder is loaded when the project loads,
 * and messages read the tables from memory only: no file I/O on the message path.
 *
 * While the engine runs, {@link LookupTables.watch} checks the folder off the message path (an
 * async stat per file and period) and reloads a file that changed, so an operator fixes an unmapped
 * department in the file and replays the business exceptions without a restart. A periodic stat
 * rather than fs.watch: it behaves the same on every file system, including network mounts and
 * Kubernetes ConfigMap volumes (files replaced through a symlink swap), where fs.watch misses edits. A file that no
 * longer parses (a broken edit, a half-saved file, a removed file) does not replace its table: the
 * last good table stays in use, the problem is logged once and shown on the channels that use the
 * table until the file is fixed.
 */
import { readdirSync, readFileSync, statSync, type Stats } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { parse as parseYaml } from 'yaml';
import type { LookupValue } from '../transform-sdk/index.ts';
import { OspreyError } from '../errors/error-codes.ts';
import type { Logger } from '../observability/logger.ts';

/** File extensions of lookup tables, in the order one is preferred when a name has several. */
export const LOOKUP_EXTENSIONS = ['.yaml', '.yml', '.json', '.csv'] as const;
/** How often a watched folder is checked for changes: an edit takes effect within about this long. */
export const LOOKUP_CHECK_INTERVAL_MS = 1000;

/** What the pipeline needs of the lookup tables: a row by table and key, from memory. */
export interface LookupSource {
  /** The row, or undefined when the key is unmapped; throws OSPREY_ERR_CHANNEL_LOOKUP for a table that cannot be used. */
  get(table: string, key: string): LookupValue | undefined;
}

/** A table whose file cannot be used as it is now. */
export interface LookupProblem {
  table: string;
  file: string;
  /** Why the file was refused (first line of the parser's message: positions, not content). */
  error: string;
  /** When the problem was first seen (ms since the epoch). */
  since: number;
  /** When the table still in use was loaded; undefined when no good version was ever loaded. */
  lastGoodAt?: number;
}

/** Identifies one version of a file: any save changes at least one of these. */
type FileVersion = string;

interface TableState {
  file: string;
  rows?: Map<string, LookupValue>;
  loadedAt?: number;
  /** The version last examined, good or not, so a broken version is parsed (and logged) once. */
  seen?: FileVersion;
  problem?: { error: string; since: number; logged: boolean };
}

export class LookupTables implements LookupSource {
  readonly #tables = new Map<string, TableState>();
  #logger?: Logger;
  #timer?: NodeJS.Timeout;
  #refreshing?: Promise<void>;
  #again = false;

  /** Loads every table of `dir` (synchronously: this runs once, at load time). */
  constructor(private readonly dir: string) {
    for (const [name, file] of tableFiles(listSync(dir))) {
      const state: TableState = { file };
      this.#tables.set(name, state);
      try {
        const version = versionOf(file, statSync(file));
        this.#accept(name, state, version, readFileSync(file, 'utf8'));
      } catch (err) {
        this.#refuse(name, state, undefined, err);
      }
    }
  }

  get(table: string, key: string): LookupValue | undefined {
    const state = this.#tables.get(table);
    if (!state) throw new OspreyError('OSPREY_ERR_CHANNEL_LOOKUP', `lookup table "${table}" not found in ${this.dir}`);
    if (!state.rows) throw new OspreyError('OSPREY_ERR_CHANNEL_LOOKUP', `lookup table "${table}" cannot be used: ${state.problem?.error ?? 'not loaded'}`);
    return state.rows.get(key);
  }

  /** The rows in use of a table (the last good ones), or undefined when it has none. */
  table(name: string): ReadonlyMap<string, LookupValue> | undefined {
    return this.#tables.get(name)?.rows;
  }

  /** The tables whose file is refused now (of `tables` only, when given), by table name. */
  problems(tables?: Iterable<string>): LookupProblem[] {
    const names = tables ? [...new Set(tables)] : [...this.#tables.keys()];
    const problems: LookupProblem[] = [];
    for (const table of names.sort()) {
      const state = this.#tables.get(table);
      if (!state?.problem) continue;
      problems.push({ table, file: state.file, error: state.problem.error, since: state.problem.since, lastGoodAt: state.loadedAt });
    }
    return problems;
  }

  /**
   * Checks the folder every `intervalMs` (off the message path) and reloads what changed; logs the
   * problems found so far, and each new one once. Stopped by {@link close}.
   */
  watch(options: { logger: Logger; intervalMs?: number }): void {
    this.#logger = options.logger;
    for (const [name, state] of this.#tables) this.#logProblem(name, state);
    if (this.#timer) return;
    const tick = (): void => {
      this.#timer = setTimeout(() => void this.refresh().finally(() => this.#timer && tick()), options.intervalMs ?? LOOKUP_CHECK_INTERVAL_MS);
      this.#timer.unref();
    };
    tick();
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Checks every table file once and reloads those that changed. Never rejects: an unreadable or
   * invalid file becomes a problem of its table. Calls made while a check runs are answered by one
   * more check after it, so a caller always sees the files as they were when it called.
   */
  refresh(): Promise<void> {
    if (this.#refreshing) {
      this.#again = true;
      return this.#refreshing;
    }
    this.#refreshing = (async () => {
      try {
        do {
          this.#again = false;
          await this.#check();
        } while (this.#again);
      } finally {
        this.#refreshing = undefined;
      }
    })();
    return this.#refreshing;
  }

  async #check(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      names = [];
    }
    const files = tableFiles(names.map((n) => join(this.dir, n)));
    for (const name of new Set([...this.#tables.keys(), ...files.keys()])) {
      const file = files.get(name);
      let state = this.#tables.get(name);
      if (!file) {
        if (!state) continue;
        if (!state.rows) this.#tables.delete(name);
        else if (state.seen !== 'removed') this.#refuse(name, state, 'removed', new Error('the file was removed'));
        continue;
      }
      if (!state) this.#tables.set(name, (state = { file }));
      state.file = file;
      try {
        const before = versionOf(file, await stat(file));
        if (before === state.seen) continue;
        const text = await readFile(file, 'utf8');
        // Written to while being read: the next check reads the finished file.
        if (versionOf(file, await stat(file)) !== before) continue;
        this.#accept(name, state, before, text);
      } catch (err) {
        this.#refuse(name, state, undefined, err);
      }
    }
  }

  #accept(name: string, state: TableState, version: FileVersion, text: string): void {
    let rows: Map<string, LookupValue>;
    try {
      rows = parseTable(state.file, text);
    } catch (err) {
      this.#refuse(name, state, version, err);
      return;
    }
    const reloaded = state.rows !== undefined;
    const fixed = state.problem !== undefined;
    state.rows = rows;
    state.loadedAt = Date.now();
    state.seen = version;
    state.problem = undefined;
    if (reloaded || fixed) this.#logger?.info(fixed ? 'lookup table loaded again: its file is valid again' : 'lookup table reloaded', { table: name, file: state.file, rows: rows.size });
  }

  /** Keeps the last good rows; records the problem of this version (logged once). */
  #refuse(name: string, state: TableState, version: FileVersion | undefined, err: unknown): void {
    const error = describeLookupError(err);
    state.seen = version;
    if (state.problem?.error === error) return;
    state.problem = { error, since: Date.now(), logged: false };
    this.#logProblem(name, state);
  }

  #logProblem(name: string, state: TableState): void {
    if (!this.#logger || !state.problem || state.problem.logged) return;
    state.problem.logged = true;
    this.#logger.error(state.rows ? 'lookup table file refused; the last good table stays in use' : 'lookup table file refused; the table cannot be used', {
      code: 'OSPREY_ERR_CHANNEL_LOOKUP',
      table: name,
      file: state.file,
      problem: state.problem.error,
    });
  }
}

/** One line of a warning for a lookup problem, as channels show it. */
export function describeLookupProblem(p: LookupProblem): string {
  const using = p.lastGoodAt === undefined ? 'the table cannot be used' : `using the table loaded at ${new Date(p.lastGoodAt).toISOString()}`;
  return `lookup table "${p.table}" (${p.file}): ${p.error}; ${using}`;
}

function listSync(dir: string): string[] {
  try {
    return readdirSync(dir).map((n) => join(dir, n));
  } catch {
    return [];
  }
}

/** Table name → file, preferring extensions in {@link LOOKUP_EXTENSIONS} order. */
function tableFiles(paths: readonly string[]): Map<string, string> {
  const files = new Map<string, string>();
  for (const ext of LOOKUP_EXTENSIONS) {
    for (const path of paths) {
      if (extname(path) !== ext) continue;
      const name = basename(path, ext);
      if (name !== '' && !files.has(name)) files.set(name, path);
    }
  }
  return files;
}

function versionOf(file: string, s: Stats): FileVersion {
  return `${file}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
}

/** Why a table file is refused, in one line: parsers append the offending source text below the first. */
export function describeLookupError(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n')[0]!.trim().replace(/:$/, '');
}

/** Parses a table file; throws on anything that is not a table, so a broken edit never replaces a good one. */
export function parseTable(file: string, text: string): Map<string, LookupValue> {
  return file.endsWith('.csv') ? parseCsvTable(text) : parseMappingTable(file, text);
}

function parseCsvTable(text: string): Map<string, LookupValue> {
  // RFC 4180: quoted fields may hold commas, line breaks and "" for a quote; a BOM is dropped.
  // Every row must have the header's number of cells (an unquoted comma is an error, not a shift).
  const records = parseCsv(text, { bom: true, trim: true, skip_empty_lines: true }) as string[][];
  const [header, ...lines] = records;
  if (!header || header.length < 2) throw new Error('a CSV lookup needs a header row with the key column and at least one value column');
  const columns = header;
  if (new Set(columns).size !== columns.length) throw new Error('the header row names a column twice');
  const rows = new Map<string, LookupValue>();
  lines.forEach((cells, i) => {
    const key = cells[0]!;
    // Records are counted after the header: record i is data row i + 1 (line numbers differ with multi-line cells).
    if (key === '') throw new Error(`data row ${i + 1} has an empty key`);
    if (rows.has(key)) throw new Error(`data row ${i + 1} repeats a key of an earlier row`);
    rows.set(key, columns.length === 2 ? cells[1]! : Object.fromEntries(columns.slice(1).map((c, j) => [c, cells[j + 1]!])));
  });
  return rows;
}

function parseMappingTable(file: string, text: string): Map<string, LookupValue> {
  const data: unknown = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new Error('a lookup table must be a mapping of key to value');
  const rows = new Map<string, LookupValue>();
  for (const [key, value] of Object.entries(data)) {
    if (isScalar(value)) rows.set(key, String(value));
    else if (typeof value === 'object' && value !== null && !Array.isArray(value) && Object.values(value).every(isScalar)) {
      rows.set(key, Object.fromEntries(Object.entries(value).map(([k, v]) => [k, String(v)])));
    } else {
      // Key names are master data (department codes …), not message content.
      throw new Error(`the value of "${key}" must be a string or a flat record of strings`);
    }
  }
  return rows;
}

function isScalar(value: unknown): value is string | number | boolean {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
}
