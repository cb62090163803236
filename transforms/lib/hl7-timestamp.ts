// SPDX-License-Identifier: Apache-2.0
/**
 * HL7 v2 date/time (DTM / TS.1) → ISO 8601, with the time-zone offset handled.
 *
 * Pure: the only "time" used is the value itself and the IANA rules bundled with Node's ICU
 * (`Intl`), never the clock.
 *
 * Why an offset is always resolved: a canonical event's `occurredAt` is compared across systems
 * and time zones; a floating local time would silently shift by hours when the ERP reads it as
 * UTC. The order of precedence is:
 * 1. the offset the value carries (`20260302081500-0500`) — kept as sent, not converted to UTC,
 *    so no information is lost (`-05:00`);
 * 2. the facility's IANA time zone (DST-correct for that very instant);
 * 3. a fallback offset, usually the one on MSH-7 (HL7: an absent offset means "the sender's
 *    local time zone", which is what MSH-7 states — but only for the moment the message was
 *    sent, so it can be off by the DST difference; hence the zone comes first);
 * 4. otherwise `undefined`: the caller decides (the sample transforms raise a business exception).
 */

/** HL7 DTM: YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ] */
const DTM = /^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,4}))?([+-]\d{4})?$/;

/** Parts of an HL7 date/time; absent month/day default to 01, absent time parts to 00. */
export interface Hl7DateTimeParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  /** Fraction digits exactly as sent (`'1234'`), or '' when none. */
  fraction: string;
  /** `+hh:mm` / `-hh:mm` when the value carries an offset. */
  offset?: string;
}

/** Parses an HL7 DTM; `undefined` when empty or malformed (no guessing on bad data). */
export function parseHl7DateTime(value: string | null | undefined): Hl7DateTimeParts | undefined {
  if (value === null || value === undefined) return undefined;
  const m = DTM.exec(value.trim());
  if (!m) return undefined;
  const num = (s: string | undefined, dflt: number): number => (s === undefined ? dflt : Number(s));
  const parts: Hl7DateTimeParts = {
    year: num(m[1], 0),
    month: num(m[2], 1),
    day: num(m[3], 1),
    hour: num(m[4], 0),
    minute: num(m[5], 0),
    second: num(m[6], 0),
    fraction: m[7] ?? '',
  };
  if (parts.month < 1 || parts.month > 12 || parts.day < 1 || parts.day > 31) return undefined;
  if (parts.hour > 23 || parts.minute > 59 || parts.second > 59) return undefined;
  if (m[8] !== undefined) parts.offset = `${m[8].slice(0, 3)}:${m[8].slice(3)}`;
  return parts;
}

