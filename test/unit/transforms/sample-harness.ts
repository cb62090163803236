// SPDX-License-Identifier: Apache-2.0
/**
 * Runs the sample channels' messages through the ENGINE's own pipeline, loaded as `osprey test`
 * and `npm start` load it (`loadProject`: the engine configuration, the channel loader with its
 * validation and transform loading, the lookup tables, the contract registry), so that nothing
 * here can diverge from what the engine does. On top of the engine's outcome it reports the
 * inbound step's own outcome (the engine's pipeline run with the channel's steps and no
 * destinations), which the inbound transforms' unit tests assert on.
 *
 * Used by the specs in this folder and by `update-golden.ts`, which writes samples/expected/.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHANNEL_TEST_RECEIVED_AT } from '../../../engine/channel-runtime/channel-tests.ts';
import type { ChannelRuntime } from '../../../engine/channel-runtime/channel-runtime-view.ts';
import { loadProject, type LoadedProject } from '../../../engine/channel-runtime/load-project.ts';
import type { LookupTables } from '../../../engine/channel-runtime/lookup-tables.ts';
import { runPipeline, type PipelineResources } from '../../../engine/channel-runtime/pipeline.ts';
import { channelEnvironment } from '../../../engine/engine-config/http-exposure.ts';
import { loadEngineConfig } from '../../../engine/engine-config/load-engine-config.ts';
import { decodeHl7, Hl7Message } from '../../../engine/message-formats/hl7v2/index.ts';
import { messageFormat } from '../../../engine/message-formats/index.ts';
import type { FormatMessage } from '../../../engine/message-formats/message-format.ts';
import { sourceDefinition } from '../../../engine/channel-runtime/adapter-registry.ts';
import type { ProcessingOutcome } from '../../../engine/message-store/message-store.ts';
import { createTransformContext, type LookupValue } from '../../../engine/transform-sdk/index.ts';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** Same fixed receive time as `osprey test`, so nothing depends on when the test runs. */
export const RECEIVED_AT = new Date(CHANNEL_TEST_RECEIVED_AT).toISOString();

/** The project as the engine loads it (config/default.yaml, channels/, config/lookups/, contracts). */
const config = loadEngineConfig({ file: join(ROOT, 'config', 'default.yaml'), env: process.env });
export const project: LoadedProject = await loadProject({
  config,
  projectRoot: ROOT,
  env: channelEnvironment(config, process.env),
});
const refused = project.issues.filter((i) => i.severity === 'error');
if (refused.length > 0) throw new Error(`the engine refuses the sample project: ${refused.map((i) => `${i.file}:${i.line} ${i.code} ${i.message}`).join('; ')}`);

export type Lookup = (table: string, key: string) => LookupValue | undefined;

/** A context for calling an outbound transform directly on a canonical event. */
export function eventContext(lookup: Lookup, enrichment: Record<string, LookupValue | undefined> = {}): ReturnType<typeof createTransformContext> {
  return createTransformContext({ channel: 'unit-test', messageId: 'test-message', receivedAt: RECEIVED_AT, enrichment, lookup });
}

/** The engine's lookup tables of `config/lookups/`. */
export function loadLookups(): LookupTables {
  return project.lookups;
}

export function lookupFrom(tables: LookupTables): Lookup {
  return (table, key) => tables.get(table, key);
}

/** A sample channel as the engine loaded it, with its pipeline resources. */
export interface ChannelUnderTest {
  name: string;
  spec: ChannelRuntime;
  resources: PipelineResources;
  destinations: ChannelRuntime['destinations'];
}

/** The engine's runtime view of a channel of `channels/`. */
export async function loadChannel(name: string): Promise<ChannelUnderTest> {
  const spec = project.channels.find((c) => c.name === name);
  if (!spec) throw new Error(`the engine did not load channel ${name}`);
  return { name, spec, resources: project.resourcesFor(spec), destinations: spec.destinations };
}

