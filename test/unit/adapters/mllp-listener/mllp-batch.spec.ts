// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import iconv from 'iconv-lite';
import { isBatchFrame, messageByteRanges } from '../../../../adapters/inbound/mllp-listener/index.ts';
import { splitBatch } from '../../../../engine/message-formats/hl7v2/index.ts';

/** The byte slices `messageByteRanges` finds, as latin1 text, given the text the frame decodes to. */
function slices(payload: Buffer, text = payload.toString('latin1')): string[] | undefined {
  const file = splitBatch(text);
  const ranges = messageByteRanges(payload, file.messageLines, text.split(/\r\n|\r|\n/).length);
  return ranges?.map((r) => payload.subarray(r.start, r.end).toString('latin1'));
}

describe('mllp-listener batch frames', () => {
  describe('isBatchFrame', () => {
    const yes = ['FHS|^~\\&|A', 'BHS|^~\\&|A', '\uFEFFFHS|^~\\&', '\r\n  \nBHS|^~\\&', 'BHS'];
    const no = ['MSH|^~\\&|A\rMSH|^~\\&|B', 'FHSX|1', 'BHSA|', 'PID|1', '', 'BH'];
    for (const t of yes) it(`${JSON.stringify(t)} is a batch`, () => expect(isBatchFrame(Buffer.from(t, 'utf8'))).to.equal(true));
    for (const t of no) it(`${JSON.stringify(t)} is not`, () => expect(isBatchFrame(Buffer.from(t, 'utf8'))).to.equal(false));
  });

  describe('messageByteRanges', () => {
    it('keeps each message’s own terminators (CRLF), and leaves out blank lines and envelope segments', () => {
      const payload = Buffer.from('FHS|^~\\&\r\nBHS|^~\\&\r\nMSH|^~\\&|1\r\nPID|1\r\n\r\n \r\nMSH|^~\\&|2\r\nPID|2\r\nBTS|2\r\nFTS|1\r\n', 'latin1');
      expect(slices(payload)).to.deep.equal(['MSH|^~\\&|1\r\nPID|1\r\n', 'MSH|^~\\&|2\r\nPID|2\r\n']);
    });

    it('handles mixed terminators, a last message without one, and a blank line inside a message', () => {
      const payload = Buffer.from('BHS|^~\\&\rMSH|^~\\&|1\nPID|1\r\rPV1|1\r\nMSH|^~\\&|2\rPID|2', 'latin1');
      expect(slices(payload)).to.deep.equal(['MSH|^~\\&|1\nPID|1\r\rPV1|1\r\n', 'MSH|^~\\&|2\rPID|2']);
    });

    it('does not start a message at "MSH" inside a segment', () => {
      const payload = Buffer.from('BHS|^~\\&\rMSH|^~\\&|1\rOBX|1|ST|X||MSH|^~\\&\rMSH|^~\\&|2\rBTS|2', 'latin1');
      expect(slices(payload)).to.deep.equal(['MSH|^~\\&|1\rOBX|1|ST|X||MSH|^~\\&\r', 'MSH|^~\\&|2\r']);
    });

    it('finds 8-bit bytes where they are (ISO-8859-1 names)', () => {
      const text = 'BHS|^~\\&\rMSH|^~\\&|1|||||||||||||||8859/1\rPID|1||X||MÜLLER^JÖRG\rBTS|1';
      const payload = iconv.encode(text, 'latin1');
      expect(slices(payload, iconv.decode(payload, 'latin1'))?.[0]).to.equal('MSH|^~\\&|1|||||||||||||||8859/1\rPID|1||X||MÜLLER^JÖRG\r');
    });

    it('gives up (undefined) when the bytes’ lines are not the text’s (UTF-16)', () => {
      const text = 'BHS|^~\\&\rMSH|^~\\&|1\rBTS|1';
      const payload = Buffer.concat([Buffer.from([0xff, 0xfe]), iconv.encode(text, 'utf-16le')]);
      expect(slices(payload, text)).to.equal(undefined);
    });
  });
});