/** The offset (`+hh:mm`) an HL7 DTM carries, or undefined. Used to take MSH-7's as a fallback. */
export function hl7Offset(value: string | null | undefined): string | undefined {
  return parseHl7DateTime(value)?.offset;
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

function formatOffset(totalMinutes: number): string {
  const sign = totalMinutes < 0 ? '-' : '+';
  const abs = Math.abs(totalMinutes);
  return `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** Offset in minutes of an IANA zone at a UTC instant. Throws RangeError on an unknown zone. */
function zoneOffsetAt(timeZone: string, utcMillis: number): number {
  const fmt = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
  const get = (type: string): number => Number(fmt.formatToParts(new Date(utcMillis)).find((p) => p.type === type)?.value);
  const wall = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
  return Math.round((wall - Math.floor(utcMillis / 1000) * 1000) / 60000);
}

/**
 * Offset of a local wall time in an IANA zone. Two passes settle the instant near DST changes;
 * a wall time that does not exist (the spring-forward gap) gets the offset in force just after.
 */
export function zoneOffsetForLocal(timeZone: string, p: Hl7DateTimeParts): string {
  const wall = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  const first = zoneOffsetAt(timeZone, wall);
  const second = zoneOffsetAt(timeZone, wall - first * 60000);
  return formatOffset(second);
}

/** True when Node's ICU knows the IANA zone name. */
export function isValidTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

export interface OffsetFallbacks {
  /** IANA zone of the facility, e.g. `America/Chicago`. */
  timeZone?: string | undefined;
  /** `+hh:mm`, typically MSH-7's offset. */
  fallbackOffset?: string | undefined;
}

/**
 * HL7 date/time → ISO 8601 (`2026-03-02T08:15:00-05:00`), seconds always present, fraction kept
 * as sent. `undefined` when empty, malformed, or no offset can be resolved.
 */
export function hl7ToIsoDateTime(value: string | null | undefined, fallbacks: OffsetFallbacks = {}): string | undefined {
  const p = parseHl7DateTime(value);
  if (!p) return undefined;
  const offset = p.offset ?? (fallbacks.timeZone ? zoneOffsetForLocal(fallbacks.timeZone, p) : fallbacks.fallbackOffset);
  if (offset === undefined) return undefined;
  const frac = p.fraction === '' ? '' : `.${p.fraction}`;
  return `${pad(p.year, 4)}-${pad(p.month)}-${pad(p.day)}T${pad(p.hour)}:${pad(p.minute)}:${pad(p.second)}${frac}${offset}`;
}

/**
 * HL7 date (or date/time, e.g. a birth date sent with a time) → `YYYY-MM-DD`, the calendar date
 * as written by the sender: a date of birth is not an instant and must not shift across zones.
 */
export function hl7ToIsoDate(value: string | null | undefined): string | undefined {
  const p = parseHl7DateTime(value);
  if (!p) return undefined;
  return `${pad(p.year, 4)}-${pad(p.month)}-${pad(p.day)}`;
}

/** The local calendar date (`YYYY-MM-DD`) of an ISO date-time produced above, in its own offset. */
export function localDateOf(isoDateTime: string): string {
  return isoDateTime.slice(0, 10);
}

/**
 * Whole calendar days between two local dates (`YYYY-MM-DD…`), e.g. midnights between admission
 * and discharge. Uses the dates as written, so a DST change in between does not make 23h count as 0.
 */
export function calendarDaysBetween(fromIso: string, toIso: string): number {
  const toUtc = (iso: string): number => Date.UTC(Number(iso.slice(0, 4)), Number(iso.slice(5, 7)) - 1, Number(iso.slice(8, 10)));
  return Math.round((toUtc(toIso) - toUtc(fromIso)) / 86_400_000);
}

/** Minutes between two ISO date-times with offsets (negative when `to` is earlier). */
export function minutesBetween(fromIso: string, toIso: string): number {
  return Math.round((Date.parse(toIso) - Date.parse(fromIso)) / 60000);
}

/**
 * HL7 duration + units (SCH-9/10, AIS-7/8, AIP-9/10) → minutes. Units arrive as `min`, `MIN`,
 * `m`, `M`, `minutes`, `h`, `hr`, `HOUR`, `s`, `S`, `sec` (ISO+ / ANSI / free text); no units means
 * minutes, the HL7 default for these fields. `undefined` for an unknown unit or non-number.
 */
export function durationToMinutes(value: string | null | undefined, unit: string | null | undefined): number | undefined {
  if (value === null || value === undefined || value.trim() === '') return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) return undefined;
  const u = (unit ?? '').trim().toLowerCase();
  if (u === '' || u === 'm' || u === 'min' || u === 'mins' || u === 'minute' || u === 'minutes') return n;
  if (u === 'h' || u === 'hr' || u === 'hrs' || u === 'hour' || u === 'hours') return n * 60;
  if (u === 's' || u === 'sec' || u === 'second' || u === 'seconds') return n / 60;
  return undefined;
}

/** Adds minutes to an ISO date-time, keeping its offset (the result stays in the sender's local time). */
export function addMinutes(isoDateTime: string, minutes: number): string {
  const offset = /([+-]\d{2}:\d{2}|Z)$/.exec(isoDateTime)?.[1] ?? '+00:00';
  const offsetMinutes = offset === 'Z' ? 0 : (offset.startsWith('-') ? -1 : 1) * (Number(offset.slice(1, 3)) * 60 + Number(offset.slice(4, 6)));
  const local = new Date(Date.parse(isoDateTime) + (minutes + offsetMinutes) * 60000);
  return `${pad(local.getUTCFullYear(), 4)}-${pad(local.getUTCMonth() + 1)}-${pad(local.getUTCDate())}T${pad(local.getUTCHours())}:${pad(local.getUTCMinutes())}:${pad(local.getUTCSeconds())}${offset === 'Z' ? '+00:00' : offset}`;
}
