// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { PassThrough } from 'node:stream';
import { scanX12Envelope, validateX12Envelope } from '../../../../engine/message-formats/x12/index.ts';
import { generate835 } from '../../../helpers/generate-835.ts';
import { X12_CORPUS, chunked, corpusText, streamOf } from './corpus.ts';

async function generated(options: Parameters<typeof generate835>[1]): Promise<Buffer> {
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on('data', (c: Buffer) => chunks.push(c));
  await generate835(sink, options);
  return Buffer.concat(chunks);
}

const codes = async (data: string | Buffer, size?: number): Promise<string[]> => (await validateX12Envelope(streamOf(data, size))).map((i) => i.code);

describe('x12 envelope validation (validateX12Envelope)', () => {
  describe('the public 835 samples: three are sound, three have envelopes broken as published', () => {
    for (const f of X12_CORPUS) {
      for (const size of [1, 7, 65536]) {
        it(`${f.name} in ${size}-byte chunks: ${f.issues.length === 0 ? 'no issues' : f.issues.join(', ')}`, async () => {
          const s = await scanX12Envelope(chunked(f.name, size));
          expect(s.issues.map((i) => i.code)).to.deep.equal(f.issues);
          expect(s.claims).to.equal(f.claims);
          expect(s.interchanges).to.equal(f.interchanges);
        });
      }
    }

    it('names the control numbers and counts that disagree (and no segment content)', async () => {
      const issues = await validateX12Envelope(chunked('databricks_835_sample.x12', 65536));
      expect(issues.map((i) => i.message)).to.deep.equal([
        'SE01=29 but transaction set ST02=0002 has 19 segments',
        'SE01=12 but transaction set ST02=0003 has 23 segments',
        'IEA02=100000301 does not match ISA13=000001508',
      ]);
      expect(issues[0]?.byteOffset).to.be.a('number');
    });
  });

  it('a generated file with several payers and transaction sets is sound', async () => {
    const data = await generated({ claims: 250, payers: 3, claimsPerTransaction: 40, seed: 3 });
    const s = await scanX12Envelope(streamOf(data, 4096));
    expect(s.issues).to.deep.equal([]);
    expect(s).to.include({ claims: 250, interchanges: 3, groups: 3, transactions: 9, bytes: data.length });
  });

  it('a truncated file: TRUNCATED, then the missing SE, GE and IEA', async () => {
    const data = await generated({ claims: 50, truncateAfterClaims: 20 });
    expect(await codes(data, 1000)).to.deep.equal(['TRUNCATED', 'MISSING_SE', 'MISSING_GE', 'MISSING_IEA']);
  });

  it('a file cut right after a terminator is missing its trailers (no TRUNCATED: the cut is between segments)', async () => {
    const text = (await generated({ claims: 5 })).toString('utf8');
    const cut = text.slice(0, text.indexOf('GE*'));
    expect(await codes(cut)).to.deep.equal(['MISSING_GE', 'MISSING_IEA']);
  });

  it('reports each control number and count that disagrees', async () => {
    const text = (await generated({ claims: 5 })).toString('utf8');
    expect(await codes(text.replace(/IEA\*1\*(\d+)/, 'IEA*2*999999999'))).to.deep.equal(['IEA02_MISMATCH', 'IEA01_COUNT']);
    expect(await codes(text.replace(/GE\*1\*1~/, 'GE*2*7~'))).to.deep.equal(['GE02_MISMATCH', 'GE01_COUNT']);
    expect(await codes(text.replace(/SE\*(\d+)\*0001/, 'SE*3*0002'))).to.deep.equal(['SE02_MISMATCH', 'SE01_COUNT']);
  });

  it('a segment outside the envelope, a missing IEA before the next ISA, an empty file, not X12', async () => {
    const text = (await generated({ claims: 2 })).toString('utf8');
    expect(await codes(text + 'N3*STRAY~\n')).to.deep.equal(['OUTSIDE_ENVELOPE']);
    const noIea = text.replace(/IEA\*[^~]*~\n/, '');
    expect(await codes(noIea + text)).to.deep.equal(['MISSING_IEA']);
    expect(await codes('')).to.deep.equal(['NO_ISA']);
    expect(await codes('MSH|^~\\&|X\r')).to.deep.equal(['NO_ISA']);
  });

  it('keeps at most maxIssues issues and counts the rest', async () => {
    const text = (await generated({ claims: 2 })).toString('utf8').replace(/IEA\*1\*\d+/, 'IEA*1*1');
    const s = await scanX12Envelope(streamOf(text.repeat(5)), { maxIssues: 2 });
    expect(s.issues.map((i) => i.code)).to.deep.equal(['IEA02_MISMATCH', 'IEA02_MISMATCH']);
    expect(s.moreIssues).to.equal(3);
  });

  it('a file whose terminator is not the ISA one is reported, not held whole (segment limit)', async () => {
    const text = corpusText('databricks_835_sample.x12').replace(/~/g, '\u0007').replace(/^(.{105})\u0007/, '$1~');
    const issues = await validateX12Envelope(streamOf(text, 100), { maxSegmentBytes: 512 });
    expect(issues.map((i) => i.code)).to.deep.equal(['BAD_SEGMENT']);
    expect(issues[0]?.message).to.contain('OSPREY_ERR_X12_TOO_LARGE');
  });
});
