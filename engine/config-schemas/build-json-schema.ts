// SPDX-License-Identifier: Apache-2.0
/**
 * Writes the generated artefacts of the schemas (committed, drift-checked by
 * `test/unit/config-schemas/generated-artifacts.spec.ts`; docs/conventions.md §1):
 * - `engine/config-schemas/generated/channel.schema.json` and `engine-config.schema.json`, for
 *   editors (`# yaml-language-server: $schema=…`);
 * - `docs/reference/channel-schema.md` and `docs/reference/engine-config.md`.
 *
 * Run: `npm run schema:build`.
 *
 * The editor schemas differ from the runtime schemas in one mechanical way: files are validated
 * by the engine *after* `${VAR}` interpolation, but an editor sees the text as written, so every
 * number, boolean, enum and patterned string also accepts a string holding a `${VAR}` reference
 * (`port: ${ADT_MLLP_PORT:-6661}` is not an error in the editor).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TSchema } from '@sinclair/typebox';
import { ChannelSchema } from './channel.schema.ts';
import { EngineConfigSchema } from './engine-config.schema.ts';
import { renderSchemaReference } from './reference-doc.ts';

/** Repository root (this file is `engine/config-schemas/build-json-schema.ts`). */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Matches a string that holds at least one `${VAR}` / `${VAR:-default}`. */
export const ENV_REFERENCE_PATTERN = '\\$\\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\\}';

const ANNOTATIONS = ['description', 'default', 'examples', 'title', 'x-secret', 'x-advanced', 'x-since'];

/** The JSON Schema an editor should use for files as written (see the file comment). */
export function editorSchema(schema: TSchema): Record<string, unknown> {
  // The JSON round trip drops TypeBox's symbol-keyed metadata.
  const plain = JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
  return { $schema: 'http://json-schema.org/draft-07/schema#', ...(allowEnvReferences(plain) as Record<string, unknown>) };
}

function allowEnvReferences(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(allowEnvReferences);
  if (typeof node !== 'object' || node === null) return node;
  const schema = node as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    // `examples` and `default` are data, not schemas.
    out[key] = key === 'examples' || key === 'default' || key === 'const' || key === 'enum' ? value : allowEnvReferences(value);
  }
  const interpolatable =
    out.const === undefined &&
    (out.type === 'integer' || out.type === 'number' || out.type === 'boolean' || out.enum !== undefined || (out.type === 'string' && out.pattern !== undefined));
  if (!interpolatable) return out;
  const annotations: Record<string, unknown> = {};
  const rest: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(out)) (ANNOTATIONS.includes(key) ? annotations : rest)[key] = value;
  return { ...annotations, anyOf: [rest, { type: 'string', pattern: ENV_REFERENCE_PATTERN, description: 'A ${VAR} or ${VAR:-default} reference, resolved when the file is loaded.' }] };
}

/** Every generated file: path relative to the repository root, and its exact content. */
export function buildArtifacts(): Array<{ path: string; content: string }> {
  const json = (schema: TSchema) => `${JSON.stringify(editorSchema(schema), null, 2)}\n`;
  return [
    { path: 'engine/config-schemas/generated/channel.schema.json', content: json(ChannelSchema) },
    { path: 'engine/config-schemas/generated/engine-config.schema.json', content: json(EngineConfigSchema) },
    {
      path: 'docs/reference/channel-schema.md',
      content: renderSchemaReference(ChannelSchema, {
        title: 'Channel file reference',
        intro: `<!-- Generated from engine/config-schemas/channel.schema.ts by \`npm run schema:build\`; do not edit. -->

A channel is one file, \`channels/<metadata.name>.channel.yaml\`. The format and its rules are explained
in [docs/design/0002-channel-files.md](../design/0002-channel-files.md); this page lists every key.

- Values may use \`\${VAR}\` and \`\${VAR:-default}\`, resolved from the environment when the file is loaded.
  An unset variable without a default is an error (\`OSPREY_ERR_CHANNEL_ENV\`).
- Fields marked **Secret** accept only a \`\${VAR}\` reference, with no default (\`OSPREY_ERR_CHANNEL_LITERAL_SECRET\`).
- Durations are a whole number and a unit: \`500ms\`, \`15s\`, \`5m\`, \`24h\`, \`30d\`. Sizes: \`512KB\`, \`1MB\` (1KB = 1024 bytes).
- Unknown keys are errors (with "did you mean …?" when the key is close to a known one).
- Check files with \`osprey validate\` (\`--strict\` makes warnings fail).`,
      }),
    },
    {
      path: 'docs/reference/engine-config.md',
      content: renderSchemaReference(EngineConfigSchema, {
        title: 'Engine configuration reference',
        intro: `<!-- Generated from engine/config-schemas/engine-config.schema.ts by \`npm run schema:build\`; do not edit. -->

The engine reads \`--config <file>\`, else the file named by \`OSPREY_CONFIG\`, else \`config/default.yaml\`.
Every section is optional; what is not written takes the default below. Values may use \`\${VAR}\` and
\`\${VAR:-default}\` (an unset variable without a default is \`OSPREY_ERR_CONFIG_ENV\`); connection URLs
carry passwords and come from the environment only. Relative paths are taken from the project root.`,
      }),
    },
  ];
}

/** Writes every artefact; returns the paths written. */
export function writeArtifacts(root: string = REPO_ROOT): string[] {
  const written: string[] = [];
  for (const { path, content } of buildArtifacts()) {
    const target = join(root, path);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, content);
    written.push(path);
  }
  return written;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const path of writeArtifacts()) process.stdout.write(`wrote ${path}\n`);
}
