// SPDX-License-Identifier: Apache-2.0
/**
 * A message's format: what its raw bytes are and how the engine reads them. Each format is one small
 * module (`hl7v2/`, `x12/`, `csv-record/`, `fhir` next) that parses the stored bytes, reads a path
 * (`PID-5.1`, `CLP-1`, a CSV column name), extracts the business keys the store indexes and the
 * identity duplicates are recognised by, and renders the raw bytes for the API. Ingest, the
 * pipeline, replay, the transform SDK and the API go through this contract and never through one
 * format's own model (docs/design/0011-message-formats.md).
 */
import type { StoredError } from '../message-store/message-store.ts';

/** The formats a message may have. */
export const MESSAGE_FORMATS = ['hl7v2', 'x12', 'csv-record'] as const;
export type MessageFormatName = (typeof MESSAGE_FORMATS)[number];

/** Where a record came from, when it was one of many in a file (stored with the message, shown in the API). */
export interface RecordLineage {
  /** The file's name as the source found it (no directory). */
  file?: string;
  /** SHA-256 (hex) of the whole file's bytes. */
  fileHash?: string;
  /** 0-based index of the record in the file, in the order the file holds them. */
  recordIndex?: number;
  /** 1-based line (CSV, HL7 batch) where the record starts, for error reports. */
  line?: number;
  /** Control numbers or batch ids of the envelopes around the record (ISA13, GS06, ST02; BHS-11). */
  envelope?: Record<string, string>;
  /** For a FHIR resource taken from a subscription: which notification or recovery brought it. */
  fhir?: FhirLineage;
}

/** How a FHIR resource reached a channel (docs/design/0016-fhir-subscriptions.md). */
export interface FhirLineage {
  /** `Subscription/<id>`, or `default` when the server names none. */
  subscription: string;
  topic?: string;
  /** The server's event number, when it gave one. */
  eventNumber?: number;
  /** The notification bundle's id, when it had one. */
  notificationId?: string;
  interaction: 'create' | 'update' | 'delete';
  /** `notification`: in the notification itself; `resolved`: fetched for an id-only one; `recovered`: found by a recovery. */
  via: 'notification' | 'resolved' | 'recovered';
  /** The pending work (resolve or recover) that fetched it. */
  workId?: string;
}

/** Business keys, as the store indexes them (same shape as the store's `BusinessKeys`). */
export interface FormatKeys {
  /** The record's own id in its sender's numbering (MSH-10; CLP01; a CSV id column). */
  controlId?: string;
  /**
   * The scope in which `controlId` is unique: with it, the de-duplication identity (MSH-3|MSH-4 for
   * HL7; the payer id and TRN02 for an 835 claim payment, so a resent remittance is recognised).
   */
  sender?: string;
  /** `ADT^A01`; `835`; the CSV record's kind (`charge`). */
  messageType?: string;
  patientId?: string;
  visitId?: string;
  facility?: string;
}

/** What every parsed message offers a transform and the pipeline, whatever its format. */
export interface FormatMessage {
  readonly format: MessageFormatName;
  /** The value at a path in the format's notation; `undefined` when absent, `null` for an explicit null. */
  get(path: string): string | null | undefined;
  /** Every value at a path (repetitions, or every occurrence of a segment). */
  getAll(path: string): Array<string | null>;
  /** The message as text, as stored (for `canonical` fallbacks and the API). */
  toString(): string;
}

/** Per-format module, registered once in `message-formats/index.ts`. */
export interface MessageFormat<M extends FormatMessage = FormatMessage> {
  readonly name: MessageFormatName;
  /**
   * Parses one record's stored text. Throws an `OspreyError` (engine/errors) with a stable code
   * when the text is not a message of this format; the caller stores it as ERROR.
   */
  parse(text: string): M;
  /**
   * The stored bytes as the text `parse` takes. Absent: the bytes are read in the stored encoding
   * (HL7 v2 has its own: MSH-18, byte order marks).
   */
  decode?(raw: Buffer, encoding: string): string;
  /** Business keys and de-duplication identity (see {@link FormatKeys}). Never throws. */
  keys(message: M): FormatKeys;
  /**
   * The stored bytes as text for the API and the CLI (HL7: segments on their own lines; X12: one
   * segment per line; CSV: the header and the row).
   */
  render(raw: Buffer, encoding: string): string;
}

/** A record that could not be read as a message, as sources report it (stored as ERROR). */
export interface UnreadableRecord {
  error: StoredError;
  lineage?: RecordLineage;
}
