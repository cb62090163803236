// SPDX-License-Identifier: Apache-2.0
/**
 * Synthetic ADT traffic for the benchmark: inpatient encounters of ~1000 patients, each an A01
 * (admit) followed later by its A03 (discharge). SYNTHETIC data only (no real person), built from
 * the sample channel's own master data (config/lookups), so every message takes the full path.
 *
 * Why only inpatient A01 + A03: the number of deliveries per message must be known in advance to
 * tell when a message is "fully delivered". With the sample channel `adt-to-rcm-erp`:
 * - A01 inpatient → `erp-accruals` only (RCM readiness starts at discharge) = 1 delivery;
 * - A03 inpatient with a known attending and an admission time → `rcm-billing` + `erp-accruals` = 2.
 * A08 (filtered for both destinations) and non-inpatient classes (filtered for ERP) would make the
 * count depend on transform details, so they are left out; the mix is 50/50, 1.5 deliveries per message.
 *
 * The ordering key of the channel is the MRN (PID-3.1); each patient's messages are generated in
 * order (admit before its discharge, encounters one after another) and the load generator sends all
 * of one patient's messages over one connection, as one EHR feed would.
 */
import { deterministicId } from '../../engine/transform-sdk/index.ts';
import { ENCOUNTER_EVENT } from '../../transforms/canonical-events/encounter-event.ts';

export const SENDING_APPLICATION = 'CARESUITE';
export const SENDING_FACILITY = 'RVH';

/** One message to send, with what the benchmark needs to match its deliveries. */
export interface BenchMessage {
  /** MSH-10, unique per message (and per run). */
  controlId: string;
  /** The ordering key (MRN). */
  patient: number;
  trigger: 'A01' | 'A03';
  /** Segments joined by CR. */
  text: string;
  /** `sourceEventId` the outbound transforms put in every payload of this message. */
  sourceEventId: string;
  /** Destinations (sink paths) the message must reach: 'erp', or 'rcm' and 'erp'. */
  expected: readonly Destination[];
}

export type Destination = 'rcm' | 'erp';

// Inpatient departments of RVH (config/lookups/departments.yaml) and providers with an NPI
// (config/lookups/providers.yaml): a miss would become a business exception, not a delivery.
const DEPARTMENTS = [
  { code: '4WMED', name: '4 West Medicine', service: 'MED' },
  { code: '5WSURG', name: '5 West Surgery', service: 'SUR' },
  { code: 'ICU', name: 'Medical Intensive Care Unit', service: 'MED' },
] as const;
const PROVIDERS = [
  { id: '10041', family: 'HARTWELL', given: 'MIRIAM' },
  { id: '10077', family: 'OKAFOR', given: 'DANIEL' },
  { id: '10112', family: 'LINDQVIST', given: 'SARA' },
  { id: '20015', family: 'CASTELLANO', given: 'MARCO' },
  { id: '20048', family: 'PATEL', given: 'NISHA' },
  { id: '20105', family: 'NOVAK', given: 'PETRA' },
] as const;
const FAMILY = ['PRESCOTT', 'ALVAREZ', 'NGUYEN', 'OKONKWO', 'FITZGERALD', 'KOWALSKI', 'HAMMOND', 'IBARRA', 'LINDGREN', 'MURAKAMI', 'OSEI', 'RAMIREZ', 'SOKOLOV', 'THORNE', 'VANCE', 'WHITAKER'];
const GIVEN = ['HOLLIS', 'MARISOL', 'TRAN', 'ADAEZE', 'CORMAC', 'ZOFIA', 'REGINALD', 'LUCIA', 'ASTRID', 'KENJI', 'KWAME', 'PAOLA', 'ILYA', 'BEATRIX', 'DESMOND', 'ROSALIND'];
const STREETS = ['Larch Hollow Rd', 'Millrace Ave', 'Quarry Bend Ln', 'Sumac Ct', 'Old Ferry Rd', 'Heron Way'];
const DIAGNOSES = [
  ['R06.02', 'Shortness of breath'],
  ['J18.9', 'Pneumonia, unspecified organism'],
  ['I50.9', 'Heart failure, unspecified'],
  ['K35.80', 'Unspecified acute appendicitis'],
  ['N17.9', 'Acute kidney failure, unspecified'],
] as const;

