// SPDX-License-Identifier: Apache-2.0
/**
 * `sftp-batch-poller` as a channel source (engine/adapter-sdk/source-definition.ts): its schema, how
 * ingest treats its records (the file format's message format, a long duplicate window), and how
 * the engine builds and shows it. A channel whose host is left empty is not run, on purpose.
 */
import { createReadStream } from 'node:fs';
import { parseDuration, type SampleRecord, type SourceDefinition } from '../../../engine/adapter-sdk/index.ts';
import { fileRecordReader } from './file-records.ts';
import { SftpBatchPoller } from './sftp-batch-poller.ts';
import {
  recordFormatOf,
  SFTP_POLLER_DEFAULTS,
  SftpBatchPollerSourceSchema,
  toSftpBatchPollerConfig,
  type SftpBatchPollerConfig,
  type SftpBatchPollerSettings,
} from './sftp-batch-poller.config.ts';

export const sftpBatchPollerSource: SourceDefinition<SftpBatchPollerSettings, SftpBatchPollerConfig> = {
  type: 'sftp-batch-poller',
  schema: SftpBatchPollerSourceSchema,
  toConfig: (settings, { abs }) => toSftpBatchPollerConfig(settings, abs),
  ingest: (settings) => ({
    format: recordFormatOf(settings.format),
    accept: [...(settings.accept ?? [])],
    dedupeWindowMs: parseDuration(settings.dedupe?.window ?? SFTP_POLLER_DEFAULTS.dedupeWindow),
    onValidationError: 'AE',
    charset: settings.charset ?? 'UTF-8',
  }),
  disabledReason: (config) => (config.host === '' ? 'no SFTP server configured (source.host is empty): the channel is not run' : undefined),
  create: (config, deps) => {
    if (!config.hostKey) {
      throw new Error(`source.hostKey is empty: pin the SFTP server's host key fingerprint (ssh-keygen -lf <host key>.pub prints SHA256:…) before Osprey connects to ${config.host}`);
    }
    return new SftpBatchPoller(config, deps);
  },
  describe: (config, adapter) => {
    const poller = adapter as SftpBatchPoller | undefined;
    return {
      host: config.host || undefined,
      port: config.port,
      directory: config.directory,
      fileFormat: config.format,
      state: poller?.state,
      lastPollAt: poller?.lastPollAt === undefined ? undefined : new Date(poller.lastPollAt).toISOString(),
      lastError: poller?.lastError ? `${poller.lastError.code}: ${poller.lastError.detail}` : undefined,
    };
  },
  // `osprey test`: a sample is a whole file, checked and split by the same reader the poller runs.
  readSample: async (file, config) => {
    const reader = fileRecordReader(config);
    const open = () => createReadStream(file);
    const check = await reader.check(open);
    if (!check.ok) return { ok: false, error: { code: check.code, detail: check.detail } };
    const records: SampleRecord[] = [];
    for await (const r of reader.records(open)) records.push(r.error ? { text: r.text, error: r.error } : { text: r.text });
    return { ok: true, records };
  },
  summary: (config) => `SFTP ${config.host}:${config.port}${config.directory}`,
};
