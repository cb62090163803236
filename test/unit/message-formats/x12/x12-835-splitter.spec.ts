// SPDX-License-Identifier: Apache-2.0
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OspreyError } from '../../../../engine/errors/error-codes.ts';
import { X12Message, scanX12Envelope, split835 } from '../../../../engine/message-formats/x12/index.ts';
import type { X12ClaimRecord } from '../../../../engine/message-formats/x12/index.ts';
import { generate835 } from '../../../helpers/generate-835.ts';
import { X12_CORPUS, chunked, corpusPath, streamOf } from './corpus.ts';

async function collect(source: AsyncIterable<unknown>): Promise<X12ClaimRecord[]> {
  const out: X12ClaimRecord[] = [];
  for await (const r of split835(source)) out.push(r);
  return out;
}

describe('x12 835 splitter (split835)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'osprey-x12-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('the public 835 samples', () => {
    for (const f of X12_CORPUS) {
      it(`${f.name}: ${f.claims} claim payments, the same whatever the chunking`, async () => {
        const whole = await collect(chunked(f.name, 65536));
        expect(whole).to.have.length(f.claims);
        for (const size of [1, 13]) expect(await collect(chunked(f.name, size))).to.deep.equal(whole);
      });

      it(`${f.name}: each record re-parses alone, with its header context and lineage`, async () => {
        const file = readFileSync(corpusPath(f.name));
        const records = await collect(chunked(f.name, 65536));
        records.forEach((r, i) => {
          const m = X12Message.parse(r.text);
          expect(m.segmentId(0)).to.equal('ISA');
          expect(m.segmentId(1)).to.equal('GS');
          expect(m.segmentId(2)).to.equal('ST');
          expect(m.count('CLP')).to.equal(1);
          expect(m.count('BPR')).to.equal(1);
          expect(m.count('TRN')).to.equal(1);
          expect(m.get('N1-1')).to.equal('PR');
          expect(m.count('SE') + m.count('GE') + m.count('IEA') + m.count('PLB')).to.equal(0);
          expect(m.delimiters.component).to.equal(f.component);
          expect(r.lineage.recordIndex).to.equal(i);
          expect(r.lineage.envelope).to.deep.equal({ isa13: m.get('ISA-13'), gs06: m.get('GS-6'), st02: m.get('ST-2') });
          // The byte range is the CLP loop as it stands in the file.
          const slice = file.subarray(r.byteRange.start, r.byteRange.end).toString('utf8');
          expect(slice.startsWith(`CLP${m.delimiters.element}`)).to.equal(true);
          expect(slice.endsWith('~')).to.equal(true);
          const loop = m.segments.slice(m.segments.findIndex((s) => s.startsWith('CLP*')));
          expect(slice.replace(/~[\r\n ]+/g, '~')).to.equal(loop.join('~') + '~');
        });
      });
    }

    it('the payee N1*PE loop and the LX header travel with every claim of databricks_835_sample_services', async () => {
      const records = await collect(chunked('databricks_835_sample_services.x12', 65536));
      for (const r of records) {
        const m = X12Message.parse(r.text);
        expect(m.get('N1[2]-1')).to.equal('PE');
        expect(m.count('LX')).to.equal(1);
        expect(m.get('BPR-2')).to.equal('391.05');
      }
      expect(records.map((r) => X12Message.parse(r.text).getAll('SVC-1.2'))).to.deep.equal([['98765', '26591'], ['98765', '26591']]);
    });
  });

  describe('generated files', () => {
    it('finds every claim across payers (interchanges) and transaction sets, ids in order', async () => {
      const path = join(dir, 'multi.835');
      const g = await generate835(path, { claims: 333, payers: 4, claimsPerTransaction: 50, seed: 11 });
      const records = await collect(createReadStream(path));
      expect(records).to.have.length(333);
      expect(g).to.include({ claims: 333, interchanges: 4, truncated: false });
      const ids = records.map((r) => X12Message.parse(r.text).get('CLP-1'));
      expect(new Set(ids).size).to.equal(333);
      expect(new Set(records.map((r) => r.lineage.envelope.isa13)).size).to.equal(4);
      expect((await scanX12Envelope(createReadStream(path))).issues).to.deep.equal([]);
    });

    it('a truncated file yields its complete claims, then fails with OSPREY_ERR_X12_ENVELOPE', async () => {
      const path = join(dir, 'cut.835');
      await generate835(path, { claims: 100, truncateAfterClaims: 37 });
      const seen: X12ClaimRecord[] = [];
      let error: unknown;
      try {
        for await (const r of split835(createReadStream(path, { highWaterMark: 333 }))) seen.push(r);
      } catch (err) {
        error = err;
      }
      expect(error).to.be.instanceOf(OspreyError).with.property('code', 'OSPREY_ERR_X12_ENVELOPE');
      // The 37th claim may have been the one in progress at the cut: it is not emitted.
      expect(seen.length).to.equal(36);
    });

    it('a claim loop past maxClaimSegments fails with OSPREY_ERR_X12_TOO_LARGE', async () => {
      const path = join(dir, 'big.835');
      await generate835(path, { claims: 3 });
      let error: unknown;
      try {
        for await (const _ of split835(createReadStream(path), { maxClaimSegments: 3 })) void _;
      } catch (err) {
        error = err;
      }
      expect(error).to.be.instanceOf(OspreyError).with.property('code', 'OSPREY_ERR_X12_TOO_LARGE');
    });

    it('skips transaction sets that are not 835', async () => {
      const text = readFileSync(corpusPath('oopfactory_835_4010_DeIdent_01.x12'), 'utf8').replace('ST*835*', 'ST*999*');
      expect(await collect(streamOf(text))).to.have.length(0);
    });
  });

  describe('a 50 MB file is split without holding it (bounded memory)', function () {
    this.timeout(120_000);
    it('heap and RSS stay small while every claim is found', async () => {
      const path = join(dir, 'fifty.835');
      const g = await generate835(path, { claims: 120_000, payers: 3, seed: 5 });
      expect(statSync(path).size).to.be.greaterThan(50 * 1024 * 1024);
      // What is kept alive, not what V8 has yet to collect: each sample follows a full collection
      // (V8's lazier heap sizing on Node 24 let garbage alone pass 100 MB).
      v8.setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc') as () => void;
      gc();
      const base = process.memoryUsage();
      let peakHeap = base.heapUsed;
      let peakRss = base.rss;
      let n = 0;
      const t0 = performance.now();
      for await (const r of split835(createReadStream(path))) {
        n++;
        if (r.text.length === 0) throw new Error('empty record');
        if (n % 2000 === 0) {
          gc();
          const mu = process.memoryUsage();
          peakHeap = Math.max(peakHeap, mu.heapUsed);
          peakRss = Math.max(peakRss, mu.rss);
        }
      }
      const seconds = (performance.now() - t0) / 1000;
      expect(n).to.equal(g.claims);
      const mb = (b: number): number => Math.round(b / 1024 / 1024);
      // Young-generation garbage comes and goes; what must not happen is growth with the file (50+ MB).
      expect(mb(peakHeap - base.heapUsed), 'heap growth MB').to.be.below(40);
      expect(mb(peakRss - base.rss), 'RSS growth MB').to.be.below(80);
      console.log(`      50 MB: ${n} claims in ${seconds.toFixed(1)} s (${Math.round(n / seconds)} claims/s), heap +${mb(peakHeap - base.heapUsed)} MB, RSS +${mb(peakRss - base.rss)} MB`);
    });
  });
});
