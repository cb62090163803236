// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { basename, relative } from 'node:path';
import { Hl7Message, decodeHl7, normalizeHl7Text, validateStructure } from '../../../../engine/message-formats/hl7v2/index.ts';
import { OspreyError } from '../../../../engine/errors/error-codes.ts';
import { CORPUS_DIR, corpusFiles, corpusPresent, expectedNormalised, singleMessageFiles } from './corpus.ts';

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

describe('hl7v2 Hl7Message', () => {
  describe('corpus: every single message parses and round-trips byte-identically after normalisation', function () {
    if (!corpusPresent) {
      it('skipped: corpus not found at ' + CORPUS_DIR);
      return;
    }
    const files = singleMessageFiles();
    it('finds the corpus single messages', () => {
      expect(files.length).to.be.greaterThan(80);
    });
    for (const file of files) {
      it(relative(CORPUS_DIR, file), () => {
        const raw = readFileSync(file);
        // As the file text (BOM and LF kept) …
        const text = raw.toString('utf8');
        const msg = Hl7Message.parse(text);
        expect(msg.toString()).to.equal(expectedNormalised(text));
        expect(msg.toString().endsWith('\r')).to.equal(false);
        // … and as the listener sees it (decoded by MSH-18).
        const decoded = decodeHl7(raw, 'UTF-8');
        expect(decoded.error).to.equal(undefined);
        const again = Hl7Message.parse(decoded.text);
        expect(again.toString()).to.equal(expectedNormalised(decoded.text));
        expect(msg.get('MSH-1')).to.equal(msg.delimiters.field);
        expect(msg.messageType).to.match(/^[A-Z0-9]{3}(\^[A-Z0-9_]+)?$/);
        expect(msg.segmentIds()[0]).to.equal('MSH');
      });
    }
  });

  describe('corpus: malformed files fail with a coded error or parse with validation issues', function () {
    if (!corpusPresent) {
      it('skipped: corpus not found at ' + CORPUS_DIR);
      return;
    }
    const expected: Record<string, { throws?: string; issues?: string[] }> = {
      'nhc_bad-phone.hl7': { issues: ['OSPREY_ERR_HL7_STRUCTURE'] }, // SIU^S12 with no SCH/RGS
      'nhc_healthcareit_adt_space_separated.hl7': { issues: ['OSPREY_ERR_HL7_STRUCTURE'] }, // one huge MSH: no EVN/PID/PV1
      'rh_invalid-missing-msh.hl7': { throws: 'OSPREY_ERR_HL7_NO_MSH' },
      'rh_invalid-segment-header-length.hl7': { issues: ['OSPREY_ERR_HL7_BAD_SEGMENT', 'OSPREY_ERR_HL7_STRUCTURE'] },
      'rh_invalid-wrong-version.hl7': { issues: ['OSPREY_ERR_HL7_UNKNOWN_VERSION', 'OSPREY_ERR_HL7_STRUCTURE'] },
    };
    for (const file of corpusFiles('malformed')) {
      const name = basename(file);
      it(name, () => {
        const want = expected[name];
        expect(want, `no expectation written for ${name}`).to.not.equal(undefined);
        const text = readFileSync(file, 'utf8');
        if (want?.throws !== undefined) {
          const err = expectCode(() => Hl7Message.parse(text), want.throws);
          expect(err.message).to.match(/MSH/);
        } else {
          const issues = validateStructure(Hl7Message.parse(text));
          expect([...new Set(issues.map((i) => i.code))].sort()).to.deep.equal([...(want?.issues ?? [])].sort());
          for (const i of issues) expect(i.detail).to.not.match(/DUCK|Someone|DOE/); // never quotes patient data
        }
      });
    }
  });

  describe('parse errors', () => {
    it('empty text → OSPREY_ERR_HL7_EMPTY', () => {
      expectCode(() => Hl7Message.parse(''), 'OSPREY_ERR_HL7_EMPTY');
      expectCode(() => Hl7Message.parse('\uFEFF\r\n\n  \r'), 'OSPREY_ERR_HL7_EMPTY');
    });
    it('no MSH → OSPREY_ERR_HL7_NO_MSH, naming a batch header', () => {
      expectCode(() => Hl7Message.parse('PID|1||123'), 'OSPREY_ERR_HL7_NO_MSH');
      const err = expectCode(() => Hl7Message.parse('FHS|^~\\&|A\rMSH|^~\\&|X'), 'OSPREY_ERR_HL7_NO_MSH');
      expect(err.message).to.match(/splitBatch/);
    });
    it('does not quote non-segment text in the error', () => {
      const err = expectCode(() => Hl7Message.parse('John Smith 1970'), 'OSPREY_ERR_HL7_NO_MSH');
      expect(err.message).to.not.include('Smith');
    });
    it('MSH too short → OSPREY_ERR_HL7_BAD_MSH', () => {
      expectCode(() => Hl7Message.parse('MSH|^~'), 'OSPREY_ERR_HL7_BAD_MSH');
    });
    it('bad delimiters → OSPREY_ERR_HL7_BAD_DELIMITERS', () => {
      expectCode(() => Hl7Message.parse('MSHA^~\\&A'), 'OSPREY_ERR_HL7_BAD_DELIMITERS'); // alphanumeric field separator
      expectCode(() => Hl7Message.parse('MSH|^^\\&|A'), 'OSPREY_ERR_HL7_BAD_DELIMITERS'); // repeated
      expectCode(() => Hl7Message.parse('MSH|^~|A|B'), 'OSPREY_ERR_HL7_BAD_DELIMITERS'); // 2 encoding characters
      expectCode(() => Hl7Message.parse('MSH|^~\\&#$%|A'), 'OSPREY_ERR_HL7_BAD_DELIMITERS'); // 6
      expectCode(() => Hl7Message.parse('MSH|^ \\&|A'), 'OSPREY_ERR_HL7_BAD_DELIMITERS'); // white space
    });
    it('MSH-2 with its escape character doubled (^~\\\\&) is read as ^~\\& and flagged, the text kept as received', () => {
      const text = 'MSH|^~\\\\&|A|B|C|D|20260101||ADT^A01|DBL-1|P|2.5\rPID|1||M\\T\\1^^^H||DOE&ANN^JO';
      const m = Hl7Message.parse(text);
      expect(m.delimiters).to.deep.include({ field: '|', component: '^', repetition: '~', escape: '\\', subcomponent: '&', truncation: undefined });
      expect(m.leniencies).to.deep.equal(['msh2-escape-doubled']);
      expect(m.get('MSH-10')).to.equal('DBL-1');
      expect(m.get('MSH-9.2')).to.equal('A01');
      expect(m.get('PID-3.1')).to.equal('M&1'); // \T\ is the subcomponent separator's escape
      expect(m.get('PID-5.1.2')).to.equal('ANN');
      expect(m.toString()).to.equal(text);
      expect(Hl7Message.parse('MSH|^~\\&|A').leniencies).to.deep.equal([]);
      // Only the escape doubled is tolerated; any other repeat is still refused.
      expectCode(() => Hl7Message.parse('MSH|^~~\\&|A'), 'OSPREY_ERR_HL7_BAD_DELIMITERS');
      expectCode(() => Hl7Message.parse('MSH|^~\\\\\\&|A'), 'OSPREY_ERR_HL7_BAD_DELIMITERS');
    });
    it('strict mode refuses malformed segment ids → OSPREY_ERR_HL7_BAD_SEGMENT', () => {
      const text = 'MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5\rPIDX|1';
      expect(() => Hl7Message.parse(text)).to.not.throw();
      expectCode(() => Hl7Message.parse(text, { strict: true }), 'OSPREY_ERR_HL7_BAD_SEGMENT');
    });
  });

  describe('normalisation', () => {
    const body = 'MSH|^~\\&|A|B|C|D|20260101||ADT^A01|X1|P|2.5\rPID|1||123 ';
    it('accepts CR, LF, CRLF and mixed terminators, a BOM and leading blank lines', () => {
      for (const text of [
        body,
        body + '\r',
        body.replace(/\r/g, '\n') + '\n',
        body.replace(/\r/g, '\r\n') + '\r\n\r\n',
        '\uFEFF' + body + '\n',
        '\r\n \n' + body,
      ]) {
        expect(Hl7Message.parse(text).toString()).to.equal(body);
      }
    });
    it('keeps trailing spaces of the last segment and blank lines between segments', () => {
      const text = 'MSH|^~\\&|A\r\rPID|1|x  \r';
      const msg = Hl7Message.parse(text);
      expect(msg.toString()).to.equal('MSH|^~\\&|A\r\rPID|1|x  ');
      expect(msg.segmentIds()).to.deep.equal(['MSH', 'PID']);
      expect(msg.get('PID-2')).to.equal('x  ');
      expect(normalizeHl7Text(text)).to.equal(msg.toString());
    });
  });

  describe('header getters', () => {
    it('messageType, controlId, version, delimiters', () => {
      const msg = Hl7Message.parse('MSH|^~\\&|APP^1.2&ISO|FAC|R|RF|20260101||SIU^S12^SIU_S12|CTL-9|P|2.5.1^USA');
      expect(msg.messageType).to.equal('SIU^S12');
      expect(msg.controlId).to.equal('CTL-9');
      expect(msg.version).to.equal('2.5.1');
      expect(msg.delimiters).to.deep.equal({ field: '|', component: '^', repetition: '~', escape: '\\', subcomponent: '&', truncation: undefined });
      expect(msg.get('MSH-1')).to.equal('|');
      expect(msg.get('MSH-2')).to.equal('^~\\&');
      expect(msg.get('MSH-3')).to.equal('APP^1.2&ISO');
      expect(msg.get('MSH-3.2.2')).to.equal('ISO');
      expect(msg.get('MSH-12')).to.equal('2.5.1^USA');
    });
    it('an ACK with an empty trigger has messageType "ACK"', () => {
      expect(Hl7Message.parse('MSH|^~\\}|A|B|C|D|1993||ACK^|5|P|2.1').messageType).to.equal('ACK');
    });
  });

  describe('paths', () => {
    const text = [
      'MSH|^~\\&|SEND|FAC|RECV|FAC|20260101120000||ADT^A01^ADT_A01|MSG1|P|2.5',
      'PID|1||111^^^MRN~222^^^SSN&2.16.840&ISO~||DOE\\T\\SMITH^JOHN\\S\\JANE||""|M||""^""|1 MAIN\\F\\ST\\X0D0A\\x\\.br\\y\\H\\z\\N\\|||',
      'OBX|1|TX|A||first\\E\\one',
      'OBX|2|TX|B||',
      'OBX|3|TX|C||third',
      'ZPD|1|custom^value',
    ].join('\r');
    const msg = Hl7Message.parse(text);

    it('reads fields, components and subcomponents, 1-based', () => {
      expect(msg.get('PID-1')).to.equal('1');
      expect(msg.get('PID-3.1')).to.equal('111');
      expect(msg.get('PID-3[2].1')).to.equal('222');
      expect(msg.get('PID-3[2].4.2')).to.equal('2.16.840');
      expect(msg.get('PID-3[2].4')).to.equal('SSN&2.16.840&ISO'); // composite: raw
      expect(msg.get('PID-3')).to.equal('111^^^MRN'); // first repetition, composite: raw
      expect(msg.get('PID-3.4')).to.equal('MRN');
    });
    it('decodes escapes on read, composites stay as sent', () => {
      expect(msg.get('PID-5.1')).to.equal('DOE&SMITH');
      expect(msg.get('PID-5.2')).to.equal('JOHN^JANE');
      expect(msg.get('PID-5')).to.equal('DOE\\T\\SMITH^JOHN\\S\\JANE');
      expect(msg.get('PID-11')).to.equal('1 MAIN|ST\r\nx\\.br\\y\\H\\z\\N\\');
      expect(msg.get('OBX-5')).to.equal('first\\one');
    });
    it('null "" is null; absent and empty are undefined', () => {
      expect(msg.get('PID-7')).to.equal(null);
      expect(msg.get('PID-10.1')).to.equal(null);
      expect(msg.get('PID-10.3')).to.equal(undefined);
      expect(msg.get('PID-2')).to.equal(undefined);
      expect(msg.get('PID-40')).to.equal(undefined);
      expect(msg.get('PID-3[3]')).to.equal(undefined);
      expect(msg.get('PID-3[9].1')).to.equal(undefined);
      expect(msg.get('PID-1.2')).to.equal(undefined);
      expect(msg.get('PV1-2')).to.equal(undefined);
      expect(msg.get('OBX[2]-5')).to.equal(undefined);
      expect(msg.get('OBX[9]-5')).to.equal(undefined);
    });
    it('segment occurrences, getAll and count', () => {
      expect(msg.get('OBX[3]-5')).to.equal('third');
      expect(msg.get('OBX-3')).to.equal('A');
      expect(msg.getAll('OBX-5')).to.deep.equal(['first\\one', 'third']);
      expect(msg.getAll('PID-3.1')).to.deep.equal(['111', '222']);
      expect(msg.getAll('PID-3[2].1')).to.deep.equal(['222']);
      expect(msg.getAll('OBX[3]-3')).to.deep.equal(['C']);
      expect(msg.getAll('PID-7')).to.deep.equal([null]);
      expect(msg.getAll('NTE-1')).to.deep.equal([]);
      expect(msg.count('OBX')).to.equal(3);
      expect(msg.count('NTE')).to.equal(0);
      expect(msg.segmentIds()).to.deep.equal(['MSH', 'PID', 'OBX', 'OBX', 'OBX', 'ZPD']);
    });
    it('Z-segments read like any other', () => {
      expect(msg.get('ZPD-2.2')).to.equal('value');
    });
    it('a path to a segment returns the segment as sent', () => {
      expect(msg.get('OBX[3]')).to.equal('OBX|3|TX|C||third');
    });
    it('bad paths throw OSPREY_ERR_HL7_BAD_PATH', () => {
      for (const p of ['pid-5', 'PID-0', 'PID-5.0', 'PID[0]-1', 'PID5', 'PID-5..1', 'PID-3[x]', 'MSH-2.1', 'MSH-1[1]', '', 'PID-5.1.1.1']) {
        expectCode(() => msg.get(p), 'OSPREY_ERR_HL7_BAD_PATH');
      }
    });
    it('\\P\\ is the truncation character only when one applies', () => {
      const v27 = Hl7Message.parse('MSH|^~\\&#|A|B|C|D|1||ADT^A01|1|P|2.7\rNTE|1||cut\\P\\');
      expect(v27.delimiters.truncation).to.equal('#');
      expect(v27.get('NTE-3')).to.equal('cut#');
      const v28 = Hl7Message.parse('MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.8\rNTE|1||cut\\P\\');
      expect(v28.get('NTE-3')).to.equal('cut#');
      const v25 = Hl7Message.parse('MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\rNTE|1||cut\\P\\');
      expect(v25.get('NTE-3')).to.equal('cut\\P\\');
    });
  });

  describe('custom delimiters', function () {
    if (!corpusPresent) {
      it('skipped: corpus not found at ' + CORPUS_DIR);
      return;
    }
    const read = (category: string, name: string): Hl7Message => Hl7Message.parse(readFileSync(`${CORPUS_DIR}/${category}/${name}`, 'utf8'));
    it('#!@%* (all five non-default)', () => {
      const m = read('edge-encoding-chars', 'rh_edge-custom-delimiters.hl7');
      expect(m.get('MSH-1')).to.equal('#');
      expect(m.get('MSH-2')).to.equal('!@%*');
      expect(m.messageType).to.equal('ADT^A01');
      expect(m.get('PID-3.1')).to.equal('12345');
      expect(m.get('PID-3.4')).to.equal('MRN');
      expect(m.get('PID-5.2')).to.equal('JOHN');
    });
    it('field separator ^ (components ~, repetitions |)', () => {
      const m = read('edge-encoding-chars', 'hapi_segmentfinder_a24_caret_fieldsep.hl7');
      expect(m.messageType).to.equal('ADT^A24');
      expect(m.count('PID')).to.equal(2);
      expect(m.get('PID[2]-1')).to.equal('2');
      expect(m.get('PID-3.5')).to.equal('NI');
      expect(m.get('PID-3.6.2')).to.equal('200M');
      expect(m.get('PID-3.4.1')).to.equal('FOO');
      expect(m.get('PID-5.2')).to.equal('JOHN');
    });
    it('subcomponent separator } and 3-character MSH-2', () => {
      const brace = read('edge-encoding-chars', 'hapi_messages_msg02_BAR_brace.hl7');
      expect(brace.delimiters.subcomponent).to.equal('}');
      expect(brace.get('PID-11.2')).to.equal(null);
      const three = read('edge-encoding-chars', 'hapi_messages_msg04_BAR_3chars.hl7');
      expect(three.get('MSH-2')).to.equal('^~}');
      expect(three.delimiters.subcomponent).to.equal(undefined);
      expect(three.get('PID-5.1')).to.equal('CRESWELL');
    });
    it('repetitions (12 in PID-13) and subcomponents (Mirth OBX-2)', () => {
      const reps = read('edge-repetitions', 'rh_edge-field-repetitions.hl7');
      expect(reps.getAll('PID-13')).to.have.length(12);
      expect(reps.get('PID-13[12]')).to.equal('555-0012');
      const subs = read('edge-repetitions', 'mirth_subcomponents.hl7');
      expect(subs.get('OBX-2.1.3')).to.equal('foo');
      expect(subs.get('OBX-2.1.1')).to.equal(undefined);
      expect(subs.get('OBX-2.2.2')).to.equal('bar2');
      expect(subs.get('OBX-2.3')).to.equal('baz');
      const leading = read('adt', 'hapi_adt_a03_v25.hl7');
      expect(leading.getAll('PID-3.5')).to.deep.equal(['PK', 'CF', 'SSN', 'TEAM']);
      expect(leading.getAll('PID-3.1')).to.deep.equal(['5520255', 'ZZZZZZ83M64Z148R', 'ZZZZZZ83M64Z148R']);
      expect(leading.get('PID-3[4].5')).to.equal('TEAM');
    });
    it('escapes in the corpus', () => {
      const m = read('edge-escapes', 'rh_edge-escaped-delimiters.hl7');
      expect(m.get('PID-5.1')).to.equal('DOE&SMITH');
      expect(m.get('PID-5.2')).to.equal('JOHN^JANE');
      expect(m.get('OBX-5')).to.equal('Result contains pipe | and ampersand & and caret ^ and tilde ~ and backslash \\ chars');
    });
    it('Z-segments', () => {
      const m = read('edge-zsegments', 'rh_edge-z-segments.hl7');
      expect(m.segmentIds()).to.deep.equal(['MSH', 'PID', 'ZVN', 'ZPD']);
      expect(m.get('ZVN-3.3')).to.equal('VALUE3');
      expect(m.get('ZPD-5')).to.equal('EXTENDED_FIELD_4');
    });
    it('HL7 nulls in the corpus', () => {
      const m = read('edge-null-empty', 'hapi_messages_msg08_BAR_nulls.hl7');
      expect(m.get('PID-7')).to.equal(null);
      expect(m.get('PID-11.1')).to.equal(null);
      expect(m.get('PID-13')).to.equal(null);
      expect(m.getAll('PID-13')).to.deep.equal([null]);
    });
  });
});
