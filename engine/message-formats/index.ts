// SPDX-License-Identifier: Apache-2.0
/**
 * The message formats the engine reads, registered once: ingest, the pipeline, replay and the API
 * find a message's format module here by its name (the stored `format` column).
 */
import iconv from 'iconv-lite';
import { hl7v2Format } from './hl7v2/hl7v2-format.ts';
import { x12Format } from './x12/x12-format.ts';
import { csvRecordFormat } from './csv-record/csv-record.ts';
import type { FormatMessage, MessageFormat, MessageFormatName } from './message-format.ts';

export * from './message-format.ts';

const FORMATS: { readonly [F in MessageFormatName]?: MessageFormat } = {
  hl7v2: hl7v2Format as MessageFormat,
  x12: x12Format as MessageFormat,
  'csv-record': csvRecordFormat as MessageFormat,
};

/** The module of a format; throws for one that is not registered (a store row from a newer engine). */
export function messageFormat(name: string): MessageFormat {
  const format = FORMATS[name as MessageFormatName];
  if (!format) throw new Error(`message format ${name} is not known to this engine`);
  return format;
}

/** A stored message's bytes as the text its format parses. */
export function decodeStored(format: MessageFormat, raw: Buffer, encoding: string): string {
  return format.decode ? format.decode(raw, encoding) : iconv.decode(raw, encoding);
}

/** Parses a stored message with its format's module. Throws an OspreyError when it does not parse. */
export function parseStored(formatName: string, raw: Buffer, encoding: string): FormatMessage {
  const format = messageFormat(formatName);
  return format.parse(decodeStored(format, raw, encoding));
}
