// SPDX-License-Identifier: Apache-2.0
import { mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { LookupTables } from '../../../engine/channel-runtime/lookup-tables.ts';
import { isOspreyError } from '../../../engine/errors/error-codes.ts';
import { recordingLogger } from '../../helpers/recording-logger.ts';
import { waitFor } from '../../helpers/wait-for.ts';

const GOOD = 'CARD:\n  name: Cardiology\n  costCenter: CC-1\nNEURO:\n  name: Neurology\n  costCenter: CC-2\n';
// A typical broken edit: a new row's record indented one level too deep.
const BROKEN = 'CARD:\n  name: Cardiology\n  costCenter: CC-1\n    PEDS:\n  name: Pediatrics\n';
const FIXED = `${GOOD}PEDS:\n  name: Pediatrics\n  costCenter: CC-3\n`;

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isOspreyError(err) ? err.code : String(err);
  }
  return undefined;
}

describe('lookup tables', () => {
  let dir: string;
  let tables: LookupTables | undefined;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'osprey-lookups-'));
  });
  afterEach(() => {
    tables?.close();
    tables = undefined;
    rmSync(dir, { recursive: true, force: true });
  });
  const write = (file: string, text: string | Buffer) => writeFileSync(join(dir, file), text);
  const load = () => (tables = new LookupTables(dir));

  describe('CSV (a real CSV parser)', () => {
    it('keeps a quoted comma inside its cell', () => {
      write('providers.csv', 'id,name,role\n10041,"Hartwell, Miriam",hospitalist\n');
      expect(load().get('providers', '10041')).to.deep.equal({ name: 'Hartwell, Miriam', role: 'hospitalist' });
    });

    it('reads "" inside a quoted cell as one quote', () => {
      write('departments.csv', 'code,name\n4WMED,"4 West ""Medicine"" Unit"\n');
      expect(load().get('departments', '4WMED')).to.equal('4 West "Medicine" Unit');
    });

    it('drops a UTF-8 byte order mark (the first key and column names are intact), with CRLF lines', () => {
      write('departments.csv', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('code,name,costCenter\r\nICU,Intensive Care,CC-4300\r\n')]));
      const t = load();
      expect(t.get('departments', 'ICU')).to.deep.equal({ name: 'Intensive Care', costCenter: 'CC-4300' });
      expect(t.problems()).to.deep.equal([]);
    });

    it('two columns: the value is the second cell; more: a record named by the header', () => {
      write('sex.csv', 'code,label\nM,male\nF,female\n');
      write('facilities.csv', 'code,name,timeZone\nRVH,Riverbend Valley Hospital,America/Chicago\n');
      const t = load();
      expect(t.get('sex', 'F')).to.equal('female');
      expect(t.get('facilities', 'RVH')).to.deep.equal({ name: 'Riverbend Valley Hospital', timeZone: 'America/Chicago' });
      expect(t.get('sex', 'X')).to.equal(undefined);
    });

    it('refuses a row with an unquoted comma instead of shifting its cells', () => {
      write('providers.csv', 'id,name,role\n10041,Hartwell, Miriam,hospitalist\n');
      const t = load();
      expect(codeOf(() => t.get('providers', '10041'))).to.equal('OSPREY_ERR_CHANNEL_LOOKUP');
      expect(t.problems().map((p) => p.table)).to.deep.equal(['providers']);
    });
  });

  describe('a broken edit', () => {
    it('keeps the last good table, logs the problem once, and lists it until the file is fixed', async () => {
      write('departments.yaml', GOOD);
      const t = load();
      const { logger, entries } = recordingLogger();
      t.watch({ logger, intervalMs: 3_600_000 }); // the checks below are explicit
      const refused = () => entries.filter((e) => e.code === 'OSPREY_ERR_CHANNEL_LOOKUP');

      write('departments.yaml', BROKEN);
      await t.refresh();
      for (let i = 0; i < 100; i++) expect(t.get('departments', 'NEURO')).to.deep.equal({ name: 'Neurology', costCenter: 'CC-2' });
      await t.refresh();
      await t.refresh();
      expect(refused()).to.have.lengthOf(1);
      expect(refused()[0]).to.include({ level: 'error', table: 'departments' });
      const [problem] = t.problems(['departments']);
      expect(problem).to.include({ table: 'departments', file: join(dir, 'departments.yaml') });
      expect(problem!.error).to.match(/at line 3, column 15$/); // where, never the text
      expect(problem!.lastGoodAt).to.be.a('number');
      expect(t.problems(['providers'])).to.deep.equal([]);

      write('departments.yaml', FIXED);
      await t.refresh();
      expect(t.get('departments', 'PEDS')).to.deep.equal({ name: 'Pediatrics', costCenter: 'CC-3' });
      expect(t.problems()).to.deep.equal([]);
      expect(refused()).to.have.lengthOf(1);
      expect(entries.some((e) => e.level === 'info' && e.table === 'departments')).to.equal(true);
    });

    it('refuses entries that are not a string or a flat record (an emptied row, a list, nesting)', async () => {
      write('departments.yaml', GOOD);
      const t = load();
      for (const broken of ['CARD:\nNEURO: Neurology\n', 'CARD: [a, b]\n', 'CARD:\n  name:\n    first: x\n', '', '- CARD\n', '{"CARD": }']) {
        write('departments.yaml', broken);
        await t.refresh();
        expect(t.problems().map((p) => p.table), JSON.stringify(broken)).to.deep.equal(['departments']);
        expect(t.get('departments', 'CARD')).to.deep.equal({ name: 'Cardiology', costCenter: 'CC-1' });
      }
    });

    it('keeps the last good table when its file is removed, and loads it again when it is back', async () => {
      write('departments.yaml', GOOD);
      const t = load();
      unlinkSync(join(dir, 'departments.yaml'));
      await t.refresh();
      expect(t.get('departments', 'CARD')).to.deep.include({ name: 'Cardiology' });
      expect(t.problems()[0]!.error).to.contain('removed');
      write('departments.yaml', FIXED);
      await t.refresh();
      expect(t.get('departments', 'PEDS')).to.deep.include({ name: 'Pediatrics' });
      expect(t.problems()).to.deep.equal([]);
    });

    it('a table broken from the start cannot be used (OSPREY_ERR_CHANNEL_LOOKUP), is logged once when watched, and works once fixed', async () => {
      write('departments.yaml', BROKEN);
      const t = load();
      expect(codeOf(() => t.get('departments', 'CARD'))).to.equal('OSPREY_ERR_CHANNEL_LOOKUP');
      expect(t.problems()[0]!.lastGoodAt).to.equal(undefined);
      const { logger, entries } = recordingLogger();
      t.watch({ logger, intervalMs: 3_600_000 });
      await t.refresh();
      expect(entries.filter((e) => e.code === 'OSPREY_ERR_CHANNEL_LOOKUP')).to.have.lengthOf(1);
      write('departments.yaml', GOOD);
      await t.refresh();
      expect(t.get('departments', 'CARD')).to.deep.include({ name: 'Cardiology' });
    });

    it('a new table file is picked up; an unknown table is OSPREY_ERR_CHANNEL_LOOKUP', async () => {
      const t = load();
      expect(codeOf(() => t.get('providers', '1'))).to.equal('OSPREY_ERR_CHANNEL_LOOKUP');
      write('providers.json', '{"1": {"npi": "1234567890"}}');
      await t.refresh();
      expect(t.get('providers', '1')).to.deep.equal({ npi: '1234567890' });
    });
  });

  it('reads tables from memory: no file is touched per lookup', () => {
    write('departments.yaml', GOOD);
    const t = load();
    // With the folder gone, any read, stat or existence check on the message path would show.
    renameSync(dir, `${dir}-moved`);
    try {
      for (let i = 0; i < 10_000; i++) expect(t.get('departments', i % 2 ? 'CARD' : 'XRAY')).to.deep.equal(i % 2 ? { name: 'Cardiology', costCenter: 'CC-1' } : undefined);
      expect(t.problems()).to.deep.equal([]);
    } finally {
      renameSync(`${dir}-moved`, dir);
    }
  });

  it('watch() checks the folder by itself, off the message path', async () => {
    write('departments.yaml', GOOD);
    const t = load();
    t.watch({ logger: recordingLogger().logger, intervalMs: 10 });
    write('departments.yaml', FIXED);
    await waitFor(() => t.get('departments', 'PEDS') !== undefined, { what: 'the edit to be loaded', timeoutMs: 5_000 });
  });
});
