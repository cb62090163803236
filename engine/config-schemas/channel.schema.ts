// SPDX-License-Identifier: Apache-2.0
/**
 * The schema of a channel file (`channels/<name>.channel.yaml`), exactly as
 * docs/design/0002-channel-files.md specifies it. This one TypeBox schema drives the runtime
 * validation (Ajv, after `${VAR}` interpolation), `osprey validate`, the editor JSON Schema in
 * `generated/channel.schema.json` and `docs/reference/channel-schema.md`.
 *
 * Every object is closed (`additionalProperties: false`) so a misspelt key is an error with a
 * "did you mean …?" rather than a silently ignored setting.
 *
 * @see docs/design/0002-channel-files.md
 */
import { Type, type Static } from '@sinclair/typebox';
import {
  CONTRACT_REF_PATTERN,
  Duration,
  Hl7Path,
  KebabName,
  SecretString,
  SEMVER_PATTERN,
  Size,
  StringEnum,
  TS_PATH_PATTERN,
} from './common.schema.ts';
import { SOURCE_SCHEMAS } from '../channel-runtime/adapter-registry.ts';

const closed = { additionalProperties: false } as const;

/** The file name a channel lives in: `<metadata.name>.channel.yaml`. */
export const CHANNEL_FILE_SUFFIX = '.channel.yaml';
/** Channel test files share the folder and are not channels. */
export const CHANNEL_TEST_FILE_SUFFIX = '.channel.test.yaml';

function TransformPath(description: string, example: string) {
  return Type.String({
    pattern: TS_PATH_PATTERN,
    'x-expected': 'a path to a TypeScript module relative to the project root, ending in .ts',
    description,
    examples: [example],
  });
}

// ---------------------------------------------------------------------------------------------
// metadata

export const ChannelMetadataSchema = Type.Object(
  {
    name: KebabName({
      description: 'The channel’s name: kebab-case, unique across channels, equal to the file name stem.',
      examples: ['adt-to-rcm-erp'],
    }),
    version: Type.String({
      pattern: SEMVER_PATTERN,
      'x-expected': 'a semantic version such as 1.0.0',
      description: 'Semantic version of this definition; bump it on any change of behaviour.',
      examples: ['1.0.0'],
    }),
    owner: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'The team that answers for this channel. Missing is a warning (an error with --strict).',
        examples: ['integration-team'],
      }),
    ),
    description: Type.Optional(
      Type.String({
        description: 'What the channel does, in one or two sentences.',
        examples: ['Admissions and discharges from the EHR to RCM billing readiness and ERP accruals'],
      }),
    ),
    labels: Type.Optional(
      Type.Record(Type.String({ pattern: '^[A-Za-z][A-Za-z0-9-]*$' }), Type.String(), {
        additionalProperties: false,
        'x-key-expected': 'a label name: letters, digits and dashes, starting with a letter',
        description: 'Free key/value labels (workflow, facility …), shown with the channel by GET /api/channels, for grouping channels in monitoring and scripts.',
        examples: [{ workflow: 'encounter' }],
      }),
    ),
  },
  { ...closed, description: 'Who the channel is, who owns it, and its version.' },
);

// ---------------------------------------------------------------------------------------------
// source

/** Inbound adapters by `type`: one variant per registered source (engine/channel-runtime/adapter-registry.ts). */
export const ChannelSourceSchema = Type.Union(SOURCE_SCHEMAS, {
  'x-discriminator': 'type',
  description: 'Where messages come from (one inbound adapter).',
});

// ---------------------------------------------------------------------------------------------
// steps

export const ValidateStepSchema = Type.Object(
  {
    validate: StringEnum(['hl7'] as const, {
      description: 'Check the HL7 v2 structure and the required MSH fields.',
      examples: ['hl7'],
    }),
  },
  { ...closed, description: 'Validate the message.' },
);

export const FilterStepSchema = Type.Object(
  {
    filter: Type.Object(
      {
        field: Hl7Path({ description: 'HL7 path of the value to test.', examples: ['PV1-2'] }),
        in: Type.Optional(
          Type.Array(Type.String(), { description: 'Keep the message only when the value is one of these.', examples: [['I', 'O', 'E']] }),
        ),
        notIn: Type.Optional(
          Type.Array(Type.String(), { description: 'Drop the message when the value is one of these.', examples: [['P']] }),
        ),
      },
      { ...closed, description: 'Keep (in) or drop (notIn) messages by the value of one field; exactly one of in, notIn.' },
    ),
  },
  { ...closed, description: 'Filter messages: a filtered message is FILTERED, not an error.' },
);

