// SPDX-License-Identifier: Apache-2.0
/**
 * Golden tests of the two SFTP sample channels, through the engine's own pipeline (sample-harness.ts):
 * every sample file under samples/x12/835 and samples/batch is read the way the SFTP source reads it
 * (checked whole, split into records), run as `osprey test` runs the channel's declarative test file,
 * compared with samples/expected/, checked against the contracts and for determinism.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { readChannelTests, runChannelTest } from '../../../engine/channel-runtime/channel-tests.ts';
import { deliveredByFile, expectedPath, FILE_SAMPLE_CHANNELS, goldenText, loadChannel, ROOT, runSampleFile, samplesIn, type ChannelUnderTest } from './sample-harness.ts';

for (const { channel, folder, extensions } of FILE_SAMPLE_CHANNELS) {
  describe(`sample file channel ${channel}`, () => {
    let ch: ChannelUnderTest;
    before(async () => {
      ch = await loadChannel(channel);
    });
    const samples = samplesIn(folder, extensions);
    const cases = readChannelTests(join(ROOT, 'channels', `${channel}.channel.test.yaml`));

    it('has a declarative test case for every sample file, and every case names an existing sample', () => {
      expect(cases.map((c) => c.input).sort()).to.deep.equal(samples);
      expect(new Set(cases.map((c) => c.name)).size).to.equal(cases.length);
    });

    for (const sample of samples) {
      describe(sample.split('/').pop()!, () => {
        it('passes its declarative test case as `osprey test` runs it', async () => {
          const tc = cases.find((c) => c.input === sample)!;
          const result = await runChannelTest(ch.spec, ch.resources, ROOT, tc);
          expect(result.problems.join('\n')).to.equal('');
          for (const d of ch.destinations) expect(tc.expect?.[d.name], `${d.name} golden file`).to.equal(expectedPath(channel, sample, d.name));
        });

        it('gives each destination exactly its golden payloads, in record order, all valid against the contracts', async () => {
          const run = await runSampleFile(ch, sample);
          for (const r of run.records) if (!r.sourceError) expect(r.contractProblems, `record ${r.index}`).to.deep.equal([]);
          const delivered = deliveredByFile(ch, run.records);
          for (const d of ch.destinations) {
            const file = join(ROOT, expectedPath(channel, sample, d.name));
            expect(existsSync(file), `${file} exists`).to.equal(true);
            expect(goldenText(delivered[d.name] ?? [])).to.equal(readFileSync(file, 'utf8'));
          }
        });

        it('is deterministic: same payloads whatever the engine message ids, channel name and receive time', async () => {
          const a = await runSampleFile(ch, sample);
          const b = await runSampleFile(ch, sample, { run: { messageId: 'another-engine-id', channelName: 'some-other-channel', receivedAt: '2030-06-30T12:00:00.000Z' } });
          expect(deliveredByFile(ch, b.records)).to.deep.equal(deliveredByFile(ch, a.records));
        });
      });
    }

    it('`osprey test` reports a record whose state differs from expectRecords, naming the record', async () => {
      const tc = cases.find((c) => c.expectRecords !== undefined && c.expectFileError === undefined)!;
      const wrong = { ...tc, expectRecords: tc.expectRecords!.map((s, i) => (i === 0 ? 'FILTERED' : s)) };
      const result = await runChannelTest(ch.spec, ch.resources, ROOT, wrong);
      expect(result.passed).to.equal(false);
      expect(result.problems[0]).to.match(/^record 0: expected state FILTERED, got /);
    });

    it('`osprey test` reports a file refused whole when the case does not expect it, with the code', async () => {
      const tc = cases.find((c) => c.expectFileError !== undefined)!;
      const { expectFileError: _, ...notExpected } = tc;
      const result = await runChannelTest(ch.spec, ch.resources, ROOT, notExpected);
      expect(result.passed).to.equal(false);
      expect(result.problems[0]).to.contain(`the file was refused whole: ${tc.expectFileError}`);
    });
  });
}
