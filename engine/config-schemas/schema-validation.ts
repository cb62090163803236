// SPDX-License-Identifier: Apache-2.0
/**
 * Validates a plain value against one of Osprey's TypeBox schemas with Ajv (`allErrors`) and turns
 * Ajv's errors into problems an integration engineer can act on: the path of the field, whether to
 * point at its key or its value, a sentence, and the form to write.
 *
 * Unions are where raw Ajv output is useless: a wrong `auth` yields one error per variant ("must
 * be equal to constant" five times). Osprey's unions say how a variant is picked — `x-discriminator`
 * (a property such as `type`) or `x-one-key` (channel steps: the single key) — so only the picked
 * variant's errors are kept, and an unknown tag becomes one "unknown auth type … did you mean …?".
 *
 * Defaults are applied by {@link applyDefaults} (not Ajv's `useDefaults`, which ignores defaults
 * inside `anyOf`), with the same variant picking.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { TSchema } from '@sinclair/typebox';
import { OSPREY_KEYWORDS } from './common.schema.ts';
import { didYouMean } from './did-you-mean.ts';
import { formatFieldPath, type FieldPath } from '../engine-config/yaml-source.ts';

/** A schema violation, before it is given a file position. */
export interface SchemaProblem {
  path: FieldPath;
  /** Point at the key (unknown field) or at the value. */
  at: 'key' | 'value';
  /** The field shown to the author (may go one level below `path`, e.g. a missing key). */
  field: string;
  message: string;
  hint?: string;
}

export interface SchemaCheckOptions {
  /**
   * Whether the value at a path was written literally in the file. Values that came from the
   * environment are never quoted back in messages: they may be credentials.
   */
  isLiteral?: (path: FieldPath) => boolean;
}

/** The parts of a (TypeBox-generated) JSON Schema that validation and the reference docs read. */
export type JsonSchema = Record<string, unknown> & {
  type?: string;
  properties?: Record<string, JsonSchema>;
  patternProperties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  required?: string[];
  examples?: unknown[];
  default?: unknown;
  const?: unknown;
  enum?: unknown[];
  description?: string;
  pattern?: string;
};

const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictTypes: false });
for (const keyword of OSPREY_KEYWORDS) ajv.addKeyword({ keyword });
const compiled = new WeakMap<object, ValidateFunction>();

function compile(schema: TSchema): ValidateFunction {
  let validate = compiled.get(schema);
  if (!validate) {
    validate = ajv.compile(schema);
    compiled.set(schema, validate);
  }
  return validate;
}

/** True when the value matches the schema. */
export function matchesSchema(schema: TSchema, value: unknown): boolean {
  return compile(schema)(value) === true;
}

/** Every problem of `value` against `schema` (empty when valid). */
export function checkAgainstSchema(schema: TSchema, value: unknown, options: SchemaCheckOptions = {}): SchemaProblem[] {
  const validate = compile(schema);
  if (validate(value)) return [];
  const errors = [...(validate.errors ?? [])];
  const isLiteral = options.isLiteral ?? (() => true);
  const problems: SchemaProblem[] = [];
  const dropped = new Set<ErrorObject>();

  // Unions first, outermost first: an inner union inside a dropped variant is dropped with it.
  const unions = errors.filter((e) => e.keyword === 'anyOf').sort((a, b) => a.schemaPath.length - b.schemaPath.length);
  for (const union of unions) {
    if (dropped.has(union)) continue;
    dropped.add(union);
    const path = decodePointer(union.instancePath, value);
    const chosen = pickVariant(union.parentSchema as JsonSchema, union.data, path, problems);
    const prefix = `${union.schemaPath}/`;
    // Array items share a schemaPath (…/items/anyOf), so the instance path tells the unions apart.
    const within = (e: ErrorObject) => e.instancePath === union.instancePath || e.instancePath.startsWith(`${union.instancePath}/`);
    for (const e of errors) {
      if (e === union || !e.schemaPath.startsWith(prefix) || !within(e)) continue;
      if (chosen === undefined || !e.schemaPath.startsWith(`${prefix}${chosen}/`)) dropped.add(e);
    }
  }

  for (const e of errors) {
    if (dropped.has(e)) continue;
    const problem = describe(e, schema as JsonSchema, value, isLiteral);
    if (problem) problems.push(problem);
  }
  return dedupe(problems);
}