/** A small deterministic PRNG (mulberry32): the same seed gives the same traffic. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

/** HL7 DTM with the facility's winter offset (all dates fall in CST, January–February 2026). */
function hl7Time(ms: number): string {
  const d = new Date(ms - 6 * 3_600_000);
  return `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1, 2)}${pad(d.getUTCDate(), 2)}${pad(d.getUTCHours(), 2)}${pad(d.getUTCMinutes(), 2)}${pad(d.getUTCSeconds(), 2)}-0600`;
}

interface Patient {
  mrn: string;
  empi: string;
  family: string;
  given: string;
  middle: string;
  dob: string;
  sex: 'M' | 'F';
  address: string;
  phone: string;
}

function makePatient(i: number, rnd: () => number): Patient {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const year = 1935 + Math.floor(rnd() * 70);
  return {
    mrn: `E2${pad(i, 6)}`,
    empi: `9${pad(i * 7919 + 13, 8)}`,
    family: pick(FAMILY),
    given: pick(GIVEN),
    middle: String.fromCharCode(65 + Math.floor(rnd() * 26)),
    dob: `${year}${pad(1 + Math.floor(rnd() * 12), 2)}${pad(1 + Math.floor(rnd() * 28), 2)}`,
    sex: rnd() < 0.5 ? 'M' : 'F',
    address: `${100 + Math.floor(rnd() * 900)} ${pick(STREETS)}^^Riverbend^IL^61299^USA^H`,
    phone: `^PRN^PH^^^555^0${pad(Math.floor(rnd() * 1_000_000), 6)}`,
  };
}

/** The payloads' `sourceEventId` for a message: the ADT transform's deterministic event id. */
export function sourceEventIdOf(controlId: string): string {
  return deterministicId(ENCOUNTER_EVENT, SENDING_APPLICATION, SENDING_FACILITY, controlId);
}

export interface GenerateOptions {
  /** Messages to generate (rounded up to an even number: A01 + A03 per encounter). */
  messages: number;
  /** Distinct patients (ordering keys). @defaultValue 1000 */
  patients?: number;
  /** Makes MSH-10 and visit numbers unique to this run (a few base-36 characters). */
  runTag: string;
  /** Prefix of MSH-10 (e.g. `W` for warm-up) so two sets of one run never collide. */
  prefix: string;
  /** PRNG seed. @defaultValue 42 */
  seed?: number;
}

/**
 * Generates the traffic in send order: round r carries every patient's r-th message, so each
 * patient's A01 goes out well before its A03 and thousands of keys are in flight at once.
 */
