// SPDX-License-Identifier: Apache-2.0
/**
 * The SFTP destination's settings, declared once, here: {@link SftpWriterSettingsSchema} is the
 * channel-file form (units such as `20s`; secrets as `${VAR}`), and {@link toSftpWriterConfig}
 * turns it into {@link SftpWriterConfig}, what {@link SftpFileWriter} runs with. Field names are the
 * contract with channel files: do not rename.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Duration, SecretString, StringEnum, parseDuration } from '../../../engine/adapter-sdk/index.ts';

export const SFTP_FORMATS = ['json', 'ndjson', 'text'] as const;
export type SftpFileFormat = (typeof SFTP_FORMATS)[number];
export const SFTP_IF_EXISTS = ['fail', 'replace'] as const;
export type SftpIfExists = (typeof SFTP_IF_EXISTS)[number];

/** Defaults, in the runtime's units. */
export const SFTP_WRITER_DEFAULTS = {
  port: 22,
  fileName: 'journal-{date}-{messageId}.json',
  format: 'json',
  tempPrefix: '',
  tempSuffix: '.tmp',
  ifExists: 'fail',
  connectTimeoutMs: 20_000,
} as const satisfies { format: SftpFileFormat; ifExists: SftpIfExists } & Record<string, unknown>;

/** The destination's own settings in a channel file (the channel adds `type`, `transform`, `retry` …). */
export const SftpWriterSettingsSchema = Type.Object(
  {
    host: Type.String({ minLength: 1, description: 'SFTP server host name or address.', examples: ['${ERP_SFTP_HOST}'] }),
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, default: SFTP_WRITER_DEFAULTS.port, description: 'SSH port.', examples: [22] })),
    user: Type.String({ minLength: 1, description: 'User to log in as.', examples: ['${ERP_SFTP_USER}'] }),
    keyFile: Type.Optional(
      Type.String({ minLength: 1, description: 'Path of the private key file (OpenSSH or PEM). One of keyFile, privateKey or password is needed.', examples: ['${ERP_SFTP_KEY_FILE}'] }),
    ),
    privateKey: Type.Optional(SecretString({ description: 'The private key itself (PEM text), from the environment. Must be a ${VAR} reference.', examples: ['${ERP_SFTP_PRIVATE_KEY}'] })),
    passphrase: Type.Optional(SecretString({ description: 'Passphrase of an encrypted private key. Must be a ${VAR} reference.', examples: ['${ERP_SFTP_KEY_PASSPHRASE}'] })),
    password: Type.Optional(SecretString({ description: 'Password, when the server takes no key. Must be a ${VAR} reference.', examples: ['${ERP_SFTP_PASSWORD}'] })),
    hostKey: Type.String({
      minLength: 1,
      description:
        "The server's host key fingerprint as `ssh-keygen -lf` prints it (`SHA256:…`). Any other key is refused (OSPREY_ERR_SFTP_HOST_KEY, naming both).",
      examples: ['${ERP_SFTP_HOST_KEY}', 'SHA256:ZKSghnPcY+mKSLEW38EeVw+Fo7Q/fw8xn1hF0fGAe+E'],
    }),
    directory: Type.String({ minLength: 1, description: 'Remote directory the files go to; made (with its parents) when missing.', examples: ['/inbound/journals'] }),
    fileName: Type.Optional(
      Type.String({
        minLength: 1,
        pattern: '^[^/]+$',
        default: SFTP_WRITER_DEFAULTS.fileName,
        description:
          'File name template. Tokens: {messageId}, {idempotencyKey} (the delivery, unique per message, destination and output), {date} (YYYY-MM-DD) and {time} (HHmmss) of the message’s receipt, UTC. The same delivery always gets the same name, so a retry never makes a second file.',
        examples: ['journal-{date}-{messageId}.json', 'charges-{idempotencyKey}.csv'],
      }),
    ),
    format: Type.Optional(
      StringEnum(SFTP_FORMATS, {
        default: SFTP_WRITER_DEFAULTS.format,
        description: 'json: the body as one JSON document. ndjson: one JSON line per element of an array body (or the body as one line). text: the body as it is (a string).',
        examples: ['json'],
      }),
    ),
    tempPrefix: Type.Optional(
      Type.String({
        pattern: '^[^/]*$',
        default: SFTP_WRITER_DEFAULTS.tempPrefix,
        description: 'Put before the file name while it is written (`.` hides it from readers that skip dot files).',
        examples: ['', '.'],
      }),
    ),
    tempSuffix: Type.Optional(
      Type.String({
        pattern: '^[^/]*$',
        default: SFTP_WRITER_DEFAULTS.tempSuffix,
        description: 'Put after the file name while it is written; the file is renamed to its final name once complete.',
        examples: ['.tmp', '.filepart'],
      }),
    ),
    marker: Type.Optional(
      Type.String({
        minLength: 1,
        pattern: '^[^/]+$',
        description: 'Suffix of an empty marker file written after the file is in place (`name.done`), for readers that wait for one. Absent: no marker.',
        examples: ['.done', '.ctl'],
      }),
    ),
    ifExists: Type.Optional(
      StringEnum(SFTP_IF_EXISTS, {
        default: SFTP_WRITER_DEFAULTS.ifExists,
        description:
          'When the final name already holds other content: fail (permanent, OSPREY_ERR_SFTP_FILE_EXISTS; nothing is overwritten) or replace (atomically, by posix-rename). The same content is success either way (a retry of a delivery that was written).',
        examples: ['fail'],
      }),
    ),
    connectTimeout: Type.Optional(Duration({ default: '20s', description: 'Limit for connecting, the SSH handshake and authentication.', examples: ['20s'], 'x-advanced': true })),
  },
  { additionalProperties: false, description: 'An SFTP destination: writes each delivery as a file, under a temporary name renamed into place.' },
);

