// SPDX-License-Identifier: Apache-2.0
/**
 * One record (row) of a CSV batch file as a message of format `csv-record`.
 *
 * Stored text: a JSON object `{"columns": [...], "values": [...], "line": 12, "kind": "charge",
 * "keys": {"id": "charge_id", ...}, "sender": "acme"}`, not the row as it was in the file. A row
 * alone cannot be re-read without the channel's delimiter, quoting, header and renames, and a value
 * may hold the delimiter, quotes or a line break; the JSON form re-parses alone, byte for byte the
 * same on replay, even after the channel's file settings change. It carries the key columns too,
 * so the one registered {@link csvRecordFormat} extracts each channel's business keys without the
 * channel at hand (the readers stamp the channel's mapping on every record). `render` shows people
 * the header and the row as CSV. Cost: the stored text is about twice the row.
 */
import iconv from 'iconv-lite';
import { OspreyError } from '../../errors/error-codes.ts';
import type { FormatKeys, FormatMessage, MessageFormat } from '../message-format.ts';

/** Which columns hold a record's business keys (the channel's `keys` block). */
export interface CsvKeyColumns {
  id?: string;
  patient?: string;
  visit?: string;
  facility?: string;
  kind?: string;
  sender?: string;
}

/** The stored JSON shape of a CSV record. */
export interface CsvRecordData {
  /** Column names after the channel's renames, in file order. */
  columns: string[];
  /** The row's values as read (after trimming when the channel asks), same length as `columns`. */
  values: string[];
  /** 1-based line of the file where the row starts. */
  line?: number;
  /** The channel's record kind (`charge`), used when no kind column is mapped. */
  kind?: string;
  /** The channel's sender scope, used when no sender column is mapped. */
  sender?: string;
  keys?: CsvKeyColumns;
}

/** A CSV record: read columns by name (`msg.get('charge_id')`). */
export class CsvRecord implements FormatMessage {
  readonly format = 'csv-record' as const;
  readonly data: CsvRecordData;
  #index: Map<string, number> | undefined;
  #text: string | undefined;

  private constructor(data: CsvRecordData, text?: string) {
    this.data = data;
    this.#text = text;
  }

  /** A record from its parts (the readers build records this way). */
  static of(data: CsvRecordData): CsvRecord {
    if (data.columns.length !== data.values.length) {
      throw new OspreyError('OSPREY_ERR_CSV_BAD_RECORD', `A CSV record needs one value per column (${data.columns.length} columns, ${data.values.length} values).`);
    }
    return new CsvRecord(data);
  }

  /** Parses the stored text; throws `OSPREY_ERR_CSV_BAD_RECORD` when it is not a stored CSV record. */
  static parse(text: string): CsvRecord {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      throw new OspreyError('OSPREY_ERR_CSV_BAD_RECORD', 'The stored CSV record is not JSON.');
    }
    if (!isRecordData(raw)) {
      throw new OspreyError('OSPREY_ERR_CSV_BAD_RECORD', 'The stored CSV record lacks columns and values of equal length (arrays of strings).');
    }
    return new CsvRecord(raw, text);
  }

  /** Column names, in file order. */
  get columns(): readonly string[] {
    return this.data.columns;
  }

  /** 1-based line where the row starts in its file, when known. */
  get line(): number | undefined {
    return this.data.line;
  }

  /**
   * The value of a column; `undefined` when the column does not exist or the cell is empty (as an
   * empty HL7 field is absent), so `msg.get('x') ?? fallback` works. CSV has no explicit null.
   */
  get(column: string): string | undefined {
    const i = this.indexOf(column);
    if (i === undefined) return undefined;
    const v = this.data.values[i];
    return v === '' ? undefined : v;
  }

  /** The column's value as a one-element list, or `[]` (a CSV cell does not repeat). */
  getAll(column: string): Array<string | null> {
    const v = this.get(column);
    return v === undefined ? [] : [v];
  }

  /** The row as an object of column → value (empty cells included as ''). */
  toObject(): Record<string, string> {
    const out: Record<string, string> = {};
    this.data.columns.forEach((c, i) => (out[c] = this.data.values[i] ?? ''));
    return out;
  }

  /** The stored text (JSON). */
  toString(): string {
    this.#text ??= JSON.stringify(this.data);
    return this.#text;
  }

  private indexOf(column: string): number | undefined {
    if (this.#index === undefined) {
      this.#index = new Map();
      // First occurrence wins; the readers refuse headers with repeated names anyway.
      this.data.columns.forEach((c, i) => {
        if (!this.#index?.has(c)) this.#index?.set(c, i);
      });
    }
    return this.#index.get(column);
  }
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

function isRecordData(v: unknown): v is CsvRecordData {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  if (!isStringArray(o.columns) || !isStringArray(o.values) || o.columns.length !== o.values.length) return false;
  if (o.line !== undefined && typeof o.line !== 'number') return false;
  if (o.kind !== undefined && typeof o.kind !== 'string') return false;
  if (o.sender !== undefined && typeof o.sender !== 'string') return false;
  if (o.keys !== undefined) {
    if (typeof o.keys !== 'object' || o.keys === null) return false;
    if (!Object.values(o.keys).every((x) => typeof x === 'string')) return false;
  }
  return true;
}

/** Quotes a value for the rendered CSV when it holds a comma, a quote or a line break. */
function csvCell(v: string): string {
  return /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

/** The `csv-record` format, registered once; keys come from the mapping stamped on each record. */
export const csvRecordFormat: MessageFormat<CsvRecord> = {
  name: 'csv-record',
  parse: (text) => CsvRecord.parse(text),
  keys(message): FormatKeys {
    const k = message.data.keys ?? {};
    const col = (name: string | undefined): string | undefined => (name === undefined ? undefined : message.get(name));
    const keys: FormatKeys = {};
    const controlId = col(k.id);
    const sender = col(k.sender) ?? message.data.sender;
    const messageType = col(k.kind) ?? message.data.kind;
    const patientId = col(k.patient);
    const visitId = col(k.visit);
    const facility = col(k.facility);
    if (controlId !== undefined) keys.controlId = controlId;
    if (sender !== undefined) keys.sender = sender;
    if (messageType !== undefined) keys.messageType = messageType;
    if (patientId !== undefined) keys.patientId = patientId;
    if (visitId !== undefined) keys.visitId = visitId;
    if (facility !== undefined) keys.facility = facility;
    return keys;
  },
  render(raw, encoding) {
    const text = iconv.encodingExists(encoding) ? iconv.decode(raw, encoding) : raw.toString('utf8');
    try {
      const r = CsvRecord.parse(text);
      return `${r.data.columns.map(csvCell).join(',')}\n${r.data.values.map(csvCell).join(',')}\n`;
    } catch {
      return text; // not ours to fail: show what was stored
    }
  },
};
