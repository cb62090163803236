// SPDX-License-Identifier: Apache-2.0
/**
 * The `csv-record` message format: one row of a CSV (or pipe- or tab-delimited) batch file as a
 * message, the channel-file schema that describes such files, and the streaming structural check
 * and record reader the SFTP source runs. Depends on csv-parse, iconv-lite, TypeBox and
 * `engine/errors` only.
 */
export { CsvRecord, csvRecordFormat } from './csv-record.ts';
export type { CsvKeyColumns, CsvRecordData } from './csv-record.ts';
export {
  CsvRecordSchema,
  CsvColumnTypeSchema,
  CsvTrailerSchema,
  CsvKeysSchema,
  CSV_DELIMITERS,
  CSV_COLUMN_TYPES,
  resolveCsvRecordSettings,
} from './csv-record-schema.ts';
export type { CsvRecordSchemaInput, CsvRecordSettings, CsvColumnType, CsvDelimiter, CsvColumnTypeName } from './csv-record-schema.ts';
export { checkCsvFile, readCsvRecords, MAX_LISTED_ISSUES } from './csv-stream.ts';
export type { CsvFileCheck, CsvFileIssue, CsvRecordItem, CsvSource } from './csv-stream.ts';
export { checkCsvValue, checkDate, parseDecimal, addDecimal, decimalEquals, formatDecimal } from './csv-values.ts';
export type { CsvDecimal } from './csv-values.ts';
