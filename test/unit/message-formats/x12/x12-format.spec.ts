// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { OspreyError } from '../../../../engine/errors/error-codes.ts';
import { split835, x12Format } from '../../../../engine/message-formats/x12/index.ts';
import type { X12ClaimRecord } from '../../../../engine/message-formats/x12/index.ts';
import { chunked } from './corpus.ts';

async function records(name: string): Promise<X12ClaimRecord[]> {
  const out: X12ClaimRecord[] = [];
  for await (const r of split835(chunked(name, 65536))) out.push(r);
  return out;
}

describe('x12 format module (x12Format)', () => {
  it('is named x12 and parses a stored claim record alone', async () => {
    const [first] = await records('databricks_835_sample_services.x12');
    const m = x12Format.parse(first?.text ?? '');
    expect(x12Format.name).to.equal('x12');
    expect(m.format).to.equal('x12');
    expect(m.get('ISA-13')).to.equal('000001508');
    expect(m.get('CLP-1')).to.equal('ABC9001');
  });

  it('keys: CLP01, payer N1*PR N104 (else TRN03) | TRN02, 835, NM1*QC NM109, CLP07, payee N1*PE N104', async () => {
    const [a] = await records('databricks_835_sample_services.x12');
    // This payer's N1*PR has no N104: the payer id falls back to TRN03.
    expect(x12Format.keys(x12Format.parse(a?.text ?? ''))).to.deep.equal({
      controlId: 'ABC9001',
      sender: '1262721578|051036622050010',
      messageType: '835',
      patientId: '60345914A',
      visitId: '1142381711242',
      facility: '1215193883',
    });
    const oop = await records('oopfactory_835_5010_ExampleFromNth.x12');
    const k = x12Format.keys(x12Format.parse(oop[0]?.text ?? ''));
    const m = x12Format.parse(oop[0]?.text ?? '');
    expect(m.get('N1-1')).to.equal('PR');
    expect(k.sender).to.equal(`${m.get('N1-4') ?? m.get('TRN-3')}|${m.get('TRN-2')}`);
    expect(k.controlId).to.equal(m.get('CLP-1'));
  });

  it('the dedupe identity (sender + controlId) is the same for a resent remittance and differs across claims', async () => {
    const once = await records('oopfactory_835_5010_ExampleFromNth.x12');
    const again = await records('oopfactory_835_5010_MultipleInterchanges.x12');
    const id = (r: X12ClaimRecord): string => {
      const k = x12Format.keys(x12Format.parse(r.text));
      return `${k.sender}#${k.controlId}`;
    };
    expect(once.map(id)).to.deep.equal(again.map(id));
  });

  it('keys never throws: a record with no claim has no controlId', () => {
    const m = x12Format.parse('ISA*00*          *00*          *ZZ*S              *ZZ*R              *260101*1200*^*00501*000000001*0*T*:~ST*835*1~');
    expect(x12Format.keys(m)).to.deep.equal({ messageType: '835' });
  });

  it('parse refuses a record that is not X12 with a stable code', () => {
    expect(() => x12Format.parse('MSH|^~\\&|')).to.throw(OspreyError).with.property('code', 'OSPREY_ERR_X12_NO_ISA');
  });

  it('render puts one segment per line and decodes the stored bytes with their encoding', async () => {
    const [r] = await records('databricks_835_plb_sample.x12');
    const lines = x12Format.render(Buffer.from(r?.text ?? '', 'latin1'), 'latin1').trimEnd().split('\n');
    expect(lines[0]).to.match(/^ISA\*.*:~$/);
    expect(lines.some((l) => l.startsWith('CLP*77777777*'))).to.equal(true);
    expect(lines.every((l) => l.endsWith('~'))).to.equal(true);
    expect(x12Format.render(Buffer.from('not x12'), 'utf-8')).to.equal('not x12');
  });
});
