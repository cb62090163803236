// SPDX-License-Identifier: Apache-2.0
/**
 * The SFTP batch poller's settings, declared once: {@link SftpBatchPollerSourceSchema} is the
 * channel file's `source` block (units such as `30s`; the channel schema composes it through the
 * source registry), and {@link toSftpBatchPollerConfig} turns it into the numbers and absolute paths
 * the poller runs with. Field names are the contract with channel files: do not rename.
 *
 * Connection settings may be left empty (`${SFTP_HOST:-}`): a channel without a host is not run, and
 * says so (the quickstart has no SFTP server), instead of failing.
 */
import { posix } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { Duration, StringEnum, parseDuration } from '../../../engine/adapter-sdk/index.ts';
import { CsvRecordSchema, type CsvRecordSchemaInput } from '../../../engine/message-formats/csv-record/index.ts';
import type { SftpConnectOptions } from '../../shared/sftp/sftp-connection.ts';

const closed = { additionalProperties: false } as const;

/** What the files hold: each splits into records of one message format. */
export const FILE_FORMATS = ['x12-835', 'csv', 'hl7v2-batch'] as const;
export type FileFormat = (typeof FILE_FORMATS)[number];

/** How the poller knows a file is complete (docs/design/0013-file-sources.md § Safe pickup). */
export const PICKUP_MODES = ['temp-name', 'marker', 'stable'] as const;
export type PickupMode = (typeof PICKUP_MODES)[number];

export const SFTP_POLLER_DEFAULTS = {
  port: 22,
  pollIntervalMs: 30_000,
  filesAtOnce: 1,
  tempSuffixes: ['.filepart', '.tmp', '.part'],
  markerSuffixes: ['.done', '.ctl'],
  minAgeMs: 30_000,
  archiveDirectory: '../archive',
  errorDirectory: '../error',
  dedupeWindow: '400d',
  reconnectInitialMs: 1_000,
  reconnectMaxMs: 60_000,
  recordsInFlight: 64,
} as const;

const OptionalText = (description: string, examples: string[]) => Type.Optional(Type.String({ description, examples }));

