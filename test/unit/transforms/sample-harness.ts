// SPDX-License-Identifier: Apache-2.0
/**
 * A tiny, engine-free harness for the sample channels' transforms: parses a sample with the
 * engine's HL7 model, applies the channel file's `enrich` steps from `config/lookups/`, runs the
 * inbound transform and each destination's transform, and checks every payload against its
 * contract with Ajv. It mirrors the pipeline's semantics (engine/channel-runtime/pipeline.ts) —
 * a business exception anywhere stops the whole message — but also reports which step raised it,
 * which the unit tests assert on.
 *
 * Used by the specs in this folder and by `update-golden.ts`, which writes samples/expected/.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { decodeHl7, Hl7Message } from '../../../engine/message-formats/hl7v2/index.ts';
import {
  BusinessException,
  createTransformContext,
  isFiltered,
  isTransform,
  type LookupValue,
  type Transform,
} from '../../../engine/transform-sdk/index.ts';
import { contracts } from '../../../transforms/contracts/index.ts';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** Same fixed receive time as `osprey test`, so nothing depends on when the test runs. */
export const RECEIVED_AT = '2026-01-01T00:00:00.000Z';

export type Lookup = (table: string, key: string) => LookupValue | undefined;

/** A context for calling an outbound transform directly on a canonical event. */
export function eventContext(lookup: Lookup, enrichment: Record<string, LookupValue | undefined> = {}): ReturnType<typeof createTransformContext> {
  return createTransformContext({ channel: 'unit-test', messageId: 'test-message', receivedAt: RECEIVED_AT, enrichment, lookup });
}

/** Reads every `config/lookups/*.yaml` table (key → string or flat record of strings). */
export function loadLookups(dir = join(ROOT, 'config/lookups')): Map<string, Map<string, LookupValue>> {
  const tables = new Map<string, Map<string, LookupValue>>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml'))) {
    const data = parseYaml(readFileSync(join(dir, file), 'utf8')) as Record<string, unknown>;
    const rows = new Map<string, LookupValue>();
    for (const [key, value] of Object.entries(data)) {
      if (typeof value === 'string') rows.set(key, value);
      else rows.set(key, Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, String(v)])));
    }
    tables.set(file.replace(/\.yaml$/, ''), rows);
  }
  return tables;
}

export function lookupFrom(tables: Map<string, Map<string, LookupValue>>): Lookup {
  return (table, key) => tables.get(table)?.get(key);
}

type AnyTransform = Transform<unknown, unknown>;

export interface ChannelUnderTest {
  name: string;
  enrich: Array<{ lookup: string; from: string; as: string }>;
  inbound: AnyTransform;
  destinations: Array<{ name: string; transform: AnyTransform; contract: string }>;
}

async function importTransform(path: string): Promise<AnyTransform> {
  const mod = (await import(pathToFileURL(resolve(ROOT, path)).href)) as { default?: unknown };
  if (!isTransform(mod.default)) throw new Error(`${path} does not default-export a transform`);
  return mod.default;
}

/** Loads a channel file's steps and destinations (the parts the transforms depend on). */
export async function loadChannel(name: string): Promise<ChannelUnderTest> {
  const doc = parseYaml(readFileSync(join(ROOT, 'channels', `${name}.channel.yaml`), 'utf8')) as {
    spec: {
      steps: Array<{ enrich?: { lookup: string; from: string; as: string }; transform?: string }>;
      destinations: Array<{ name: string; transform: string; contract: string }>;
    };
  };
  const inboundPath = doc.spec.steps.find((s) => s.transform !== undefined)?.transform;
  if (inboundPath === undefined) throw new Error(`${name}: no transform step`);
  return {
    name,
    enrich: doc.spec.steps.flatMap((s) => (s.enrich === undefined ? [] : [s.enrich])),
    inbound: await importTransform(inboundPath),
    destinations: await Promise.all(
      doc.spec.destinations.map(async (d) => ({ name: d.name, transform: await importTransform(d.transform), contract: d.contract })),
    ),
  };
}

export type StepOutcome =
  | { state: 'OK'; outputs: unknown[] }
  | { state: 'FILTERED'; reason: string }
  | { state: 'BUSINESS_EXCEPTION'; category: string; detail: string; tags: Record<string, string | undefined> };

export interface SampleRun {
  /** The inbound transform's outcome (OK: the canonical event(s)). */
  canonical: StepOutcome;
  /** Each destination's transform outcome; absent when the inbound step did not produce events. */
  destinations: Record<string, StepOutcome>;
  /** The message state as the engine would record it. */
  state: 'QUEUED' | 'FILTERED' | 'BUSINESS_EXCEPTION';
  /** The category when state is BUSINESS_EXCEPTION (the first one raised, as in the engine). */
  category?: string;
  /** What each destination receives (engine semantics: nothing at all on a business exception). */
  delivered: Record<string, unknown[]>;
  /** Contract violations, `destination: problem`; a correct transform has none. */
  contractProblems: string[];
}

function run(transform: AnyTransform, inputs: unknown[], ctx: ReturnType<typeof createTransformContext>): StepOutcome {
  const outputs: unknown[] = [];
  const reasons: string[] = [];
  try {
    for (const input of inputs) {
      const result = transform.map(input, ctx);
      if (isFiltered(result)) reasons.push(result.reason);
      else if (Array.isArray(result)) outputs.push(...(result as unknown[]));
      else outputs.push(result);
    }
  } catch (err) {
    if (err instanceof BusinessException) return { state: 'BUSINESS_EXCEPTION', category: err.category, detail: err.message, tags: { ...err.tags } };
    throw err;
  }
  if (outputs.length === 0 && reasons.length > 0) return { state: 'FILTERED', reason: reasons.join('; ') };
  return { state: 'OK', outputs };
}

