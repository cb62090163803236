// SPDX-License-Identifier: Apache-2.0
/**
 * Locates the HL7 corpus for the hl7v2 and MLLP specs: public sample and test messages from other
 * projects, vendored under test/fixtures/corpus (its MANIFEST.tsv gives each file's source, commit
 * and licence), so a clean clone tests against it. OSPREY_CORPUS points at another copy.
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');

export const CORPUS_DIR: string = process.env.OSPREY_CORPUS ?? join(repoRoot, 'test', 'fixtures', 'corpus', 'hl7v2');
export const corpusPresent: boolean = existsSync(CORPUS_DIR);

/** Files of a corpus category (`adt`, `batch`, `malformed` …), as absolute paths. */
export function corpusFiles(category: string): string[] {
  const dir = join(CORPUS_DIR, category);
  return existsSync(dir) ? readdirSync(dir).sort().map((f) => join(dir, f)) : [];
}

/** Every category except batch and malformed: one message per file. */
export function singleMessageFiles(): string[] {
  if (!corpusPresent) return [];
  return readdirSync(CORPUS_DIR)
    .filter((c) => c !== 'batch' && c !== 'malformed')
    .sort()
    .flatMap(corpusFiles);
}

/** The normalisation rule written out independently of the code under test (docs/design/0001). */
export function expectedNormalised(text: string): string {
  return text
    .replace(/^\uFEFF/, '')
    .replace(/\r\n|\n/g, '\r')
    .replace(/^(?:[ \t]*\r)+/, '')
    .replace(/(?:\r[ \t]*)+$/, '');
}
