// SPDX-License-Identifier: Apache-2.0
/**
 * Declarative channel tests (`channels/<name>.channel.test.yaml`): each case names a sample message
 * and what each destination should receive (a JSON file of the payloads, `[]` when nothing), or the
 * state it should end in (FILTERED, BUSINESS_EXCEPTION with a category, ERROR with a code). The
 * runner uses the same `runPipeline` as the engine, with a fixed message id and receive time so that
 * outputs are reproducible.
 *
 * A channel whose source reads whole files (its `SourceDefinition` has `readSample`) takes a whole
 * file as a case's input: the source checks and splits it as it would a dropped file, every record
 * runs through the pipeline, and each destination's payloads of all records, in record order, are
 * compared with the expected array. `expectRecords` then names each record's state, and
 * `expectFileError` a file the source refuses whole.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createTwoFilesPatch } from 'diff';
import { parse as parseYaml } from 'yaml';
import type { SampleFile } from '../adapter-sdk/source-definition.ts';
import { isOspreyError } from '../errors/error-codes.ts';
import { decodeStored, messageFormat } from '../message-formats/index.ts';
import type { ProcessingOutcome } from '../message-store/message-store.ts';
import { sourceDefinition } from './adapter-registry.ts';
import type { ChannelRuntime } from './channel-loader.ts';
import { runPipeline, type PipelineResources } from './pipeline.ts';

export interface ChannelTestCase {
  name: string;
  /** Sample file (relative to the project root). */
  input: string;
  /** Destination name → JSON file of the payloads it should receive (an array). */
  expect?: Record<string, string>;
  /** The state the message should end in (default QUEUED when `expect` is given). */
  expectState?: ProcessingOutcome['state'];
  /** For BUSINESS_EXCEPTION: the category; for ERROR: the error code. */
  expectCategory?: string;
  expectCode?: string;
  /**
   * File sources: each record's final state, in record order, as `STATE` or `STATE <category or
   * code>` (`QUEUED`, `BUSINESS_EXCEPTION missing-payer`, `ERROR OSPREY_ERR_CSV_ROW_INVALID`).
   * Absent: every record must end in `expectState` (QUEUED by default).
   */
  expectRecords?: string[];
  /** File sources: the file is refused whole (quarantined) with this code; no record is processed. */
  expectFileError?: string;
}

export interface ChannelTestResult {
  channel: string;
  name: string;
  passed: boolean;
  /** Human-readable reasons and diffs on failure. */
  problems: string[];
}

/** The fixed receive time of channel tests, so transforms that use `ctx.receivedAt` are reproducible. */
export const CHANNEL_TEST_RECEIVED_AT = Date.parse('2026-01-01T00:00:00.000Z');

export function readChannelTests(file: string): ChannelTestCase[] {
  const data = parseYaml(readFileSync(file, 'utf8')) as unknown;
  const cases = Array.isArray(data) ? data : (data as { cases?: unknown })?.cases;
  if (!Array.isArray(cases)) throw new Error(`${file}: expected a list of cases (or "cases:")`);
  return cases as ChannelTestCase[];
}

/** The state `osprey test` reports: QUEUED without any delivery is FILTERED. */
function reportedState(outcome: ProcessingOutcome): ProcessingOutcome['state'] {
  return outcome.state === 'QUEUED' && outcome.deliveries.length === 0 ? 'FILTERED' : outcome.state;
}

/** What is wrong with an outcome against an expected state and its category (exceptions) or code (errors). */
function stateProblems(outcome: ProcessingOutcome, expected: { state: string; category?: string | undefined; code?: string | undefined }, what: string): string[] {
  const problems: string[] = [];
  const actualState = reportedState(outcome);
  if (actualState !== expected.state) {
    const why =
      outcome.state === 'ERROR' ? ` (${outcome.error.code}: ${outcome.error.detail})`
      : outcome.state === 'BUSINESS_EXCEPTION' ? ` (${outcome.exception.category}: ${outcome.exception.detail})`
      : outcome.state === 'FILTERED' ? ` (${outcome.reason})`
      : '';
    problems.push(`${what}expected state ${expected.state}, got ${actualState}${why}`);
  }
  if (expected.category && !(outcome.state === 'BUSINESS_EXCEPTION' && outcome.exception.category === expected.category)) {
    problems.push(`${what}expected business exception category ${expected.category}`);
  }
  if (expected.code && !(outcome.state === 'ERROR' && outcome.error.code === expected.code)) {
    problems.push(`${what}expected error code ${expected.code}`);
  }
  return problems;
}

