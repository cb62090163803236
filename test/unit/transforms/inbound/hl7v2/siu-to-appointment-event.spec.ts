// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { Hl7Message } from '../../../../../engine/message-formats/hl7v2/index.ts';
import { deterministicId } from '../../../../../engine/transform-sdk/index.ts';
import type { AppointmentEvent } from '../../../../../transforms/canonical-events/appointment-event.ts';
import {
  checkContract,
  loadChannel,
  loadLookups,
  lookupFrom,
  runMessage,
  runSample,
  sampleText,
  withField,
  withoutSegments,
  type ChannelUnderTest,
  type SampleRun,
} from '../../sample-harness.ts';

const SIU = 'samples/hl7v2/siu';
const lookup = lookupFrom(loadLookups());

function canonicalOf(run: SampleRun): AppointmentEvent {
  if (run.canonical.state !== 'OK') throw new Error(`expected an event, got ${JSON.stringify(run.canonical)}`);
  return run.canonical.outputs[0] as AppointmentEvent;
}

describe('inbound/hl7v2/siu-to-appointment-event', () => {
  let ch: ChannelUnderTest;
  const run = (text: string): SampleRun => runMessage(ch, Hl7Message.parse(text), lookup);
  before(async () => {
    ch = await loadChannel('siu-to-workforce-erp');
  });

  it('maps S12/S13/S14/S15/S17/S26 to the six appointment event types, each valid against AppointmentEvent@1', () => {
    const byTrigger: Record<string, string> = {
      'siu-s12-book-colonoscopy': 'appointment.booked',
      'siu-s13-reschedule-colonoscopy': 'appointment.rescheduled',
      'siu-s14-modify-colonoscopy': 'appointment.modified',
      'siu-s15-cancel-colonoscopy': 'appointment.cancelled',
      'siu-s17-delete-ct-scan': 'appointment.deleted',
      'siu-s26-no-show-cardiology-followup': 'appointment.no-show',
    };
    for (const [stem, type] of Object.entries(byTrigger)) {
      const event = canonicalOf(runSample(ch, `${SIU}/${stem}.hl7`, lookup));
      expect(event.type, stem).to.equal(type);
      expect(checkContract('AppointmentEvent@1', event), stem).to.deep.equal([]);
    }
  });

  it('derives the event id from sender and MSH-10, and keys the appointment by the filler id SCH-2.1', () => {
    const event = canonicalOf(runSample(ch, `${SIU}/siu-s12-book-colonoscopy.hl7`, lookup));
    expect(event.id).to.equal(deterministicId('AppointmentEvent@1', 'SCHEDPRO', 'RVH', 'SP20260302101512041'));
    expect(event.appointment).to.deep.include({ id: 'SP-884210', placerId: 'CS-PLC-30418' });
  });

  it('reads the slot from TQ1, with the offset of each timestamp kept', () => {
    const event = canonicalOf(runSample(ch, `${SIU}/siu-s12-book-colonoscopy.hl7`, lookup));
    expect(event.appointment).to.deep.include({ start: '2026-03-16T08:00:00-05:00', end: '2026-03-16T08:45:00-05:00', durationMinutes: 45 });
    expect(event.occurredAt).to.equal('2026-03-02T10:15:12-06:00');
  });

  it('falls back to SCH-11 without TQ1, then to AIS-4 with the SCH-9/10 duration', () => {
    const noTq1 = withoutSegments(sampleText(`${SIU}/siu-s12-book-colonoscopy.hl7`), 'TQ1');
    expect(canonicalOf(run(noTq1)).appointment).to.deep.include({ start: '2026-03-16T08:00:00-05:00', end: '2026-03-16T08:45:00-05:00' });
    const aisOnly = withField(withField(noTq1, 'SCH', 11, ''), 'SCH', 9, '1');
    const fromAis = canonicalOf(run(withField(aisOnly, 'SCH', 10, 'h^hours^ANS+'))).appointment;
    expect(fromAis).to.deep.include({ start: '2026-03-16T08:00:00-05:00', end: '2026-03-16T09:00:00-05:00', durationMinutes: 60 });
  });

  it('raises incomplete-message without any start time', () => {
    let text = withoutSegments(sampleText(`${SIU}/siu-s12-book-colonoscopy.hl7`), 'TQ1');
    text = withField(withField(text, 'SCH', 11, ''), 'AIS', 4, '');
    expect(run(text).canonical).to.deep.include({ state: 'BUSINESS_EXCEPTION', category: 'incomplete-message' });
  });

  it('requires the filler appointment id and never substitutes the placer id', () => {
    const text = withField(sampleText(`${SIU}/siu-s12-book-colonoscopy.hl7`), 'SCH', 2, '');
    const result = run(text);
    expect(result.canonical).to.deep.include({ state: 'BUSINESS_EXCEPTION', category: 'incomplete-message' });
    expect(result.canonical.state === 'BUSINESS_EXCEPTION' && result.canonical.detail).to.contain('SCH-2.1');
  });

  it('lists every AIP with role from the lookup, own start and duration, and the segment action', () => {
    const event = canonicalOf(runSample(ch, `${SIU}/siu-s14-modify-colonoscopy.hl7`, lookup));
    expect(event.resources.providers.map((p) => [p.id, p.role, p.action, p.start, p.durationMinutes])).to.deep.equal([
      ['20015', 'gastroenterologist', 'updated', '2026-03-18T13:30:00-05:00', 45],
      ['20031', 'nurse-anesthetist', 'removed', '2026-03-18T13:20:00-05:00', 60],
      ['20090', 'registered-nurse', 'updated', '2026-03-18T13:15:00-05:00', 75],
    ]);
    expect(event.resources.locations).to.deep.equal([
      {
        code: 'ENDO',
        location: { pointOfCare: 'ENDO', room: 'ER2', facility: 'RVH', description: 'Endoscopy Suite' },
        locationType: { code: 'PROC', text: 'Procedure room', system: 'LOCAL' },
        action: 'updated',
      },
    ]);
  });

  it('records an unknown provider as known: false without raising', () => {
    const event = canonicalOf(runSample(ch, `${SIU}/siu-s12-book-unknown-provider.hl7`, lookup));
    expect(event.resources.providers.map((p) => [p.id, p.known])).to.deep.equal([
      ['20105', true],
      ['30077', false],
    ]);
  });

  it('keeps non-ASCII patient names and decodes escapes in the service text', () => {
    const event = canonicalOf(runSample(ch, `${SIU}/siu-s12-book-cardiology-followup.hl7`, lookup));
    expect(event.patient?.name).to.deep.equal({ family: 'Trần', given: 'Ngọc Ánh' });
    expect(event.appointment.service?.text).to.equal('Office visit, established patient & ECG review');
    expect(event.facility).to.equal('RVAC');
  });

  it('leaves the patient out when the message has no PID', () => {
    const text = withoutSegments(sampleText(`${SIU}/siu-s12-book-ct-scan.hl7`), 'PID');
    const event = canonicalOf(run(text));
    expect(event).to.not.have.property('patient');
    expect(checkContract('AppointmentEvent@1', event)).to.deep.equal([]);
  });

  it('raises unmapped-department with facility and department tags', () => {
    const result = runSample(ch, `${SIU}/siu-s12-book-unmapped-location.hl7`, lookup);
    expect(result.canonical).to.deep.include({ state: 'BUSINESS_EXCEPTION', category: 'unmapped-department' });
    expect(result.canonical.state === 'BUSINESS_EXCEPTION' && result.canonical.tags).to.deep.equal({ facility: 'RVAC', department: 'DERMCL' });
  });

  it('filters triggers it does not map (S16) instead of failing', () => {
    const text = withField(sampleText(`${SIU}/siu-s15-cancel-colonoscopy.hl7`), 'MSH', 9, 'SIU^S16^SIU_S12');
    expect(run(text).canonical).to.deep.include({ state: 'FILTERED' });
  });
});
