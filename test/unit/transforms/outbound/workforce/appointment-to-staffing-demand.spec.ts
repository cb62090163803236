// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { deterministicId } from '../../../../../engine/transform-sdk/index.ts';
import type { StaffingDemand } from '../../../../../transforms/contracts/staffing-demand.ts';
import transform from '../../../../../transforms/outbound/workforce/appointment-to-staffing-demand.ts';
import { appointmentEvent, apply, only } from '../event-fixtures.ts';

const CONTRACT = 'StaffingDemand@1';
const demand = async (stem: string): Promise<StaffingDemand> => only(apply(transform, await appointmentEvent(stem), CONTRACT)) as StaffingDemand;

describe('outbound/workforce/appointment-to-staffing-demand', () => {
  it('opens one demand per appointment with one requirement per clinician, at their own start and duration', async () => {
    const d = await demand('siu-s12-book-colonoscopy');
    expect(d.demandId).to.equal(deterministicId('StaffingDemand@1/demand', 'RVH', 'SP-884210'));
    expect(d.operation === 'open' && d.requirements.map((r) => [r.role, r.start, r.durationMinutes])).to.deep.equal([
      ['gastroenterologist', '2026-03-16T08:00:00-05:00', 45],
      ['nurse-anesthetist', '2026-03-16T07:50:00-05:00', 60],
      ['registered-nurse', '2026-03-16T07:45:00-05:00', 75],
    ]);
  });

  it('moves the same demand on reschedule and drops clinicians a modification removes', async () => {
    const booked = await demand('siu-s12-book-colonoscopy');
    const moved = await demand('siu-s13-reschedule-colonoscopy');
    const modified = await demand('siu-s14-modify-colonoscopy');
    expect([moved.demandId, modified.demandId]).to.deep.equal([booked.demandId, booked.demandId]);
    expect(moved).to.deep.include({ change: 'rescheduled', start: '2026-03-18T13:30:00-05:00' });
    expect(modified.operation === 'open' && modified.requirements.map((r) => r.providerId)).to.deep.equal(['20015', '20090']);
  });

  it('releases the booked demand on cancellation, deletion and no-show, by the id the booking used', async () => {
    for (const [book, end, reason] of [
      ['siu-s12-book-colonoscopy', 'siu-s15-cancel-colonoscopy', 'cancelled'],
      ['siu-s12-book-ct-scan', 'siu-s17-delete-ct-scan', 'deleted'],
      ['siu-s12-book-cardiology-followup', 'siu-s26-no-show-cardiology-followup', 'no-show'],
    ] as const) {
      const booked = await demand(book);
      const released = await demand(end);
      expect(released.operation, end).to.equal('release');
      expect(released.operation === 'release' && released.release, end).to.deep.equal({ of: booked.demandId, reason });
    }
  });

  it('raises unknown-provider, tagged with facility, department and provider, for a clinician not in the lookup', async () => {
    const outcome = apply(transform, await appointmentEvent('siu-s12-book-unknown-provider'), CONTRACT);
    expect(outcome).to.have.nested.property('exception.category', 'unknown-provider');
    expect(outcome).to.have.deep.nested.property('exception.tags', { facility: 'RVAC', department: 'ORTHCL', provider: '30077' });
  });

  it('never blocks a release on master data (unknown clinician, no department)', async () => {
    const event = await appointmentEvent('siu-s15-cancel-colonoscopy');
    event.resources.providers.push({ id: '30077', known: false });
    delete event.appointment.department;
    expect((only(apply(transform, event, CONTRACT)) as StaffingDemand).operation).to.equal('release');
  });

  it('raises unmapped-department when an appointment to staff has no department', async () => {
    const event = await appointmentEvent('siu-s12-book-ct-scan');
    delete event.appointment.department;
    expect(apply(transform, event, CONTRACT)).to.have.nested.property('exception.category', 'unmapped-department');
  });

  it('sends no patient identity to the workforce system', async () => {
    const text = JSON.stringify(await demand('siu-s12-book-cardiology-followup'));
    expect(text).to.not.contain('E1048458');
    expect(text).to.not.contain('Trần');
  });
});
