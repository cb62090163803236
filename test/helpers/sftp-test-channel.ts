// SPDX-License-Identifier: Apache-2.0
/**
 * Channel files of the SFTP tests' own channels: an `sftp-batch-poller` source pointed at a
 * throwaway sshd (test/helpers/throwaway-sshd.ts), no transform step (the pipeline forwards each
 * record's text as `{ x12: … }` / `{ "csv-record": … }`), one REST destination with short, fixed
 * retries. Independent of the sample channels, so these tests pin the poller, not a mapping.
 */
import type { ThrowawaySshd } from './throwaway-sshd.ts';

export interface SftpTestChannelOptions {
  name: string;
  sshd: Pick<ThrowawaySshd, 'host' | 'port' | 'user' | 'keyFile' | 'hostKeyFingerprint'>;
  /** The inbox (absolute; the throwaway sshd's user sees its root at the same path). */
  directory: string;
  /** @defaultValue x12-835 */
  format?: 'x12-835' | 'csv' | 'hl7v2-batch';
  /** @defaultValue ['*.835'] */
  globs?: string[];
  /** @defaultValue temp-name */
  pickup?: 'temp-name' | 'marker' | 'stable';
  /** @defaultValue 200ms */
  pollInterval?: string;
  /** Destination URL (the ERP stand-in). */
  url: string;
  /** Extra lines under `source:` (already indented by 4), e.g. a `csv:` block. */
  sourceExtra?: string[];
  /** @defaultValue CLP-1 for 835s, absent otherwise */
  orderBy?: string;
  /** @defaultValue 20 */
  maxAttempts?: number;
  /** A destination batch (`maxItems`, `maxWait`). */
  batch?: { maxItems: number; maxWait: string };
}

/** The YAML of an SFTP test channel. */
export function sftpTestChannelYaml(o: SftpTestChannelOptions): string {
  const format = o.format ?? 'x12-835';
  const orderBy = o.orderBy ?? (format === 'x12-835' ? 'CLP-1' : undefined);
  return [
    'apiVersion: osprey/v1',
    'kind: Channel',
    'metadata:',
    `  name: ${o.name}`,
    '  version: 1.0.0',
    '  owner: e2e-tests',
    'spec:',
    '  source:',
    '    type: sftp-batch-poller',
    `    host: ${o.sshd.host}`,
    `    port: ${o.sshd.port}`,
    `    user: ${o.sshd.user}`,
    `    keyFile: ${JSON.stringify(o.sshd.keyFile)}`,
    `    hostKey: ${JSON.stringify(o.sshd.hostKeyFingerprint)}`,
    `    directory: ${JSON.stringify(o.directory)}`,
    `    glob: [${(o.globs ?? ['*.835']).map((g) => JSON.stringify(g)).join(', ')}]`,
    `    format: ${format}`,
    `    pollInterval: ${o.pollInterval ?? '200ms'}`,
    `    pickup: { mode: ${o.pickup ?? 'temp-name'}, minAge: 0s }`,
    ...(o.sourceExtra ?? []),
    ...(orderBy ? [`  orderBy: ${orderBy}`] : []),
    '  destinations:',
    '    - name: erp',
    '      type: rest',
    `      url: ${o.url}`,
    '      auth: { type: none }',
    '      timeout: 2s',
    '      retry:',
    `        maxAttempts: ${o.maxAttempts ?? 20}`,
    '        backoff: { type: fixed, initial: 50ms, max: 50ms, jitter: 0 }',
    ...(o.batch ? [`      batch: { maxItems: ${o.batch.maxItems}, maxWait: ${o.batch.maxWait} }`] : []),
    '',
  ].join('\n');
}

/** The claim id (CLP01) of a record forwarded as `{ x12: "<claim text>" }`, or undefined. */
export function claimIdOf(payload: unknown): string | undefined {
  const text = (payload as { x12?: unknown } | undefined)?.x12;
  if (typeof text !== 'string') return undefined;
  const m = /(?:^|[~\n])CLP\*([^*~]+)\*/.exec(text);
  return m?.[1];
}
