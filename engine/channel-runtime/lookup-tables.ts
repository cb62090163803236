// SPDX-License-Identifier: Apache-2.0
/**
 * Lookup tables (departments, providers, cost centers …) are data files under `config/lookups/`:
 * `<name>.yaml` / `<name>.json` (a mapping of key → value or flat record) or `<name>.csv` (header
 * row; the first column is the key). They are re-read when the file changes, so an operator fixes
 * an unmapped department in the file and replays the business exceptions without a restart.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { LookupValue } from '../transform-sdk/index.ts';
import { OspreyError } from '../errors/error-codes.ts';

const EXTENSIONS = ['.yaml', '.yml', '.json', '.csv'] as const;
/** How often a table's file is checked for changes; bounds the cost to one stat per second. */
const RECHECK_MS = 1000;

interface LoadedTable {
  file: string;
  mtimeMs: number;
  checkedAt: number;
  rows: Map<string, LookupValue>;
}

export class LookupTables {
  private readonly tables = new Map<string, LoadedTable>();

  constructor(private readonly dir: string) {}

  /** The file backing a table, or undefined when none exists. */
  fileOf(table: string): string | undefined {
    for (const ext of EXTENSIONS) {
      const file = join(this.dir, `${table}${ext}`);
      if (existsSync(file)) return file;
    }
    return undefined;
  }

  get(table: string, key: string): LookupValue | undefined {
    return this.table(table).rows.get(key);
  }

  private table(name: string): LoadedTable {
    const now = Date.now();
    const cached = this.tables.get(name);
    if (cached && now - cached.checkedAt < RECHECK_MS) return cached;
    const file = cached?.file ?? this.fileOf(name);
    if (!file) throw new OspreyError('OSPREY_ERR_CHANNEL_LOOKUP', `lookup table "${name}" not found in ${this.dir}`);
    const mtimeMs = statSync(file).mtimeMs;
    if (cached && cached.mtimeMs === mtimeMs) {
      cached.checkedAt = now;
      return cached;
    }
    const loaded: LoadedTable = { file, mtimeMs, checkedAt: now, rows: readTable(file) };
    this.tables.set(name, loaded);
    return loaded;
  }
}

function readTable(file: string): Map<string, LookupValue> {
  const text = readFileSync(file, 'utf8');
  const rows = new Map<string, LookupValue>();
  if (file.endsWith('.csv')) {
    const [header, ...lines] = text.split(/\r?\n/).filter((l) => l.trim() !== '');
    const columns = (header ?? '').split(',').map((c) => c.trim());
    for (const line of lines) {
      const cells = line.split(',').map((c) => c.trim());
      const record: Record<string, string> = {};
      columns.slice(1).forEach((col, i) => (record[col] = cells[i + 1] ?? ''));
      rows.set(cells[0] ?? '', columns.length === 2 ? (cells[1] ?? '') : record);
    }
    return rows;
  }
  const data: unknown = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new OspreyError('OSPREY_ERR_CHANNEL_LOOKUP', `lookup table ${file} must be a mapping of key to value`);
  }
  for (const [key, value] of Object.entries(data)) {
    if (typeof value === 'string' || typeof value === 'number') rows.set(key, String(value));
    else if (typeof value === 'object' && value !== null) {
      rows.set(key, Object.fromEntries(Object.entries(value).map(([k, v]) => [k, String(v)])));
    }
  }
  return rows;
}
