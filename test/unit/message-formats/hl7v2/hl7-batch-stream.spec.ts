// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { checkHl7BatchEnvelope, Hl7Message, readHl7BatchMessages, splitBatch } from '../../../../engine/message-formats/hl7v2/index.ts';
import type { Hl7BatchRecord } from '../../../../engine/message-formats/hl7v2/index.ts';
import { CORPUS_DIR, corpusFiles, corpusPresent } from './corpus.ts';

/** The bytes as a stream of `size`-byte chunks, so every boundary (inside CRLF, inside MSH) is crossed. */
function chunked(bytes: Buffer, size: number): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) parts.push(bytes.subarray(i, i + size));
  return Readable.from(parts);
}

async function readAll(bytes: Buffer, size: number, charset?: string): Promise<Hl7BatchRecord[]> {
  const out: Hl7BatchRecord[] = [];
  for await (const r of readHl7BatchMessages(chunked(bytes, size), charset === undefined ? {} : { charset })) out.push(r);
  return out;
}

const msg = (id: string, extra = ''): string => `MSH|^~\\&|A|B|C|D|20260306||ADT^A01|${id}|P|2.5${extra}\rPID|1||${id}`;

describe('hl7v2 batch files as streams', () => {
  describe('readHl7BatchMessages on the corpus batch files (test/fixtures/corpus/hl7v2/batch)', function () {
    if (!corpusPresent) {
      it('skipped: corpus not found at ' + CORPUS_DIR);
      return;
    }
    for (const path of corpusFiles('batch')) {
      const name = path.slice(path.lastIndexOf('/') + 1);
      it(`${name}: the same messages and lines as splitBatch, whatever the chunk size`, async () => {
        const bytes = readFileSync(path);
        const expected = splitBatch(bytes.toString('utf8'));
        for (const size of [1, 7, 64, 4096, bytes.length]) {
          const got = await readAll(bytes, size);
          expect(got.map((r) => r.text), `chunk ${size}`).to.deep.equal(expected.messages);
          expect(got.map((r) => r.lineage.line), `chunk ${size}`).to.deep.equal(expected.messageLines);
          expect(got.map((r) => r.lineage.recordIndex)).to.deep.equal(expected.messages.map((_, i) => i));
          for (const r of got) {
            expect(r.error).to.equal(undefined);
            expect(Hl7Message.parse(r.text).count('MSH')).to.equal(1);
          }
        }
      });
    }

    it('is not fooled by "MSH" inside OBX-5 (node-hl7-client file: 2 messages, not 4)', async () => {
      const got = await readAll(readFileSync(`${CORPUS_DIR}/batch/nodeclient_batch_FHS_BHS_BTS_FTS.hl7`), 5);
      expect(got).to.have.length(2);
      expect(Hl7Message.parse(got[1]?.text as string).getAll('OBX-4')).to.deep.equal(['xMSHx', 'xMSH', 'MSH']);
    });
  });

  describe('readHl7BatchMessages lineage and charsets', () => {
    it('carries FHS-11 and BHS-11 of each message’s envelope, and its MSH line', async () => {
      const file = [
        'FHS|^~\\&|SND|FAC|RCV|FAC|20260306||||F-77',
        'BHS|^~\\&|SND|FAC|RCV|FAC|20260306||||B-1',
        msg('1'),
        msg('2'),
        'BTS|2',
        'BHS|^~\\&|SND|FAC|RCV|FAC|20260306||||B-2',
        msg('3'),
        'BTS|1',
        'FTS|2',
      ].join('\r\n');
      const got = await readAll(Buffer.from(file), 3);
      expect(got.map((r) => r.lineage)).to.deep.equal([
        // msg() is two lines (MSH, PID), so the MSH lines are 3, 5 and 9.
        { recordIndex: 0, line: 3, envelope: { 'FHS-11': 'F-77', 'BHS-11': 'B-1' } },
        { recordIndex: 1, line: 5, envelope: { 'FHS-11': 'F-77', 'BHS-11': 'B-1' } },
        { recordIndex: 2, line: 9, envelope: { 'FHS-11': 'F-77', 'BHS-11': 'B-2' } },
      ]);
      expect(got[2]?.raw.toString('latin1')).to.equal(msg('3'));
    });

    it('plain concatenated messages with blank lines between have an empty envelope', async () => {
      const got = await readAll(Buffer.from(`${msg('1')}\n\n\n${msg('2')}\n`.replace(/\r/g, '\n')), 2);
      expect(got.map((r) => [r.lineage.line, r.lineage.envelope])).to.deep.equal([
        [1, {}],
        [5, {}],
      ]);
    });

    it('decodes each message with its own MSH-18 (an ISO-8859-1 message beside a UTF-8 one)', async () => {
      const latin = Buffer.concat([Buffer.from(`${msg('1', '||||||8859/1')}\rNTE|1||Ren`, 'latin1'), Buffer.from([0xe9]), Buffer.from('e\r')]);
      const utf8 = Buffer.from(`${msg('2', '||||||UNICODE UTF-8')}\rNTE|1||René\r`, 'utf8');
      const got = await readAll(Buffer.concat([latin, utf8]), 4, 'UTF-8');
      expect(got.map((r) => Hl7Message.parse(r.text).get('NTE-3'))).to.deep.equal(['Renée', 'René']);
      expect(got[0]?.raw.includes(0xe9)).to.equal(true); // the stored bytes are the file's, untouched
      expect(got.every((r) => r.error === undefined)).to.equal(true);
    });

    it('a UTF-8 byte-order mark is skipped and decides the charset', async () => {
      const got = await readAll(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`${msg('1')}\rNTE|1||Zoë`)]), 2, 'ISO-8859-1');
      expect(got).to.have.length(1);
      expect(Hl7Message.parse(got[0]?.text as string).get('NTE-3')).to.equal('Zoë');
    });

    it('refuses a UTF-16 file with a clear code', async () => {
      const bytes = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(msg('1'), 'utf16le')]);
      let code: string | undefined;
      try {
        await readAll(bytes, 1);
      } catch (err) {
        code = (err as { code?: string }).code;
      }
      expect(code).to.equal('OSPREY_ERR_HL7_CHARSET');
    });
  });

  describe('checkHl7BatchEnvelope', () => {
    const check = (text: string, options?: { requireTrailers?: boolean }): ReturnType<typeof checkHl7BatchEnvelope> =>
      checkHl7BatchEnvelope(chunked(Buffer.from(text, 'latin1'), 9), options);

    it('passes a whole envelope and plain concatenated messages', async () => {
      const whole = await check(['FHS|^~\\&', 'BHS|^~\\&', msg('1'), msg('2'), 'BTS|2', 'FTS|1'].join('\r'));
      expect(whole).to.deep.include({ ok: true, messages: 2, batches: 1, fileHeader: true, fileTrailer: true, issueCount: 0 });
      const plain = await check([msg('1'), '', msg('2'), ''].join('\n'));
      expect(plain).to.deep.include({ ok: true, messages: 2, batches: 1, fileHeader: false, fileTrailer: false });
    });

    it('passes the corpus batch files that carry their trailers or none at all', async function () {
      if (!corpusPresent) this.skip();
      for (const path of corpusFiles('batch').filter((p) => !p.includes('notrailer'))) {
        const r = await checkHl7BatchEnvelope(chunked(readFileSync(path), 1000));
        expect(r.ok, path).to.equal(true);
        expect(r.messages, path).to.equal(splitBatch(readFileSync(path, 'utf8')).messages.length);
      }
    });

    it('reports BTS-1 and FTS-1 counts that differ from the file, naming batch and line', async () => {
      const r = await check(['FHS|^~\\&', 'BHS|^~\\&', msg('1'), 'BTS|2', 'BHS|^~\\&', msg('3'), 'BTS|1', 'FTS|3'].join('\r\n'));
      expect(r.ok).to.equal(false);
      expect(r.issues.map((i) => i.code)).to.deep.equal(['OSPREY_ERR_HL7_BATCH_COUNT', 'OSPREY_ERR_HL7_BATCH_COUNT']);
      expect(r.issues[0]?.detail).to.match(/BTS-1 of batch 1 declares 2 message\(s\) but the batch holds 1/);
      expect(r.issues.map((i) => i.line)).to.deep.equal([5, 10]); // msg() is two lines: MSH and PID
      expect(r.issues[1]?.detail).to.match(/FTS-1 declares 3 batch\(es\) but the file holds 2/);
    });

    it('a truncated file (cut inside its second message) lacks BTS and FTS', async () => {
      const whole = ['FHS|^~\\&', 'BHS|^~\\&', msg('1'), msg('2'), 'BTS|2', 'FTS|1'].join('\r');
      const r = await check(whole.slice(0, whole.indexOf('PID|1||2')));
      expect(r.ok).to.equal(false);
      expect(r.issues.map((i) => [i.code, i.line])).to.deep.equal([
        ['OSPREY_ERR_HL7_BATCH_TRAILER', 2],
        ['OSPREY_ERR_HL7_BATCH_TRAILER', 1],
      ]);
      expect(r.issues[0]?.detail).to.equal('The batch opened by BHS on line 2 has no BTS.');
      expect(r.issues[1]?.detail).to.equal('The file opened by FHS on line 1 has no FTS.');
    });

    it('the corpus FHS/BHS file without trailers fails, unless trailers are not required', async function () {
      if (!corpusPresent) this.skip();
      const path = `${CORPUS_DIR}/batch/mirth_batch_FHS_BHS_CRLF_notrailer.hl7`;
      const strict = await checkHl7BatchEnvelope(chunked(readFileSync(path), 100));
      expect(strict.issues.map((i) => i.code)).to.deep.equal(['OSPREY_ERR_HL7_BATCH_TRAILER', 'OSPREY_ERR_HL7_BATCH_TRAILER']);
      const lenient = await checkHl7BatchEnvelope(chunked(readFileSync(path), 100), { requireTrailers: false });
      expect(lenient).to.deep.include({ ok: true, messages: 1 });
    });

    it('reports orphan trailers, messages after FTS and stray lines, without message content', async () => {
      const r = await check([msg('1'), 'BTS|1', 'FTS|1', msg('2'), 'garbage Doe^Jane'].join('\n'));
      expect(r.issues.map((i) => i.detail)).to.deep.equal([
        'BTS on line 3 closes a batch that has no BHS.',
        'FTS on line 4 closes a file that has no FHS.',
        'A message on line 5 comes after FTS.',
        'FTS-1 declares 1 batch(es) but the file holds 2.',
      ]);
      const stray = await check(['garbage Doe^Jane', msg('1')].join('\n'));
      expect(stray.issues.map((i) => i.code)).to.deep.equal(['OSPREY_ERR_HL7_BATCH_COUNT']);
      expect(JSON.stringify(stray.issues)).to.not.include('Doe');
    });
  });
});
