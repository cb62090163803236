// SPDX-License-Identifier: Apache-2.0
/**
 * The MLLP listener's settings, declared once, here: {@link MllpListenerSettingsSchema} is the
 * channel-file form (units such as `60s`, `1MB`; the channel schema composes it into the
 * `mllp-listener` source), and {@link toMllpListenerConfig} turns it into {@link MllpListenerConfig},
 * the numbers the listener runs with (the channel runtime view calls it). Field names are the
 * contract with channel files: do not rename.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Duration, SecretString, Size, StringEnum, parseDuration, parseSize } from '../../../engine/adapter-sdk/index.ts';

/** Defaults, in the runtime's units (bytes, milliseconds). */
export const MLLP_DEFAULTS = {
  host: '0.0.0.0',
  charset: 'UTF-8',
  maxMessageSize: 1024 * 1024,
  idleTimeoutMs: 60_000,
  maxConnections: 100,
  maxBytesInFlight: 64 * 1024 * 1024,
  maxUnreadAckBytes: 1024 * 1024,
  batchAck: 'all',
} as const;

/**
 * What the answer to an HL7 batch (FHS/BHS … BTS/FTS in one frame) holds: `all`, one ACK per
 * message; `errors-only`, only the messages not accepted (none: all were).
 */
export const BatchAckMode = { all: 'all', errorsOnly: 'errors-only' } as const;
export type BatchAckMode = (typeof BatchAckMode)[keyof typeof BatchAckMode];

export const MllpListenerTlsSchema = Type.Object(
  {
    cert: Type.String({ minLength: 1, description: 'Path of the server certificate (PEM).', examples: ['${ADT_TLS_CERT}'] }),
    key: SecretString({ description: 'Path of the server private key (PEM). Must be a ${VAR} reference.', examples: ['${ADT_TLS_KEY}'] }),
    ca: Type.Optional(
      Type.String({ minLength: 1, description: 'Path of the CA bundle that client certificates must chain to (mTLS).', examples: ['${ADT_TLS_CA}'] }),
    ),
    requestCert: Type.Optional(
      Type.Boolean({
        default: false,
        description: 'Ask senders for a client certificate and reject those that do not chain to `ca` (mTLS).',
        examples: [true],
      }),
    ),
  },
  { additionalProperties: false, description: 'TLS for the listener; with `ca` and `requestCert: true` it is mutual TLS.' },
);

/** The listener's own settings in a channel file's `source` (the channel adds `type`, `accept`, `ack`, `dedupe`). */
export const MllpListenerSettingsSchema = Type.Object(
  {
    host: Type.Optional(Type.String({ minLength: 1, default: MLLP_DEFAULTS.host, description: 'Address to listen on.', examples: ['127.0.0.1'] })),
    port: Type.Integer({
      minimum: 0,
      maximum: 65535,
      description: 'TCP port to listen on; unique across channels (0 picks a free port, for tests).',
      examples: [6661],
    }),
    charset: Type.Optional(
      Type.String({
        minLength: 1,
        default: MLLP_DEFAULTS.charset,
        description: 'Character set used when MSH-18 is empty (HL7 table 0211 name or an encoding name such as windows-1252).',
        examples: ['UTF-8', 'ISO-8859-1'],
      }),
    ),
    maxMessageSize: Type.Optional(
      Size({
        default: '1MB',
        description: 'Largest accepted frame; a larger one is answered AR (OSPREY_ERR_MLLP_FRAME_TOO_LARGE) and its first 4 KiB are stored as ERROR.',
        examples: ['1MB'],
      }),
    ),
    idleTimeout: Type.Optional(
      Duration({
        default: '60s',
        description:
          'A connection idle this long is closed; also bounds a sender stalled mid-frame, and a sender that leaves its ACKs unread (OSPREY_ERR_MLLP_ACKS_UNREAD).',
        examples: ['60s'],
      }),
    ),
    maxConnections: Type.Optional(
      Type.Integer({ minimum: 1, default: MLLP_DEFAULTS.maxConnections, description: 'Concurrent connections accepted.', examples: [100] }),
    ),
    maxBytesInFlight: Type.Optional(
      Size({
        default: '64MB',
        description:
          'Bytes of received messages the engine has not answered yet, across all connections of this listener. When reached, the listener stops reading from its connections until answers go out: senders wait, nothing is dropped.',
        examples: ['64MB'],
        'x-advanced': true,
      }),
    ),
    maxUnreadAckBytes: Type.Optional(
      Size({
        default: '1MB',
        description:
          'ACK bytes a sender may leave unread (beyond what the operating system buffers) before it is disconnected (OSPREY_ERR_MLLP_ACKS_UNREAD). While any are unread, nothing more is read from it.',
        examples: ['1MB'],
        'x-advanced': true,
      }),
    ),
    allowFrom: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        description: 'Sender allow-list (IPv4, IPv6; IPv4-mapped IPv6 is matched as IPv4); connections from other addresses are closed. Absent: any.',
        examples: [['127.0.0.1']],
      }),
    ),
    tls: Type.Optional(MllpListenerTlsSchema),
    batchAck: Type.Optional(
      StringEnum([BatchAckMode.all, BatchAckMode.errorsOnly] as const, {
        default: MLLP_DEFAULTS.batchAck,
        description:
          'The answer to an HL7 batch (FHS/BHS … BTS/FTS) sent in one frame, whose messages are each stored and processed like single ones: one batch acknowledgement (FHS/BHS whose field 12 names the received file/batch control id, ACKs, BTS/FTS). `all`: one ACK per message, AA included. `errors-only`: only the messages not accepted (HL7’s exception-basis batch ACK; none means all were accepted). A batch whose BTS/FTS counts do not match is refused whole: every message answered AR, nothing accepted.',
        examples: ['all', 'errors-only'],
      }),
    ),
  },
  { additionalProperties: false, description: 'An MLLP listener: receives HL7 v2 messages and answers each with an ACK.' },
);