/**
 * Fills in defaults (a deep copy; the input is not changed). Objects get their missing
 * properties' defaults, recursively; unions pick their variant like validation does.
 */
export function applyDefaults<T>(schema: TSchema, value: unknown): T {
  return fill(schema as JsonSchema, structuredClone(value)) as T;
}

function fill(schema: JsonSchema, value: unknown): unknown {
  let v = value;
  if (v === undefined && schema.default !== undefined) v = structuredClone(schema.default);
  if (schema.anyOf) {
    const variant = variantFor(schema, v);
    return variant ? fill(variant, v) : v;
  }
  if (isPlainObject(v)) {
    for (const [key, propSchema] of Object.entries(schema.properties ?? {})) {
      const filled = fill(propSchema, v[key]);
      if (filled !== undefined) v[key] = filled;
    }
    for (const [pattern, propSchema] of Object.entries(schema.patternProperties ?? {})) {
      const re = new RegExp(pattern);
      for (const key of Object.keys(v)) {
        if (schema.properties && key in schema.properties) continue;
        if (re.test(key)) v[key] = fill(propSchema, v[key]);
      }
    }
  } else if (Array.isArray(v) && schema.items) {
    const items = schema.items;
    v = v.map((item) => fill(items, item));
  }
  return v;
}

function variantFor(union: JsonSchema, value: unknown): JsonSchema | undefined {
  const variants = union.anyOf ?? [];
  if (!isPlainObject(value)) return undefined;
  const tag = union['x-discriminator'];
  if (typeof tag === 'string') return variants.find((v) => v.properties?.[tag]?.const === value[tag]);
  if (union['x-one-key'] === true) return variants.find((v) => v.required?.[0] !== undefined && v.required[0] in value);
  return variants.find((v) => matchesSchema(v as TSchema, value));
}

/** Handles a union's error: returns the index of the variant whose errors matter, or reports. */
function pickVariant(union: JsonSchema, data: unknown, path: FieldPath, problems: SchemaProblem[]): number | undefined {
  const variants = union.anyOf ?? [];
  const field = formatFieldPath(path);
  const label = labelOf(path);
  const tag = union['x-discriminator'];
  if (typeof tag === 'string') {
    const tags = variants.map((v) => String(v.properties?.[tag]?.const));
    if (!isPlainObject(data)) {
      problems.push({ path, at: 'value', field, message: `${field} must be a map with "${tag}: <${tags.join(' | ')}>"`, hint: `${tag}: ${tags[0]}` });
      return undefined;
    }
    const value = data[tag];
    if (value === undefined) {
      problems.push({ path, at: 'value', field: `${field}.${tag}`, message: `${field} has no "${tag}" (one of ${tags.join(', ')})`, hint: `${tag}: ${tags[0]}` });
      return undefined;
    }
    const index = tags.indexOf(String(value));
    if (index === -1 || typeof value !== 'string') {
      const suggestion = didYouMean(String(value), tags);
      problems.push({
        path: [...path, tag],
        at: 'value',
        field: `${field}.${tag}`,
        message: `unknown ${label} ${tag} "${String(value)}"${suggestion ? ` — did you mean "${suggestion}"?` : ` (known: ${tags.join(', ')})`}`,
        hint: `${tag}: ${suggestion ?? tags.join(' | ')}`,
      });
      return undefined;
    }
    return index;
  }
  if (union['x-one-key'] === true) {
    const keys = variants.map((v) => v.required?.[0] ?? '');
    if (!isPlainObject(data)) {
      problems.push({ path, at: 'value', field, message: `${field} must be a map with one of ${keys.join(', ')}`, hint: `${keys[0]}: …` });
      return undefined;
    }
    const present = Object.keys(data).filter((k) => keys.includes(k));
    if (present.length === 1) return keys.indexOf(present[0] ?? '');
    if (present.length > 1) {
      problems.push({
        path,
        at: 'value',
        field,
        message: `${field} has ${present.join(' and ')}; a ${label} has exactly one of ${keys.join(', ')}`,
        hint: `one ${label} each: - ${present[0]}: …  - ${present[1]}: …`,
      });
      return undefined;
    }
    const first = Object.keys(data)[0];
    if (first === undefined) {
      problems.push({ path, at: 'value', field, message: `${field} is empty; a ${label} has one of ${keys.join(', ')}`, hint: `${keys[0]}: …` });
      return undefined;
    }
    const suggestion = didYouMean(first, keys);
    problems.push({
      path: [...path, first],
      at: 'key',
      field: `${field}.${first}`,
      message: `unknown ${label} "${first}"${suggestion ? ` — did you mean "${suggestion}"?` : ` (known: ${keys.join(', ')})`}`,
      hint: suggestion ? `${suggestion}: …` : keys.join(' | '),
    });
    return undefined;
  }
  problems.push({ path, at: 'value', field, message: `${field} does not match any of the allowed forms` });
  return undefined;
}

