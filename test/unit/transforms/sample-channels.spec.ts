// SPDX-License-Identifier: Apache-2.0
/**
 * Golden tests of the two sample channels: every sample under samples/hl7v2/{adt,siu} through the
 * channel's enrich steps and transforms, compared with samples/expected/, checked against the
 * contracts, and checked against what the channel's declarative test file says.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { parse as parseYaml } from 'yaml';
import {
  expectedPath,
  goldenText,
  loadChannel,
  loadLookups,
  lookupFrom,
  parseSample,
  ROOT,
  runMessage,
  runSample,
  SAMPLE_CHANNELS,
  samplesIn,
  type ChannelUnderTest,
} from './sample-harness.ts';

interface TestCase {
  name: string;
  input: string;
  expect?: Record<string, string>;
  expectState?: string;
  expectCategory?: string;
}

const lookup = lookupFrom(loadLookups());

/** Every id-like value in a payload tree (`id`, `*Id`, `of`), to compare across runs. */
function ids(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) value.forEach((v) => ids(v, out));
  else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      if (typeof v === 'string' && (k === 'id' || k.endsWith('Id') || k === 'of')) out.push(`${k}=${v}`);
      else ids(v, out);
    }
  }
  return out;
}

for (const { channel, folder } of SAMPLE_CHANNELS) {
  describe(`sample channel ${channel}`, () => {
    let ch: ChannelUnderTest;
    before(async () => {
      ch = await loadChannel(channel);
    });

    const samples = samplesIn(folder);
    const testFile = join(ROOT, 'channels', `${channel}.channel.test.yaml`);
    const cases = (parseYaml(readFileSync(testFile, 'utf8')) as { cases: TestCase[] }).cases;

    it('has a declarative test case for every sample, and every case names an existing sample', () => {
      expect(cases.map((c) => c.input).sort()).to.deep.equal(samples);
      expect(new Set(cases.map((c) => c.name)).size).to.equal(cases.length);
    });

    for (const sample of samples) {
      describe(sample.split('/').pop()!, () => {
        it('gives each destination exactly its golden payloads, all valid against the contract', () => {
          const result = runSample(ch, sample, lookup);
          expect(result.contractProblems).to.deep.equal([]);
          for (const d of ch.destinations) {
            const file = join(ROOT, expectedPath(channel, sample, d.name));
            expect(existsSync(file), `${file} exists`).to.equal(true);
            expect(goldenText(result.delivered[d.name] ?? [])).to.equal(readFileSync(file, 'utf8'));
          }
        });

        it('ends in the state (and category) its declarative test case expects', () => {
          const tc = cases.find((c) => c.input === sample);
          expect(tc, 'test case').to.not.equal(undefined);
          const result = runSample(ch, sample, lookup);
          expect(result.state).to.equal(tc!.expectState ?? 'QUEUED');
          if (tc!.expectCategory !== undefined) expect(result.category).to.equal(tc!.expectCategory);
          for (const d of ch.destinations) expect(tc!.expect?.[d.name]).to.equal(expectedPath(channel, sample, d.name));
        });

        it('is deterministic: same ids across runs, engine message ids, channels and receive times', () => {
          const a = runSample(ch, sample, lookup);
          const b = runMessage(ch, parseSample(sample), lookup, {
            messageId: 'another-engine-id',
            channelName: 'some-other-channel',
            receivedAt: '2030-06-30T12:00:00.000Z',
          });
          expect(b.delivered).to.deep.equal(a.delivered);
          if (a.canonical.state === 'OK' && b.canonical.state === 'OK') expect(ids(b.canonical.outputs)).to.deep.equal(ids(a.canonical.outputs));
          expect(a.state).to.equal(b.state);
        });
      });
    }
  });
}
