// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { Hl7Message, splitBatch } from '../../../../engine/message-formats/hl7v2/index.ts';
import { CORPUS_DIR, corpusPresent } from './corpus.ts';

describe('hl7v2 splitBatch', () => {
  describe('corpus batch files', function () {
    if (!corpusPresent) {
      it('skipped: corpus not found at ' + CORPUS_DIR);
      return;
    }
    const split = (name: string): ReturnType<typeof splitBatch> => splitBatch(readFileSync(`${CORPUS_DIR}/batch/${name}`, 'utf8'));
    const expected: Record<string, number> = {
      'nodeclient_batch_FHS_BHS_BTS_FTS.hl7': 2,
      'mirth_batch_FHS_BHS_CRLF_notrailer.hl7': 1,
      'mirth_batch01_3msgs_noheader.hl7': 3,
      'cdc_GenV1_8MSH_noheader.hl7': 8,
      'hapi_example_oml_o21_13msgs_CR.hl7': 13,
      'mirth_TestADT_124msgs_CRLF.hl7': 124,
    };
    for (const [name, count] of Object.entries(expected)) {
      it(`${name} → ${count} message(s), each parses`, () => {
        const out = split(name);
        expect(out.messages).to.have.length(count);
        expect(out.messageLines).to.have.length(count);
        expect(out.issues).to.deep.equal([]);
        for (const m of out.messages) {
          const msg = Hl7Message.parse(m);
          expect(msg.toString()).to.equal(m);
          expect(msg.count('MSH')).to.equal(1);
        }
      });
    }
    it('the FHS/BHS/BTS/FTS file is not fooled by "MSH" inside OBX-5 and reports its envelope', () => {
      const out = split('nodeclient_batch_FHS_BHS_BTS_FTS.hl7');
      expect(out.fileHeader?.startsWith('FHS|')).to.equal(true);
      expect(out.fileTrailer?.startsWith('FTS|')).to.equal(true);
      expect(out.batches).to.have.length(1);
      expect(out.batches[0]?.header?.startsWith('BHS|')).to.equal(true);
      expect(out.batches[0]?.trailer?.startsWith('BTS|')).to.equal(true);
      expect(out.batches[0]?.declaredMessageCount).to.equal(undefined); // BTS-1 is empty in this file
      const second = Hl7Message.parse(out.messages[1] as string);
      expect(second.getAll('OBX-4')).to.deep.equal(['xMSHx', 'xMSH', 'MSH']);
      expect(out.messageLines).to.deep.equal([3, 13]);
    });
    it('the 124-message Mirth file keeps its messages in order', () => {
      const msgs = split('mirth_TestADT_124msgs_CRLF.hl7').messages.map((m) => Hl7Message.parse(m));
      expect(msgs[0]?.controlId).to.equal('603261');
      expect(msgs[0]?.messageType).to.equal('ADT^A31');
      expect(msgs[1]?.messageType).to.equal('ADT^A01');
    });
  });

  it('checks BTS-1 and FTS-1 counts', () => {
    const msg = (id: string): string => `MSH|^~\\&|A|B|C|D|1||ADT^A01|${id}|P|2.5\rPID|1`;
    const good = splitBatch(['FHS|^~\\&', 'BHS|^~\\&', msg('1'), msg('2'), 'BTS|2', 'FTS|1'].join('\n'));
    expect(good.issues).to.deep.equal([]);
    expect(good.batches[0]?.declaredMessageCount).to.equal(2);
    expect(good.declaredBatchCount).to.equal(1);
    const bad = splitBatch(['FHS|^~\\&', 'BHS|^~\\&', msg('1'), 'BTS|2', 'BHS|^~\\&', msg('3'), 'BTS|1', 'FTS|1'].join('\r\n'));
    expect(bad.messages).to.have.length(2);
    expect(bad.batches).to.have.length(2);
    expect(bad.issues.map((i) => i.code)).to.deep.equal(['OSPREY_ERR_HL7_BATCH_COUNT', 'OSPREY_ERR_HL7_BATCH_COUNT']);
    expect(bad.issues[0]?.detail).to.match(/BTS-1 of batch 1 declares 2/);
    expect(bad.issues[1]?.detail).to.match(/FTS-1 declares 1/);
  });

  it('reports lines outside any message without failing', () => {
    const out = splitBatch('garbage line\nMSH|^~\\&|A\nPID|1\n');
    expect(out.messages).to.deep.equal(['MSH|^~\\&|A\rPID|1']);
    expect(out.issues[0]?.code).to.equal('OSPREY_ERR_HL7_BATCH_COUNT');
    expect(out.issues[0]?.detail).to.not.include('garbage');
  });

  it('an MSH only counts at the start of a segment, with a separator after it', () => {
    const out = splitBatch('MSH|^~\\&|A\rOBX|1|ST|MSH|x\rMSHX|not a header\r\rMSH|^~\\&|B');
    expect(out.messages).to.have.length(2);
  });
});