/** Problems of a payload against a named contract, from the engine's contract registry (empty when valid). */
export function checkContract(contract: string, payload: unknown): string[] {
  return project.contracts.check(contract, payload);
}

export type StepOutcome =
  | { state: 'OK'; outputs: unknown[] }
  | { state: 'FILTERED'; reason: string }
  | { state: 'BUSINESS_EXCEPTION'; category: string; detail: string; tags: Record<string, string | undefined> }
  | { state: 'ERROR'; code: string; detail: string };

export interface SampleRun {
  /** The inbound steps' outcome (OK: the canonical event(s)), from the engine's pipeline without destinations. */
  canonical: StepOutcome;
  /** The message state as `osprey test` reports it (QUEUED without deliveries is FILTERED). */
  state: 'QUEUED' | 'FILTERED' | 'BUSINESS_EXCEPTION' | 'ERROR';
  /** The category when state is BUSINESS_EXCEPTION. */
  category?: string;
  /** The error when state is ERROR (a contract violation is OSPREY_ERR_TRANSFORM_OUTPUT_INVALID). */
  error?: { code: string; detail: string };
  /** What each destination receives (nothing at all unless QUEUED). */
  delivered: Record<string, unknown[]>;
  /** The engine's contract refusal, if any; a correct transform has none. */
  contractProblems: string[];
  /** The engine's outcome, as the store would record it. */
  outcome: ProcessingOutcome;
}

export function parseSample(samplePath: string): Hl7Message {
  return Hl7Message.parse(sampleText(samplePath));
}

/** The text of a sample (CR-separated segments), for tests that derive a variant from it. */
export function sampleText(samplePath: string, charset = 'UTF-8'): string {
  return decodeHl7(readFileSync(join(ROOT, samplePath)), charset).text;
}

/** Runs one sample through the channel, decoded with the channel's charset as `osprey test` does. */
export function runSample(channel: ChannelUnderTest, samplePath: string, lookup?: Lookup): SampleRun {
  const text = sampleText(samplePath, channel.spec.source.charset);
  return runMessage(channel, Hl7Message.parse(text), lookup, { messageId: `test-${samplePath}` });
}

export interface RunOptions {
  /** Engine message id (defaults to a fixed one); ids in outputs must not depend on it. */
  messageId?: string;
  /** Overrides the channel name in the context; ids in outputs must not depend on it either. */
  channelName?: string;
  receivedAt?: string;
}

/**
 * Runs one parsed message through the engine's pipeline for the channel. `lookup` replaces the
 * lookup tables (to test a missing row); by default the engine's tables are used.
 */
export function runMessage(channel: ChannelUnderTest, msg: FormatMessage, lookup?: Lookup, options: RunOptions = {}): SampleRun {
  const resources: PipelineResources = lookup ? { ...channel.resources, lookups: { get: lookup } } : channel.resources;
  const pipelineChannel = { ...channel.spec, name: options.channelName ?? channel.name };
  const input = {
    messageId: options.messageId ?? 'test-message',
    receivedAt: options.receivedAt === undefined ? CHANNEL_TEST_RECEIVED_AT : Date.parse(options.receivedAt),
    message: msg,
  };
  const outcome = runPipeline(pipelineChannel, resources, input);
  const inbound = runPipeline({ ...pipelineChannel, destinations: [] }, resources, input);

  const delivered: Record<string, unknown[]> = Object.fromEntries(channel.destinations.map((d) => [d.name, [] as unknown[]]));
  if (outcome.state === 'QUEUED') for (const d of outcome.deliveries) delivered[d.destination]!.push(d.payload);
  const state = outcome.state === 'QUEUED' && outcome.deliveries.length === 0 ? 'FILTERED' : outcome.state;
  return {
    canonical: stepOutcome(inbound),
    state,
    ...(outcome.state === 'BUSINESS_EXCEPTION' ? { category: outcome.exception.category } : {}),
    ...(outcome.state === 'ERROR' ? { error: { ...outcome.error } } : {}),
    delivered,
    contractProblems: outcome.state === 'ERROR' && outcome.error.code === 'OSPREY_ERR_TRANSFORM_OUTPUT_INVALID' ? [outcome.error.detail] : [],
    outcome,
  };
}

