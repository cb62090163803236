// SPDX-License-Identifier: Apache-2.0
/**
 * The pipeline's `validate: hl7` step: required MSH fields, well-formed segment ids, a known
 * version, and the required segments of the ADT/SIU messages Osprey ships. A small built-in table
 * was chosen over `hl7v2-dictionary` after measuring both (docs/design/0001-hl7-v2-model.md,
 * "Structure validation"): the dictionary costs ~335 ms and ~40 MB of heap to load, and its
 * message definitions key segments by name, so a segment that occurs twice at one level (ROL in
 * ADT_A01) cannot be expressed.
 */
import type { ErrorCode } from '../../errors/error-codes.ts';
import type { AckError, Hl7ErrorCondition, Hl7ErrorLocation } from './hl7-ack.ts';
import type { Hl7Message } from './hl7-message.ts';

/** One problem found by {@link validateStructure}; `detail` never quotes message content. */
export interface Hl7ValidationIssue {
  code: ErrorCode;
  detail: string;
  /** HL7 table 0357: 100 segment sequence error, 101 required field missing, 203 unsupported version id. */
  hl7ErrorCode: Hl7ErrorCondition;
  /** The segment (and field) at fault; absent for a line whose segment id is unreadable (that id is data, never quoted). */
  location?: Hl7ErrorLocation;
}

/** HL7 v2 versions Osprey accepts in MSH-12.1. */
export const KNOWN_HL7_VERSIONS: readonly string[] = ['2.1', '2.2', '2.3', '2.3.1', '2.4', '2.5', '2.5.1', '2.6', '2.7', '2.7.1', '2.8', '2.8.1', '2.8.2', '2.9'];

/**
 * Required top-level segments, in the order they must appear, for the message types the sample
 * channels take. Each listed segment other than a repeating group head must occur exactly once.
 * Same across v2.1–2.8 for these segments (ADT_A01/A03/A09-A11 and SIU_S12 structures).
 */
export const REQUIRED_SEGMENTS: Readonly<Record<string, { required: readonly string[]; once: readonly string[] }>> = {
  'ADT^A01': { required: ['MSH', 'EVN', 'PID', 'PV1'], once: ['MSH', 'EVN', 'PID', 'PV1'] },
  'ADT^A03': { required: ['MSH', 'EVN', 'PID', 'PV1'], once: ['MSH', 'EVN', 'PID', 'PV1'] },
  'ADT^A04': { required: ['MSH', 'EVN', 'PID', 'PV1'], once: ['MSH', 'EVN', 'PID', 'PV1'] },
  'ADT^A08': { required: ['MSH', 'EVN', 'PID', 'PV1'], once: ['MSH', 'EVN', 'PID', 'PV1'] },
  'ADT^A11': { required: ['MSH', 'EVN', 'PID', 'PV1'], once: ['MSH', 'EVN', 'PID', 'PV1'] },
  'ADT^A13': { required: ['MSH', 'EVN', 'PID', 'PV1'], once: ['MSH', 'EVN', 'PID', 'PV1'] },
  'SIU^S12': { required: ['MSH', 'SCH', 'RGS'], once: ['MSH', 'SCH'] },
  'SIU^S13': { required: ['MSH', 'SCH', 'RGS'], once: ['MSH', 'SCH'] },
  'SIU^S14': { required: ['MSH', 'SCH', 'RGS'], once: ['MSH', 'SCH'] },
  'SIU^S15': { required: ['MSH', 'SCH', 'RGS'], once: ['MSH', 'SCH'] },
  'SIU^S17': { required: ['MSH', 'SCH', 'RGS'], once: ['MSH', 'SCH'] },
  'SIU^S26': { required: ['MSH', 'SCH', 'RGS'], once: ['MSH', 'SCH'] },
};

const SEGMENT_ID = /^[A-Z][A-Z0-9]{2}$/;
const MAX_SEGMENT_ISSUES = 5;

/** True for a known version, also with a local suffix such as CDC's `2.3.z`. */
export function isKnownHl7Version(version: string): boolean {
  if (KNOWN_HL7_VERSIONS.includes(version)) return true;
  const m = /^(\d+\.\d+(?:\.\d+)?)\.?z$/i.exec(version);
  return m !== null && KNOWN_HL7_VERSIONS.includes(m[1] as string);
}

/**
 * Checks a parsed message; an empty list means valid. Reports every issue at once:
 * - OSPREY_ERR_HL7_MISSING_FIELD: MSH-9.1, MSH-9.2 (except for ACK), MSH-10, MSH-12 empty;
 * - OSPREY_ERR_HL7_UNKNOWN_VERSION: MSH-12.1 not in {@link KNOWN_HL7_VERSIONS};
 * - OSPREY_ERR_HL7_BAD_SEGMENT: a segment id that is not 3 upper-case letters/digits (the first 5);
 * - OSPREY_ERR_HL7_STRUCTURE: a required segment missing, out of order, repeated, or a second MSH.
 */
