// SPDX-License-Identifier: Apache-2.0
/**
 * The schema of the engine configuration (`config/default.yaml`, `config/production.yaml`).
 * Every section is optional and has defaults, so the embedded mode needs no file content at all;
 * a file only states what differs. Secrets (database and broker URLs with passwords) come from
 * `${VAR}` references, never literals.
 */
import { Type, type Static } from '@sinclair/typebox';
import { KebabName, StringEnum } from './common.schema.ts';

const closed = { additionalProperties: false } as const;

export const SqliteStoreSchema = Type.Object(
  {
    type: Type.Literal('sqlite', { description: 'Embedded SQLite file (WAL); one engine instance.' }),
    path: Type.Optional(
      Type.String({ minLength: 1, default: './data/osprey.db', description: 'Database file, relative to the project root.', examples: ['${OSPREY_DATA_DIR:-./data}/osprey.db'] }),
    ),
    synchronous: Type.Optional(
      StringEnum(['full', 'normal'] as const, {
        default: 'full',
        description: '`full`: every commit reaches the disk before the sender is ACKed (survives power loss). `normal`: faster; a power cut may lose the last commits (a process crash does not).',
        examples: ['full'],
      }),
    ),
  },
  { ...closed, description: 'SQLite message store.' },
);

export const PostgresStoreSchema = Type.Object(
  {
    type: Type.Literal('postgres', { description: 'PostgreSQL; several engine instances may share it.' }),
    url: Type.String({ minLength: 1, description: 'Connection URL (from the environment: it carries the password).', examples: ['${OSPREY_DATABASE_URL}'] }),
    schema: Type.Optional(
      Type.String({ pattern: '^[a-z_][a-z0-9_]*$', 'x-expected': 'a lower-case SQL identifier', default: 'osprey', description: 'Database schema for Osprey’s tables.', examples: ['osprey'] }),
    ),
    poolSize: Type.Optional(Type.Integer({ minimum: 1, default: 10, description: 'Connections for reads (API searches, recovery); the group committers have 2 more of their own.', examples: [10] })),
  },
  { ...closed, description: 'PostgreSQL message store.' },
);

export const StoreConfigSchema = Type.Union([SqliteStoreSchema, PostgresStoreSchema], {
  'x-discriminator': 'type',
  default: { type: 'sqlite' },
  description: 'The message store, the system of record.',
});

export const LocalBusSchema = Type.Object(
  { type: Type.Literal('local', { description: 'Store-backed in-process queue (embedded mode).' }) },
  { ...closed, description: 'Local bus.' },
);

export const RabbitMqBusSchema = Type.Object(
  {
    type: Type.Literal('rabbitmq', { description: 'RabbitMQ: durable quorum queues, publisher confirms.' }),
    url: Type.String({
      pattern: '^\\s*amqps?://[^,]+(,\\s*amqps?://[^,]+)*$',
      'x-expected': 'an amqp:// or amqps:// URL, or several comma-separated (one per cluster node)',
      description:
        'Broker URL (from the environment: it carries the password). For a cluster, one URL per node, comma-separated: the engine connects to one node at a time and moves to the next when a connection fails or is lost.',
      examples: ['${OSPREY_RABBITMQ_URL}'],
    }),
    prefix: Type.Optional(
      Type.String({ pattern: '^[a-z][a-z0-9.-]*$', 'x-expected': 'lower-case letters, digits, dots and dashes', default: 'osprey', description: 'Prefix of exchange and queue names.', examples: ['osprey'] }),
    ),
    partitions: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 256, default: 16, description: 'Queues per stage; messages of one ordering key always go to the same one.', examples: [16] }),
    ),
    prefetch: Type.Optional(Type.Integer({ minimum: 1, default: 50, description: 'Unacknowledged deliveries per consumer.', examples: [50] })),
    deliveryLimit: Type.Optional(
      Type.Integer({
        minimum: 1,
        default: 20,
        description:
          "Attempts (the broker's redeliveries included) before a work item that keeps failing by itself is dead-lettered, and its record marked DEAD_LETTERED or ERROR; failures of an unreachable store do not count. Also the quorum queues' x-delivery-limit: part of the queues' identity, like partitions, so change it only on a new prefix.",
        examples: [20],
      }),
    ),
  },
  { ...closed, description: 'RabbitMQ bus.' },
);

export const BusConfigSchema = Type.Union([LocalBusSchema, RabbitMqBusSchema], {
  'x-discriminator': 'type',
  default: { type: 'local' },
  description: 'The bus between stages.',
});

export const RateLimitSchema = Type.Object(
  {
    perSecond: Type.Number({ exclusiveMinimum: 0, description: 'Requests per second, refilled continuously.', examples: [200] }),
    burst: Type.Integer({ minimum: 1, description: 'Requests that may go at once after a quiet period (bucket size).', examples: [200] }),
  },
  { ...closed, description: 'A token bucket.' },
);

