// SPDX-License-Identifier: Apache-2.0
/**
 * The public X12 835 samples in test/fixtures/corpus/x12 (MANIFEST.tsv there gives each file's
 * source, commit and licence) and what the X12 specs expect of each: claim payments, interchanges,
 * and the envelope issues of the three files whose envelopes are broken as published.
 */
import { createReadStream, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

export const X12_CORPUS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../../fixtures/corpus/x12');

export interface X12CorpusFile {
  name: string;
  claims: number;
  interchanges: number;
  /** Component separator (ISA16). */
  component: string;
  /** Repetition separator (ISA11 in 5010), undefined in 4010. */
  repetition: string | undefined;
  /** Issue codes validateX12Envelope reports, in order. */
  issues: string[];
}

export const X12_CORPUS: readonly X12CorpusFile[] = [
  { name: 'databricks_835_plb_sample.x12', claims: 3, interchanges: 1, component: ':', repetition: '^', issues: ['SE02_MISMATCH', 'IEA02_MISMATCH'] },
  { name: 'databricks_835_sample.x12', claims: 3, interchanges: 1, component: ':', repetition: '^', issues: ['SE01_COUNT', 'SE01_COUNT', 'IEA02_MISMATCH'] },
  { name: 'databricks_835_sample_services.x12', claims: 2, interchanges: 1, component: ':', repetition: '^', issues: ['GE01_COUNT', 'IEA02_MISMATCH'] },
  { name: 'oopfactory_835_4010_DeIdent_01.x12', claims: 96, interchanges: 1, component: ':', repetition: undefined, issues: [] },
  { name: 'oopfactory_835_5010_ExampleFromNth.x12', claims: 56, interchanges: 3, component: '>', repetition: '^', issues: [] },
  { name: 'oopfactory_835_5010_MultipleInterchanges.x12', claims: 56, interchanges: 3, component: '>', repetition: '^', issues: [] },
];

export const corpusPath = (name: string): string => join(X12_CORPUS_DIR, name);
export const corpusText = (name: string): string => readFileSync(corpusPath(name), 'utf8');

/** The file as a stream of chunks of `size` bytes (1 puts every boundary inside a segment or a BOM). */
export function chunked(name: string, size: number): Readable {
  return size >= 64 * 1024 ? createReadStream(corpusPath(name)) : createReadStream(corpusPath(name), { highWaterMark: size });
}

/** A string or Buffer as a stream of `size`-byte chunks. */
export function streamOf(data: string | Buffer, size = 65536): Readable {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data, 'utf8');
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) chunks.push(buf.subarray(i, i + size));
  return Readable.from(chunks);
}