/** The listener's settings as a validated channel file holds them (units as written). */
export type MllpListenerSettings = Static<typeof MllpListenerSettingsSchema>;

/** What the listener runs with: sizes in bytes, durations in milliseconds; absent fields take {@link MLLP_DEFAULTS}. */
export interface MllpListenerConfig {
  /** @defaultValue '0.0.0.0' */
  host?: string;
  port: number;
  /** Used when MSH-18 is empty. @defaultValue 'UTF-8' */
  charset?: string;
  /** Bytes. @defaultValue 1_048_576 (1MB) */
  maxMessageSize?: number;
  /** @defaultValue 60_000 */
  idleTimeoutMs?: number;
  /** @defaultValue 100 */
  maxConnections?: number;
  /** Bytes of frames handed to the engine and not yet answered, all connections together. @defaultValue 67_108_864 (64MB) */
  maxBytesInFlight?: number;
  /** Bytes of ACKs a peer may leave unread in the listener's write buffer. @defaultValue 1_048_576 (1MB) */
  maxUnreadAckBytes?: number;
  /** Sender IP addresses allowed; absent: any. */
  allowFrom?: string[];
  /** Paths of PEM files. With `ca` and `requestCert: true`: mutual TLS. */
  tls?: { cert: string; key: string; ca?: string; requestCert?: boolean };
  /** What an HL7 batch's acknowledgement holds (see {@link BatchAckMode}). @defaultValue 'all' */
  batchAck?: BatchAckMode;
}

/** {@link MllpListenerConfig} with every default filled in, as the channel runtime holds it. */
export type ResolvedMllpListenerConfig = MllpListenerConfig & Required<Omit<MllpListenerConfig, 'allowFrom' | 'tls'>>;

/**
 * The runtime config of validated settings: units converted, defaults filled in, TLS file paths
 * passed through `resolvePath` (the channel runtime makes them absolute against the project root).
 * @throws RangeError only for a size or duration the schema would have refused.
 */
export function toMllpListenerConfig(settings: MllpListenerSettings, resolvePath: (path: string) => string = (p) => p): ResolvedMllpListenerConfig {
  const { tls } = settings;
  return {
    host: settings.host ?? MLLP_DEFAULTS.host,
    port: settings.port,
    charset: settings.charset ?? MLLP_DEFAULTS.charset,
    maxMessageSize: settings.maxMessageSize === undefined ? MLLP_DEFAULTS.maxMessageSize : parseSize(settings.maxMessageSize),
    idleTimeoutMs: settings.idleTimeout === undefined ? MLLP_DEFAULTS.idleTimeoutMs : parseDuration(settings.idleTimeout),
    maxConnections: settings.maxConnections ?? MLLP_DEFAULTS.maxConnections,
    maxBytesInFlight: settings.maxBytesInFlight === undefined ? MLLP_DEFAULTS.maxBytesInFlight : parseSize(settings.maxBytesInFlight),
    maxUnreadAckBytes: settings.maxUnreadAckBytes === undefined ? MLLP_DEFAULTS.maxUnreadAckBytes : parseSize(settings.maxUnreadAckBytes),
    batchAck: settings.batchAck ?? MLLP_DEFAULTS.batchAck,
    ...(settings.allowFrom ? { allowFrom: [...settings.allowFrom] } : {}),
    ...(tls
      ? {
          tls: {
            cert: resolvePath(tls.cert),
            key: resolvePath(tls.key),
            ...(tls.ca !== undefined ? { ca: resolvePath(tls.ca) } : {}),
            requestCert: tls.requestCert ?? false,
          },
        }
      : {}),
  };
}