function describe(e: ErrorObject, root: JsonSchema, value: unknown, isLiteral: (path: FieldPath) => boolean): SchemaProblem | undefined {
  const path = decodePointer(e.instancePath, value);
  const field = formatFieldPath(path);
  const schema = (e.parentSchema ?? {}) as JsonSchema;
  const shown = (data: unknown) => (isLiteral(path) ? ` (got ${preview(data)})` : ' (the value comes from the environment)');
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required': {
      const missing = String(params.missingProperty);
      const propSchema = schema.properties?.[missing];
      return {
        path,
        at: 'value',
        field: formatFieldPath([...path, missing]),
        message: `missing required field "${missing}"${path.length ? ` in ${field}` : ''}`,
        hint: hintFor(missing, propSchema),
      };
    }
    case 'additionalProperties': {
      const extra = String(params.additionalProperty);
      const allowed = Object.keys(schema.properties ?? {});
      if (allowed.length === 0 && schema.patternProperties) {
        const expected = typeof schema['x-key-expected'] === 'string' ? schema['x-key-expected'] : `a key matching ${Object.keys(schema.patternProperties).join(' or ')}`;
        return {
          path: [...path, extra],
          at: 'key',
          field: formatFieldPath([...path, extra]),
          message: `"${extra}" in ${field} is not a valid name: must be ${expected}`,
          hint: hintFor(lastKey(path), schema),
        };
      }
      const suggestion = didYouMean(extra, allowed);
      return {
        path: [...path, extra],
        at: 'key',
        field: formatFieldPath([...path, extra]),
        message: `unknown field "${extra}"${path.length ? ` in ${field}` : ''}${suggestion ? ` — did you mean "${suggestion}"?` : ''}`,
        hint: suggestion ? `${suggestion}:` : allowed.length ? `one of ${allowed.join(', ')}` : 'remove it',
      };
    }
    case 'type': {
      const expected = String(params.type);
      // `initial: 500` is a number where a duration is expected: say "a duration", not "text".
      const words = expected === 'string' && typeof schema['x-expected'] === 'string' ? schema['x-expected'] : article(expected);
      const subject = path.length === 0 ? 'the file' : field;
      const message = e.data === null ? `${subject} has no value (expected ${words})` : `${subject} must be ${words}${shown(e.data)}`;
      return { path, at: 'value', field, message, hint: hintFor(lastKey(path), schema) };
    }
    case 'const': {
      const discriminated = discriminatorOf(root, e.schemaPath);
      const expected = String(params.allowedValue);
      if (discriminated && typeof e.data === 'string') {
        const parentPath = path.slice(0, -1);
        const suggestion = didYouMean(e.data, [expected]);
        return {
          path,
          at: 'value',
          field,
          message: `unknown ${labelOf(parentPath)} ${lastKey(path)} "${e.data}"${suggestion ? ` — did you mean "${suggestion}"?` : ` (known: ${expected})`}`,
          hint: `${lastKey(path)}: ${expected}`,
        };
      }
      return { path, at: 'value', field, message: `${field} must be "${expected}"${shown(e.data)}`, hint: `${lastKey(path)}: ${expected}` };
    }
    case 'enum': {
      const allowed = ((params.allowedValues as unknown[]) ?? []).map(String);
      const suggestion = typeof e.data === 'string' ? didYouMean(e.data, allowed) : undefined;
      return {
        path,
        at: 'value',
        field,
        message: `${field} must be one of ${allowed.join(', ')}${shown(e.data)}${suggestion ? ` — did you mean "${suggestion}"?` : ''}`,
        hint: `${lastKey(path)}: ${suggestion ?? allowed.join(' | ')}`,
      };
    }
    case 'pattern': {
      const expected = typeof schema['x-expected'] === 'string' ? schema['x-expected'] : `text matching ${String(params.pattern)}`;
      return { path, at: 'value', field, message: `${field} must be ${expected}${shown(e.data)}`, hint: hintFor(lastKey(path), schema) };
    }
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum': {
      const sign = { minimum: '≥', maximum: '≤', exclusiveMinimum: '>', exclusiveMaximum: '<' }[e.keyword];
      return { path, at: 'value', field, message: `${field} must be ${sign} ${String(params.limit)}${shown(e.data)}`, hint: hintFor(lastKey(path), schema) };
    }
    case 'minItems': {
      const n = Number(params.limit);
      return { path, at: 'value', field, message: `${field} needs at least ${n} ${n === 1 ? 'entry' : 'entries'}`, hint: hintFor(lastKey(path), schema) };
    }
    case 'minLength':
      return { path, at: 'value', field, message: `${field} must not be empty`, hint: hintFor(lastKey(path), schema) };
    default:
      return { path, at: 'value', field, message: `${field} ${e.message ?? 'is invalid'}`, hint: hintFor(lastKey(path), schema) };
  }
}