/** The settings as a validated channel file holds them (units as written). */
export type SftpWriterSettings = Static<typeof SftpWriterSettingsSchema>;

/** What {@link SftpFileWriter} runs with: durations in milliseconds, defaults filled in, paths resolved. */
export interface SftpWriterConfig {
  host: string;
  port: number;
  user: string;
  keyFile?: string;
  privateKey?: string;
  passphrase?: string;
  password?: string;
  hostKey: string;
  directory: string;
  fileName: string;
  format: SftpFileFormat;
  tempPrefix: string;
  tempSuffix: string;
  /** Marker suffix; absent: no marker. */
  marker?: string;
  ifExists: SftpIfExists;
  connectTimeoutMs: number;
}

/**
 * The runtime config of validated settings: units converted, defaults filled in, `keyFile` passed
 * through `resolvePath` (the channel runtime makes it absolute against the project root).
 * @throws TypeError when no credential (keyFile, privateKey, password) is given, or the temporary
 * name would equal the final one (neither tempPrefix nor tempSuffix).
 */
export function toSftpWriterConfig(settings: SftpWriterSettings, resolvePath: (path: string) => string = (p) => p): SftpWriterConfig {
  if (settings.keyFile === undefined && settings.privateKey === undefined && settings.password === undefined) {
    throw new TypeError('an SFTP destination needs keyFile, privateKey or password');
  }
  const tempPrefix = settings.tempPrefix ?? SFTP_WRITER_DEFAULTS.tempPrefix;
  const tempSuffix = settings.tempSuffix ?? SFTP_WRITER_DEFAULTS.tempSuffix;
  if (tempPrefix === '' && tempSuffix === '') throw new TypeError('an SFTP destination needs tempPrefix or tempSuffix: the file must not be written under its final name');
  return {
    host: settings.host,
    port: settings.port ?? SFTP_WRITER_DEFAULTS.port,
    user: settings.user,
    ...(settings.keyFile !== undefined ? { keyFile: resolvePath(settings.keyFile) } : {}),
    ...(settings.privateKey !== undefined ? { privateKey: settings.privateKey } : {}),
    ...(settings.passphrase !== undefined ? { passphrase: settings.passphrase } : {}),
    ...(settings.password !== undefined ? { password: settings.password } : {}),
    hostKey: settings.hostKey,
    directory: settings.directory,
    fileName: settings.fileName ?? SFTP_WRITER_DEFAULTS.fileName,
    format: settings.format ?? SFTP_WRITER_DEFAULTS.format,
    tempPrefix,
    tempSuffix,
    ...(settings.marker !== undefined ? { marker: settings.marker } : {}),
    ifExists: settings.ifExists ?? SFTP_WRITER_DEFAULTS.ifExists,
    connectTimeoutMs: settings.connectTimeout === undefined ? SFTP_WRITER_DEFAULTS.connectTimeoutMs : parseDuration(settings.connectTimeout),
  };
}
