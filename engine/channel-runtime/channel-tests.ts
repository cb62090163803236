// SPDX-License-Identifier: Apache-2.0
/**
 * Declarative channel tests (`channels/<name>.channel.test.yaml`): each case names a sample message
 * and what each destination should receive (a JSON file of the payloads, `[]` when nothing), or the
 * state it should end in (FILTERED, BUSINESS_EXCEPTION with a category, ERROR with a code). The
 * runner uses the same `runPipeline` as the engine, with a fixed message id and receive time so that
 * outputs are reproducible.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createTwoFilesPatch } from 'diff';
import { parse as parseYaml } from 'yaml';
import { decodeStored, messageFormat } from '../message-formats/index.ts';
import type { ProcessingOutcome } from '../message-store/message-store.ts';
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

export function runChannelTest(spec: ChannelRuntime, resources: PipelineResources, projectRoot: string, test: ChannelTestCase): ChannelTestResult {
  const problems: string[] = [];
  const result = { channel: spec.name, name: test.name, problems };
  const inputFile = resolve(projectRoot, test.input);
  if (!existsSync(inputFile)) return { ...result, passed: false, problems: [`input ${test.input} does not exist`] };

  const format = messageFormat(spec.source.format);
  let outcome: ProcessingOutcome;
  try {
    outcome = runPipeline(spec, resources, {
      messageId: `test-${spec.name}-${test.name}`,
      receivedAt: CHANNEL_TEST_RECEIVED_AT,
      message: format.parse(decodeStored(format, readFileSync(inputFile), spec.source.charset)),
    });
  } catch (err) {
    return { ...result, passed: false, problems: [`the message did not parse: ${(err as Error).message}`] };
  }

  const expectedState = test.expectState ?? 'QUEUED';
  const actualState = outcome.state === 'QUEUED' && outcome.deliveries.length === 0 ? 'FILTERED' : outcome.state;
  if (actualState !== expectedState) {
    const why =
      outcome.state === 'ERROR' ? ` (${outcome.error.code}: ${outcome.error.detail})`
      : outcome.state === 'BUSINESS_EXCEPTION' ? ` (${outcome.exception.category}: ${outcome.exception.detail})`
      : outcome.state === 'FILTERED' ? ` (${outcome.reason})`
      : '';
    problems.push(`expected state ${expectedState}, got ${actualState}${why}`);
  }
  if (test.expectCategory && !(outcome.state === 'BUSINESS_EXCEPTION' && outcome.exception.category === test.expectCategory)) {
    problems.push(`expected business exception category ${test.expectCategory}`);
  }
  if (test.expectCode && !(outcome.state === 'ERROR' && outcome.error.code === test.expectCode)) {
    problems.push(`expected error code ${test.expectCode}`);
  }

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
    const actual = outcome.state === 'QUEUED' ? outcome.deliveries.filter((d) => d.destination === destination).map((d) => d.payload) : [];
    const expectedText = `${JSON.stringify(JSON.parse(readFileSync(expectedFile, 'utf8')), null, 2)}\n`;
    const actualText = `${JSON.stringify(actual, null, 2)}\n`;
    if (expectedText !== actualText) {
      problems.push(`${destination} output differs from ${file}:\n${createTwoFilesPatch(file, 'actual', expectedText, actualText, '', '', { context: 3 })}`);
    }
  }
  return { ...result, passed: problems.length === 0 };
}
