// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { Hl7Message } from '../../../../engine/message-formats/hl7v2/index.ts';
import { mapAdministrativeSex, mapPatientClass, mapSegmentAction } from '../../../../transforms/lib/code-maps.ts';
import { pickIdentifier, readCoded, readLocation, text } from '../../../../transforms/lib/hl7-fields.ts';
import { formatNameFamilyFirst, formatNameGivenFirst, readPatientName, readProvider } from '../../../../transforms/lib/person-name.ts';

const msg = (...segments: string[]): Hl7Message =>
  Hl7Message.parse(['MSH|^~\\&|APP|FAC|||20260101000000-0500||ADT^A01|C1|P|2.5.1', ...segments].join('\r'));

describe('transforms/lib HL7 readers', () => {
  it('text reads the HL7 null "" and spaces-only values as absent, and trims padding', () => {
    const m = msg('PID|1||X1||""||  19580412  ');
    expect(text(m, 'PID-5')).to.equal(undefined);
    expect(text(m, 'PID-7')).to.equal('19580412');
    expect(text(m, 'PID-9')).to.equal(undefined);
  });

  it('pickIdentifier takes the MR repetition even when it is not first', () => {
    const m = msg('PID|1||123-45-0000^^^SSA^SS~E100^^^RVH^MR~900^^^EMPI^PI');
    expect(pickIdentifier(m, 'PID-3', 'MR')).to.deep.equal({ id: 'E100', assigningAuthority: 'RVH', typeCode: 'MR' });
  });

  it('pickIdentifier falls back to the first repetition with an id', () => {
    const m = msg('PID|1||ABC^^^HOSP~DEF^^^OTHER^PI');
    expect(pickIdentifier(m, 'PID-3', 'MR')).to.deep.equal({ id: 'ABC', assigningAuthority: 'HOSP' });
    expect(pickIdentifier(msg('PID|1'), 'PID-3', 'MR')).to.equal(undefined);
  });

  it('readPatientName takes the surname subcomponent and the legal-name repetition', () => {
    const m = msg('PID|1||X||Josh&&&&Bing^^stanley^^^^A~EVERYMAN&&&&Aniston^ADAM^A^III^Dr.^^L');
    expect(readPatientName(m, 'PID-5')).to.deep.equal({ family: 'EVERYMAN', given: 'ADAM', middle: 'A' });
  });

  it('readPatientName decodes escapes and keeps non-ASCII letters', () => {
    const m = msg('PID|1||X||Ødegård\\T\\Núñez^Zoë');
    expect(readPatientName(m, 'PID-5')).to.deep.equal({ family: 'Ødegård&Núñez', given: 'Zoë' });
  });

  it('readProvider reads XCN id and name (family as FN.1)', () => {
    const m = msg('PV1|1|I|||||10041^HARTWELL&&&&Smith^MIRIAM^R^^^MD');
    expect(readProvider(m, 'PV1-7')).to.deep.equal({ id: '10041', name: { family: 'HARTWELL', given: 'MIRIAM', middle: 'R' } });
    expect(readProvider(msg('PV1|1|I'), 'PV1-7')).to.equal(undefined);
  });

  it('formats names family-first and given-first', () => {
    expect(formatNameFamilyFirst({ family: 'Trần', given: 'Ngọc Ánh' })).to.equal('Trần, Ngọc Ánh');
    expect(formatNameGivenFirst({ family: 'PRESCOTT', given: 'HOLLIS', middle: 'J' })).to.equal('HOLLIS J PRESCOTT');
    expect(formatNameFamilyFirst({ family: 'Cher' })).to.equal('Cher');
  });

  it('readLocation and readCoded read PL and CE parts, decoding escapes', () => {
    const m = msg('PV1|1|O|CARDCL^EX4^^RVAC&1.2.3&ISO^^^^^Cardiology \\T\\ Vascular Clinic', 'AIS|1|A|45378^Colonoscopy \\T\\ biopsy^CPT');
    expect(readLocation(m, 'PV1-3')).to.deep.equal({ pointOfCare: 'CARDCL', room: 'EX4', facility: 'RVAC', description: 'Cardiology & Vascular Clinic' });
    expect(readCoded(m, 'AIS-3')).to.deep.equal({ code: '45378', text: 'Colonoscopy & biopsy', system: 'CPT' });
    expect(readLocation(m, 'PV1-6')).to.equal(undefined);
  });

  it('maps patient class, sex and segment action codes, unknown codes to unknown/undefined', () => {
    expect(['I', 'O', 'E', 'P', 'R', 'B', 'C', 'N', 'Z', undefined].map(mapPatientClass)).to.deep.equal([
      'inpatient', 'outpatient', 'emergency', 'preadmit', 'recurring', 'obstetrics', 'commercial', 'not-applicable', 'unknown', 'unknown',
    ]);
    expect(['M', 'F', 'O', 'A', 'U', 'N', undefined].map(mapAdministrativeSex)).to.deep.equal(['male', 'female', 'other', 'other', 'unknown', 'unknown', 'unknown']);
    expect(['A', 'D', 'U', 'X', undefined].map(mapSegmentAction)).to.deep.equal(['added', 'removed', 'updated', undefined, undefined]);
  });
});