export function validateStructure(msg: Hl7Message): Hl7ValidationIssue[] {
  const issues: Hl7ValidationIssue[] = [];
  const type = msg.get('MSH-9.1');
  const trigger = msg.get('MSH-9.2');
  const missing = (field: number, component: number | undefined, detail: string): Hl7ValidationIssue => ({
    code: 'OSPREY_ERR_HL7_MISSING_FIELD',
    detail,
    hl7ErrorCode: '101',
    location: { segment: 'MSH', field, ...(component !== undefined ? { component } : {}) },
  });
  if (typeof type !== 'string') issues.push(missing(9, undefined, 'MSH-9 (message type) is empty.'));
  else if (typeof trigger !== 'string' && type !== 'ACK') issues.push(missing(9, 2, 'MSH-9.2 (trigger event) is empty.'));
  if (typeof msg.controlId !== 'string') issues.push(missing(10, undefined, 'MSH-10 (message control id) is empty.'));
  const version = msg.version;
  if (version === undefined) issues.push(missing(12, undefined, 'MSH-12 (version id) is empty.'));
  else if (!isKnownHl7Version(version)) {
    const shown = /^[0-9A-Za-z.]{1,10}$/.test(version) ? ` (${version})` : '';
    issues.push({
      code: 'OSPREY_ERR_HL7_UNKNOWN_VERSION',
      detail: `MSH-12${shown} is not a known HL7 v2 version (${KNOWN_HL7_VERSIONS[0]} … ${KNOWN_HL7_VERSIONS.at(-1)}).`,
      hl7ErrorCode: '203',
      location: { segment: 'MSH', field: 12 },
    });
  }

  const ids = msg.segmentIds();
  let bad = 0;
  ids.forEach((id, i) => {
    if (SEGMENT_ID.test(id)) return;
    bad++;
    if (bad <= MAX_SEGMENT_ISSUES) {
      // The "id" of a line-wrapped segment is patient data, so it is described, never quoted.
      issues.push({
        code: 'OSPREY_ERR_HL7_BAD_SEGMENT',
        detail: `Segment ${i + 1} has an id of ${id.length} character(s) that is not 3 upper-case letters or digits.`,
        hl7ErrorCode: '100',
      });
    }
  });
  if (bad > MAX_SEGMENT_ISSUES) {
    issues.push({ code: 'OSPREY_ERR_HL7_BAD_SEGMENT', detail: `${bad - MAX_SEGMENT_ISSUES} more segment(s) have malformed ids.`, hl7ErrorCode: '100' });
  }
  if (msg.count('MSH') > 1) {
    issues.push({
      code: 'OSPREY_ERR_HL7_STRUCTURE',
      detail: `The message holds ${msg.count('MSH')} MSH segments: it is a batch; split it first.`,
      hl7ErrorCode: '100',
      location: { segment: 'MSH', sequence: 2 },
    });
  }

  const rule = msg.messageType === undefined ? undefined : REQUIRED_SEGMENTS[msg.messageType];
  if (rule !== undefined) {
    let from = 0;
    for (const seg of rule.required) {
      const at = ids.indexOf(seg, from);
      if (at >= 0) {
        from = at + 1;
        continue;
      }
      const anywhere = ids.indexOf(seg);
      issues.push({
        code: 'OSPREY_ERR_HL7_STRUCTURE',
        detail:
          anywhere >= 0
            ? `${msg.messageType} requires ${rule.required.join(', ')} in this order: ${seg} is out of order.`
            : `${msg.messageType} requires ${rule.required.join(', ')}: ${seg} is missing.`,
        hl7ErrorCode: '100',
        location: { segment: seg },
      });
    }
    for (const seg of rule.once) {
      const n = msg.count(seg);
      if (n > 1 && seg !== 'MSH') {
        issues.push({ code: 'OSPREY_ERR_HL7_STRUCTURE', detail: `${msg.messageType} allows one ${seg}; the message has ${n}.`, hl7ErrorCode: '100', location: { segment: seg, sequence: 2 } });
      }
    }
  }
  return issues;
}

/**
 * The `validate: hl7` step's verdict as the sender's ACK carries it: undefined for a valid message;
 * otherwise OSPREY_ERR_PIPELINE_VALIDATION with every issue in `detail` and the first issue's
 * location and table 0357 code (one ERR segment names where to look first).
 */
export function validationAckError(msg: Hl7Message): (AckError & { code: 'OSPREY_ERR_PIPELINE_VALIDATION' }) | undefined {
  const issues = validateStructure(msg);
  const first = issues[0];
  if (first === undefined) return undefined;
  return {
    code: 'OSPREY_ERR_PIPELINE_VALIDATION',
    detail: issues.map((i) => i.detail).join('; '),
    hl7ErrorCode: first.hl7ErrorCode,
    ...(first.location !== undefined ? { location: first.location } : {}),
  };
}
