// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import {
  CsvRecord,
  addDecimal,
  checkCsvValue,
  checkDate,
  csvRecordFormat,
  decimalEquals,
  formatDecimal,
  parseDecimal,
  resolveCsvRecordSettings,
} from '../../../../engine/message-formats/csv-record/index.ts';
import { isOspreyError } from '../../../../engine/errors/error-codes.ts';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isOspreyError(err) ? err.code : 'not an OspreyError';
  }
  return undefined;
}

describe('csv-record message', () => {
  const record = CsvRecord.of({
    columns: ['charge_id', 'mrn', 'amount', 'note', 'facility'],
    values: ['CHG-1', 'E1048221', '12.50', 'says "hi", then\nleaves', ''],
    line: 7,
    kind: 'charge',
    sender: 'acme',
    keys: { id: 'charge_id', patient: 'mrn', facility: 'facility' },
  });

  it('reads columns by name; an empty cell or an unknown column is undefined', () => {
    expect(record.format).to.equal('csv-record');
    expect(record.get('charge_id')).to.equal('CHG-1');
    expect(record.get('note')).to.equal('says "hi", then\nleaves');
    expect(record.get('facility')).to.equal(undefined);
    expect(record.get('nope')).to.equal(undefined);
    expect(record.getAll('amount')).to.deep.equal(['12.50']);
    expect(record.getAll('facility')).to.deep.equal([]);
    expect(record.line).to.equal(7);
  });

  it('its stored text re-parses alone to the same record', () => {
    const again = csvRecordFormat.parse(record.toString());
    expect(again.toString()).to.equal(record.toString());
    expect(again.toObject()).to.deep.equal(record.toObject());
    expect(again.get('note')).to.equal(record.get('note'));
  });

  it('keys follow the mapping stamped on the record; the sender and kind literals fill in', () => {
    expect(csvRecordFormat.keys(record)).to.deep.equal({ controlId: 'CHG-1', sender: 'acme', messageType: 'charge', patientId: 'E1048221' });
    const mixed = CsvRecord.of({ columns: ['id', 'type', 'vendor'], values: ['9', 'payment', 'v-2'], kind: 'charge', sender: 'acme', keys: { id: 'id', kind: 'type', sender: 'vendor' } });
    expect(csvRecordFormat.keys(mixed)).to.deep.equal({ controlId: '9', sender: 'v-2', messageType: 'payment' });
    expect(csvRecordFormat.keys(CsvRecord.of({ columns: ['a'], values: ['1'] }))).to.deep.equal({});
  });

  it('refuses stored text that is not a CSV record with OSPREY_ERR_CSV_BAD_RECORD', () => {
    for (const text of ['charge_id,mrn\n1,2', '{}', '{"columns":["a"],"values":[]}', '{"columns":["a"],"values":[1]}', 'null']) {
      expect(codeOf(() => csvRecordFormat.parse(text)), text).to.equal('OSPREY_ERR_CSV_BAD_RECORD');
    }
    expect(codeOf(() => CsvRecord.of({ columns: ['a', 'b'], values: ['1'] }))).to.equal('OSPREY_ERR_CSV_BAD_RECORD');
  });

  it('renders the header and the row as CSV for people (quoted where needed)', () => {
    expect(csvRecordFormat.render(Buffer.from(record.toString()), 'utf-8')).to.equal(
      'charge_id,mrn,amount,note,facility\nCHG-1,E1048221,12.50,"says ""hi"", then\nleaves",\n',
    );
    expect(csvRecordFormat.render(Buffer.from('not json'), 'utf-8')).to.equal('not json');
  });
});

