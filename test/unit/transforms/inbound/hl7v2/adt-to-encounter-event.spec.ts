// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { Hl7Message } from '../../../../../engine/message-formats/hl7v2/index.ts';
import { deterministicId } from '../../../../../engine/transform-sdk/index.ts';
import type { EncounterEvent } from '../../../../../transforms/canonical-events/encounter-event.ts';
import {
  checkContract,
  loadChannel,
  loadLookups,
  lookupFrom,
  runMessage,
  runSample,
  sampleText,
  withField,
  type ChannelUnderTest,
  type Lookup,
  type SampleRun,
} from '../../sample-harness.ts';

const ADT = 'samples/hl7v2/adt';
const tables = loadLookups();
const lookup = lookupFrom(tables);

function canonicalOf(run: SampleRun): EncounterEvent {
  if (run.canonical.state !== 'OK') throw new Error(`expected an event, got ${JSON.stringify(run.canonical)}`);
  return run.canonical.outputs[0] as EncounterEvent;
}

describe('inbound/hl7v2/adt-to-encounter-event', () => {
  let ch: ChannelUnderTest;
  const run = (text: string, l: Lookup = lookup): SampleRun => runMessage(ch, Hl7Message.parse(text), l);
  before(async () => {
    ch = await loadChannel('adt-to-rcm-erp');
  });

  it('maps A01/A03/A04/A08/A11/A13 to the six encounter event types, each valid against EncounterEvent@1', () => {
    const byTrigger: Record<string, string> = {
      'adt-a01-admit-inpatient': 'encounter.admitted',
      'adt-a03-discharge-inpatient': 'encounter.discharged',
      'adt-a04-register-outpatient': 'encounter.registered',
      'adt-a08-update-inpatient': 'encounter.updated',
      'adt-a11-cancel-admit': 'encounter.admit-cancelled',
      'adt-a13-cancel-discharge': 'encounter.discharge-cancelled',
    };
    for (const [stem, type] of Object.entries(byTrigger)) {
      const event = canonicalOf(runSample(ch, `${ADT}/${stem}.hl7`, lookup));
      expect(event.type, stem).to.equal(type);
      expect(checkContract('EncounterEvent@1', event), stem).to.deep.equal([]);
    }
  });

  it('derives the id from sender and MSH-10 only: same message, same id; another sender, another id', () => {
    const event = canonicalOf(runSample(ch, `${ADT}/adt-a01-admit-inpatient.hl7`, lookup));
    expect(event.id).to.equal(deterministicId('EncounterEvent@1', 'CARESUITE', 'RVH', 'CS20260306141522001'));
    const otherSender = withField(sampleText(`${ADT}/adt-a01-admit-inpatient.hl7`), 'MSH', 3, 'OTHEREHR');
    expect(canonicalOf(run(otherSender)).id).to.not.equal(event.id);
  });

  it('takes occurredAt from EVN-6 (event occurred) before EVN-2 (recorded), with the offset kept', () => {
    const event = canonicalOf(runSample(ch, `${ADT}/adt-a01-admit-inpatient.hl7`, lookup));
    expect(event.occurredAt).to.equal('2026-03-06T14:00:00-06:00');
    expect(event.source.sentAt).to.equal('2026-03-06T14:15:22-06:00');
    const noEvn6 = withField(sampleText(`${ADT}/adt-a01-admit-inpatient.hl7`), 'EVN', 6, '');
    expect(canonicalOf(run(noEvn6)).occurredAt).to.equal('2026-03-06T14:15:00-06:00');
  });

  it('resolves times sent without offset with the facility time zone', () => {
    const event = canonicalOf(runSample(ch, `${ADT}/adt-a03-discharge-emergency-no-offset.hl7`, lookup));
    expect(event.occurredAt).to.equal('2026-03-10T22:14:00-05:00');
    expect(event.encounter.admittedAt).to.equal('2026-03-10T18:30:00-05:00');
    expect(event.encounter.class).to.equal('emergency');
  });

  it('raises unknown-time-zone, with the facility tag, when neither the value, MSH-7 nor the facility gives an offset', () => {
    const noFacilities: Lookup = (table, key) => (table === 'facilities' ? undefined : lookup(table, key));
    const result = run(sampleText(`${ADT}/adt-a03-discharge-emergency-no-offset.hl7`), noFacilities);
    expect(result.canonical).to.deep.include({ state: 'BUSINESS_EXCEPTION', category: 'unknown-time-zone' });
    expect(result.canonical.state === 'BUSINESS_EXCEPTION' && result.canonical.tags).to.deep.equal({ facility: 'RVH', department: 'ED' });
  });

  it('keeps non-ASCII names and decodes escapes in the location description', () => {
    const event = canonicalOf(runSample(ch, `${ADT}/adt-a04-register-outpatient.hl7`, lookup));
    expect(event.patient.name).to.deep.equal({ family: 'Ødegård-Núñez', given: 'Zoë', middle: 'A' });
    expect(event.encounter.location?.description).to.equal('Cardiology & Vascular Clinic');
    expect(event.facility).to.equal('RVAC');
  });

  it('enriches department and attending from the lookups, and records an unknown attending without raising', () => {
    const known = canonicalOf(runSample(ch, `${ADT}/adt-a03-discharge-inpatient.hl7`, lookup));
    expect(known.encounter.department).to.deep.equal({ code: '4WMED', name: '4 West Medicine', costCenter: 'CC-4100' });
    expect(known.encounter.attendingProvider).to.deep.include({ id: '10041', npi: '1526018154', role: 'hospitalist', known: true });
    const unknown = canonicalOf(runSample(ch, `${ADT}/adt-a03-discharge-unknown-attending.hl7`, lookup));
    expect(unknown.encounter.attendingProvider).to.deep.equal({ id: '10199', known: false, name: { family: 'FAIRBANKS', given: 'THEODORE' } });
  });

  it('raises unmapped-department with facility and department tags', () => {
    const result = runSample(ch, `${ADT}/adt-a01-unmapped-department.hl7`, lookup);
    expect(result.canonical).to.deep.include({ state: 'BUSINESS_EXCEPTION', category: 'unmapped-department' });
    expect(result.canonical.state === 'BUSINESS_EXCEPTION' && result.canonical.tags).to.deep.equal({ facility: 'RVH', department: 'PEDS3' });
    expect(result.delivered).to.deep.equal({ 'rcm-billing': [], 'erp-accruals': [] });
  });

  it('reads the MRN from the MR repetition of PID-3 even when another identifier comes first', () => {
    const text = withField(sampleText(`${ADT}/adt-a01-admit-inpatient.hl7`), 'PID', 3, '900410221^^^RVHEMPI^PI~E1048221^^^RVH^MR');
    expect(canonicalOf(run(text)).patient).to.deep.include({ mrn: 'E1048221', assigningAuthority: 'RVH' });
  });

  it('falls back to PID-18 for the visit number, and raises incomplete-message without either', () => {
    const base = withField(sampleText(`${ADT}/adt-a01-admit-inpatient.hl7`), 'PV1', 19, '');
    expect(canonicalOf(run(base)).encounter.visitNumber).to.equal('7100021456');
    const neither = withField(base, 'PID', 18, '');
    expect(run(neither).canonical).to.deep.include({ state: 'BUSINESS_EXCEPTION', category: 'incomplete-message' });
  });

  it('raises incomplete-message for a malformed time rather than guessing', () => {
    const text = withField(sampleText(`${ADT}/adt-a01-admit-inpatient.hl7`), 'PV1', 44, '2026-03-06 14:00');
    const result = run(text);
    expect(result.canonical).to.deep.include({ state: 'BUSINESS_EXCEPTION', category: 'incomplete-message' });
    expect(result.canonical.state === 'BUSINESS_EXCEPTION' && result.canonical.detail).to.contain('PV1-44');
  });

  it('filters triggers it does not map (A02) instead of failing', () => {
    const text = withField(sampleText(`${ADT}/adt-a08-update-inpatient.hl7`), 'MSH', 9, 'ADT^A02^ADT_A02');
    expect(run(text).canonical).to.deep.include({ state: 'FILTERED' });
  });
});
