// SPDX-License-Identifier: Apache-2.0
/**
 * Regenerates the sample channels' golden outputs under samples/expected/ by running the samples
 * through the engine's own pipeline (sample-harness.ts):
 * `node --import tsx test/unit/transforms/update-golden.ts`.
 *
 * Regenerating is not reviewing: read the diff of samples/expected/ before committing it, and check
 * by hand that each payload is what the receiver should get.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { deliveredByFile, expectedPath, FILE_SAMPLE_CHANNELS, goldenText, loadChannel, ROOT, runSample, runSampleFile, SAMPLE_CHANNELS, samplesIn } from './sample-harness.ts';

for (const { channel, folder } of SAMPLE_CHANNELS) {
  const ch = await loadChannel(channel);
  for (const sample of samplesIn(folder)) {
    const result = runSample(ch, sample);
    if (result.error) throw new Error(`${sample}: ${result.error.code}: ${result.error.detail}`);
    for (const d of ch.destinations) {
      const file = join(ROOT, expectedPath(channel, sample, d.name));
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, goldenText(result.delivered[d.name] ?? []));
    }
    const detail = result.state === 'BUSINESS_EXCEPTION' ? ` ${result.category}` : '';
    console.log(`${channel}  ${sample}  ${result.state}${detail}`);
  }
}

// File channels: one golden file per sample file and destination, every record's payloads in order.
for (const { channel, folder, extensions } of FILE_SAMPLE_CHANNELS) {
  const ch = await loadChannel(channel);
  for (const sample of samplesIn(folder, extensions)) {
    const run = await runSampleFile(ch, sample);
    for (const r of run.records) if (!r.sourceError && r.error) throw new Error(`${sample}#${r.index}: ${r.error.code}: ${r.error.detail}`);
    const delivered = deliveredByFile(ch, run.records);
    for (const d of ch.destinations) {
      const file = join(ROOT, expectedPath(channel, sample, d.name));
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, goldenText(delivered[d.name] ?? []));
    }
    const states = run.refused ? `refused ${run.refused.code}` : run.records.map((r) => (r.sourceError ? `ERROR ${r.sourceError.code}` : r.state === 'BUSINESS_EXCEPTION' ? `${r.state} ${r.category}` : r.state)).join(', ');
    console.log(`${channel}  ${sample}  ${states}`);
  }
}
