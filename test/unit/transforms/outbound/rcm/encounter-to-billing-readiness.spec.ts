// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { deterministicId } from '../../../../../engine/transform-sdk/index.ts';
import type { BillingReadiness } from '../../../../../transforms/contracts/billing-readiness.ts';
import transform from '../../../../../transforms/outbound/rcm/encounter-to-billing-readiness.ts';
import { apply, encounterEvent, only } from '../event-fixtures.ts';

const CONTRACT = 'BillingReadiness@1';

describe('outbound/rcm/encounter-to-billing-readiness', () => {
  it('makes a discharge ready to bill, with the attending NPI and a readinessId from facility + visit', async () => {
    const payload = only(apply(transform, await encounterEvent('adt-a03-discharge-inpatient'), CONTRACT)) as BillingReadiness;
    expect(payload.status).to.equal('ready-to-bill');
    expect(payload.readinessId).to.equal(deterministicId('BillingReadiness@1/readiness', 'RVH', '7100021456'));
    expect(payload.status === 'ready-to-bill' && payload.encounter.attendingProvider).to.deep.include({ id: '10041', npi: '1526018154' });
  });

  it('withdraws, on A13, the readiness the discharge created — computed from the A13 alone', async () => {
    const ready = only(apply(transform, await encounterEvent('adt-a03-discharge-inpatient'), CONTRACT)) as BillingReadiness;
    const withdrawn = only(apply(transform, await encounterEvent('adt-a13-cancel-discharge'), CONTRACT)) as BillingReadiness;
    expect(withdrawn.status).to.equal('withdrawn');
    expect(withdrawn.readinessId).to.equal(ready.readinessId);
    expect(withdrawn.status === 'withdrawn' && withdrawn.withdrawal).to.deep.equal({ of: ready.readinessId, reason: 'discharge-cancelled' });
    expect(withdrawn.id).to.not.equal(ready.id);
  });

  it('filters admissions, registrations, updates and admit cancellations', async () => {
    for (const stem of ['adt-a01-admit-inpatient', 'adt-a04-register-outpatient', 'adt-a08-update-inpatient', 'adt-a11-cancel-admit']) {
      expect(apply(transform, await encounterEvent(stem), CONTRACT), stem).to.have.property('filtered');
    }
  });

  it('raises unknown-provider, tagged with facility, department and provider, when the attending is not in the lookup', async () => {
    const outcome = apply(transform, await encounterEvent('adt-a03-discharge-unknown-attending'), CONTRACT);
    expect(outcome).to.deep.include({
      exception: {
        category: 'unknown-provider',
        detail: "attending provider '10199' (PV1-7.1) is not in lookup 'providers' or has no NPI",
        tags: { facility: 'RVH', department: '5WSURG', provider: '10199' },
      },
    });
  });

  it('raises unknown-provider when the discharge has no attending at all', async () => {
    const event = await encounterEvent('adt-a03-discharge-inpatient');
    delete event.encounter.attendingProvider;
    expect(apply(transform, event, CONTRACT)).to.have.nested.property('exception.category', 'unknown-provider');
  });

  it('does not block a withdrawal on master data: an unknown attending still withdraws', async () => {
    const event = await encounterEvent('adt-a13-cancel-discharge');
    event.encounter.attendingProvider = { id: '10199', known: false };
    expect((only(apply(transform, event, CONTRACT)) as BillingReadiness).status).to.equal('withdrawn');
  });

  it('uses the discharge event time when PV1-45 is absent', async () => {
    const event = await encounterEvent('adt-a03-discharge-inpatient');
    delete event.encounter.dischargedAt;
    const payload = only(apply(transform, event, CONTRACT)) as BillingReadiness;
    expect(payload.status === 'ready-to-bill' && payload.encounter.dischargedAt).to.equal(event.occurredAt);
  });
});
