// SPDX-License-Identifier: Apache-2.0
/**
 * `sftp-batch-poller`: billing vendors' files on an SFTP server (X12 835, CSV, HL7 v2 batches),
 * taken safely, checked whole, one message per record, exactly once per record.
 */
export { SftpBatchPoller } from './sftp-batch-poller.ts';
export type { PollerSeams, PollerState } from './sftp-batch-poller.ts';
export { sftpBatchPollerSource } from './sftp-batch-poller.source.ts';
export { SftpBatchPollerSourceSchema, toSftpBatchPollerConfig, FILE_FORMATS, PICKUP_MODES } from './sftp-batch-poller.config.ts';
export type { SftpBatchPollerConfig, SftpBatchPollerSettings, FileFormat, PickupMode } from './sftp-batch-poller.config.ts';
export { pickReadyFiles } from './file-pickup.ts';
export { fileRecordReader } from './file-records.ts';