export const SftpBatchPollerSourceSchema = Type.Object(
  {
    type: Type.Literal('sftp-batch-poller', { description: 'Files a billing vendor or clearinghouse drops on an SFTP server, split into one message per record.' }),
    host: Type.String({
      description: 'SFTP server host name or address. Empty: the channel is not run (STOPPED, with the reason), which is not a failure.',
      examples: ['${SFTP_HOST:-}'],
    }),
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, default: SFTP_POLLER_DEFAULTS.port, description: 'SFTP server port.', examples: [22] })),
    user: Type.String({ description: 'User name on the SFTP server.', examples: ['${SFTP_USER:-osprey}'] }),
    keyFile: OptionalText('Path of the private key file (OpenSSH or PEM). One of keyFile, privateKey or password.', ['${SFTP_KEY_FILE:-}']),
    privateKey: Type.Optional(Type.String({ 'x-secret': true, description: 'The private key itself (PEM text), from the environment. Must be a ${VAR} reference.', examples: ['${SFTP_PRIVATE_KEY:-}'] })),
    passphrase: Type.Optional(Type.String({ 'x-secret': true, description: 'Passphrase of an encrypted private key. Must be a ${VAR} reference.', examples: ['${SFTP_KEY_PASSPHRASE:-}'] })),
    password: Type.Optional(Type.String({ 'x-secret': true, description: 'Password, when the server takes no key. Must be a ${VAR} reference.', examples: ['${SFTP_PASSWORD:-}'] })),
    hostKey: Type.String({
      description: 'The server’s host key fingerprint as `ssh-keygen -lf` prints it (`SHA256:…`). Required with a host: an unknown or changed key is refused, naming both fingerprints.',
      examples: ['${SFTP_HOST_KEY:-}'],
    }),
    directory: Type.String({ minLength: 1, description: 'The inbox: the remote directory polled for files.', examples: ['${REMITTANCE_DIR:-/remittance/inbox}'] }),
    glob: Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })], {
      description: 'File names taken (glob, or a list of globs); hidden files (a leading dot) never match.',
      examples: [['*.835', '*.x12']],
    }),
    format: StringEnum(FILE_FORMATS, {
      description: 'What the files hold: `x12-835` (one message per claim payment, CLP loop), `csv` (one per row, see `csv`), `hl7v2-batch` (one per HL7 message: FHS/BHS…BTS/FTS or concatenated).',
      examples: ['x12-835'],
    }),
    csv: Type.Optional(CsvRecordSchema),
    pollInterval: Type.Optional(Duration({ default: '30s', description: 'Time between two listings of the inbox.', examples: ['30s'] })),
    filesAtOnce: Type.Optional(Type.Integer({ minimum: 1, maximum: 16, default: SFTP_POLLER_DEFAULTS.filesAtOnce, description: 'Files processed at the same time.', examples: [1] })),
    pickup: Type.Optional(
      Type.Object(
        {
          mode: StringEnum(PICKUP_MODES, {
            description:
              '`temp-name`: the sender uploads under a temporary name (`.name.filepart`, `name.tmp` …) and renames when done, so every name that matches is complete. `marker`: a file is taken once its marker (`name.done`, `name.ctl`) exists. `stable`: once its size and time are unchanged across two polls and it is at least `minAge` old.',
            examples: ['temp-name'],
          }),
          tempSuffixes: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { default: [...SFTP_POLLER_DEFAULTS.tempSuffixes], description: 'Suffixes of names under upload (`temp-name`), never taken.', examples: [['.filepart', '.tmp']] })),
          markerSuffixes: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { default: [...SFTP_POLLER_DEFAULTS.markerSuffixes], description: 'Suffixes of marker files (`marker`): `claims.835.done` or `claims.done` marks `claims.835`.', examples: [['.done', '.ctl']] })),
          minAge: Type.Optional(Duration({ default: '30s', description: 'Youngest a file may be (`stable`).', examples: ['30s'] })),
        },
        { ...closed, description: 'How a complete file is told from one being uploaded.', examples: [{ mode: 'temp-name' }] },
      ),
    ),
    afterSuccess: Type.Optional(
      Type.Object(
        {
          action: StringEnum(['archive', 'delete'] as const, { default: 'archive', description: 'What happens to a file whose every record is stored.', examples: ['archive'] }),
          directory: Type.Optional(Type.String({ minLength: 1, default: SFTP_POLLER_DEFAULTS.archiveDirectory, description: 'Archive directory (relative paths are relative to the inbox); each file goes under a dated folder (`2026-03-06/`).', examples: ['../archive'] })),
        },
        { ...closed, default: { action: 'archive' }, description: 'After a file is processed.', examples: [{ action: 'archive', directory: '../archive' }] },
      ),
    ),
    errorDirectory: Type.Optional(Type.String({ minLength: 1, default: SFTP_POLLER_DEFAULTS.errorDirectory, description: 'Where a refused file is moved, with a `<name>.reason` file beside it (relative paths are relative to the inbox).', examples: ['../error'] })),
    accept: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), { description: 'Record types the channel takes (`835`, a CSV kind, `DFT^P03`); others are stored as ERROR. Absent: all.', examples: [['835']] }),
    ),
    dedupe: Type.Optional(
      Type.Object(
        {
          window: Type.Optional(
            Duration({
              default: SFTP_POLLER_DEFAULTS.dedupeWindow,
              description: 'A record with the identity of one stored within this window is not processed again (835: payer + TRN02 + CLP01; CSV: the `keys.id` column; HL7: MSH-3|MSH-4 + MSH-10). `0s` turns it off.',
              examples: ['400d'],
            }),
          ),
        },
        { ...closed, default: {}, description: 'Duplicate records (a resent remittance).', examples: [{ window: '400d' }] },
      ),
    ),
    charset: Type.Optional(Type.String({ minLength: 1, default: 'UTF-8', description: 'Character set of the files (HL7: when MSH-18 is empty).', examples: ['UTF-8'] })),
  },
  { ...closed, description: 'An SFTP batch poller: takes complete files from an inbox, checks each whole, stores one message per record, then archives it.' },
);

