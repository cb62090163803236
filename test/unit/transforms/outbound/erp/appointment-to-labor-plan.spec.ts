// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { deterministicId } from '../../../../../engine/transform-sdk/index.ts';
import type { LaborPlanLine } from '../../../../../transforms/contracts/labor-plan-line.ts';
import transform from '../../../../../transforms/outbound/erp/appointment-to-labor-plan.ts';
import { appointmentEvent, apply, only } from '../event-fixtures.ts';

const CONTRACT = 'LaborPlanLine@1';
const line = async (stem: string): Promise<LaborPlanLine> => only(apply(transform, await appointmentEvent(stem), CONTRACT)) as LaborPlanLine;

describe('outbound/erp/appointment-to-labor-plan', () => {
  it('plans one line per booking: the clinicians\' hours on the department cost center and date', async () => {
    const l = await line('siu-s12-book-colonoscopy');
    expect(l).to.deep.include({ operation: 'plan', change: 'booked', costCenter: 'CC-5300', planDate: '2026-03-16', hours: 3 });
    expect(l.staff.map((s) => [s.providerId, s.hours])).to.deep.equal([
      ['20015', 0.75],
      ['20031', 1],
      ['20090', 1.25],
    ]);
  });

  it('reschedule and modification replace the same line (update, not reverse + new)', async () => {
    const booked = await line('siu-s12-book-colonoscopy');
    const moved = await line('siu-s13-reschedule-colonoscopy');
    const modified = await line('siu-s14-modify-colonoscopy');
    expect(moved).to.deep.include({ lineId: booked.lineId, operation: 'plan', planDate: '2026-03-18', hours: 3 });
    expect(modified).to.deep.include({ lineId: booked.lineId, operation: 'plan', hours: 2 });
    expect(new Set([booked.id, moved.id, modified.id]).size).to.equal(3);
  });

  it('a cancellation reverses the booking line with negative hours, referencing the id the booking created', async () => {
    const booked = await line('siu-s12-book-colonoscopy');
    const reversal = await line('siu-s15-cancel-colonoscopy');
    expect(reversal).to.deep.include({ operation: 'reverse', lineId: booked.lineId, hours: -2 });
    expect(reversal.operation === 'reverse' && reversal.reversal).to.deep.equal({ of: booked.lineId, reason: 'cancelled' });
  });

  it('computes the reversal reference from the cancel message alone (sending facility + SCH-2.1)', async () => {
    const reversal = await line('siu-s15-cancel-colonoscopy');
    expect(reversal.operation === 'reverse' && reversal.reversal.of).to.equal(deterministicId('LaborPlanLine@1/line', 'RVH', 'SP-884210'));
  });

  it('deletion and no-show reverse too, with their own reason', async () => {
    const ct = await line('siu-s12-book-ct-scan');
    const deleted = await line('siu-s17-delete-ct-scan');
    expect(deleted.operation === 'reverse' && deleted.reversal).to.deep.equal({ of: ct.lineId, reason: 'deleted' });
    const visit = await line('siu-s12-book-cardiology-followup');
    const noShow = await line('siu-s26-no-show-cardiology-followup');
    expect(noShow.operation === 'reverse' && noShow.reversal).to.deep.equal({ of: visit.lineId, reason: 'no-show' });
    expect(noShow.hours).to.equal(-0.5);
  });

  it('omits hours on a reversal whose message lists no clinician (the ERP reverses the line in full)', async () => {
    const event = await appointmentEvent('siu-s15-cancel-colonoscopy');
    event.resources.providers = [];
    const reversal = only(apply(transform, event, CONTRACT)) as LaborPlanLine;
    expect(reversal).to.not.have.property('hours');
    expect(reversal.operation === 'reverse' && reversal.reversal.reason).to.equal('cancelled');
  });

  it('filters a booking with no clinician, but plans 0 hours when a modification removes everyone', async () => {
    const booking = await appointmentEvent('siu-s12-book-ct-scan');
    booking.resources.providers = [];
    expect(apply(transform, booking, CONTRACT)).to.have.property('filtered');
    const modified = await appointmentEvent('siu-s14-modify-colonoscopy');
    modified.resources.providers.forEach((p) => (p.action = 'removed'));
    expect(only(apply(transform, modified, CONTRACT))).to.deep.include({ operation: 'plan', hours: 0, staff: [] });
  });

  it('does not need the provider lookup: an unknown clinician\'s hours count, without a role', async () => {
    const l = await line('siu-s12-book-unknown-provider');
    expect(l).to.deep.include({ hours: 2.25, costCenter: 'CC-5600' });
    expect(l.staff).to.deep.equal([
      { providerId: '20105', role: 'orthopedic-surgeon', hours: 1 },
      { providerId: '30077', hours: 1.25 },
    ]);
  });

  it('raises unmapped-department for a line to plan without a department, but still reverses without one', async () => {
    const booking = await appointmentEvent('siu-s12-book-ct-scan');
    delete booking.appointment.department;
    expect(apply(transform, booking, CONTRACT)).to.have.nested.property('exception.category', 'unmapped-department');
    const cancel = await appointmentEvent('siu-s17-delete-ct-scan');
    delete cancel.appointment.department;
    expect((only(apply(transform, cancel, CONTRACT)) as LaborPlanLine).operation).to.equal('reverse');
  });
});
