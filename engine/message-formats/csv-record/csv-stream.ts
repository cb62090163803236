// SPDX-License-Identifier: Apache-2.0
/**
 * Streaming readers of CSV batch files: {@link checkCsvFile}, the structural check a source runs
 * before committing any record (header, column counts, parse errors, trailer count and total), and
 * {@link readCsvRecords}, which turns each row into a `csv-record` message text with its lineage.
 * Both read with `csv-parse` as a stream: memory stays flat whatever the file's size (one row, the
 * running sum and at most {@link MAX_LISTED_ISSUES} issues are held). Error details name lines and
 * columns, never values (they may be PHI).
 */
import { pipeline, type Readable } from 'node:stream';
import { parse, type Options as CsvParseOptions } from 'csv-parse';
import iconv from 'iconv-lite';
import { OspreyError, type ErrorCode } from '../../errors/error-codes.ts';
import type { StoredError } from '../../message-store/message-store.ts';
import type { RecordLineage } from '../message-format.ts';
import { CsvRecord } from './csv-record.ts';
import { resolveCsvRecordSettings, type CsvRecordSchemaInput, type CsvRecordSettings } from './csv-record-schema.ts';
import { addDecimal, checkCsvValue, decimalEquals, formatDecimal, parseDecimal, type CsvDecimal } from './csv-values.ts';

/** What the readers accept: a Node readable (an SFTP download, a file) or any async iterable of chunks. */
export type CsvSource = Readable | NodeJS.ReadableStream | AsyncIterable<Buffer | string>;

/** A check finds at most this many issues in its list (the count goes on): a bad file of millions of rows stays small. */
export const MAX_LISTED_ISSUES = 100;

/** One problem of a file. */
export interface CsvFileIssue {
  code: ErrorCode;
  /** Safe to log: names lines and columns, never values. */
  detail: string;
  /** 1-based line, when the problem has one. */
  line?: number;
}

/** Result of {@link checkCsvFile}. */
export interface CsvFileCheck {
  /** True when the file may be committed: no issue at all. */
  ok: boolean;
  /** Data rows (header, blank lines and trailer excluded). */
  rows: number;
  /** Sum of the trailer's `totalOf` column over the rows, when the channel has one. */
  total?: string;
  /** The trailer as read, when there is one. */
  trailer?: { line: number; count?: number; total?: string };
  /** The first {@link MAX_LISTED_ISSUES} issues, in file order. */
  issues: CsvFileIssue[];
  /** Every issue, listed or not. */
  issueCount: number;
}

/** One record of a file, as {@link readCsvRecords} yields it. */
export interface CsvRecordItem {
  /** The record's stored text (`CsvRecord.parse` reads it back); for an unparseable row, a record with no columns. */
  text: string;
  lineage: Required<Pick<RecordLineage, 'recordIndex' | 'line'>>;
  /** Set when the row fails the record schema: store it as ERROR; the file goes on. */
  error?: StoredError;
}

type RowEvent =
  | { kind: 'header'; columns: string[]; line: number }
  | { kind: 'row'; fields: string[]; line: number }
  | { kind: 'trailer'; fields: string[]; line: number }
  | { kind: 'malformed'; line: number; detail: string };

/** Number of line terminators (CRLF, CR or LF each count one) in `text`. */
function countTerminators(text: string): number {
  // Most values hold no line break: two native scans settle them without a loop in JS.
  if (text.indexOf('\n') === -1 && text.indexOf('\r') === -1) return 0;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) n++;
    else if (c === 13) {
      n++;
      if (text.charCodeAt(i + 1) === 10) i++;
    }
  }
  return n;
}

/**
 * The file as header / row / trailer / malformed events with the line each starts on. Lines are
 * counted here, one per record plus the line breaks inside its quoted values, because csv-parse's
 * own `info.lines` counts a CRLF inside a quoted value twice, and its `raw`/`info` options cost
 * 40 % of its speed (measured: bench/batch-readers.ts). After a skipped (malformed) record the
 * count resumes on the line after the one csv-parse reported.
 */
