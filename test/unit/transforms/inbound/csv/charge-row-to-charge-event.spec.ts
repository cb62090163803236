// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { CsvRecord } from '../../../../../engine/message-formats/csv-record/index.ts';
import type { ChargeEvent } from '../../../../../transforms/canonical-events/charge-event.ts';
import { checkContract, loadChannel, runMessage, runSampleFile, type ChannelUnderTest, type SampleRun } from '../../sample-harness.ts';

const COLUMNS = ['charge_id', 'mrn', 'encounter_number', 'facility', 'service_date', 'cpt', 'units', 'amount', 'description'];
const row = (values: string[]): CsvRecord => CsvRecord.of({ columns: COLUMNS, values, kind: 'charge' });

function eventOf(run: SampleRun): ChargeEvent {
  if (run.canonical.state !== 'OK') throw new Error(`expected an event, got ${JSON.stringify(run.canonical)}`);
  return run.canonical.outputs[0] as ChargeEvent;
}

describe('inbound/csv/charge-row-to-charge-event', () => {
  let ch: ChannelUnderTest;
  before(async () => {
    ch = await loadChannel('sftp-charges-to-erp');
  });

  it('maps a row to charge.posted: ISO service date, CPT vs HCPCS, integer units, amount to the cent as a string', () => {
    const e = eventOf(runMessage(ch, row(['CHG-1', 'E1048221', '7100021456', 'RVH', '03/06/2026', 'J1100', '4', '18.4', 'Dexamethasone'])));
    expect(checkContract('ChargeEvent@1', e)).to.deep.equal([]);
    expect(e).to.deep.include({ type: 'charge.posted', chargeId: 'CHG-1', serviceDate: '2026-03-06', units: 4, amount: '18.40', facility: 'RVH' });
    expect(e.procedure).to.deep.equal({ system: 'HCPCS', code: 'J1100' });
    expect(eventOf(runMessage(ch, row(['CHG-2', 'E1', 'V1', 'RVH', '03/06/2026', '99223', '', '412.00', '']))).procedure.system).to.equal('CPT');
  });

  it('a negative amount (the vendor’s correction) is posted to the ERP as a credit', () => {
    const r = runMessage(ch, row(['CHG-3', 'E1', 'V1', 'RVH', '03/06/2026', '96374', '2', '-45.00', 'Correction']));
    expect(r.delivered['erp-charges']).to.have.length(1);
    expect(r.delivered['erp-charges']![0]).to.include({ kind: 'credit', amount: '-45.00', accountNumber: 'V1' });
    expect(r.delivered['erp-charges']![0]).to.not.have.property('mrn');
  });

  it('the id is the vendor charge id within the facility: the same row in a re-sent file posts the same id', () => {
    const a = eventOf(runMessage(ch, row(['CHG-4', 'E1', 'V1', 'RVH', '03/06/2026', '99214', '1', '198.00', 'x'])));
    const b = eventOf(runMessage(ch, row(['CHG-4', 'E1', 'V1', 'RVH', '03/06/2026', '99214', '1', '198.00', 'x']), undefined, { messageId: 'other' }));
    const c = eventOf(runMessage(ch, row(['CHG-4', 'E1', 'V1', 'RVAC', '03/06/2026', '99214', '1', '198.00', 'x'])));
    expect(a.id).to.equal(b.id);
    expect(a.id).to.not.equal(c.id);
  });

  it('a row failing the record description is an ERROR of its own (source-side), and the rows after it are posted', async () => {
    const run = await runSampleFile(ch, 'samples/batch/charges-2026-03-09-invalid-row.csv');
    expect(run.records.map((r) => (r.sourceError ? r.sourceError.code : r.state))).to.deep.equal(['QUEUED', 'OSPREY_ERR_CSV_ROW_INVALID', 'QUEUED', 'QUEUED']);
    const bad = run.records[1]!;
    // The error names the line and the column, never the value (PHI).
    expect(bad.sourceError?.detail).to.match(/^Line 3: column service_date/).and.not.contain('03/09/26');
  });

  it('a looser record description letting an unreadable date through gives incomplete-message, not a crash', () => {
    const r = runMessage(ch, row(['CHG-5', 'E1', 'V1', 'RVH', '02/30/2026', '99214', '1', '198.00', 'x']));
    expect(r.state).to.equal('BUSINESS_EXCEPTION');
    expect(r.category).to.equal('incomplete-message');
  });
});
