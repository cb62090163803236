// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { deterministicId } from '../../../../../engine/transform-sdk/index.ts';
import type { ErpAccrual } from '../../../../../transforms/contracts/erp-accrual.ts';
import transform from '../../../../../transforms/outbound/erp/encounter-to-accrual.ts';
import { apply, encounterEvent, only } from '../event-fixtures.ts';

const CONTRACT = 'ErpAccrual@1';
const accrual = async (stem: string): Promise<ErpAccrual> => only(apply(transform, await encounterEvent(stem), CONTRACT)) as ErpAccrual;

describe('outbound/erp/encounter-to-accrual', () => {
  it('accrues one admission on the unit cost center at admission', async () => {
    const a = await accrual('adt-a01-admit-inpatient');
    expect(a).to.deep.include({ operation: 'accrue', kind: 'admission', measure: 'admissions', quantity: 1, costCenter: 'CC-4100', postingDate: '2026-03-06' });
    expect(a.accrualId).to.equal(deterministicId('ErpAccrual@1/accrual', 'RVH', '7100021456', 'admission'));
  });

  it('accrues patient days (midnights, across the DST change) at discharge', async () => {
    expect(await accrual('adt-a03-discharge-inpatient')).to.deep.include({ kind: 'discharge', measure: 'patient-days', quantity: 3, postingDate: '2026-03-09' });
  });

  it('counts a same-day inpatient stay as one patient day', async () => {
    const event = await encounterEvent('adt-a03-discharge-inpatient');
    event.encounter.admittedAt = '2026-03-09T06:00:00-05:00';
    expect(only(apply(transform, event, CONTRACT))).to.deep.include({ quantity: 1 });
  });

  it('A11 reverses the admission accrual by the id the A01 posted', async () => {
    const admitted = await accrual('adt-a01-admit-icu');
    const reversal = await accrual('adt-a11-cancel-admit');
    expect(reversal).to.deep.include({ operation: 'reverse', kind: 'admission', accrualId: admitted.accrualId });
    expect(reversal.operation === 'reverse' && reversal.reversal).to.deep.equal({ of: admitted.accrualId, reason: 'admit-cancelled' });
    expect(reversal.id).to.not.equal(admitted.id);
  });

  it('A13 reverses the discharge accrual by the id the A03 posted, not the admission one', async () => {
    const admitted = await accrual('adt-a01-admit-inpatient');
    const discharged = await accrual('adt-a03-discharge-inpatient');
    const reversal = await accrual('adt-a13-cancel-discharge');
    expect(reversal.operation === 'reverse' && reversal.reversal.of).to.equal(discharged.accrualId);
    expect(reversal.accrualId).to.not.equal(admitted.accrualId);
    expect(reversal).to.not.have.property('quantity');
  });

  it('filters non-inpatient encounters and events that post nothing', async () => {
    expect(apply(transform, await encounterEvent('adt-a03-discharge-emergency-no-offset'), CONTRACT)).to.have.property('filtered').that.contains('inpatient');
    expect(apply(transform, await encounterEvent('adt-a04-register-outpatient'), CONTRACT)).to.have.property('filtered');
    expect(apply(transform, await encounterEvent('adt-a08-update-inpatient'), CONTRACT)).to.have.property('filtered');
  });

  it('raises incomplete-message for an inpatient discharge without an admission time', async () => {
    const event = await encounterEvent('adt-a03-discharge-inpatient');
    delete event.encounter.admittedAt;
    expect(apply(transform, event, CONTRACT)).to.deep.nested.include({ 'exception.category': 'incomplete-message', 'exception.tags': { facility: 'RVH', department: '4WMED' } });
  });

  it('raises unmapped-department when the encounter has no department to take a cost center from', async () => {
    const event = await encounterEvent('adt-a01-admit-inpatient');
    delete event.encounter.department;
    expect(apply(transform, event, CONTRACT)).to.have.nested.property('exception.category', 'unmapped-department');
  });

  it('sends no patient identity to the ERP (minimum necessary)', async () => {
    const text = JSON.stringify(await accrual('adt-a03-discharge-inpatient'));
    expect(text).to.not.contain('E1048221');
    expect(text).to.not.contain('PRESCOTT');
  });
});
