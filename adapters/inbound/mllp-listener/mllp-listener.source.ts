// SPDX-License-Identifier: Apache-2.0
/**
 * `mllp-listener` as a channel source (engine/adapter-sdk/source-definition.ts): the `source` block
 * of a channel file (the listener's own settings, declared in `mllp-listener.config.ts`, plus what
 * the channel decides: accepted types, the ACK policy, the duplicate window) and how the engine
 * builds, runs and shows it.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Duration, MESSAGE_TYPE_PATTERN, StringEnum, parseDuration, type SourceDefinition } from '../../../engine/adapter-sdk/index.ts';
import { createMllpListener } from './mllp-listener.ts';
import { MLLP_DEFAULTS, MllpListenerSettingsSchema, toMllpListenerConfig, type ResolvedMllpListenerConfig } from './mllp-listener.config.ts';

const { host: mllpHost, port: mllpPort, ...mllpRest } = MllpListenerSettingsSchema.properties;

/** The `mllp-listener` source: the adapter's own settings (it declares them) and the channel's. */
export const MllpListenerSourceSchema = Type.Object(
  {
    type: Type.Literal('mllp-listener', { description: 'HL7 v2 over MLLP (TCP, optionally TLS).' }),
    host: mllpHost,
    port: mllpPort,
    accept: Type.Array(
      Type.String({
        pattern: MESSAGE_TYPE_PATTERN,
        'x-expected': 'a message type MSH-9.1^MSH-9.2 such as ADT^A01',
      }),
      {
        minItems: 1,
        description: 'Message types (MSH-9.1^MSH-9.2) this channel takes; any other type is answered AR.',
        examples: [['ADT^A01', 'ADT^A03']],
      },
    ),
    ...mllpRest,
    ack: Type.Optional(
      Type.Object(
        {
          mode: Type.Optional(
            StringEnum(['after-store'] as const, {
              default: 'after-store',
              description: 'When the ACK is sent. `after-store`: AA only once the message is durably stored.',
              examples: ['after-store'],
            }),
          ),
          onValidationError: Type.Optional(
            StringEnum(['AE', 'AA'] as const, {
              default: 'AE',
              description:
                'The answer to a message that fails the channel’s `validate` step (it is stored as ERROR either way). `AE`: an AE whose ERR segment names the segment and field (ERR-2) and the HL7 table 0357 condition (ERR-3), so the sender knows; `AA`: the sender is not told (for senders that stop their queue on AE). An enhanced-mode commit ACK (MSH-15 set) is CA either way: the message is stored.',
              examples: ['AE'],
            }),
          ),
        },
        { additionalProperties: false, default: {}, description: 'Acknowledgement policy.', examples: [{ mode: 'after-store', onValidationError: 'AE' }] },
      ),
    ),
    dedupe: Type.Optional(
      Type.Object(
        {
          window: Type.Optional(
            Duration({
              default: '24h',
              description: 'Same sender (MSH-3|MSH-4) and MSH-10 within this window is a duplicate; `0s` turns de-duplication off.',
              examples: ['24h'],
            }),
          ),
        },
        { additionalProperties: false, default: {}, description: 'Duplicate detection.', examples: [{ window: '24h' }] },
      ),
    ),
  },
  { additionalProperties: false, description: 'An MLLP listener: receives HL7 v2 messages and ACKs them once stored.' },
);

export type MllpListenerSource = Static<typeof MllpListenerSourceSchema>;

export const mllpListenerSource: SourceDefinition<MllpListenerSource, ResolvedMllpListenerConfig> = {
  type: 'mllp-listener',
  listens: true,
  schema: MllpListenerSourceSchema,
  toConfig: (settings, { abs }) => toMllpListenerConfig(settings, abs),
  ingest: (settings) => ({
    format: 'hl7v2',
    accept: [...settings.accept],
    dedupeWindowMs: parseDuration(settings.dedupe?.window ?? '24h'),
    onValidationError: settings.ack?.onValidationError ?? 'AE',
    charset: settings.charset ?? MLLP_DEFAULTS.charset,
  }),
  create: (config, deps) => createMllpListener(config, deps.logger),
  describe: (config, adapter) => {
    const address = adapter?.address();
    return { host: address?.host ?? config.host, port: address?.port ?? config.port };
  },
  summary: (config, adapter) => `MLLP :${adapter?.address()?.port ?? config.port}`,
};
