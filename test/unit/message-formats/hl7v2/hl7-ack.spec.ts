// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { Hl7Message, buildAck, hl7ErrorCodeFor, newControlId } from '../../../../engine/message-formats/hl7v2/index.ts';
import { CORPUS_DIR, corpusPresent, singleMessageFiles } from './corpus.ts';

const isModern = (v: string | undefined): boolean => {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(v ?? '');
  if (m === null) return true;
  return Number(m[2]) > 3 || (Number(m[2]) === 3 && Number(m[3] ?? 0) >= 1);
};

describe('hl7v2 buildAck', () => {
  describe('corpus: ACK of every single message swaps headers and echoes MSH-10', function () {
    if (!corpusPresent) {
      it('skipped: corpus not found at ' + CORPUS_DIR);
      return;
    }
    for (const file of singleMessageFiles()) {
      it(relative(CORPUS_DIR, file), () => {
        const orig = Hl7Message.parse(readFileSync(file, 'utf8'));
        const ackText = buildAck(orig, { code: 'AA' });
        expect(ackText).to.not.include('\n');
        const ack = Hl7Message.parse(ackText);
        expect(ack.delimiters).to.deep.equal(orig.delimiters);
        expect(ack.rawField('MSH', 3)).to.equal(orig.rawField('MSH', 5) ?? '');
        expect(ack.rawField('MSH', 4)).to.equal(orig.rawField('MSH', 6) ?? '');
        expect(ack.rawField('MSH', 5)).to.equal(orig.rawField('MSH', 3) ?? '');
        expect(ack.rawField('MSH', 6)).to.equal(orig.rawField('MSH', 4) ?? '');
        expect(ack.get('MSH-7')).to.match(/^\d{14}\.\d{3}[+-]\d{4}$/);
        const trigger = orig.get('MSH-9.2') ?? '';
        const c = orig.delimiters.component;
        expect(ack.rawField('MSH', 9)).to.equal(isModern(orig.version) ? `ACK${c}${trigger}${c}ACK` : trigger ? `ACK${c}${trigger}` : 'ACK');
        const id = ack.controlId as string;
        expect(id.length).to.be.within(1, 20);
        expect(id).to.not.equal(orig.controlId);
        expect(ack.rawField('MSH', 11)).to.equal(orig.rawField('MSH', 11) || 'P');
        if (orig.rawField('MSH', 12)) expect(ack.rawField('MSH', 12)).to.equal(orig.rawField('MSH', 12));
        expect(ack.get('MSA-1')).to.equal(orig.rawField('MSH', 15) ? 'CA' : 'AA');
        expect(ack.rawField('MSA', 2)).to.equal(orig.rawField('MSH', 10) ?? '');
        expect(ack.count('ERR')).to.equal(0);
      });
    }
  });

  const v251 = Hl7Message.parse('MSH|^~\\&|EPIC^1.2.3&ISO|HOSP^^L|OSPREY|DC|20260101||ADT^A04^ADT_A01|C-77|T|2.5.1');
  const v23 = Hl7Message.parse('MSH|^~\\&|EPIC|HOSP|OSPREY|DC|20260101||ADT^A04|C-78|P|2.3');

  it('AE on v2.5+: ERR-3 table 0357 code, ERR-4 E, ERR-5 Osprey code, ERR-8 escaped detail', () => {
    const ack = Hl7Message.parse(buildAck(v251, { code: 'AE', error: { code: 'OSPREY_ERR_HL7_MISSING_FIELD', detail: 'PID-3 | empty ^ here' } }));
    expect(ack.get('MSA-1')).to.equal('AE');
    expect(ack.get('MSA-2')).to.equal('C-77');
    expect(ack.get('MSA-3')).to.equal(undefined);
    expect(ack.get('ERR-3.1')).to.equal('101');
    expect(ack.get('ERR-3.3')).to.equal('HL70357');
    expect(ack.get('ERR-4')).to.equal('E');
    expect(ack.get('ERR-5.1')).to.equal('OSPREY_ERR_HL7_MISSING_FIELD');
    expect(ack.get('ERR-8')).to.equal('PID-3 | empty ^ here');
    expect(ack.rawField('MSH', 3)).to.equal('OSPREY');
    expect(ack.rawField('MSH', 5)).to.equal('EPIC^1.2.3&ISO');
    expect(ack.rawField('MSH', 6)).to.equal('HOSP^^L');
    expect(ack.rawField('MSH', 9)).to.equal('ACK^A04^ACK');
    expect(ack.get('MSH-11')).to.equal('T');
  });

  it('AR on v2.3: MSA-3 text and ERR-1, MSH-9 without the structure component', () => {
    const ack = Hl7Message.parse(buildAck(v23, { code: 'AR', error: { code: 'OSPREY_ERR_HL7_UNSUPPORTED_TYPE', detail: 'ADT^A04 is not accepted here' } }));
    expect(ack.rawField('MSH', 9)).to.equal('ACK^A04');
    expect(ack.get('MSA-1')).to.equal('AR');
    expect(ack.get('MSA-3')).to.equal('ADT^A04 is not accepted here');
    expect(ack.get('ERR-1.4.1')).to.equal('200');
    expect(ack.get('ERR-1.4.3')).to.equal('HL70357');
  });

  it('enhanced mode: MSH-15 set → CA/CE/CR; original mode maps them back', () => {
    const enhanced = Hl7Message.parse('MSH|^~\\&|A|B|C|D|1||ADT^A01|E1|P|2.5|||AL|NE');
    expect(Hl7Message.parse(buildAck(enhanced, { code: 'AA' })).get('MSA-1')).to.equal('CA');
    expect(Hl7Message.parse(buildAck(enhanced, { code: 'AE', error: { code: 'X', detail: 'y' } })).get('MSA-1')).to.equal('CE');
    expect(Hl7Message.parse(buildAck(enhanced, { code: 'AR', error: { code: 'X', detail: 'y' } })).get('MSA-1')).to.equal('CR');
    expect(Hl7Message.parse(buildAck(v251, { code: 'CA' })).get('MSA-1')).to.equal('AA');
  });

  it('ERR-2 names the segment and field on v2.5+; ERR-1 (ELD) does on v2.4 and before', () => {
    const location = { segment: 'MSH', field: 9, component: 2 };
    const modern = Hl7Message.parse(buildAck(v251, { code: 'AE', error: { code: 'OSPREY_ERR_PIPELINE_VALIDATION', detail: 'MSH-9.2 is empty', hl7ErrorCode: '101', location } }));
    expect(modern.rawField('ERR', 2)).to.equal('MSH^1^9^^2');
    expect(modern.get('ERR-3.1')).to.equal('101');
    expect(modern.get('ERR-3.2')).to.equal('Required field missing');
    expect(modern.get('ERR-5.1')).to.equal('OSPREY_ERR_PIPELINE_VALIDATION');
    const segmentOnly = Hl7Message.parse(buildAck(v251, { code: 'AE', error: { code: 'OSPREY_ERR_PIPELINE_VALIDATION', detail: 'EVN is missing', hl7ErrorCode: '100', location: { segment: 'EVN' } } }));
    expect(segmentOnly.rawField('ERR', 2)).to.equal('EVN^1');
    const old = Hl7Message.parse(buildAck(v23, { code: 'AE', error: { code: 'OSPREY_ERR_PIPELINE_VALIDATION', detail: 'PV1 is missing', hl7ErrorCode: '100', location: { segment: 'PV1' } } }));
    expect(old.rawField('ERR', 1)).to.equal('PV1^1^^100&Segment sequence error&HL70357');
    expect(old.get('MSA-3')).to.equal('PV1 is missing');
    // Without a location ERR-2 stays empty.
    expect(Hl7Message.parse(buildAck(v251, { code: 'AE', error: { code: 'X', detail: 'y' } })).rawField('ERR', 2)).to.equal('');
  });

  it('enhancedCode: a commit ACK that differs from the original-mode mapping (stored, yet refused)', () => {
    const enhanced = Hl7Message.parse('MSH|^~\\&|A|B|C|D|1||ADT^A01|E1|P|2.5|||AL|NE');
    const error = { code: 'OSPREY_ERR_PIPELINE_VALIDATION', detail: 'EVN is missing', location: { segment: 'EVN' } };
    const commit = Hl7Message.parse(buildAck(enhanced, { code: 'AE', enhancedCode: 'CA', error }));
    expect(commit.get('MSA-1')).to.equal('CA');
    expect(commit.segmentIds()).to.not.include('ERR');
    expect(Hl7Message.parse(buildAck(v251, { code: 'AE', enhancedCode: 'CA', error })).get('MSA-1')).to.equal('AE');
  });

  it('copies MSH-18 so the ACK header names the charset it is written in', () => {
    const m = Hl7Message.parse('MSH|^~\\&|A|B|C|D|1||ADT^A01|E1|P|2.5||||||8859/1');
    expect(Hl7Message.parse(buildAck(m, { code: 'AA' })).get('MSH-18')).to.equal('8859/1');
  });

  it('keeps custom delimiters', () => {
    const m = Hl7Message.parse('MSH#!@%*#SND!X#F#R#RF#1##ADT!A01#M1#P#2.5');
    const ack = buildAck(m, { code: 'AE', error: { code: 'OSPREY_ERR_HL7_STRUCTURE', detail: 'bad # thing' } });
    expect(ack.startsWith('MSH#!@%*#R#RF#SND!X#F#')).to.equal(true);
    const parsed = Hl7Message.parse(ack);
    expect(parsed.get('MSA-2')).to.equal('M1');
    expect(parsed.get('ERR-8')).to.equal('bad # thing');
  });

  it('salvages the header from raw text that did not parse', () => {
    const raw = 'MSH|^~|SND|SF|RCV|RF|20260101||ADT^A01|RAW-1|P|2.4\rPID|1';
    expect(() => Hl7Message.parse(raw)).to.throw();
    const ack = Hl7Message.parse(buildAck(undefined, { code: 'AR', rawText: raw, error: { code: 'OSPREY_ERR_HL7_BAD_DELIMITERS', detail: 'MSH-2 has 2 characters' } }));
    expect(ack.get('MSA-2')).to.equal('RAW-1');
    expect(ack.get('MSH-3')).to.equal('RCV');
    expect(ack.get('MSH-5')).to.equal('SND');
    expect(ack.get('MSH-12')).to.equal('2.4');
    expect(ack.rawField('MSH', 9)).to.equal('ACK^A01^ACK');
    expect(ack.get('MSA-3')).to.equal('MSH-2 has 2 characters');
    // A message whose MSH header parses but whose body is garbage keeps its own delimiters.
    const own = Hl7Message.parse(buildAck(undefined, { code: 'AE', rawText: 'junk\nMSH#!@%*#S#F#R#RF#1##ADT!A01#J-2#P#2.5', error: { code: 'X', detail: 'd' } }));
    expect(own.delimiters.field).to.equal('#');
    expect(own.get('MSA-2')).to.equal('J-2');
  });

  it('builds a NAK with defaults from text with no MSH at all', () => {
    const ack = Hl7Message.parse(buildAck(undefined, { code: 'AR', rawText: 'hello', error: { code: 'OSPREY_ERR_HL7_NO_MSH', detail: 'no MSH' } }));
    expect(ack.get('MSA-1')).to.equal('AR');
    expect(ack.get('MSA-2')).to.equal(undefined);
    expect(ack.get('MSH-12')).to.equal('2.5.1');
    expect(ack.get('ERR-3.1')).to.equal('100');
    expect(Hl7Message.parse(buildAck(undefined, { code: 'AE' })).get('MSA-1')).to.equal('AE');
  });

  it('maps Osprey codes to HL7 table 0357', () => {
    expect(hl7ErrorCodeFor('OSPREY_ERR_HL7_NO_MSH')).to.equal('100');
    expect(hl7ErrorCodeFor('OSPREY_ERR_HL7_MISSING_FIELD')).to.equal('101');
    expect(hl7ErrorCodeFor('OSPREY_ERR_HL7_BAD_DELIMITERS')).to.equal('102');
    expect(hl7ErrorCodeFor('OSPREY_ERR_HL7_UNSUPPORTED_TYPE')).to.equal('200');
    expect(hl7ErrorCodeFor('OSPREY_ERR_STORE_UNAVAILABLE')).to.equal('207');
  });

  it('MSH-10 is unique over 10,000 calls and at most 20 characters', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const id = Hl7Message.parse(buildAck(v251, { code: 'AA' })).controlId as string;
      expect(id.length).to.be.at.most(20);
      ids.add(id);
    }
    expect(ids.size).to.equal(10_000);
  });

  it('MSH-10 is unique across processes started in the same millisecond range', async () => {
    const script = `import { newControlId } from './engine/message-formats/hl7v2/hl7-ack.ts'; const a=[]; for (let i=0;i<5000;i++) a.push(newControlId()); console.log(a.join(','));`;
    const run = (): Promise<string[]> =>
      new Promise((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: new URL('../../../../', import.meta.url).pathname });
        let out = '';
        child.stdout.on('data', (b: Buffer) => (out += b.toString()));
        child.on('error', reject);
        child.on('close', (code) => (code === 0 ? resolve(out.trim().split(',')) : reject(new Error(`exit ${code}`))));
      });
    const [a, b] = await Promise.all([run(), run()]);
    const all = new Set([...(a as string[]), ...(b as string[]), newControlId()]);
    expect(all.size).to.equal(10_001);
  });
});