/** `/spec/destinations/0/auth` → `['spec', 'destinations', 0, 'auth']`, indexes as numbers. */
function decodePointer(pointer: string, root: unknown): FieldPath {
  if (pointer === '') return [];
  const out: Array<string | number> = [];
  let node: unknown = root;
  for (const raw of pointer.slice(1).split('/')) {
    const segment = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(node) && /^[0-9]+$/.test(segment)) {
      out.push(Number(segment));
      node = node[Number(segment)];
    } else {
      out.push(segment);
      node = isPlainObject(node) ? node[segment] : undefined;
    }
  }
  return out;
}

/** Whether a `const` error is on a discriminator property (`…/properties/type/const`). */
function discriminatorOf(root: JsonSchema, schemaPath: string): boolean {
  const m = /^#(.*)\/properties\/([^/]+)\/const$/.exec(schemaPath);
  if (!m) return false;
  const owner = schemaAt(root, m[1] ?? '');
  return owner !== undefined && owner['x-discriminator'] === m[2];
}

function schemaAt(root: JsonSchema, pointer: string): JsonSchema | undefined {
  let node: unknown = root;
  for (const raw of pointer.split('/').filter(Boolean)) {
    const segment = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    node = Array.isArray(node) ? node[Number(segment)] : isPlainObject(node) ? node[segment] : undefined;
  }
  return isPlainObject(node) ? (node as JsonSchema) : undefined;
}

/** `source`, `auth`, `destinations[0]` → source, auth, destination; `steps[1]` → step. */
function labelOf(path: FieldPath): string {
  const last = path[path.length - 1];
  if (typeof last === 'number') {
    const parent = path[path.length - 2];
    return typeof parent === 'string' ? parent.replace(/s$/, '') : 'item';
  }
  return last ?? 'document';
}

function lastKey(path: FieldPath): string {
  for (let i = path.length - 1; i >= 0; i--) {
    const segment = path[i];
    if (typeof segment === 'string') return segment;
  }
  return 'value';
}

function hintFor(key: string, schema: JsonSchema | undefined): string | undefined {
  if (!schema) return undefined;
  const example = schema.examples?.[0] ?? schema.default ?? schema.const ?? schema.enum?.[0];
  if (example === undefined) return undefined;
  return `${key}: ${inlineYaml(example)}`;
}

/** A one-line YAML rendering of an example, for hints. */
export function inlineYaml(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(inlineYaml).join(', ')}]`;
  if (isPlainObject(value)) {
    if (Object.keys(value).length === 0) return '{}';
    return `{ ${Object.entries(value)
      .map(([k, v]) => `${k}: ${typeof v === 'string' && v.includes('${') ? JSON.stringify(v) : inlineYaml(v)}`)
      .join(', ')} }`;
  }
  return String(value);
}

function preview(data: unknown): string {
  if (typeof data === 'string') return JSON.stringify(data.length > 40 ? `${data.slice(0, 37)}...` : data);
  if (Array.isArray(data)) return 'a list';
  if (isPlainObject(data)) return 'a map';
  return String(data);
}

function article(type: string): string {
  const words: Record<string, string> = {
    object: 'a map',
    array: 'a list',
    string: 'text',
    integer: 'a whole number',
    number: 'a number',
    boolean: 'true or false',
  };
  return words[type] ?? type;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function dedupe(problems: SchemaProblem[]): SchemaProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${formatFieldPath(p.path)}|${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
