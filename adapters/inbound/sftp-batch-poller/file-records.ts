// SPDX-License-Identifier: Apache-2.0
/**
 * How a file of each format is checked whole and then read as records, streamed from a local copy
 * (the poller downloads first, hashing as the bytes arrive, and reads the copy twice: a structural
 * check, then the records). Neither pass holds the file: a file of hundreds of MB costs the memory
 * of one record.
 *
 * The check runs before any record is committed, so a file that fails it is quarantined whole,
 * never half processed (docs/design/0013-file-sources.md § Safe pickup).
 */
import type { Readable } from 'node:stream';
import type { ErrorCode } from '../../../engine/errors/error-codes.ts';
import type { MessageFormatName, RecordLineage, StoredError } from '../../../engine/adapter-sdk/index.ts';
import { checkCsvFile, readCsvRecords } from '../../../engine/message-formats/csv-record/index.ts';
import { checkHl7BatchEnvelope, readHl7BatchMessages } from '../../../engine/message-formats/hl7v2/hl7-batch-stream.ts';
import { scanX12Envelope, split835 } from '../../../engine/message-formats/x12/index.ts';
import { recordFormatOf, type SftpBatchPollerConfig } from './sftp-batch-poller.config.ts';

/** The result of a file's structural check. */
export type FileCheck = { ok: true; records: number } | { ok: false; code: ErrorCode; detail: string };

/** One record of a file, ready to hand to the engine. */
export interface FileRecord {
  raw: Buffer;
  text: string;
  encoding: string;
  lineage: RecordLineage & { recordIndex: number };
  /** A record the format refused on its own (a CSV row failing its schema): stored as ERROR. */
  error?: StoredError;
}

export interface FileRecordReader {
  readonly format: MessageFormatName;
  check(open: () => Readable): Promise<FileCheck>;
  records(open: () => Readable): AsyncIterable<FileRecord>;
}

const listed = (issues: Array<{ detail?: string; message?: string }>, count: number): string => {
  const shown = issues.slice(0, 5).map((i) => i.detail ?? i.message ?? '');
  return `${shown.join('; ')}${count > shown.length ? ` (and ${count - shown.length} more)` : ''}`;
};

const x12Reader: FileRecordReader = {
  format: 'x12',
  async check(open) {
    const summary = await scanX12Envelope(open());
    if (summary.issues.length > 0) return { ok: false, code: 'OSPREY_ERR_X12_ENVELOPE', detail: listed(summary.issues, summary.issues.length) };
    if (summary.claims === 0) return { ok: false, code: 'OSPREY_ERR_X12_ENVELOPE', detail: 'the file holds no 835 claim payment (CLP)' };
    return { ok: true, records: summary.claims };
  },
  async *records(open) {
    for await (const claim of split835(open())) {
      yield { raw: Buffer.from(claim.text, 'utf8'), text: claim.text, encoding: 'utf-8', lineage: { ...claim.lineage } };
    }
  },
};

function csvReader(config: SftpBatchPollerConfig): FileRecordReader {
  const schema = config.csv ?? {};
  return {
    format: 'csv-record',
    async check(open) {
      const result = await checkCsvFile(open(), schema);
      if (!result.ok) {
        const first = result.issues[0];
        return { ok: false, code: first?.code ?? 'OSPREY_ERR_CSV_MALFORMED', detail: listed(result.issues, result.issueCount) };
      }
      return { ok: true, records: result.rows };
    },
    async *records(open) {
      for await (const item of readCsvRecords(open(), schema)) {
        yield { raw: Buffer.from(item.text, 'utf8'), text: item.text, encoding: 'utf-8', lineage: { ...item.lineage }, ...(item.error ? { error: item.error } : {}) };
      }
    },
  };
}

function hl7BatchReader(config: SftpBatchPollerConfig): FileRecordReader {
  return {
    format: 'hl7v2',
    async check(open) {
      // Trailers are checked when present: plain concatenated messages are a batch file too.
      const result = await checkHl7BatchEnvelope(open(), { requireTrailers: false });
      if (!result.ok) {
        const first = result.issues[0] as { code?: ErrorCode } | undefined;
        return { ok: false, code: first?.code ?? 'OSPREY_ERR_HL7_BATCH_COUNT', detail: listed(result.issues as Array<{ detail?: string }>, result.issueCount) };
      }
      if (result.messages === 0) return { ok: false, code: 'OSPREY_ERR_HL7_NO_MSH', detail: 'the file holds no HL7 message (no MSH segment)' };
      return { ok: true, records: result.messages };
    },
    async *records(open) {
      for await (const m of readHl7BatchMessages(open(), { charset: config.charset })) {
        yield { raw: m.raw, text: m.text, encoding: m.encoding, lineage: { ...m.lineage }, ...(m.error ? { error: m.error } : {}) };
      }
    },
  };
}

export function fileRecordReader(config: SftpBatchPollerConfig): FileRecordReader {
  const reader = config.format === 'x12-835' ? x12Reader : config.format === 'csv' ? csvReader(config) : hl7BatchReader(config);
  if (reader.format !== recordFormatOf(config.format)) throw new Error(`file format ${config.format} reads ${reader.format} records`);
  return reader;
}
