// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import {
  addMinutes,
  calendarDaysBetween,
  durationToMinutes,
  hl7Offset,
  hl7ToIsoDate,
  hl7ToIsoDateTime,
  isValidTimeZone,
  minutesBetween,
  parseHl7DateTime,
} from '../../../../transforms/lib/hl7-timestamp.ts';

describe('transforms/lib/hl7-timestamp', () => {
  describe('hl7ToIsoDateTime', () => {
    it('keeps the offset the value carries instead of converting to UTC', () => {
      expect(hl7ToIsoDateTime('20260306141522-0600')).to.equal('2026-03-06T14:15:22-06:00');
      expect(hl7ToIsoDateTime('198808181126+0215')).to.equal('1988-08-18T11:26:00+02:15');
      expect(hl7ToIsoDateTime('20260101000000+0000')).to.equal('2026-01-01T00:00:00+00:00');
    });

    it('fills absent time parts with zeros and keeps fraction digits as sent', () => {
      expect(hl7ToIsoDateTime('2026030614-0500')).to.equal('2026-03-06T14:00:00-05:00');
      expect(hl7ToIsoDateTime('20260306-0500')).to.equal('2026-03-06T00:00:00-05:00');
      expect(hl7ToIsoDateTime('20210817151943.4+0200')).to.equal('2021-08-17T15:19:43.4+02:00');
      expect(hl7ToIsoDateTime('20210817151943.1234-0400')).to.equal('2021-08-17T15:19:43.1234-04:00');
    });

    it('places a time without offset in the facility zone, DST-correct for that instant', () => {
      // US DST starts 2026-03-08 02:00 local: the same zone gives two offsets a day apart.
      expect(hl7ToIsoDateTime('20260307120000', { timeZone: 'America/Chicago' })).to.equal('2026-03-07T12:00:00-06:00');
      expect(hl7ToIsoDateTime('20260309120000', { timeZone: 'America/Chicago' })).to.equal('2026-03-09T12:00:00-05:00');
      expect(hl7ToIsoDateTime('20260701083000', { timeZone: 'Europe/Paris' })).to.equal('2026-07-01T08:30:00+02:00');
      expect(hl7ToIsoDateTime('20260101083000', { timeZone: 'Asia/Kolkata' })).to.equal('2026-01-01T08:30:00+05:30');
    });

    it('prefers the facility zone over the MSH-7 fallback offset, and uses the fallback without a zone', () => {
      expect(hl7ToIsoDateTime('20260309120000', { timeZone: 'America/Chicago', fallbackOffset: '-06:00' })).to.equal('2026-03-09T12:00:00-05:00');
      expect(hl7ToIsoDateTime('20260309120000', { fallbackOffset: '-06:00' })).to.equal('2026-03-09T12:00:00-06:00');
    });

    it('returns undefined rather than guessing UTC when no offset can be resolved', () => {
      expect(hl7ToIsoDateTime('20260309120000')).to.equal(undefined);
    });

    it('returns undefined for empty, null and malformed values', () => {
      for (const bad of [undefined, null, '', '2026-03-09', '20261309', '20260230x', '202603091260', '20260309120000+05']) {
        expect(hl7ToIsoDateTime(bad, { fallbackOffset: '+00:00' }), String(bad)).to.equal(undefined);
      }
    });
  });

  it('parseHl7DateTime defaults month and day to 01', () => {
    expect(parseHl7DateTime('1975')).to.deep.include({ year: 1975, month: 1, day: 1, hour: 0 });
  });

  it('hl7Offset reads the offset of MSH-7 style values', () => {
    expect(hl7Offset('20260306141522-0600')).to.equal('-06:00');
    expect(hl7Offset('20260306141522')).to.equal(undefined);
  });

  it('hl7ToIsoDate keeps the calendar date as written, also when a time and offset follow', () => {
    expect(hl7ToIsoDate('19580412')).to.equal('1958-04-12');
    expect(hl7ToIsoDate('198808181126+0215')).to.equal('1988-08-18');
    expect(hl7ToIsoDate('')).to.equal(undefined);
  });

  it('calendarDaysBetween counts midnights on local dates, whatever the offsets', () => {
    expect(calendarDaysBetween('2026-03-06T14:00:00-06:00', '2026-03-09T11:45:00-05:00')).to.equal(3);
    expect(calendarDaysBetween('2026-03-06T00:10:00-06:00', '2026-03-06T23:50:00-06:00')).to.equal(0);
    expect(calendarDaysBetween('2026-12-31T22:00:00-06:00', '2027-01-01T01:00:00-06:00')).to.equal(1);
  });

  it('minutesBetween compares instants across offsets', () => {
    expect(minutesBetween('2026-03-08T01:30:00-06:00', '2026-03-08T03:30:00-05:00')).to.equal(60);
  });

  it('addMinutes keeps the original offset', () => {
    expect(addMinutes('2026-03-16T23:30:00-05:00', 45)).to.equal('2026-03-17T00:15:00-05:00');
    expect(addMinutes('2026-03-16T08:00:00+05:30', 30)).to.equal('2026-03-16T08:30:00+05:30');
  });

  it('durationToMinutes understands the unit spellings schedulers send', () => {
    expect(durationToMinutes('45', 'min')).to.equal(45);
    expect(durationToMinutes('45', 'MIN')).to.equal(45);
    expect(durationToMinutes('45', undefined)).to.equal(45);
    expect(durationToMinutes('2', 'h')).to.equal(120);
    expect(durationToMinutes('90', 's')).to.equal(1.5);
    expect(durationToMinutes('45', 'fortnights')).to.equal(undefined);
    expect(durationToMinutes('abc', 'min')).to.equal(undefined);
    expect(durationToMinutes('', 'min')).to.equal(undefined);
  });

  it('isValidTimeZone tells IANA names from typos', () => {
    expect(isValidTimeZone('America/Chicago')).to.equal(true);
    expect(isValidTimeZone('America/Chicgo')).to.equal(false);
  });
});
