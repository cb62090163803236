// SPDX-License-Identifier: Apache-2.0
/**
 * `sftp-batch-writer` as a destination type (engine/adapter-sdk/destination-definition.ts): one file
 * per delivery, written under a temporary name and renamed into place, with an optional marker.
 */
import type { DestinationDefinition } from '../../../engine/adapter-sdk/index.ts';
import { SftpFileWriter } from './sftp-writer.ts';
import { SftpWriterSettingsSchema, toSftpWriterConfig, type SftpWriterConfig, type SftpWriterSettings } from './sftp-writer.config.ts';

export const sftpBatchWriterDestination: DestinationDefinition<SftpWriterSettings, SftpWriterConfig> = {
  type: 'sftp-batch-writer',
  description: 'Write each payload as a file on an SFTP server (an ERP journal batch, a CSV export), atomically: temporary name, rename, optional marker.',
  settings: SftpWriterSettingsSchema,
  toConfig: (settings, { abs }) => toSftpWriterConfig(settings, abs),
  create: (config) => new SftpFileWriter(config),
};