const ajv = new Ajv({ allErrors: true, strict: true });
const validators = new Map<string, ValidateFunction>();

/** Problems of a payload against a named contract (empty when valid). */
export function checkContract(contract: string, payload: unknown): string[] {
  let validate = validators.get(contract);
  if (validate === undefined) {
    const schema = contracts[contract];
    if (schema === undefined) return [`unknown contract ${contract}`];
    validate = ajv.compile(schema);
    validators.set(contract, validate);
  }
  if (validate(payload)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`);
}

export function parseSample(samplePath: string): Hl7Message {
  const { text } = decodeHl7(readFileSync(join(ROOT, samplePath)), 'UTF-8');
  return Hl7Message.parse(text);
}

/** The text of a sample (CR-separated segments), for tests that derive a variant from it. */
export function sampleText(samplePath: string): string {
  return decodeHl7(readFileSync(join(ROOT, samplePath)), 'UTF-8').text;
}

/** Runs one sample through a channel's enrich steps and transforms. */
export function runSample(channel: ChannelUnderTest, samplePath: string, lookup: Lookup): SampleRun {
  return runMessage(channel, parseSample(samplePath), lookup, { messageId: `test-${samplePath}` });
}

export interface RunOptions {
  /** Engine message id (defaults to a fixed one); ids in outputs must not depend on it. */
  messageId?: string;
  /** Overrides the channel name in the context; ids in outputs must not depend on it either. */
  channelName?: string;
  receivedAt?: string;
}

/** Runs one parsed message through a channel's enrich steps and transforms. */
export function runMessage(channel: ChannelUnderTest, msg: Hl7Message, lookup: Lookup, options: RunOptions = {}): SampleRun {
  const enrichment: Record<string, LookupValue | undefined> = {};
  for (const e of channel.enrich) enrichment[e.as] = lookup(e.lookup, msg.get(e.from) ?? '');
  const ctx = createTransformContext({
    channel: options.channelName ?? channel.name,
    messageId: options.messageId ?? 'test-message',
    receivedAt: options.receivedAt ?? RECEIVED_AT,
    enrichment,
    lookup,
  });

  const canonical = run(channel.inbound, [msg], ctx);
  const destinations: Record<string, StepOutcome> = {};
  const delivered: Record<string, unknown[]> = Object.fromEntries(channel.destinations.map((d) => [d.name, [] as unknown[]]));
  const contractProblems: string[] = [];
  if (canonical.state !== 'OK') {
    return {
      canonical,
      destinations,
      state: canonical.state,
      ...(canonical.state === 'BUSINESS_EXCEPTION' ? { category: canonical.category } : {}),
      delivered,
      contractProblems,
    };
  }
  let firstException: string | undefined;
  for (const d of channel.destinations) {
    const outcome = run(d.transform, canonical.outputs, ctx);
    destinations[d.name] = outcome;
    if (outcome.state === 'BUSINESS_EXCEPTION') firstException ??= outcome.category;
    if (outcome.state === 'OK') {
      for (const p of outcome.outputs) contractProblems.push(...checkContract(d.contract, p).map((x) => `${d.name}: ${x}`));
    }
  }
  if (firstException !== undefined) return { canonical, destinations, state: 'BUSINESS_EXCEPTION', category: firstException, delivered, contractProblems };
  for (const d of channel.destinations) {
    const o = destinations[d.name];
    if (o?.state === 'OK') delivered[d.name] = o.outputs;
  }
  const any = Object.values(delivered).some((list) => list.length > 0);
  return { canonical, destinations, state: any ? 'QUEUED' : 'FILTERED', delivered, contractProblems };
}

/** `samples/expected/<channel>/<stem>.<destination>.json` for a sample path. */
export function expectedPath(channel: string, samplePath: string, destination: string): string {
  const stem = samplePath.split('/').pop()!.replace(/\.hl7$/, '');
  return `samples/expected/${channel}/${stem}.${destination}.json`;
}

/** The sample files of a folder under samples/, as project-relative paths. */
export function samplesIn(folder: string): string[] {
  return readdirSync(join(ROOT, folder))
    .filter((f) => f.endsWith('.hl7'))
    .sort()
    .map((f) => `${folder}/${f}`);
}

/** Stable JSON text of the golden files (2-space indent, trailing newline), as `osprey test` compares. */
export function goldenText(payloads: unknown[]): string {
  return `${JSON.stringify(payloads, null, 2)}\n`;
}

export const SAMPLE_CHANNELS = [
  { channel: 'adt-to-rcm-erp', folder: 'samples/hl7v2/adt' },
  { channel: 'siu-to-workforce-erp', folder: 'samples/hl7v2/siu' },
] as const;

/**
 * A copy of a message's text with one field replaced (first occurrence of the segment), for tests
 * that derive a variant from a sample. HL7 numbering: MSH-1 is the field separator itself.
 */
export function withField(text: string, segment: string, field: number, value: string): string {
  const segments = text.split('\r');
  const i = segments.findIndex((s) => s.startsWith(`${segment}|`));
  if (i < 0) throw new Error(`no ${segment} segment`);
  const pieces = segments[i]!.split('|');
  const index = segment === 'MSH' ? field - 1 : field;
  while (pieces.length <= index) pieces.push('');
  pieces[index] = value;
  segments[i] = pieces.join('|');
  return segments.join('\r');
}

/** A copy of a message's text without the segments of the given id. */
export function withoutSegments(text: string, segment: string): string {
  return text
    .split('\r')
    .filter((s) => !s.startsWith(`${segment}|`))
    .join('\r');
}
