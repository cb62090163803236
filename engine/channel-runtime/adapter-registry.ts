// SPDX-License-Identifier: Apache-2.0
/**
 * The sources and destinations a channel file may name, registered here with one line each. The channel schema's
 * `source` union, the runtime view, the engine and the API read this list, so a new source is its
 * own folder under `adapters/inbound/` (adapter, settings schema, `SourceDefinition`) plus a line here.
 */
import type { TObject } from '@sinclair/typebox';
import type { DestinationDefinition } from '../adapter-sdk/destination-definition.ts';
import type { SourceDefinition } from '../adapter-sdk/source-definition.ts';
import { mllpListenerSource } from '../../adapters/inbound/mllp-listener/mllp-listener.source.ts';
import { sftpBatchWriterDestination } from '../../adapters/outbound/sftp/sftp-writer.destination.ts';
import { sftpBatchPollerSource } from '../../adapters/inbound/sftp-batch-poller/sftp-batch-poller.source.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each entry has its own settings type
export const SOURCES: ReadonlyArray<SourceDefinition<any, any>> = [
  mllpListenerSource,
  sftpBatchPollerSource,
];

/** The `source` union's variants, for the channel schema. */
export const SOURCE_SCHEMAS: TObject[] = SOURCES.map((s) => s.schema);

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function sourceDefinition(type: string): SourceDefinition<any, any> {
  const found = SOURCES.find((s) => s.type === type);
  if (!found) throw new Error(`source type ${type} is not registered`);
  return found;
}

/** Destination types besides `rest` (which the channel schema declares itself), one line each. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each entry has its own settings type
export const DESTINATIONS: ReadonlyArray<DestinationDefinition<any, any>> = [
  sftpBatchWriterDestination,
];

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function destinationDefinition(type: string): DestinationDefinition<any, any> {
  const found = DESTINATIONS.find((d) => d.type === type);
  if (!found) throw new Error(`destination type ${type} is not registered`);
  return found;
}