async function* rowEvents(source: CsvSource, s: CsvRecordSettings): AsyncGenerator<RowEvent> {
  const skipped: Array<{ line: number; detail: string }> = [];
  const options: CsvParseOptions = {
    delimiter: s.delimiter,
    bom: true,
    relax_column_count: true, // counts are checked here, with an error naming the line
    relax_quotes: true, // a quote inside an unquoted value (5'10") is data, not an error
    skip_records_with_error: true,
    trim: s.trim,
    on_skip: (err) => {
      const e = err as { code?: string; lines?: number };
      skipped.push({ line: e.lines ?? 0, detail: `csv-parse ${e.code ?? 'error'}` });
      return undefined;
    },
  };
  const parser = parse(options);
  const decoder = iconv.decodeStream(s.encoding);
  // pipeline destroys every stage on an error or when the consumer stops early.
  pipeline(source as Readable, decoder, parser, () => undefined);
  let line = 1;
  let headerSeen = s.header !== true;
  for await (const record of parser as AsyncIterable<string[]>) {
    // csv-parse reports a skip as it parses, ahead of records still buffered for this loop: a
    // skip belongs before this record only when it happened on a line before this record's.
    while (skipped.length > 0 && (skipped[0]?.line ?? 0) <= line) {
      const sk = skipped.shift() as { line: number; detail: string };
      yield { kind: 'malformed', line: sk.line, detail: sk.detail };
      line = sk.line + 1;
    }
    const start = line;
    line += 1;
    for (const v of record) line += countTerminators(v);
    if (record.length === 1 && record[0] === '') continue; // blank line
    if (!headerSeen) {
      headerSeen = true;
      yield { kind: 'header', columns: record, line: start };
    } else if (s.trailer !== undefined && (record[0] ?? '').trim() === s.trailer.tag) {
      yield { kind: 'trailer', fields: record, line: start };
    } else {
      yield { kind: 'row', fields: record, line: start };
    }
  }
  for (const sk of skipped) yield { kind: 'malformed', line: sk.line, detail: sk.detail };
}

/** The channel's column names for a header (renames applied), or the problems with it. */
function mapHeader(fileColumns: string[], s: CsvRecordSettings): { columns: string[]; problems: string[] } {
  const columns = fileColumns.map((c) => {
    const name = s.trim ? c.trim() : c;
    return s.rename[name] ?? name;
  });
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const c of columns) {
    if (seen.has(c)) problems.push(`column ${c} appears more than once`);
    seen.add(c);
  }
  const needed = new Set([...s.required, ...Object.values(s.keys).filter((k): k is string => k !== undefined)]);
  if (s.trailer?.totalOf !== undefined) needed.add(s.trailer.totalOf);
  for (const c of needed) if (!seen.has(c)) problems.push(`column ${c} is missing`);
  return { columns, problems };
}

function headerOf(s: CsvRecordSettings): string[] | undefined {
  return s.header === true ? undefined : s.header;
}

/**
 * Reads a whole file once and checks its structure: the header (required and key columns present,
 * no repeats), every row's field count, parse errors (an unclosed quote), and the trailer (present
 * when required, last, its count and total equal to the rows'). Nothing is committed from it: a
 * source runs it first and quarantines a file that is not `ok`.
 */
