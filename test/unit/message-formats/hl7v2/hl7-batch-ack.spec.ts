// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Hl7Message, buildAck, buildBatchAck, splitBatch } from '../../../../engine/message-formats/hl7v2/index.ts';
import { CORPUS_DIR, corpusPresent } from './corpus.ts';

const NOW = new Date(2026, 2, 6, 14, 15, 22, 123);

/** The fields of an envelope segment, fields[n - 1] being field n (as HL7 counts them). */
function fieldsOf(segment: string | undefined): string[] {
  expect(segment, 'segment present').to.be.a('string');
  return (segment as string).split((segment as string)[3] as string);
}

function msg(controlId: string, extra = ''): string {
  return [`MSH|^~\\&|LAB|RVH|OSPREY|RVH|20260306141522||ADT^A01^ADT_A01|${controlId}|P|2.5.1${extra}`, `PID|1||P-${controlId}^^^RVH^MR`].join('\r');
}

describe('hl7v2 buildBatchAck', () => {
  const received = [
    'FHS|^~\\&|LAB|RVH|OSPREY|RVH|20260306141500||batch.hl7||FILE-0042',
    'BHS|^~\\&|LAB|RVH|OSPREY|RVH|20260306141500||||BATCH-7',
    msg('M1'),
    msg('M2'),
    'BTS|2',
    'FTS|1',
  ].join('\r');

  it('answers a file with FHS … BHS ACK… BTS … FTS, referencing the received file and batch control ids', () => {
    const file = splitBatch(received);
    const acks = file.messages.map((m) => buildAck(Hl7Message.parse(m), { code: 'AA', now: NOW }));
    let n = 0;
    const text = buildBatchAck({ fileHeader: file.fileHeader, batches: [{ header: file.batches[0]!.header, acks }], now: NOW, controlIds: () => `ACKB-${++n}` });
    expect(text).to.not.include('\n');
    const back = splitBatch(text);
    expect(back.issues, 'the answer passes its own count checks').to.deep.equal([]);
    const fhs = fieldsOf(back.fileHeader);
    expect(fhs.slice(0, 6)).to.deep.equal(['FHS', '^~\\&', 'OSPREY', 'RVH', 'LAB', 'RVH']);
    expect(fhs[6]).to.match(/^\d{14}\.\d{3}[+-]\d{4}$/);
    expect(fhs[10], 'FHS-11: its own new control id').to.equal('ACKB-1');
    expect(fhs[11], 'FHS-12: the received FHS-11').to.equal('FILE-0042');
    const bhs = fieldsOf(back.batches[0]!.header);
    expect(bhs.slice(2, 6)).to.deep.equal(['OSPREY', 'RVH', 'LAB', 'RVH']);
    expect(bhs[10]).to.equal('ACKB-2');
    expect(bhs[11], 'BHS-12: the received BHS-11').to.equal('BATCH-7');
    expect(back.batches[0]!.declaredMessageCount).to.equal(2);
    expect(back.declaredBatchCount).to.equal(1);
    const answers = back.messages.map((m) => Hl7Message.parse(m));
    expect(answers.map((a) => a.get('MSA-1'))).to.deep.equal(['AA', 'AA']);
    expect(answers.map((a) => a.get('MSA-2'))).to.deep.equal(['M1', 'M2']);
  });

  it('errors-only: a batch whose messages were all accepted is answered with zero ACKs (HL7: all implicitly accepted)', () => {
    const file = splitBatch(received);
    const text = buildBatchAck({ fileHeader: file.fileHeader, batches: [{ header: file.batches[0]!.header, acks: [] }], now: NOW });
    const back = splitBatch(text);
    expect(back.issues).to.deep.equal([]);
    expect(back.messages).to.deep.equal([]);
    expect(back.batches[0]!.declaredMessageCount).to.equal(0);
    expect(fieldsOf(back.batches[0]!.header)[11]).to.equal('BATCH-7');
  });

  it('a refusal carries the reason in BTS-2 and FTS-2, escaped, and every message answered AR with its ERR', () => {
    const file = splitBatch(received);
    const error = { code: 'OSPREY_ERR_HL7_BATCH_COUNT', detail: 'BTS-1 of batch 1 declares 3 | not 2' };
    const acks = file.messages.map((m) => buildAck(Hl7Message.parse(m), { code: 'AR', error, now: NOW }));
    const text = buildBatchAck({ fileHeader: file.fileHeader, batches: [{ header: file.batches[0]!.header, acks, comment: error.detail }], comment: error.detail, now: NOW });
    const back = splitBatch(text);
    expect(back.issues).to.deep.equal([]);
    expect(back.batches[0]!.trailer).to.equal('BTS|2|BTS-1 of batch 1 declares 3 \\F\\ not 2');
    expect(back.fileTrailer).to.equal('FTS|1|BTS-1 of batch 1 declares 3 \\F\\ not 2');
    for (const m of back.messages) {
      const a = Hl7Message.parse(m);
      expect(a.get('MSA-1')).to.equal('AR');
      expect(a.get('ERR-5.1')).to.equal('OSPREY_ERR_HL7_BATCH_COUNT');
      expect(a.get('ERR-3.1'), 'table 0357: segment sequence error').to.equal('100');
    }
  });

  it('keeps the received envelope delimiters, and gives an implicit batch (no BHS) a BHS that references nothing', () => {
    const fhs = 'FHS#$%\\!#LAB#RVH#OSPREY#RVH#20260306141500####F-1';
    const text = buildBatchAck({ fileHeader: fhs, batches: [{ acks: [] }], now: NOW, controlIds: () => 'X' });
    const [f, b, bts, fts] = text.split('\r');
    expect(f).to.match(/^FHS#\$%\\!#OSPREY#RVH#LAB#RVH#\d{14}\.\d{3}[+-]\d{4}####X#F-1$/);
    expect(b).to.match(/^BHS#\$%\\!#OSPREY#RVH#LAB#RVH#\d{14}\.\d{3}[+-]\d{4}####X#$/);
    expect(bts).to.equal('BTS#0');
    expect(fts).to.equal('FTS#1');
  });

  it('a batch without FHS is answered without FHS/FTS', () => {
    const text = buildBatchAck({ batches: [{ header: 'BHS|^~\\&|LAB|RVH|||||||B-1', acks: [buildAck(Hl7Message.parse(msg('M9')), { code: 'AA' })] }] });
    const back = splitBatch(text);
    expect(back.fileHeader).to.equal(undefined);
    expect(back.fileTrailer).to.equal(undefined);
    expect(back.issues).to.deep.equal([]);
    expect(fieldsOf(back.batches[0]!.header)[11]).to.equal('B-1');
    expect(Hl7Message.parse(back.messages[0]!).get('MSA-2')).to.equal('M9');
  });

  describe('corpus batch files', function () {
    if (!corpusPresent) {
      it('skipped: corpus not found at ' + CORPUS_DIR);
      return;
    }
    for (const name of ['nodeclient_batch_FHS_BHS_BTS_FTS.hl7', 'mirth_batch_FHS_BHS_CRLF_notrailer.hl7']) {
      it(`${name}: one AA per message, in order, in an answer that splits back cleanly`, () => {
        const file = splitBatch(readFileSync(join(CORPUS_DIR, 'batch', name), 'utf8'));
        const batches = file.batches.map((b) => ({ header: b.header, acks: b.messages.map((m) => buildAck(Hl7Message.parse(m), { code: 'AA' })) }));
        const back = splitBatch(buildBatchAck({ fileHeader: file.fileHeader, batches }));
        expect(back.issues).to.deep.equal([]);
        expect(back.messages.map((m) => Hl7Message.parse(m).get('MSA-2'))).to.deep.equal(file.messages.map((m) => Hl7Message.parse(m).controlId));
      });
    }
  });
});