export function generateAdt(options: GenerateOptions): BenchMessage[] {
  const rnd = prng(options.seed ?? 42);
  const encounters = Math.ceil(options.messages / 2);
  const patientCount = Math.max(1, Math.min(options.patients ?? 1000, encounters));
  const patients = Array.from({ length: patientCount }, (_, i) => makePatient(i, rnd));
  const perPatient: BenchMessage[][] = patients.map(() => []);
  const base = Date.UTC(2026, 0, 5, 12, 0, 0);
  let seq = 0;
  for (let e = 0; e < encounters; e++) {
    const p = e % patientCount;
    const patient = patients[p] as Patient;
    const dept = DEPARTMENTS[Math.floor(rnd() * DEPARTMENTS.length)] as (typeof DEPARTMENTS)[number];
    const doc = PROVIDERS[Math.floor(rnd() * PROVIDERS.length)] as (typeof PROVIDERS)[number];
    const dx = DIAGNOSES[Math.floor(rnd() * DIAGNOSES.length)] as (typeof DIAGNOSES)[number];
    // Encounters of one patient follow each other; all stay within CST (January–February).
    const round = Math.floor(e / patientCount);
    const admitAt = base + round * 6 * 86_400_000 + Math.floor(rnd() * 86_400_000);
    const dischargeAt = admitAt + (1 + Math.floor(rnd() * 4)) * 86_400_000 + Math.floor(rnd() * 8 * 3_600_000);
    const visit = `7${options.runTag}${pad(e, 8)}`;
    const room = `${100 + Math.floor(rnd() * 400)}^${'AB'[Math.floor(rnd() * 2)]}`;
    for (const trigger of ['A01', 'A03'] as const) {
      const at = trigger === 'A01' ? admitAt : dischargeAt;
      const controlId = `${options.prefix}${options.runTag}${pad(seq++, 8)}`;
      const attending = `${doc.id}^${doc.family}^${doc.given}^^^^MD^^^^^^PRN`;
      const pv1 = new Array<string>(46).fill('');
      pv1[0] = 'PV1';
      pv1[1] = '1';
      pv1[2] = 'I';
      pv1[3] = `${dept.code}^${room}^RVH^^^^^${dept.name}`;
      pv1[4] = 'E';
      pv1[7] = attending;
      pv1[10] = dept.service;
      pv1[14] = '7';
      pv1[17] = attending;
      pv1[19] = `${visit}^^^RVH^VN`;
      pv1[39] = 'RVH';
      pv1[44] = hl7Time(admitAt);
      if (trigger === 'A03') {
        pv1[36] = '01';
        pv1[45] = hl7Time(dischargeAt);
      }
      const segments = [
        `MSH|^~\\&|${SENDING_APPLICATION}|${SENDING_FACILITY}|OSPREY|RVH|${hl7Time(at + 60_000)}||ADT^${trigger}^ADT_${trigger}|${controlId}|P|2.5.1|||AL|NE||UNICODE UTF-8`,
        `EVN|${trigger}|${hl7Time(at + 30_000)}||||${hl7Time(at)}`,
        `PID|1||${patient.mrn}^^^RVH^MR~${patient.empi}^^^RVHEMPI^PI||${patient.family}^${patient.given}^${patient.middle}^^^^L||${patient.dob}|${patient.sex}|||${patient.address}||${patient.phone}|||||${visit}^^^RVH^AN`,
        pv1.join('|'),
        `PV2|||${dx[0]}^${dx[1]}^I10`,
        `DG1|1||${dx[0]}^${dx[1]}^I10|||${trigger === 'A01' ? 'A' : 'F'}`,
        // Segments the channel does not read, so the bytes on the wire are those of a real feed (~1 KB).
        `NK1|1|${patient.family}^${GIVEN[(p + 3) % GIVEN.length]}|SPO^Spouse^HL70063|${patient.address}|${patient.phone}||EC^Emergency Contact^HL70131`,
        `AL1|1|DA|${p % 2 === 0 ? '70618^Penicillin^RXNORM' : '2670^Codeine^RXNORM'}|MO|Hives`,
        `IN1|1|MCR^Medicare Part A|MCR001|MEDICARE|PO BOX 1602^^Omaha^NE^68101^USA||^WPN^PH^^^800^6334227|||||||||${patient.family}^${patient.given}^${patient.middle}|01|${patient.dob}|${patient.address}|||||||||||||||||${patient.empi}A`,
      ];
      (perPatient[p] as BenchMessage[]).push({
        controlId,
        patient: p,
        trigger,
        text: segments.join('\r'),
        sourceEventId: sourceEventIdOf(controlId),
        expected: trigger === 'A01' ? ['erp'] : ['rcm', 'erp'],
      });
    }
  }
  const out: BenchMessage[] = [];
  for (let r = 0; ; r++) {
    let any = false;
    for (const list of perPatient) {
      const m = list[r];
      if (m !== undefined) {
        out.push(m);
        any = true;
      }
    }
    if (!any) break;
  }
  return out;
}