describe('csv-record schema', () => {
  it('fills in defaults', () => {
    expect(resolveCsvRecordSettings({})).to.deep.equal({
      delimiter: ',',
      header: true,
      rename: {},
      required: [],
      types: {},
      keys: {},
      kind: 'record',
      encoding: 'utf-8',
      trim: false,
    });
    const s = resolveCsvRecordSettings({ types: { d: 'date', n: 'decimal' }, trailer: { tag: 'T', countField: 2 } });
    expect(s.types).to.deep.equal({ d: { type: 'date', format: 'YYYY-MM-DD' }, n: { type: 'decimal' } });
    expect(s.trailer).to.deep.equal({ tag: 'T', countField: 2, required: true });
  });

  it('is idempotent: resolved settings resolve to themselves', () => {
    const s = resolveCsvRecordSettings({ delimiter: '|', types: { d: { type: 'date', format: 'MM/DD/YYYY' } }, trailer: { tag: 'T', countField: 2, totalField: 3, totalOf: 'x' } });
    expect(resolveCsvRecordSettings(s)).to.deep.equal(s);
  });

  it('refuses what it cannot run with, as OSPREY_ERR_CHANNEL_SCHEMA', () => {
    const bad: unknown[] = [
      { delimiter: ':' },
      { header: false },
      { header: [] },
      { types: { a: 'money' } },
      { types: { a: { type: 'date', format: 'DD.MM' } } },
      { trailer: { tag: 'T', countField: 1 } },
      { trailer: { tag: 'T', countField: 2, totalField: 3 } },
      { trailer: { tag: 'T', countField: 2, totalField: 3, totalOf: 'd' }, types: { d: 'date' } },
      { encoding: 'klingon-8' },
      { unknown: 1 },
    ];
    for (const b of bad) expect(codeOf(() => resolveCsvRecordSettings(b)), JSON.stringify(b)).to.equal('OSPREY_ERR_CHANNEL_SCHEMA');
  });
});

describe('csv-record values', () => {
  it('sums decimals exactly (0.1 + 0.2 is 0.3, not 0.30000000000000004)', () => {
    const sum = ['0.1', '0.2', '-0.05', '3'].map((v) => parseDecimal(v)).reduce((a, b) => addDecimal(a as never, b as never));
    expect(formatDecimal(sum as never)).to.equal('3.25');
    expect(decimalEquals(parseDecimal('12.5') as never, parseDecimal('12.500') as never)).to.equal(true);
    expect(formatDecimal(parseDecimal('-.5') as never)).to.equal('-0.5');
    for (const v of ['', '.', '1,180.00', '1e3', '12.5.1', '$3']) expect(parseDecimal(v), v).to.equal(undefined);
  });

  it('checks dates as real calendar dates in their layout', () => {
    expect(checkDate('2024-02-29', 'YYYY-MM-DD')).to.equal(true);
    expect(checkDate('2026-02-29', 'YYYY-MM-DD')).to.equal(false);
    expect(checkDate('03/06/2026', 'MM/DD/YYYY')).to.equal(true);
    expect(checkDate('13/06/2026', 'MM/DD/YYYY')).to.equal(false);
    expect(checkDate('2026-03-06', 'MM/DD/YYYY')).to.equal(false);
    expect(checkDate('20260306', 'YYYYMMDD')).to.equal(true);
    expect(checkDate('20260306 2359', 'YYYYMMDD HHmm')).to.equal(true);
    expect(checkDate('20260306 2460', 'YYYYMMDD HHmm')).to.equal(false);
  });

  it('says why a value fails its type, without the value', () => {
    expect(checkCsvValue('12', { type: 'integer' })).to.equal(undefined);
    expect(checkCsvValue('1.5', { type: 'integer' })).to.equal('is not an integer');
    expect(checkCsvValue('1.505', { type: 'decimal', scale: 2 })).to.equal('has more than 2 decimal places');
    expect(checkCsvValue('Ødegård', { type: 'string', maxLength: 3 })).to.equal('is longer than 3 characters');
    expect(checkCsvValue('x', { type: 'date', format: 'YYYY-MM-DD' })).to.equal('is not a date in the format YYYY-MM-DD');
  });
});
