// SPDX-License-Identifier: Apache-2.0
/**
 * The contracts between the engine and its adapters. Inbound adapters hand each framed message to
 * the engine and send the sender whatever acknowledgement the engine decides; outbound adapters
 * send one request and classify the outcome so that the retry policy can decide.
 */
import type { StoredError } from '../message-store/message-store.ts';
import type { Hl7ErrorLocation } from '../message-formats/hl7v2/index.ts';
import type { FormatMessage, MessageFormatName, RecordLineage } from '../message-formats/message-format.ts';

// What adapters need of the rest of the engine comes through here, so that an adapter imports only
// this SDK, the errors module and the message formats (adapters/README.md; a test enforces it).
export type { StoredError } from '../message-store/message-store.ts';
/** The retry policy's status helpers: a destination's `retryOn` / `treatAsSuccess` lists are read by one function everywhere. */
export { classifyStatus, parseRetryAfter, type StatusClass } from '../delivery/retry-policy.ts';
export { isSecretHeader, SECRET_HEADER_NAMES } from './secret-headers.ts';
/** Schema blocks and unit parsers for an adapter's settings as a channel file writes them (`1MB`, `60s`, `${VAR}`). */
export { Duration, SecretString, Size, StringEnum, MESSAGE_TYPE_PATTERN } from '../config-schemas/common.schema.ts';
export type { DeliverySender, DestinationDefinition } from './destination-definition.ts';
export type { AdapterLogger, SampleFile, SampleRecord, SourceDefinition, SourceDeps, SourceIngestSettings, SourceServices } from './source-definition.ts';
export type { FormatMessage, MessageFormatName, RecordLineage } from '../message-formats/message-format.ts';
export { parseDuration, parseSize } from '../config-schemas/units.ts';

/** Why a message was not accepted, as the sender's ACK carries it (the store keeps code and detail). */
export interface IngestError extends StoredError {
  /** HL7 table 0357 code for ERR-3; derived from `code` when absent. */
  hl7ErrorCode?: string;
  /** The segment and field at fault (ERR-2), when known. */
  location?: Hl7ErrorLocation;
}

/** What the engine decided about one inbound message; the adapter turns it into an ACK. */
export interface IngestOutcome {
  /** AA: durably stored. AE: error (store failed, malformed, failed the channel's validation). AR: rejected (not accepted here). */
  ackCode: 'AA' | 'AE' | 'AR';
  /**
   * The enhanced-mode commit ACK when it is not the mapping of `ackCode` (AE → CE): `CA` for a
   * message the channel's validation refused once stored. A commit ACK says "stored"; the AE that
   * original mode gets says "not processed" (docs/design/0001, "Correct ACKs").
   */
  commitAck?: 'CA';
  /** The engine's message id (absent when nothing could be stored). */
  messageId?: string;
  error?: IngestError;
  duplicate?: boolean;
}

export interface InboundMessage {
  /** The record's bytes as received (HL7: the framed bytes, BOM and terminators untouched). */
  raw: Buffer;
  /** The text decoded (HL7: with MSH-18 or the channel's fallback charset). */
  text: string;
  encoding: string;
  /** What the bytes are; their format module reads them (engine/message-formats). */
  format: MessageFormatName;
  /** Where it came from: `ip:port` of the peer, or `sftp://host/dir/file` for a record of a file. */
  remote: string;
  /** The parsed message, when it parsed. */
  message?: FormatMessage;
  /** For a record of a file: which file and where in it (stored with the message). */
  lineage?: RecordLineage;
  /** Set when decoding or parsing failed: the message is stored as errored and NAKed. */
  parseError?: StoredError;
  /**
   * Set when the adapter refuses the message itself, whatever its content (larger than the
   * listener accepts): it is stored as errored with this reason and answered AR (do not resend).
   * `raw` then holds only what the adapter kept of it.
   */
  refused?: StoredError;
}

export type InboundHandler = (message: InboundMessage) => Promise<IngestOutcome>;

export interface InboundAdapter {
  /** Starts listening; rejects when the port cannot be bound. Idempotent. */
  start(handler: InboundHandler): Promise<void>;
  /** Stops accepting and closes connections. Idempotent. */
  stop(): Promise<void>;
  /** The bound address (port 0 in tests resolves to the real port). */
  address(): { host: string; port: number } | undefined;
}

export interface OutboundRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** The outcome of one send, classified for the retry policy. */
export interface OutboundResult {
  outcome: 'success' | 'transient' | 'permanent';
  status?: number;
  responseBody?: string;
  /** From a Retry-After header, in milliseconds. */
  retryAfterMs?: number;
  error?: StoredError;
  durationMs: number;
  /** The request as sent, with secrets redacted, for the attempt log. */
  sentRequest: OutboundRequest;
}
export { FILE_LEDGER, SINGLE_ACTIVE, InboundFileState } from './file-source-services.ts';
export type { FileLedger, InboundFile, InboundFileUpdate, Lease, NewInboundFile, SingleActive } from './file-source-services.ts';