export async function checkCsvFile(source: CsvSource, schema: CsvRecordSchemaInput): Promise<CsvFileCheck> {
  const s = resolveCsvRecordSettings(schema);
  const result: CsvFileCheck = { ok: false, rows: 0, issues: [], issueCount: 0 };
  const issue = (code: ErrorCode, detail: string, line?: number): void => {
    result.issueCount++;
    if (result.issues.length < MAX_LISTED_ISSUES) result.issues.push(line === undefined ? { code, detail } : { code, detail, line });
  };
  let width = headerOf(s)?.length;
  let totalIndex = -1;
  if (width !== undefined) {
    const { columns, problems } = mapHeader(headerOf(s) as string[], s);
    for (const p of problems) issue('OSPREY_ERR_CSV_HEADER', `Header (from the channel): ${p}.`);
    if (s.trailer?.totalOf !== undefined) totalIndex = columns.indexOf(s.trailer.totalOf);
  }
  let sum: CsvDecimal = { units: 0n, scale: 0 };
  let trailerFields: string[] | undefined;
  for await (const ev of rowEvents(source, s)) {
    switch (ev.kind) {
      case 'header': {
        const { columns, problems } = mapHeader(ev.columns, s);
        width = columns.length;
        for (const p of problems) issue('OSPREY_ERR_CSV_HEADER', `Header on line ${ev.line}: ${p}.`, ev.line);
        if (s.trailer?.totalOf !== undefined) totalIndex = columns.indexOf(s.trailer.totalOf);
        break;
      }
      case 'row': {
        if (result.trailer !== undefined) issue('OSPREY_ERR_CSV_TRAILER', `Line ${ev.line} comes after the trailer on line ${result.trailer.line}: the trailer must be the last line.`, ev.line);
        result.rows++;
        if (width !== undefined && ev.fields.length !== width) {
          issue('OSPREY_ERR_CSV_COLUMN_COUNT', `Line ${ev.line} has ${ev.fields.length} field(s); the header has ${width}.`, ev.line);
        }
        if (totalIndex >= 0) {
          const d = parseDecimal(ev.fields[totalIndex] ?? '');
          if (d !== undefined) sum = addDecimal(sum, d);
        }
        break;
      }
      case 'trailer':
        if (result.trailer !== undefined) issue('OSPREY_ERR_CSV_TRAILER', `A second trailer on line ${ev.line} (the first is on line ${result.trailer.line}).`, ev.line);
        result.trailer = { line: ev.line };
        trailerFields = ev.fields;
        break;
      case 'malformed':
        issue('OSPREY_ERR_CSV_MALFORMED', `Line ${ev.line} cannot be parsed as CSV (${ev.detail}); the rows it spans are unreadable.`, ev.line);
        break;
      default:
        ev satisfies never;
    }
  }
  if (width === undefined) issue('OSPREY_ERR_CSV_HEADER', 'The file is empty: no header line.');
  const t = s.trailer;
  if (t !== undefined && t.totalOf !== undefined) result.total = formatDecimal(sum);
  if (t !== undefined && result.trailer === undefined && t.required) {
    issue('OSPREY_ERR_CSV_TRAILER', `The file has no trailer line (first field ${t.tag}): it may be truncated.`);
  }
  if (t !== undefined && result.trailer !== undefined && trailerFields !== undefined) {
    const line = result.trailer.line;
    const countText = (trailerFields[t.countField - 1] ?? '').trim();
    if (!/^\d+$/.test(countText)) {
      issue('OSPREY_ERR_CSV_TRAILER', `The trailer on line ${line} has no record count in field ${t.countField}.`, line);
    } else {
      result.trailer.count = Number(countText);
      if (result.trailer.count !== result.rows) {
        issue('OSPREY_ERR_CSV_TRAILER', `The trailer on line ${line} declares ${result.trailer.count} record(s) but the file holds ${result.rows}.`, line);
      }
    }
    if (t.totalField !== undefined) {
      const totalText = (trailerFields[t.totalField - 1] ?? '').trim();
      const declared = parseDecimal(totalText);
      if (declared === undefined) {
        issue('OSPREY_ERR_CSV_TRAILER', `The trailer on line ${line} has no decimal total in field ${t.totalField}.`, line);
      } else {
        result.trailer.total = totalText;
        // Totals are sums of money: the counts and the sum are facts about the file, not PHI.
        if (!decimalEquals(declared, sum)) {
          issue('OSPREY_ERR_CSV_TRAILER', `The trailer on line ${line} declares a total of ${totalText} but the ${t.totalOf} column adds up to ${formatDecimal(sum)}.`, line);
        }
      }
    }
  }
  result.ok = result.issueCount === 0;
  return result;
}

