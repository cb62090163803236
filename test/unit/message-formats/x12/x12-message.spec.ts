// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { OspreyError } from '../../../../engine/errors/error-codes.ts';
import { X12Message, parseX12Path, readIsa } from '../../../../engine/message-formats/x12/index.ts';
import { X12_CORPUS, corpusText } from './corpus.ts';

function expectCode(fn: () => unknown, code: string): OspreyError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(OspreyError);
    expect((err as OspreyError).code).to.equal(code);
    return err as OspreyError;
  }
  throw new Error(`expected ${code}`);
}

const ISA5010 = 'ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *260101*1200*^*00501*000000001*0*T*:~';
const SAMPLE = [
  ISA5010,
  'GS*HP*SENDER*RECEIVER*20260101*1200*1*X*005010X221A1~',
  'ST*835*0001~',
  'TRN*1*TRACE1*1999999999~',
  'N1*PR*SYNTHETIC PLAN*XV*PAYER1~',
  'CLP*CLAIM1*1*100*80**12*PCN1~',
  'CAS*CO*45*15~',
  'CAS*PR*1*5*1*2~',
  'SVC*HC:99213:25*100*80~',
  'REF*6R*A^B^C~',
].join('\n');

describe('x12 delimiters', () => {
  it('reads element, repetition (ISA11 in 5010), component (ISA16) and terminator (after ISA16)', () => {
    const r = readIsa(ISA5010);
    expect(r?.delimiters).to.deep.equal({ element: '*', repetition: '^', component: ':', segment: '~' });
    expect(r?.end).to.equal(106);
  });

  it('has no repetition separator in 4010 (ISA11 is the standards identifier U)', () => {
    const isa = ISA5010.replace('*^*00501*', '*U*00401*');
    expect(readIsa(isa)?.delimiters.repetition).to.equal(undefined);
  });

  it('takes unusual delimiters and a mis-padded ISA, counting separators rather than columns', () => {
    const isa = 'ISA|00|x|00|x|ZZ|S|ZZ|R|260101|1200|{|00501|1|0|P|>\n';
    expect(readIsa(isa)?.delimiters).to.deep.equal({ element: '|', repetition: '{', component: '>', segment: '\n' });
  });

  it('waits for more text when the ISA is cut, refuses what is not an ISA', () => {
    expect(readIsa(ISA5010.slice(0, 60))).to.equal(undefined);
    expectCode(() => readIsa('GS*HP*X~'), 'OSPREY_ERR_X12_NO_ISA');
    expectCode(() => readIsa('ISA*00*a*00*b*ZZ*S*ZZ*R*1*2***00501*1*0*P**~'), 'OSPREY_ERR_X12_BAD_ISA');
  });

  for (const f of X12_CORPUS) {
    it(`${f.name}: component ${f.component}, repetition ${String(f.repetition)}`, () => {
      const m = X12Message.parse(corpusText(f.name));
      expect(m.delimiters.component).to.equal(f.component);
      expect(m.delimiters.repetition).to.equal(f.repetition);
      expect(m.delimiters.segment).to.equal('~');
    });
  }
});

describe('x12 paths', () => {
  it('parses SEG[occurrence]-element[repetition].component, element with or without a leading zero', () => {
    expect(parseX12Path('CAS[2]-3')).to.deep.equal({ segment: 'CAS', occurrence: 2, element: 3, repetition: undefined, component: undefined });
    expect(parseX12Path('SVC-01.2')).to.deep.include({ segment: 'SVC', element: 1, component: 2 });
    expect(parseX12Path('N1')).to.deep.include({ segment: 'N1', element: undefined });
  });

  it('refuses malformed paths and 0 indexes with OSPREY_ERR_X12_BAD_PATH', () => {
    for (const bad of ['clp-1', 'CLP1', 'CLP-', 'CAS[0]-1', 'CLP-0', 'SVC-1.0', 'A-1', 'ABCD-1']) expectCode(() => parseX12Path(bad), 'OSPREY_ERR_X12_BAD_PATH');
  });
});