/** The outcome of the steps alone: the pipeline keeps one canonical event as itself, several as a list. */
function stepOutcome(outcome: ProcessingOutcome): StepOutcome {
  switch (outcome.state) {
    case 'QUEUED':
      return { state: 'OK', outputs: Array.isArray(outcome.canonical) ? outcome.canonical : [outcome.canonical] };
    case 'FILTERED':
      return { state: 'FILTERED', reason: outcome.reason };
    case 'BUSINESS_EXCEPTION':
      return { state: 'BUSINESS_EXCEPTION', category: outcome.exception.category, detail: outcome.exception.detail, tags: { ...outcome.exception.tags } };
    case 'ERROR':
      return { state: 'ERROR', code: outcome.error.code, detail: outcome.error.detail };
    default:
      return outcome satisfies never;
  }
}

/** One record of a file sample: refused by the source (its error), or run through the pipeline. */
export type RecordRun = { index: number; sourceError: { code: string; detail: string } } | ({ index: number; sourceError?: undefined } & SampleRun);

/** A file sample as the channel's file source reads it (checked, then split), each record run as `osprey test` runs it. */
export async function runSampleFile(
  channel: ChannelUnderTest,
  samplePath: string,
  options: { lookup?: Lookup; run?: RunOptions } = {},
): Promise<{ refused?: { code: string; detail: string }; records: RecordRun[] }> {
  const readSample = sourceDefinition(channel.spec.source.type).readSample;
  if (!readSample) throw new Error(`channel ${channel.name}'s source does not read files`);
  const sample = await readSample(join(ROOT, samplePath), channel.spec.source.config);
  if (!sample.ok) return { refused: { ...sample.error }, records: [] };
  const format = messageFormat(channel.spec.source.format);
  return {
    records: sample.records.map((r, index): RecordRun => {
      if (r.error) return { index, sourceError: { ...r.error } };
      return { index, ...runMessage(channel, format.parse(r.text), options.lookup, { messageId: `test-${samplePath}#${index}`, ...options.run }) };
    }),
  };
}

/** What each destination receives from all the records of a file, in record order. */
export function deliveredByFile(channel: ChannelUnderTest, records: readonly RecordRun[]): Record<string, unknown[]> {
  return Object.fromEntries(channel.destinations.map((d) => [d.name, records.flatMap((r) => (r.sourceError ? [] : (r.delivered[d.name] ?? [])))]));
}

/** `samples/expected/<channel>/<stem>.<destination>.json` for a sample path. */
export function expectedPath(channel: string, samplePath: string, destination: string): string {
  const stem = samplePath.split('/').pop()!.replace(/\.(hl7|835|x12|csv)$/, '');
  return `samples/expected/${channel}/${stem}.${destination}.json`;
}

/** The sample files of a folder under samples/, as project-relative paths. */
export function samplesIn(folder: string, extensions: readonly string[] = ['.hl7']): string[] {
  return readdirSync(join(ROOT, folder))
    .filter((f) => extensions.some((e) => f.endsWith(e)))
    .sort()
    .map((f) => `${folder}/${f}`);
}

/** Stable JSON text of the golden files (2-space indent, trailing newline), as `osprey test` compares. */
export function goldenText(payloads: unknown[]): string {
  return `${JSON.stringify(payloads, null, 2)}\n`;
}

/** The file channels' samples: each file is one case, read the way the SFTP source reads it. */
export const FILE_SAMPLE_CHANNELS = [
  { channel: 'sftp-835-to-erp', folder: 'samples/x12/835', extensions: ['.835', '.x12'] },
  { channel: 'sftp-charges-to-erp', folder: 'samples/batch', extensions: ['.csv'] },
] as const;

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