/**
 * Streams the records of a file, one per data row, in file order, each as the text of a
 * `csv-record` message carrying the channel's key mapping, with its lineage (0-based record index,
 * 1-based line). A row that fails the record schema (field count, a required column empty, a
 * value not of its type) is yielded with an `error` naming its line and columns, and the rest of
 * the file goes on. Header and trailer lines are not records. A header that lacks a required or key
 * column throws `OSPREY_ERR_CSV_HEADER` before any record (no row of such a file can be read right;
 * {@link checkCsvFile} reports it first).
 */
export async function* readCsvRecords(source: CsvSource, schema: CsvRecordSchemaInput): AsyncGenerator<CsvRecordItem> {
  const s = resolveCsvRecordSettings(schema);
  let columns: string[] | undefined;
  const base: { kind: string; keys: CsvRecordSettings['keys']; sender?: string } = { kind: s.kind, keys: s.keys };
  if (s.sender !== undefined) base.sender = s.sender;
  const useHeader = (fileColumns: string[], line?: number): void => {
    const mapped = mapHeader(fileColumns, s);
    if (mapped.problems.length > 0) {
      const where = line === undefined ? 'The channel’s header' : `The header on line ${line}`;
      throw new OspreyError('OSPREY_ERR_CSV_HEADER', `${where}: ${mapped.problems.join('; ')}.`);
    }
    columns = mapped.columns;
  };
  const explicit = headerOf(s);
  if (explicit !== undefined) useHeader(explicit);
  // Per-column checks resolved once against the header, not per row.
  let checks: Array<{ index: number; column: string; required: boolean; type?: CsvRecordSettings['types'][string] }> = [];
  const prepare = (cols: string[]): void => {
    const required = new Set(s.required);
    checks = cols
      .map((column, index) => {
        const c: (typeof checks)[number] = { index, column, required: required.has(column) };
        const type = s.types[column];
        if (type !== undefined) c.type = type;
        return c;
      })
      .filter((c) => c.required || c.type !== undefined);
  };
  if (columns !== undefined) prepare(columns);
  let recordIndex = 0;
  for await (const ev of rowEvents(source, s)) {
    if (ev.kind === 'header') {
      useHeader(ev.columns, ev.line);
      prepare(columns as unknown as string[]);
      continue;
    }
    if (ev.kind === 'trailer') continue;
    const lineage = { recordIndex: recordIndex++, line: ev.line };
    if (ev.kind === 'malformed') {
      const text = CsvRecord.of({ columns: [], values: [], line: ev.line, ...base }).toString();
      yield { text, lineage, error: { code: 'OSPREY_ERR_CSV_MALFORMED', detail: `Line ${ev.line} cannot be parsed as CSV (${ev.detail}).` } };
      continue;
    }
    const cols = columns ?? [];
    const fields = ev.fields;
    if (fields.length !== cols.length) {
      // Keep every field read: extra ones under positional names, missing ones empty.
      const names = fields.length > cols.length ? [...cols, ...fields.slice(cols.length).map((_, i) => `#${cols.length + i + 1}`)] : cols;
      const values = names.map((_, i) => fields[i] ?? '');
      const text = CsvRecord.of({ columns: names, values, line: ev.line, ...base }).toString();
      yield { text, lineage, error: { code: 'OSPREY_ERR_CSV_COLUMN_COUNT', detail: `Line ${ev.line} has ${fields.length} field(s); the header has ${cols.length}.` } };
      continue;
    }
    const problems: string[] = [];
    for (const c of checks) {
      const v = fields[c.index] ?? '';
      if (v === '') {
        if (c.required) problems.push(`column ${c.column} is empty (required)`);
        continue;
      }
      if (c.type !== undefined) {
        const why = checkCsvValue(v, c.type);
        if (why !== undefined) problems.push(`column ${c.column} ${why}`);
      }
    }
    const text = CsvRecord.of({ columns: cols, values: fields, line: ev.line, ...base }).toString();
    if (problems.length > 0) {
      yield { text, lineage, error: { code: 'OSPREY_ERR_CSV_ROW_INVALID', detail: `Line ${ev.line}: ${problems.join('; ')}.` } };
    } else {
      yield { text, lineage };
    }
  }
}
