// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { createReadStream, readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { parse as parseYaml } from 'yaml';
import {
  CsvRecord,
  checkCsvFile,
  csvRecordFormat,
  readCsvRecords,
  type CsvRecordItem,
  type CsvRecordSchemaInput,
} from '../../../../engine/message-formats/csv-record/index.ts';
import { isOspreyError } from '../../../../engine/errors/error-codes.ts';

const SAMPLES = new URL('../../../../samples/batch/', import.meta.url);
const sampleSchema = parseYaml(readFileSync(new URL('charges.record-schema.yaml', SAMPLES), 'utf8')) as CsvRecordSchemaInput;
const samplePath = (name: string): string => new URL(name, SAMPLES).pathname;

/** The text (or bytes) as a stream of `size`-byte chunks, so every boundary is crossed. */
function chunked(content: string | Buffer, size: number): Readable {
  const bytes = typeof content === 'string' ? Buffer.from(content) : content;
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) parts.push(bytes.subarray(i, i + size));
  return Readable.from(parts);
}

async function readAll(source: Readable, schema: CsvRecordSchemaInput): Promise<CsvRecordItem[]> {
  const out: CsvRecordItem[] = [];
  for await (const item of readCsvRecords(source, schema)) out.push(item);
  return out;
}

describe('csv-record streaming readers', () => {
  describe('the sample charge file (samples/batch/charges-2026-03-06.csv)', () => {
    it('passes the structural check: 10 rows, the trailer count and total agree', async () => {
      const check = await checkCsvFile(createReadStream(samplePath('charges-2026-03-06.csv')), sampleSchema);
      expect(check).to.deep.equal({ ok: true, rows: 10, total: '2685.00', trailer: { line: 12, count: 10, total: '2685.00' }, issues: [], issueCount: 0 });
    });

    it('yields 10 records, lines 2…11, each re-parsing alone with its renamed columns and keys', async () => {
      const items = await readAll(createReadStream(samplePath('charges-2026-03-06.csv')), sampleSchema);
      expect(items.map((i) => i.lineage)).to.deep.equal(items.map((_, n) => ({ recordIndex: n, line: n + 2 })));
      expect(items.every((i) => i.error === undefined)).to.equal(true);
      const first = csvRecordFormat.parse(items[0]?.text as string);
      expect(first.get('charge_id')).to.equal('CHG-260306-0001');
      expect(first.get('service_date')).to.equal('03/06/2026');
      expect(csvRecordFormat.keys(first)).to.deep.equal({
        controlId: 'CHG-260306-0001',
        sender: 'rvh-charge-vendor',
        messageType: 'charge',
        patientId: 'E1048221',
        visitId: '7100021456',
        facility: 'RVH',
      });
      expect(csvRecordFormat.parse(items[5]?.text as string).get('description')).to.equal('Colonoscopy, diagnostic');
    });
  });

  describe('the broken sample (samples/batch/charges-2026-03-07-broken.csv)', () => {
    it('fails the structural check on its field count and trailer', async () => {
      const check = await checkCsvFile(createReadStream(samplePath('charges-2026-03-07-broken.csv')), sampleSchema);
      expect(check.ok).to.equal(false);
      expect(check.issues.map((i) => [i.code, i.line])).to.deep.equal([
        ['OSPREY_ERR_CSV_COLUMN_COUNT', 6],
        ['OSPREY_ERR_CSV_TRAILER', 8],
        ['OSPREY_ERR_CSV_TRAILER', 8],
      ]);
      expect(check.issues[1]?.detail).to.equal('The trailer on line 8 declares 8 record(s) but the file holds 6.');
      expect(check.issues[2]?.detail).to.equal('The trailer on line 8 declares a total of 2188.50 but the amount column adds up to 1008.50.');
    });

    it('yields every row; the failing ones carry an error naming line and column, never the value', async () => {
      const items = await readAll(createReadStream(samplePath('charges-2026-03-07-broken.csv')), sampleSchema);
      expect(items).to.have.length(6);
      expect(items.map((i) => i.error && [i.error.code, i.error.detail])).to.deep.equal([
        undefined,
        ['OSPREY_ERR_CSV_ROW_INVALID', 'Line 3: column mrn is empty (required).'],
        ['OSPREY_ERR_CSV_ROW_INVALID', 'Line 4: column service_date is not a date in the format MM/DD/YYYY.'],
        ['OSPREY_ERR_CSV_ROW_INVALID', 'Line 5: column amount is not a decimal number.'],
        ['OSPREY_ERR_CSV_COLUMN_COUNT', 'Line 6 has 10 field(s); the header has 9.'],
        undefined,
      ]);
      // The row with an extra field keeps it, under a positional name, so nothing read is lost.
      const extra = CsvRecord.parse(items[4]?.text as string);
      expect(extra.columns.at(-1)).to.equal('#10');
      expect(extra.get('#10')).to.equal('extra field');
      expect(items[5]?.lineage).to.deep.equal({ recordIndex: 5, line: 7 });
    });
  });

  describe('lines and layouts', () => {
    const schema: CsvRecordSchemaInput = { required: ['id'], trailer: { tag: 'T', countField: 2, totalField: 3, totalOf: 'amount' } };
    const file = ['id,note,amount', '1,"two', 'lines",1.10', '', '2,plain,2.20', '3,"a ""quoted"" value, with a comma",-0.30', 'T,3,3.00', ''].join('\r\n');

    it('gives each record the line it starts on (quoted line breaks, CRLF, blank lines), whatever the chunk size', async () => {
      for (const size of [1, 2, 5, 64, file.length]) {
        const items = await readAll(chunked(file, size), schema);
        expect(items.map((i) => i.lineage.line), `chunk ${size}`).to.deep.equal([2, 5, 6]);
        expect(CsvRecord.parse(items[0]?.text as string).get('note'), `chunk ${size}`).to.equal('two\r\nlines');
        const check = await checkCsvFile(chunked(file, size), schema);
        expect(check.ok, `chunk ${size}`).to.equal(true);
        expect(check.trailer?.line).to.equal(7);
      }
      const lf = file.replace(/\r\n/g, '\n');
      expect((await readAll(chunked(lf, 3), schema)).map((i) => i.lineage.line)).to.deep.equal([2, 5, 6]);
    });

    it('reads pipe- and tab-delimited files, an explicit header list, renames and trimming', async () => {
      const pipe = await readAll(chunked('Charge ID|Amt\nC1| 5.00 \n', 4), { delimiter: '|', rename: { 'Charge ID': 'charge_id', Amt: 'amount' }, trim: true, types: { amount: 'decimal' } });
      expect(CsvRecord.parse(pipe[0]?.text as string).toObject()).to.deep.equal({ charge_id: 'C1', amount: '5.00' });
      const tab = await readAll(chunked('C1\t5\nC2\t6\n', 3), { delimiter: '\t', header: ['charge_id', 'units'], types: { units: 'integer' } });
      expect(tab.map((i) => [i.lineage.line, CsvRecord.parse(i.text).get('units'), i.error])).to.deep.equal([
        [1, '5', undefined],
        [2, '6', undefined],
      ]);
    });

    it('decodes the channel’s encoding (windows-1252)', async () => {
      const bytes = Buffer.concat([Buffer.from('id,name\n1,Ren'), Buffer.from([0xe9]), Buffer.from('e\n')]);
      const items = await readAll(chunked(bytes, 2), { encoding: 'windows-1252' });
      expect(CsvRecord.parse(items[0]?.text as string).get('name')).to.equal('Renée');
    });

    it('a quote left open is a malformed file: the check names the line, the reader yields an error record', async () => {
      const bad = 'id,note\n1,ok\n2,"never closed\n3,swallowed\n';
      const check = await checkCsvFile(chunked(bad, 5), {});
      expect(check.ok).to.equal(false);
      expect(check.issues.map((i) => i.code)).to.deep.equal(['OSPREY_ERR_CSV_MALFORMED']);
      const items = await readAll(chunked(bad, 5), {});
      expect(items.map((i) => i.error?.code)).to.deep.equal([undefined, 'OSPREY_ERR_CSV_MALFORMED']);
      expect(CsvRecord.parse(items[1]?.text as string).columns).to.deep.equal([]);
    });
  });

  describe('trailers', () => {
    const schema: CsvRecordSchemaInput = { trailer: { tag: 'TRAILER', countField: 2, totalField: 3, totalOf: 'amount' }, types: { amount: 'decimal' } };

    it('a file cut before its trailer fails when the trailer is required, passes when it is not', async () => {
      const cut = 'id,amount\n1,1.00\n2,2.00\n';
      const check = await checkCsvFile(chunked(cut, 4), schema);
      expect(check.issues.map((i) => i.detail)).to.deep.equal(['The file has no trailer line (first field TRAILER): it may be truncated.']);
      const optional = await checkCsvFile(chunked(cut, 4), { trailer: { tag: 'TRAILER', countField: 2, required: false } });
      expect(optional.ok).to.equal(true);
    });

    it('a trailer that is not last, a second trailer, a non-numeric count are issues', async () => {
      const r = await checkCsvFile(chunked('id,amount\n1,1.00\nTRAILER,x,1.00\n2,2.00\nTRAILER,2,3.00\n', 7), schema);
      expect(r.issues.map((i) => i.detail)).to.deep.equal([
        'Line 4 comes after the trailer on line 3: the trailer must be the last line.',
        'A second trailer on line 5 (the first is on line 3).',
      ]);
      const nan = await checkCsvFile(chunked('id,amount\n1,1.00\nTRAILER,one,1.00\n', 7), schema);
      expect(nan.issues.map((i) => i.detail)).to.deep.equal(['The trailer on line 3 has no record count in field 2.']);
    });

    it('the trailer is not a record, and header problems stop the reader before any record', async () => {
      const items = await readAll(chunked('id,amount\n1,1.00\nTRAILER,1,1.00\n', 5), schema);
      expect(items).to.have.length(1);
      const needs: CsvRecordSchemaInput = { required: ['mrn'], keys: { id: 'charge_id' } };
      const check = await checkCsvFile(chunked('id,id\n1,2\n', 5), needs);
      expect(check.issues.map((i) => i.detail)).to.deep.equal([
        'Header on line 1: column id appears more than once.',
        'Header on line 1: column mrn is missing.',
        'Header on line 1: column charge_id is missing.',
      ]);
      let code: string | undefined;
      try {
        await readAll(chunked('id,id\n1,2\n', 5), needs);
      } catch (err) {
        code = isOspreyError(err) ? err.code : undefined;
      }
      expect(code).to.equal('OSPREY_ERR_CSV_HEADER');
      expect((await checkCsvFile(chunked('', 5), {})).issues.map((i) => i.code)).to.deep.equal(['OSPREY_ERR_CSV_HEADER']);
    });
  });

  it('stopping early closes the source (no file handle left open)', async () => {
    const source = createReadStream(samplePath('charges-2026-03-06.csv'), { highWaterMark: 64 });
    for await (const item of readCsvRecords(source, sampleSchema)) {
      expect(item.lineage.recordIndex).to.equal(0);
      break;
    }
    await new Promise<void>((resolve) => (source.closed ? resolve() : source.once('close', () => resolve())));
    expect(source.destroyed).to.equal(true);
  });
});