export const EnrichStepSchema = Type.Object(
  {
    enrich: Type.Object(
      {
        lookup: KebabName({
          description: 'Lookup table name: a file <lookups dir>/<name>.yaml, .json or .csv.',
          examples: ['departments'],
        }),
        from: Hl7Path({ description: 'HL7 path of the key to look up.', examples: ['PV1-3.1'] }),
        as: Type.String({
          pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
          'x-expected': 'an identifier (letters, digits, underscore)',
          description: 'Name under which transforms find the result (`ctx.enrichment.<as>`).',
          examples: ['department'],
        }),
        required: Type.Optional(
          Type.Boolean({
            default: true,
            description: 'When true, a key with no row raises a business exception; when false, the value is left undefined.',
            examples: [false],
          }),
        ),
      },
      { ...closed, description: 'Look a value up in a table and hand the row to the transforms.' },
    ),
  },
  { ...closed, description: 'Enrich from a lookup table.' },
);

export const TransformStepSchema = Type.Object(
  {
    transform: TransformPath(
      'Transform module (default export: defineTransform) that maps the message to a canonical event.',
      'transforms/inbound/hl7v2/adt-to-encounter-event.ts',
    ),
  },
  { ...closed, description: 'Run a transform.' },
);

export const ChannelStepSchema = Type.Union([ValidateStepSchema, FilterStepSchema, EnrichStepSchema, TransformStepSchema], {
  'x-one-key': true,
  description: 'One step: exactly one of validate, filter, enrich, transform.',
});

// ---------------------------------------------------------------------------------------------
// destinations

export const NoAuthSchema = Type.Object(
  { type: Type.Literal('none', { description: 'No authentication.' }) },
  { ...closed, description: 'No authentication.' },
);

export const BearerAuthSchema = Type.Object(
  {
    type: Type.Literal('bearer', { description: 'A static bearer token.' }),
    token: SecretString({ description: 'The token (sent as `Authorization: Bearer …`). Must be a ${VAR} reference.', examples: ['${ERP_TOKEN}'] }),
  },
  { ...closed, description: 'Static bearer token.' },
);

export const ApiKeyAuthSchema = Type.Object(
  {
    type: Type.Literal('api-key', { description: 'An API key in a header.' }),
    header: Type.String({
      pattern: '^[A-Za-z0-9-]+$',
      'x-expected': 'an HTTP header name',
      description: 'Header that carries the key.',
      examples: ['X-API-Key'],
    }),
    value: SecretString({ description: 'The key. Must be a ${VAR} reference.', examples: ['${RCM_API_KEY}'] }),
  },
  { ...closed, description: 'API key in a header.' },
);

export const BasicAuthSchema = Type.Object(
  {
    type: Type.Literal('basic', { description: 'HTTP basic authentication.' }),
    username: Type.String({ minLength: 1, description: 'User name.', examples: ['${ERP_USER}'] }),
    password: SecretString({ description: 'Password. Must be a ${VAR} reference.', examples: ['${ERP_PASSWORD}'] }),
  },
  { ...closed, description: 'HTTP basic authentication.' },
);

export const OAuth2ClientCredentialsAuthSchema = Type.Object(
  {
    type: Type.Literal('oauth2-client-credentials', { description: 'OAuth 2.0 client-credentials grant.' }),
    tokenUrl: Type.String({
      pattern: '^https?://',
      'x-expected': 'an http(s) URL',
      description: 'Token endpoint of the identity provider.',
      examples: ['${IDP_TOKEN_URL}'],
    }),
    clientId: Type.String({ minLength: 1, description: 'Client id.', examples: ['${ERP_CLIENT_ID}'] }),
    clientSecret: SecretString({ description: 'Client secret. Must be a ${VAR} reference.', examples: ['${ERP_CLIENT_SECRET}'] }),
    scope: Type.Optional(Type.String({ minLength: 1, description: 'Space-separated scopes to request.', examples: ['erp.write'] })),
    audience: Type.Optional(Type.String({ minLength: 1, description: 'Audience to request (some providers need it).', examples: ['https://erp.example.org'] })),
    clientAuthMethod: Type.Optional(
      StringEnum(['client_secret_basic', 'client_secret_post'] as const, {
        default: 'client_secret_basic',
        description: 'How the client authenticates to the token endpoint (RFC 6749 §2.3.1): HTTP basic, or the credentials in the form body.',
        examples: ['client_secret_basic'],
        'x-advanced': true,
      }),
    ),
  },
  { ...closed, description: 'OAuth 2.0 client credentials; the token is cached until shortly before it expires.' },
);