export type SftpBatchPollerSettings = Static<typeof SftpBatchPollerSourceSchema>;

/** The connection settings (shared with the SFTP destination) with defaults filled in, and the poller's own. */
export interface SftpBatchPollerConfig extends SftpConnectOptions {
  port: number;
  directory: string;
  globs: string[];
  format: FileFormat;
  csv?: CsvRecordSchemaInput;
  pollIntervalMs: number;
  filesAtOnce: number;
  pickup: { mode: PickupMode; tempSuffixes: string[]; markerSuffixes: string[]; minAgeMs: number };
  afterSuccess: { action: 'archive' | 'delete'; directory: string };
  errorDirectory: string;
  charset: string;
  reconnect: { initialMs: number; maxMs: number };
  /** Records handed to the engine and not yet stored, at most (the store group-commits them). */
  recordsInFlight: number;
}

const empty = (v: string | undefined): string | undefined => (v === undefined || v.trim() === '' ? undefined : v);

/** Runtime config of validated settings; `abs` makes a local key file path absolute. */
export function toSftpBatchPollerConfig(s: SftpBatchPollerSettings, abs: (path: string) => string = (p) => p): SftpBatchPollerConfig {
  const directory = posix.normalize(s.directory);
  const beside = (p: string) => (p.startsWith('/') ? posix.normalize(p) : posix.join(directory, p));
  const keyFile = empty(s.keyFile);
  return {
    host: s.host.trim(),
    port: s.port ?? SFTP_POLLER_DEFAULTS.port,
    user: s.user,
    ...(keyFile ? { keyFile: abs(keyFile) } : {}),
    ...(empty(s.privateKey) ? { privateKey: s.privateKey } : {}),
    ...(empty(s.passphrase) ? { passphrase: s.passphrase } : {}),
    ...(empty(s.password) ? { password: s.password } : {}),
    hostKey: s.hostKey.trim(),
    directory,
    globs: Array.isArray(s.glob) ? [...s.glob] : [s.glob],
    format: s.format,
    ...(s.csv ? { csv: s.csv } : {}),
    pollIntervalMs: parseDuration(s.pollInterval ?? '30s'),
    filesAtOnce: s.filesAtOnce ?? SFTP_POLLER_DEFAULTS.filesAtOnce,
    pickup: {
      mode: s.pickup?.mode ?? 'temp-name',
      tempSuffixes: [...(s.pickup?.tempSuffixes ?? SFTP_POLLER_DEFAULTS.tempSuffixes)],
      markerSuffixes: [...(s.pickup?.markerSuffixes ?? SFTP_POLLER_DEFAULTS.markerSuffixes)],
      minAgeMs: parseDuration(s.pickup?.minAge ?? '30s'),
    },
    afterSuccess: { action: s.afterSuccess?.action ?? 'archive', directory: beside(s.afterSuccess?.directory ?? SFTP_POLLER_DEFAULTS.archiveDirectory) },
    errorDirectory: beside(s.errorDirectory ?? SFTP_POLLER_DEFAULTS.errorDirectory),
    charset: s.charset ?? 'UTF-8',
    reconnect: { initialMs: SFTP_POLLER_DEFAULTS.reconnectInitialMs, maxMs: SFTP_POLLER_DEFAULTS.reconnectMaxMs },
    recordsInFlight: SFTP_POLLER_DEFAULTS.recordsInFlight,
  };
}

/** The message format of a file format's records. */
export function recordFormatOf(format: FileFormat): 'x12' | 'csv-record' | 'hl7v2' {
  return format === 'x12-835' ? 'x12' : format === 'csv' ? 'csv-record' : 'hl7v2';
}

