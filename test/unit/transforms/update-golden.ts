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
import { expectedPath, goldenText, loadChannel, ROOT, runSample, SAMPLE_CHANNELS, samplesIn } from './sample-harness.ts';

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