describe('x12 X12Message', () => {
  const m = X12Message.parse(SAMPLE);

  it('is an x12 FormatMessage and reads elements, occurrences, components and repetitions', () => {
    expect(m.format).to.equal('x12');
    expect(m.get('CLP-1')).to.equal('CLAIM1');
    expect(m.get('CLP-01')).to.equal('CLAIM1');
    expect(m.get('CAS-3')).to.equal('15');
    expect(m.get('CAS[2]-3')).to.equal('5');
    expect(m.get('CAS[2]-5')).to.equal('2');
    expect(m.get('SVC-1.2')).to.equal('99213');
    expect(m.get('SVC-1.3')).to.equal('25');
    expect(m.get('SVC-1')).to.equal('HC:99213:25');
    expect(m.get('REF-2')).to.equal('A^B^C');
    expect(m.get('REF-2[2]')).to.equal('B');
  });

  it('returns undefined for absent or empty values, the segment for a path with no element', () => {
    expect(m.get('CLP-5')).to.equal(undefined);
    expect(m.get('CLP-40')).to.equal(undefined);
    expect(m.get('CAS[3]-1')).to.equal(undefined);
    expect(m.get('PLB-1')).to.equal(undefined);
    expect(m.get('SVC-1.9')).to.equal(undefined);
    expect(m.get('CAS[2]')).to.equal('CAS*PR*1*5*1*2');
    expect(m.get('ISA-11')).to.equal('^');
  });

  it('getAll gives every occurrence and every repetition', () => {
    expect(m.getAll('CAS-2')).to.deep.equal(['45', '1']);
    expect(m.getAll('CAS[2]-2')).to.deep.equal(['1']);
    expect(m.getAll('REF-2')).to.deep.equal(['A', 'B', 'C']);
    expect(m.getAll('CAS')).to.deep.equal(['CAS*CO*45*15', 'CAS*PR*1*5*1*2']);
    expect(m.getAll('PLB-1')).to.deep.equal([]);
    expect(m.count('CAS')).to.equal(2);
  });

  it('toString is the segments, each with its terminator; it re-parses to the same segments', () => {
    expect(m.toString()).to.equal(SAMPLE.replace(/\n/g, ''));
    expect(X12Message.parse(m.toString()).segments).to.deep.equal(m.segments);
    expect(m.render().split('\n')[5]).to.equal('CLP*CLAIM1*1*100*80**12*PCN1~');
  });

  it('tolerates a BOM, CR/LF and indentation between segments and a last segment with no terminator', () => {
    const messy = '\uFEFF' + SAMPLE.replace(/~\n/g, '~\r\n    ').replace(/~$/, '');
    const p = X12Message.parse(messy);
    expect(p.segments).to.deep.equal(m.segments);
  });

  it('keeps a CR before a LF terminator out of the segment', () => {
    const isa = 'ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *260101*1200*^*00501*000000001*0*T*:\n';
    const p = X12Message.parse(isa + 'GS*HP*A\r\nST*835*1\r\n');
    expect(p.segments.slice(1)).to.deep.equal(['GS*HP*A', 'ST*835*1']);
  });

  it('refuses text with no ISA', () => {
    expectCode(() => X12Message.parse(''), 'OSPREY_ERR_X12_NO_ISA');
    expectCode(() => X12Message.parse('  \r\n'), 'OSPREY_ERR_X12_NO_ISA');
    expectCode(() => X12Message.parse('MSH|^~\\&|A'), 'OSPREY_ERR_X12_NO_ISA');
    expectCode(() => X12Message.parse(ISA5010.slice(0, 50)), 'OSPREY_ERR_X12_BAD_ISA');
  });

  for (const f of X12_CORPUS) {
    it(`${f.name}: parses whole, ${f.claims} CLP, ${f.interchanges} ISA, and re-parses from toString()`, () => {
      const whole = X12Message.parse(corpusText(f.name));
      expect(whole.count('CLP')).to.equal(f.claims);
      expect(whole.count('ISA')).to.equal(f.interchanges);
      expect(X12Message.parse(whole.toString()).segments).to.deep.equal(whole.segments);
      // Every segment is kept as sent: the file minus formatting is the model's text.
      const stripped = corpusText(f.name).replace(/^\uFEFF/, '').replace(/~[\r\n ]+/g, '~').trim();
      expect(whole.toString()).to.equal(stripped);
    });
  }
});
