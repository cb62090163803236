// SPDX-License-Identifier: Apache-2.0
/**
 * Configuration of the MLLP listener, as a TypeBox schema (the channel schema composes it; the
 * channel loader converts `idleTimeout: 60s` / `maxMessageSize: 1MB` strings to the numbers here).
 * Field names are the contract with the channel loader: do not rename.
 */
import { Type, type Static } from '@sinclair/typebox';

export const MLLP_DEFAULTS = {
  host: '0.0.0.0',
  charset: 'UTF-8',
  maxMessageSize: 1024 * 1024,
  idleTimeoutMs: 60_000,
  maxConnections: 100,
} as const;

export const MllpListenerTlsSchema = Type.Object(
  {
    cert: Type.String({ minLength: 1, description: 'Path of the server certificate (PEM).' }),
    key: Type.String({ minLength: 1, description: 'Path of the server private key (PEM).' }),
    ca: Type.Optional(Type.String({ minLength: 1, description: 'Path of the CA bundle (PEM) that client certificates must chain to (mTLS).' })),
    requestCert: Type.Optional(
      Type.Boolean({ default: false, description: 'Ask senders for a certificate and refuse those that do not chain to `ca` (mutual TLS).' }),
    ),
  },
  { additionalProperties: false, description: 'TLS for the listener; with `ca` and `requestCert: true` it is mutual TLS.' },
);

export const MllpListenerConfigSchema = Type.Object(
  {
    host: Type.Optional(Type.String({ minLength: 1, default: MLLP_DEFAULTS.host, description: 'Address to listen on.', examples: ['127.0.0.1'] })),
    port: Type.Integer({ minimum: 0, maximum: 65535, description: 'TCP port (0 picks a free port, for tests).', examples: [6661] }),
    charset: Type.Optional(
      Type.String({
        minLength: 1,
        default: MLLP_DEFAULTS.charset,
        description: 'Character set used when MSH-18 is empty (HL7 table 0211 name or an encoding name such as windows-1252).',
        examples: ['UTF-8', '8859/1', 'windows-1252'],
      }),
    ),
    maxMessageSize: Type.Optional(
      Type.Integer({
        minimum: 1,
        default: MLLP_DEFAULTS.maxMessageSize,
        description: 'Largest frame accepted, in bytes; a larger one gets an AR naming OSPREY_ERR_MLLP_FRAME_TOO_LARGE, and its first 4 KiB are stored as ERROR.',
      }),
    ),
    idleTimeoutMs: Type.Optional(
      Type.Integer({
        minimum: 1,
        default: MLLP_DEFAULTS.idleTimeoutMs,
        description: 'A connection with no traffic this long is closed; a frame not completed within this time (sender stalled mid-frame) too.',
      }),
    ),
    maxConnections: Type.Optional(
      Type.Integer({ minimum: 1, default: MLLP_DEFAULTS.maxConnections, description: 'Connections beyond this number are closed at once.' }),
    ),
    allowFrom: Type.Optional(
      Type.Array(Type.String({ minLength: 1 }), {
        description: 'Sender IP addresses allowed to connect (IPv4, IPv6; IPv4-mapped IPv6 is matched as IPv4). Absent: any.',
        examples: [['10.1.2.3', '127.0.0.1']],
      }),
    ),
    tls: Type.Optional(MllpListenerTlsSchema),
  },
  { additionalProperties: false, description: 'An MLLP listener: receives HL7 v2 messages and answers each with an ACK.' },
);

/** The listener's configuration (sizes in bytes, durations in milliseconds). */
export type MllpListenerConfig = Static<typeof MllpListenerConfigSchema>;
