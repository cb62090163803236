// SPDX-License-Identifier: Apache-2.0
/**
 * Osprey's HL7 v2 layer: a lossless message model, charset decoding, batch splitting, ACKs and
 * structure validation (docs/design/0001-hl7-v2-model.md). Imported by adapters, the engine and,
 * through the transform SDK's `Hl7Reader`, by transforms. Depends only on `engine/errors`, the
 * store's `StoredError` type, the transform SDK's `Hl7Reader` type and iconv-lite.
 */
export { Hl7Message, normalizeHl7Text, DEFAULT_HL7_DELIMITERS } from './hl7-message.ts';
export type { Hl7Delimiters, Hl7Leniency, Hl7ParseOptions } from './hl7-message.ts';
export { parseHl7Path } from './hl7-path.ts';
export type { Hl7Path } from './hl7-path.ts';
export { decodeHl7Escapes, encodeHl7Escapes } from './hl7-escape.ts';
export { decodeHl7, encodeHl7, findMsh18, hl7CharsetToEncoding } from './hl7-charset.ts';
export type { DecodedHl7 } from './hl7-charset.ts';
export { splitBatch, Hl7BatchSplitter } from './hl7-batch.ts';
export type { Hl7Batch, Hl7BatchFile, Hl7BatchIssue, Hl7BatchSummary, Hl7BatchSplitterListener, Hl7SplitMessage } from './hl7-batch.ts';
export { readHl7BatchMessages, checkHl7BatchEnvelope, MAX_LISTED_HL7_ISSUES } from './hl7-batch-stream.ts';
export type { Hl7BatchRecord, Hl7BatchSource, Hl7EnvelopeCheck, Hl7BatchReadOptions } from './hl7-batch-stream.ts';
export { buildAck, buildBatchAck, newControlId, hl7Timestamp, hl7ErrorCodeFor, AckCode, Hl7ErrorCondition } from './hl7-ack.ts';
export type { AckError, AckOptions, BatchAckBatch, BatchAckOptions, Hl7ErrorLocation } from './hl7-ack.ts';
export { validateStructure, validationAckError, isKnownHl7Version, KNOWN_HL7_VERSIONS, REQUIRED_SEGMENTS } from './hl7-validate.ts';
export type { Hl7ValidationIssue } from './hl7-validate.ts';
export { MllpFramer, mllpFrame, MLLP_VT, MLLP_FS, MLLP_CR } from './mllp-framer.ts';
export type { MllpFrameEvent, MllpFramerOptions } from './mllp-framer.ts';
