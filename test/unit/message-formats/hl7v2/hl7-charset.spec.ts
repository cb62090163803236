// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import iconv from 'iconv-lite';
import { readFileSync } from 'node:fs';
import { Hl7Message, decodeHl7, encodeHl7, findMsh18, hl7CharsetToEncoding } from '../../../../engine/message-formats/hl7v2/index.ts';
import { CORPUS_DIR, corpusPresent } from './corpus.ts';

const header = (msh18: string): string => `MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5||||||${msh18}`;

describe('hl7v2 decodeHl7 (charsets)', () => {
  it('maps HL7 table 0211 names to iconv encodings', () => {
    const cases: Record<string, string> = {
      ASCII: 'us-ascii',
      '8859/1': 'iso-8859-1',
      '8859/2': 'iso-8859-2',
      '8859/9': 'iso-8859-9',
      '8859/15': 'iso-8859-15',
      'UNICODE UTF-8': 'utf-8',
      UNICODE: 'utf-8',
      'ISO IR6': 'us-ascii',
      'ISO IR100': 'iso-8859-1',
      'GB 18030': 'gb18030',
      'GB 18030-2000': 'gb18030',
      'KS X 1001': 'euc-kr',
      'BIG-5': 'big5',
      'windows-1252': 'windows-1252',
      ' unicode utf-8 ': 'utf-8',
    };
    for (const [name, enc] of Object.entries(cases)) expect(hl7CharsetToEncoding(name), name).to.equal(enc);
    expect(hl7CharsetToEncoding('KLINGON-7')).to.equal(undefined);
  });

  it('finds MSH-18 in raw bytes (first repetition), after a BOM or a batch header', () => {
    expect(findMsh18(Buffer.from(header('8859/1~UNICODE UTF-8') + '\rPID|1'))).to.equal('8859/1');
    expect(findMsh18(Buffer.from('FHS|^~\\&\nBHS|^~\\&\n' + header('UNICODE UTF-8')))).to.equal('UNICODE UTF-8');
    expect(findMsh18(Buffer.from(header('')))).to.equal(undefined);
    expect(findMsh18(Buffer.from('MSH|^~\\&|A|B\rPID|1|2|3|4|5|6|7|8|9|10|11|12|13|14|15|16|17|18'))).to.equal(undefined);
  });

  it('decodes 8859/1 bytes named by MSH-18', () => {
    const text = header('8859/1') + '\rPID|1||1||MÜLLER^Zoë^Ç';
    const raw = iconv.encode(text, 'latin1');
    expect(raw.includes(0xdc)).to.equal(true);
    const out = decodeHl7(raw, 'UTF-8');
    expect(out.error).to.equal(undefined);
    expect(out.encoding).to.equal('iso-8859-1');
    expect(Hl7Message.parse(out.text).get('PID-5.2')).to.equal('Zoë');
  });

  it('the same Latin-1 bytes without MSH-18 and a UTF-8 fallback are an OSPREY_ERR_HL7_CHARSET error, text still returned', () => {
    const raw = iconv.encode(header('') + '\rPID|1||1||MÜLLER', 'latin1');
    const out = decodeHl7(raw, 'UTF-8');
    expect(out.error?.code).to.equal('OSPREY_ERR_HL7_CHARSET');
    expect(out.error?.detail).to.not.include('MÜLLER');
    expect(out.text).to.include('M\uFFFDLLER');
    const w = decodeHl7(raw, 'windows-1252');
    expect(w.encoding).to.equal('windows-1252');
    expect(w.error).to.equal(undefined);
  });

  it('an unknown MSH-18 is reported and decoded with the fallback', () => {
    const out = decodeHl7(Buffer.from(header('KLINGON-7') + '\rPID|1'), 'UTF-8');
    expect(out.error?.code).to.equal('OSPREY_ERR_HL7_CHARSET');
    expect(out.error?.detail).to.include('KLINGON-7');
    expect(out.encoding).to.equal('utf-8');
    expect(Hl7Message.parse(out.text).get('PID-1')).to.equal('1');
  });

  it('MSH-18 ASCII with 8-bit bytes falls back without an error (senders mislabel)', () => {
    const raw = iconv.encode(header('ASCII') + '\rPID|1||1||Zoë', 'latin1');
    const out = decodeHl7(raw, 'ISO-8859-1');
    expect(out.encoding).to.equal('iso-8859-1');
    expect(out.error).to.equal(undefined);
    expect(out.text).to.include('Zoë');
  });

  it('a UTF-8 BOM decides UTF-8 and is removed', () => {
    const raw = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(header('') + '\rPID|1||1||Zoë', 'utf8')]);
    const out = decodeHl7(raw, 'ISO-8859-1');
    expect(out.encoding).to.equal('utf-8');
    expect(out.text.startsWith('MSH')).to.equal(true);
    expect(out.text).to.include('Zoë');
  });

  it('UTF-16 with a BOM', () => {
    const raw = Buffer.concat([Buffer.from([0xff, 0xfe]), iconv.encode(header('UNICODE UTF-16') + '\rPID|1||Zoë', 'utf-16le')]);
    const out = decodeHl7(raw, 'UTF-8');
    expect(out.encoding).to.equal('utf-16le');
    expect(Hl7Message.parse(out.text).get('PID-3')).to.equal('Zoë');
  });

  it('encodeHl7 writes an ACK back in the message encoding', () => {
    expect(encodeHl7('Zoë', 'iso-8859-1')).to.deep.equal(Buffer.from([0x5a, 0x6f, 0xeb]));
    expect(encodeHl7('Zoë', 'utf-8').length).to.equal(4);
  });

  describe('corpus charsets', function () {
    if (!corpusPresent) {
      it('skipped: corpus not found at ' + CORPUS_DIR);
      return;
    }
    it('8859/1, UNICODE UTF-8, ASCII and UTF-8 BOM files decode as declared', () => {
      const dec = (p: string): ReturnType<typeof decodeHl7> => decodeHl7(readFileSync(`${CORPUS_DIR}/${p}`), 'UTF-8');
      expect(dec('other/hapi_cv04_chem_ERP_Z99_8859.hl7').encoding).to.equal('iso-8859-1');
      expect(dec('other/nhc_mirth_mfn_8859.hl7').encoding).to.equal('iso-8859-1');
      expect(dec('edge-charset/fc_OUL-R23-01_UTF8.hl7').encoding).to.equal('utf-8');
      expect(dec('mdm/fc_MDM-T02-03_v23_ASCII.hl7').encoding).to.equal('us-ascii');
      const bom = dec('adt/fc_ADT01-23_v23.hl7');
      expect(bom.encoding).to.equal('utf-8');
      expect(bom.error).to.equal(undefined);
      expect(bom.text.charCodeAt(0)).to.not.equal(0xfeff);
      const nonAscii = dec('edge-charset/rh_edge-non-ascii_utf8.hl7');
      expect(nonAscii.error).to.equal(undefined);
      expect(nonAscii.text).to.match(/[^\x00-\x7f]/);
    });
  });
});