/** Compares each destination's payloads (all outcomes, in order) with the case's expected files. */
function outputProblems(spec: ChannelRuntime, projectRoot: string, test: ChannelTestCase, outcomes: ProcessingOutcome[]): string[] {
  const problems: string[] = [];
  for (const [destination, file] of Object.entries(test.expect ?? {})) {
    if (!spec.destinations.some((d) => d.name === destination)) {
      problems.push(`expect names destination "${destination}", which the channel does not have`);
      continue;
    }
    const expectedFile = resolve(projectRoot, file);
    if (!existsSync(expectedFile)) {
      problems.push(`expected output ${file} does not exist`);
      continue;
    }
    const actual = outcomes.flatMap((o) => (o.state === 'QUEUED' ? o.deliveries.filter((d) => d.destination === destination).map((d) => d.payload) : []));
    const expectedText = `${JSON.stringify(JSON.parse(readFileSync(expectedFile, 'utf8')), null, 2)}\n`;
    const actualText = `${JSON.stringify(actual, null, 2)}\n`;
    if (expectedText !== actualText) {
      problems.push(`${destination} output differs from ${file}:\n${createTwoFilesPatch(file, 'actual', expectedText, actualText, '', '', { context: 3 })}`);
    }
  }
  return problems;
}

/**
 * Runs one case. Async because a file source reads its sample as a stream; a case of a
 * message source (MLLP) reads its one message as before.
 */
export async function runChannelTest(spec: ChannelRuntime, resources: PipelineResources, projectRoot: string, test: ChannelTestCase): Promise<ChannelTestResult> {
  const result = { channel: spec.name, name: test.name };
  const inputFile = resolve(projectRoot, test.input);
  if (!existsSync(inputFile)) return { ...result, passed: false, problems: [`input ${test.input} does not exist`] };
  const readSample = sourceDefinition(spec.source.type).readSample;
  const problems = readSample ? await runFileCase(spec, resources, projectRoot, test, await readSample(inputFile, spec.source.config)) : runMessageCase(spec, resources, projectRoot, test, inputFile);
  return { ...result, passed: problems.length === 0, problems };
}

function runMessageCase(spec: ChannelRuntime, resources: PipelineResources, projectRoot: string, test: ChannelTestCase, inputFile: string): string[] {
  const format = messageFormat(spec.source.format);
  let outcome: ProcessingOutcome;
  try {
    outcome = runPipeline(spec, resources, {
      messageId: `test-${spec.name}-${test.name}`,
      receivedAt: CHANNEL_TEST_RECEIVED_AT,
      message: format.parse(decodeStored(format, readFileSync(inputFile), spec.source.charset)),
    });
  } catch (err) {
    return [`the message did not parse: ${(err as Error).message}`];
  }
  return [
    ...stateProblems(outcome, { state: test.expectState ?? 'QUEUED', category: test.expectCategory, code: test.expectCode }, ''),
    ...outputProblems(spec, projectRoot, test, [outcome]),
  ];
}

async function runFileCase(spec: ChannelRuntime, resources: PipelineResources, projectRoot: string, test: ChannelTestCase, sample: SampleFile): Promise<string[]> {
  if (!sample.ok) {
    if (test.expectFileError === sample.error.code) return outputProblems(spec, projectRoot, test, []);
    return [`the file was refused whole: ${sample.error.code}: ${sample.error.detail}`];
  }
  const problems: string[] = [];
  if (test.expectFileError) problems.push(`expected the file to be refused with ${test.expectFileError}, but it was read (${sample.records.length} records)`);
  const format = messageFormat(spec.source.format);
  // Each record as ingest would store it: a record the source refused, or one that does not parse, is an ERROR of its own.
  const outcomes = sample.records.map((record, index): ProcessingOutcome => {
    if (record.error) return { state: 'ERROR', error: record.error };
    let message;
    try {
      message = format.parse(record.text);
    } catch (err) {
      return { state: 'ERROR', error: { code: isOspreyError(err) ? err.code : 'OSPREY_ERR_INGEST_UNREADABLE', detail: (err as Error).message } };
    }
    return runPipeline(spec, resources, { messageId: `test-${spec.name}-${test.name}#${index}`, receivedAt: CHANNEL_TEST_RECEIVED_AT, message });
  });
  if (test.expectRecords !== undefined && test.expectRecords.length !== outcomes.length) {
    problems.push(`expectRecords lists ${test.expectRecords.length} record(s); the file holds ${outcomes.length}`);
  }
  outcomes.forEach((outcome, i) => {
    const listed = test.expectRecords?.[i];
    if (test.expectRecords !== undefined && listed === undefined) return;
    const [state = 'QUEUED', detail] = listed === undefined ? [test.expectState ?? 'QUEUED'] : listed.trim().split(/\s+/, 2);
    const expected =
      listed === undefined ? { state, category: test.expectCategory, code: test.expectCode }
      : state === 'ERROR' ? { state, code: detail }
      : { state, category: detail };
    problems.push(...stateProblems(outcome, expected, `record ${i}: `));
  });
  problems.push(...outputProblems(spec, projectRoot, test, outcomes));
  return problems;
}
