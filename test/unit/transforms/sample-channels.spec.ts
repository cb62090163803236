// SPDX-License-Identifier: Apache-2.0
/**
 * Golden tests of the two sample channels, through the engine's own pipeline (sample-harness.ts):
 * every sample under samples/hl7v2/{adt,siu} is run as `osprey test` runs the channel's declarative
 * test file, compared with samples/expected/, and checked for determinism.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { readChannelTests, runChannelTest } from '../../../engine/channel-runtime/channel-tests.ts';
import { expectedPath, goldenText, loadChannel, parseSample, ROOT, runMessage, runSample, SAMPLE_CHANNELS, samplesIn, type ChannelUnderTest } from './sample-harness.ts';

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
    const cases = readChannelTests(join(ROOT, 'channels', `${channel}.channel.test.yaml`));

    it('has a declarative test case for every sample, and every case names an existing sample', () => {
      expect(cases.map((c) => c.input).sort()).to.deep.equal(samples);
      expect(new Set(cases.map((c) => c.name)).size).to.equal(cases.length);
    });

    for (const sample of samples) {
      describe(sample.split('/').pop()!, () => {
        it('passes its declarative test case as `osprey test` runs it', async () => {
          const tc = cases.find((c) => c.input === sample);
          expect(tc, 'test case').to.not.equal(undefined);
          const result = await runChannelTest(ch.spec, ch.resources, ROOT, tc!);
          expect(result.problems.join('\n')).to.equal('');
          expect(result.passed).to.equal(true);
          for (const d of ch.destinations) expect(tc!.expect?.[d.name], `${d.name} golden file`).to.equal(expectedPath(channel, sample, d.name));
        });

        it('gives each destination exactly its golden payloads, all valid against the contract', () => {
          const result = runSample(ch, sample);
          expect(result.contractProblems).to.deep.equal([]);
          expect(result.error).to.equal(undefined);
          for (const d of ch.destinations) {
            const file = join(ROOT, expectedPath(channel, sample, d.name));
            expect(existsSync(file), `${file} exists`).to.equal(true);
            expect(goldenText(result.delivered[d.name] ?? [])).to.equal(readFileSync(file, 'utf8'));
          }
        });

        it('is deterministic: same ids across runs, engine message ids, channels and receive times', () => {
          const a = runSample(ch, sample);
          const b = runMessage(ch, parseSample(sample), undefined, {
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