export const EngineConfigSchema = Type.Object(
  {
    store: Type.Optional(StoreConfigSchema),
    bus: Type.Optional(BusConfigSchema),
    http: Type.Optional(
      Type.Object(
        {
          host: Type.Optional(Type.String({ minLength: 1, default: '127.0.0.1', description: 'Address of the management API (and of the sandbox receiver, when enabled).', examples: ['${OSPREY_HTTP_HOST:-127.0.0.1}'] })),
          port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, default: 8080, description: 'Port of the management API (and of the sandbox receiver, when enabled); 0 picks a free one.', examples: ['${OSPREY_HTTP_PORT:-8080}'] })),
          apiToken: Type.Optional(
            Type.String({
              pattern: '^[!-+\\--~]{24,}(,[!-+\\--~]{24,})*$',
              description:
                'Bearer token every /api/ request must carry (`Authorization: Bearer <token>`): messages hold PHI, and replay changes state. Several, comma-separated, to rotate. At least 24 printable characters each, no spaces or commas. From the environment only. Unset: no authentication (the default config listens on 127.0.0.1 only). /livez, /healthz and /readyz stay open for probes.',
              examples: ['${OSPREY_API_TOKEN}'],
            }),
          ),
        },
        { ...closed, default: {}, description: 'Management API.' },
      ),
    ),
    channels: Type.Optional(
      Type.Object(
        { dir: Type.Optional(Type.String({ minLength: 1, default: 'channels', description: 'Folder of the channel files, relative to the project root.', examples: ['channels'] })) },
        { ...closed, default: {}, description: 'Channel files.' },
      ),
    ),
    lookups: Type.Optional(
      Type.Object(
        { dir: Type.Optional(Type.String({ minLength: 1, default: 'config/lookups', description: 'Folder of lookup tables (<name>.yaml, .json or .csv).', examples: ['config/lookups'] })) },
        { ...closed, default: {}, description: 'Lookup tables.' },
      ),
    ),
    contracts: Type.Optional(
      Type.Object(
        {
          module: Type.Optional(
            Type.String({ pattern: '\\.ts$', 'x-expected': 'a path to a TypeScript module', default: 'transforms/contracts/index.ts', description: 'Module that exports the contract registry (`contracts`, keyed Name@major).', examples: ['transforms/contracts/index.ts'] }),
          ),
        },
        { ...closed, default: {}, description: 'Destination contracts.' },
      ),
    ),
    rateLimits: Type.Optional(
      Type.Record(KebabName(), RateLimitSchema, {
        additionalProperties: false,
        'x-key-expected': 'a kebab-case name (erp-api)',
        default: {},
        description: 'Named rate limits, shared by every destination that names them and, in production mode, by the engine instances (each of N takes 1/N).',
        examples: [{ 'erp-api': { perSecond: 200, burst: 200 } }],
      }),
    ),
    sandbox: Type.Optional(
      Type.Object(
        {
          enabled: Type.Optional(
            Type.Boolean({
              default: false,
              description:
                'Serve the sandbox ERP/RCM receiver under /sandbox on the management port (development only). Channels reach it as ${OSPREY_SANDBOX_URL}. What it received (GET /sandbox/received) and its DELETE need the API token when http.apiToken is set.',
              examples: [true],
            }),
          ),
          allowRemote: Type.Optional(
            Type.Boolean({
              default: false,
              description:
                'Serve the sandbox although http.host is not a loopback address (127.0.0.0/8, ::1, localhost). Without it the engine refuses to start with such a host: the sandbox keeps delivered payloads, which hold PHI.',
              examples: [false],
            }),
          ),
        },
        { ...closed, default: {}, description: 'The sandbox receiver the sample channels deliver to.' },
      ),
    ),
    logging: Type.Optional(
      Type.Object(
        {
          level: Type.Optional(StringEnum(['error', 'warn', 'info', 'debug'] as const, { default: 'info', description: 'Lowest level written.', examples: ['info'] })),
          format: Type.Optional(StringEnum(['json', 'pretty'] as const, { default: 'json', description: '`json` for log shippers, `pretty` for a terminal.', examples: ['json'] })),
        },
        { ...closed, default: {}, description: 'Operations log (never message content).' },
      ),
    ),
  },
  {
    ...closed,
    title: 'Osprey engine configuration',
    description: 'Engine-wide settings: store, bus, HTTP, folders, shared rate limits. No secrets: use ${VAR}.',
  },
);

type DeepRequired<T> = T extends readonly unknown[] ? T : T extends object ? { [K in keyof T]-?: DeepRequired<T[K]> } : T;

/** The engine configuration as loaded: interpolated, validated, every default filled in. */
export type EngineConfig = DeepRequired<Static<typeof EngineConfigSchema>>;
