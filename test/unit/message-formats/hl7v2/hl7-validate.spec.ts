// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { Hl7Message, isKnownHl7Version, validateStructure, validationAckError } from '../../../../engine/message-formats/hl7v2/index.ts';
import { CORPUS_DIR, corpusFiles, corpusPresent } from './corpus.ts';

const codes = (text: string): string[] => validateStructure(Hl7Message.parse(text)).map((i) => i.code);

describe('hl7v2 validateStructure', () => {
  it('a complete ADT^A04 has no issues', () => {
    expect(codes('MSH|^~\\&|A|B|C|D|1||ADT^A04|X|P|2.5\rEVN|A04\rPID|1\rPV1|1')).to.deep.equal([]);
  });
  it('reports missing MSH-9, MSH-9.2, MSH-10, MSH-12', () => {
    expect(codes('MSH|^~\\&|A|B|C|D|1||||P|')).to.deep.equal(['OSPREY_ERR_HL7_MISSING_FIELD', 'OSPREY_ERR_HL7_MISSING_FIELD', 'OSPREY_ERR_HL7_MISSING_FIELD']);
    expect(codes('MSH|^~\\&|A|B|C|D|1||ORU|1|P|2.5')).to.deep.equal(['OSPREY_ERR_HL7_MISSING_FIELD']);
  });
  it('knows versions 2.1 … 2.9 and local z-variants', () => {
    expect(['2.1', '2.3.1', '2.5.1', '2.7.1', '2.8', '2.3.z'].every(isKnownHl7Version)).to.equal(true);
    expect(['1.0', '3.0', '2.5.9', 'x'].some(isKnownHl7Version)).to.equal(false);
    expect(codes('MSH|^~\\&|A|B|C|D|1||ORU^R01|1|P|3.0')).to.deep.equal(['OSPREY_ERR_HL7_UNKNOWN_VERSION']);
  });
  it('reports malformed segment ids without quoting them', () => {
    const issues = validateStructure(Hl7Message.parse('MSH|^~\\&|A|B|C|D|1||ORU^R01|1|P|2.5\rSmith, John|x\rPV|1'));
    expect(issues.map((i) => i.code)).to.deep.equal(['OSPREY_ERR_HL7_BAD_SEGMENT', 'OSPREY_ERR_HL7_BAD_SEGMENT']);
    expect(issues[0]?.detail).to.not.include('Smith');
  });
  it('ADT/SIU required segments: missing, out of order, repeated; a second MSH', () => {
    expect(codes('MSH|^~\\&|A|B|C|D|1||ADT^A01|X|P|2.5\rPID|1\rPV1|1')).to.deep.equal(['OSPREY_ERR_HL7_STRUCTURE']);
    const order = validateStructure(Hl7Message.parse('MSH|^~\\&|A|B|C|D|1||ADT^A08|X|P|2.5\rPID|1\rEVN|A08\rPV1|1'));
    expect(order.map((i) => i.detail).join()).to.match(/out of order/);
    expect(codes('MSH|^~\\&|A|B|C|D|1||ADT^A03|X|P|2.5\rEVN|1\rPID|1\rPID|2\rPV1|1')).to.deep.equal(['OSPREY_ERR_HL7_STRUCTURE']);
    expect(codes('MSH|^~\\&|A|B|C|D|1||SIU^S12|X|P|2.5\rSCH|1\rPID|1')).to.deep.equal(['OSPREY_ERR_HL7_STRUCTURE']);
    expect(codes('MSH|^~\\&|A|B|C|D|1||SIU^S14|X|P|2.5\rSCH|1\rRGS|1\rAIL|1\rRGS|2')).to.deep.equal([]);
    expect(codes('MSH|^~\\&|A|B|C|D|1||ORU^R01|X|P|2.5\rMSH|^~\\&|A')).to.deep.equal(['OSPREY_ERR_HL7_STRUCTURE']);
  });

  it('locates each issue (segment, field) with its HL7 table 0357 code', () => {
    const where = (text: string) => validateStructure(Hl7Message.parse(text)).map((i) => [i.hl7ErrorCode, i.location]);
    expect(where('MSH|^~\\&|A|B|C|D|1||ADT|X|P|2.5')).to.deep.equal([['101', { segment: 'MSH', field: 9, component: 2 }]]);
    expect(where('MSH|^~\\&|A|B|C|D|1||ORU^R01||P|')).to.deep.equal([
      ['101', { segment: 'MSH', field: 10 }],
      ['101', { segment: 'MSH', field: 12 }],
    ]);
    expect(where('MSH|^~\\&|A|B|C|D|1||ORU^R01|1|P|3.0')).to.deep.equal([['203', { segment: 'MSH', field: 12 }]]);
    expect(where('MSH|^~\\&|A|B|C|D|1||ADT^A01|X|P|2.5\rPID|1')).to.deep.equal([
      ['100', { segment: 'EVN' }],
      ['100', { segment: 'PV1' }],
    ]);
    expect(where('MSH|^~\\&|A|B|C|D|1||ADT^A03|X|P|2.5\rEVN|1\rPID|1\rPID|2\rPV1|1')).to.deep.equal([['100', { segment: 'PID', sequence: 2 }]]);
    // A line that is not a segment: its "id" is data, so no location names it.
    expect(where('MSH|^~\\&|A|B|C|D|1||ORU^R01|X|P|2.5\rSmith, John')).to.deep.equal([['100', undefined]]);
  });

  it('validationAckError: every issue in the detail, the first one located', () => {
    expect(validationAckError(Hl7Message.parse('MSH|^~\\&|A|B|C|D|1||ADT^A04|X|P|2.5\rEVN|A04\rPID|1\rPV1|1'))).to.equal(undefined);
    const e = validationAckError(Hl7Message.parse('MSH|^~\\&|A|B|C|D|1||ADT^A01|X|P|2.5\rPID|1'));
    expect(e).to.deep.equal({
      code: 'OSPREY_ERR_PIPELINE_VALIDATION',
      detail: 'ADT^A01 requires MSH, EVN, PID, PV1: EVN is missing.; ADT^A01 requires MSH, EVN, PID, PV1: PV1 is missing.',
      hl7ErrorCode: '100',
      location: { segment: 'EVN' },
    });
  });

  describe('corpus: the ADT/SIU types Osprey ships validate clean', function () {
    if (!corpusPresent) {
      it('skipped: corpus not found at ' + CORPUS_DIR);
      return;
    }
    const shipped = /^(ADT\^A(01|03|04|08|11|13)|SIU\^S(12|13|14|15|17|26))$/;
    for (const file of [...corpusFiles('adt'), ...corpusFiles('siu')]) {
      const msg = Hl7Message.parse(readFileSync(file, 'utf8'));
      if (!shipped.test(msg.messageType ?? '')) continue;
      it(relative(CORPUS_DIR, file), () => {
        expect(validateStructure(msg)).to.deep.equal([]);
      });
    }
  });
});