export const RestAuthSchema = Type.Union(
  [NoAuthSchema, BearerAuthSchema, ApiKeyAuthSchema, BasicAuthSchema, OAuth2ClientCredentialsAuthSchema],
  {
    'x-discriminator': 'type',
    default: { type: 'none' },
    description: 'How the destination authenticates; `type` picks the variant. Secrets only as ${VAR}.',
    examples: [{ type: 'none' }],
  },
);

export const RetrySchema = Type.Object(
  {
    maxAttempts: Type.Optional(
      Type.Integer({ minimum: 1, default: 10, description: 'Attempts in all, the first included; after the last one the delivery is DEAD_LETTERED.', examples: [10] }),
    ),
    backoff: Type.Optional(
      Type.Object(
        {
          type: Type.Optional(
            StringEnum(['exponential', 'fixed'] as const, {
              default: 'exponential',
              description: '`exponential`: initial · 2^(n−1), capped at max. `fixed`: always initial.',
              examples: ['exponential'],
            }),
          ),
          initial: Type.Optional(Duration({ default: '500ms', description: 'Delay before the first retry.', examples: ['500ms'] })),
          max: Type.Optional(Duration({ default: '5m', description: 'Longest delay between attempts.', examples: ['5m'] })),
          jitter: Type.Optional(
            Type.Number({ minimum: 0, maximum: 1, default: 0.2, description: 'Proportional jitter, 0..1, that spreads retries apart.', examples: [0.2] }),
          ),
        },
        { ...closed, default: {}, description: 'Wait between attempts.', examples: [{ type: 'exponential', initial: '500ms', max: '5m', jitter: 0.2 }] },
      ),
    ),
    maxElapsed: Type.Optional(
      Duration({
        description: 'Give up (DEAD_LETTERED) when the next attempt would start later than this after the first. Unset: only maxAttempts bounds retries.',
        examples: ['24h'],
        'x-since': '0.1.0',
      }),
    ),
    retryOn: Type.Optional(
      Type.Array(Type.Integer({ minimum: 100, maximum: 599 }), {
        default: [408, 429, 500, 502, 503, 504],
        description: 'HTTP statuses that are retried; any other non-2xx status is permanent.',
        examples: [[408, 429, 500, 502, 503, 504]],
      }),
    ),
    treatAsSuccess: Type.Optional(
      Type.Array(Type.Integer({ minimum: 100, maximum: 599 }), {
        default: [],
        description: 'HTTP statuses that count as delivered, e.g. the receiver’s "already applied".',
        examples: [[409]],
      }),
    ),
  },
  { ...closed, default: {}, description: 'Retry policy.' },
);

export const BatchSchema = Type.Object(
  {
    maxItems: Type.Integer({ minimum: 1, description: 'Send when this many payloads are waiting.', examples: [50] }),
    maxWait: Duration({ description: 'Send at the latest this long after the first payload of a batch.', examples: ['2s'] }),
  },
  { ...closed, description: 'Aggregate payloads and send them as one JSON array.' },
);

export const RestDestinationSchema = Type.Object(
  {
    name: KebabName({ description: 'Destination name, kebab-case, unique in the channel.', examples: ['rcm-billing'] }),
    type: Type.Literal('rest', { description: 'JSON over HTTP(S) to an ERP, RCM or any REST API.' }),
    url: Type.String({
      pattern: '^https?://[^\\s]+$',
      'x-expected': 'an http:// or https:// URL',
      description: 'Endpoint the payload is sent to. `${OSPREY_SANDBOX_URL}` is the engine’s sandbox receiver (while sandbox.enabled), at the management address in use.',
      examples: ['${RCM_URL:-${OSPREY_SANDBOX_URL}/rcm}/billing-readiness'],
    }),
    method: Type.Optional(
      StringEnum(['POST', 'PUT', 'PATCH', 'DELETE'] as const, { default: 'POST', description: 'HTTP method.', examples: ['POST'] }),
    ),
    headers: Type.Optional(
      Type.Record(Type.String({ pattern: '^[A-Za-z0-9-]+$' }), Type.String(), {
        additionalProperties: false,
        'x-key-expected': 'an HTTP header name (letters, digits, dashes)',
        description: 'Extra request headers (never credentials: use `auth`).',
        examples: [{ 'X-Source': 'osprey' }],
      }),
    ),
    transform: Type.Optional(
      TransformPath(
        'Transform from the canonical event to this destination’s payload; without it the event is sent as is.',
        'transforms/outbound/rcm/encounter-to-billing-readiness.ts',
      ),
    ),
    contract: Type.Optional(
      Type.String({
        pattern: CONTRACT_REF_PATTERN,
        'x-expected': 'a contract reference Name@major such as BillingReadiness@1',
        description: 'Versioned schema the payload is checked against before it is queued.',
        examples: ['BillingReadiness@1'],
      }),
    ),
    auth: Type.Optional(RestAuthSchema),
    timeout: Type.Optional(Duration({ default: '10s', description: 'Time allowed for one request (connect + response).', examples: ['10s'] })),
    retry: Type.Optional(RetrySchema),
    rateLimit: Type.Optional(
      KebabName({ description: 'Name of a rate limit in the engine config `rateLimits`, shared across channels.', examples: ['erp-api'] }),
    ),
    batch: Type.Optional(BatchSchema),
  },
  { ...closed, description: 'Deliver JSON to a REST endpoint.' },
);

/** Outbound adapters by `type`. Only `rest` for now; add variants here. */
export const ChannelDestinationSchema = Type.Union([RestDestinationSchema], {
  'x-discriminator': 'type',
  description: 'Where payloads go (one outbound adapter each).',
});

// ---------------------------------------------------------------------------------------------
// the file

export const ChannelSpecSchema = Type.Object(
  {
    source: ChannelSourceSchema,
    orderBy: Type.Optional(
      // A path in the notation of the source's format (HL7 `PID-3.1`, X12 `CLP-1`, a CSV column):
      // the format module reads it, so the schema only refuses blanks.
      Type.String({
        pattern: '^\\S+$',
        default: 'MSH-10',
        'x-expected': "a path in the source format's notation: PID-3.1 (HL7 v2), CLP-1 (X12), a column name (CSV)",
        description: "Path of the ordering key, in the notation of the source's format (HL7 v2 `PID-3.1`, X12 `CLP-1`, a CSV column name): messages with the same key are processed and delivered in arrival order. MSH-10 means no ordering across messages.",
        examples: ['PID-3.1', 'CLP-1', 'mrn'],
      }),
    ),
    steps: Type.Optional(
      Type.Array(ChannelStepSchema, {
        default: [],
        description: 'Steps, run in order.',
        examples: [[{ validate: 'hl7' }, { transform: 'transforms/inbound/hl7v2/adt-to-encounter-event.ts' }]],
      }),
    ),
    destinations: Type.Array(ChannelDestinationSchema, { minItems: 1, description: 'One or more destinations, each with its own queue.' }),
  },
  { ...closed, description: 'What the channel does.' },
);

export const ChannelSchema = Type.Object(
  {
    apiVersion: Type.Literal('osprey/v1', { description: 'Schema version of the file.' }),
    kind: Type.Literal('Channel', { description: 'Always `Channel`.' }),
    metadata: ChannelMetadataSchema,
    spec: ChannelSpecSchema,
  },
  {
    ...closed,
    title: 'Osprey channel',
    description: 'One channel: an inbound source, ordered steps, and one or more destinations. See docs/design/0002-channel-files.md.',
  },
);

/** A channel file as validated (after `${VAR}` interpolation and with the defaults filled in). */
export type ChannelDefinition = Static<typeof ChannelSchema>;
/** A `source` block: its `type` names the registered source whose schema validated the rest. */
export type ChannelSource = { type: string } & Record<string, unknown>;
export type ChannelStep = Static<typeof ChannelStepSchema>;
export type ChannelDestination = Static<typeof ChannelDestinationSchema>;
export type RestAuthDefinition = Static<typeof RestAuthSchema>;
