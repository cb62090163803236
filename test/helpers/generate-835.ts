// SPDX-License-Identifier: Apache-2.0
/**
 * Generates a valid X12 835 (005010X221A1) with N claim payments, streamed to a file or a Writable
 * with back-pressure, so a 50 MB (or 500 MB) file costs the generator one transaction set of memory.
 * Every value is synthetic (names from short made-up lists, ids from a seeded PRNG): the same seed
 * and options give the same bytes. Each payer is one interchange (ISA/GS) holding transaction sets
 * of up to `claimsPerTransaction` claims, each with its own BPR total and TRN trace number; a claim
 * has NM1*QC, NM1*82, DTM, AMT and 1–4 SVC lines with CAS adjustments that balance; about one claim
 * in ten is a denial (CLP02=4, paid 0, CAS*CO*50). Used by the X12 tests and the bench.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';

/** Options of {@link generate835}. */
export interface Generate835Options {
  /** Claim payments in the file (the count `split835` finds). */
  claims: number;
  /** Payers, each one interchange; claims are shared out evenly. @defaultValue 1 */
  payers?: number;
  /** PRNG seed. @defaultValue 1 */
  seed?: number;
  /** Claims per ST/SE transaction set (one check/EFT each). @defaultValue 1000 */
  claimsPerTransaction?: number;
  /** A line break after every segment terminator, as many payers send. @defaultValue true */
  lineBreaks?: boolean;
  /**
   * Write this many claims completely, then half a segment, and stop: a truncated file (no SE, GE,
   * IEA) for the envelope checks.
   */
  truncateAfterClaims?: number;
  /** End the Writable when done (a path is always closed). @defaultValue true */
  end?: boolean;
}

/** What was written. */
export interface Generate835Result {
  bytes: number;
  /** Complete claim payments written. */
  claims: number;
  interchanges: number;
  transactions: number;
  truncated: boolean;
}

const LAST = ['HOLLOWAY', 'MARCHETTI', 'OKAFOR', 'LINDQVIST', 'TANAKA', 'BRENNAN', 'DUARTE', 'NOVAK', 'ABERNATHY', 'KOWALCZYK', 'FENWICK', 'SATO'];
const FIRST = ['ALMA', 'BRUNO', 'CELESTE', 'DMITRI', 'EDITH', 'FARID', 'GRETA', 'HUGO', 'IMOGEN', 'JULES', 'KAI', 'LENORE'];
const CPT = ['99213', '99214', '99203', '80053', '85025', '93000', '71046', '36415', '97110', '90471'];
const PAYERS = ['SYNTHETIC HEALTH PLAN', 'EXAMPLE MUTUAL INSURANCE', 'PLACEHOLDER CARE ALLIANCE', 'FICTIONAL MEDICAID AGENCY'];

/** mulberry32: tiny, fast, deterministic; quality is plenty for test data. */
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

const money = (cents: number): string => {
  const s = (cents / 100).toFixed(2);
  return s.endsWith('.00') ? s.slice(0, -3) : s.replace(/0$/, '');
};
const pad = (s: string | number, n: number): string => String(s).padEnd(n, ' ').slice(0, n);
const zero = (s: string | number, n: number): string => String(s).padStart(n, '0');

/** One claim's segments and its paid amount (cents). */
function claimSegments(rand: () => number, index: number, seed: number): { segments: string[]; paid: number } {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)] as T;
  const denied = rand() < 0.1;
  const lines = 1 + Math.floor(rand() * 4);
  const date = `2026${zero(1 + Math.floor(rand() * 12), 2)}${zero(1 + Math.floor(rand() * 28), 2)}`;
  const svc: string[] = [];
  let charge = 0;
  let paid = 0;
  let patient = 0;
  for (let l = 0; l < lines; l++) {
    const c = 2000 + Math.floor(rand() * 48000);
    const allowed = denied ? 0 : Math.floor(c * (0.55 + rand() * 0.35));
    const pr = denied ? 0 : Math.min(allowed, Math.floor(rand() * 4) * 500);
    const p = allowed - pr;
    charge += c;
    paid += p;
    patient += pr;
    const units = 1 + Math.floor(rand() * 3);
    svc.push(`SVC*HC:${pick(CPT)}${rand() < 0.2 ? ':25' : ''}*${money(c)}*${money(p)}**${units}`, `DTM*472*${date}`);
    if (denied) svc.push(`CAS*CO*50*${money(c)}`);
    else {
      svc.push(`CAS*CO*45*${money(c - allowed)}`);
      if (pr > 0) svc.push(`CAS*PR*${rand() < 0.5 ? 1 : 2}*${money(pr)}`);
      svc.push(`AMT*B6*${money(allowed)}`);
    }
    svc.push(`REF*6R*${zero(index, 8)}${l + 1}`);
  }
  const id = `C${seed}-${zero(index, 9)}`;
  const segments = [
    `CLP*${id}*${denied ? 4 : 1}*${money(charge)}*${money(paid)}*${patient > 0 ? money(patient) : ''}*12*${zero(Math.floor(rand() * 1e12), 13)}*11*1`,
    `NM1*QC*1*${pick(LAST)}*${pick(FIRST)}****MI*M${zero(Math.floor(rand() * 1e9), 9)}`,
    `NM1*82*1*${pick(LAST)}*${pick(FIRST)}****XX*1${zero(Math.floor(rand() * 1e9), 9)}`,
    `DTM*232*${date}`,
    `DTM*233*${date}`,
    ...(denied ? [] : [`AMT*AU*${money(paid + patient)}`]),
    ...svc,
  ];
  return { segments, paid };
}

/**
 * Writes an 835 with `options.claims` claim payments to `target` (a path or a Writable), honouring
 * back-pressure. Resolves when everything is written (and the file closed).
 */
export async function generate835(target: Writable | string, options: Generate835Options): Promise<Generate835Result> {
  const out: Writable = typeof target === 'string' ? createWriteStream(target) : target;
  const seed = options.seed ?? 1;
  const payers = Math.max(1, options.payers ?? 1);
  const perTx = Math.max(1, options.claimsPerTransaction ?? 1000);
  const nl = options.lineBreaks ?? true ? '~\n' : '~';
  const result: Generate835Result = { bytes: 0, claims: 0, interchanges: 0, transactions: 0, truncated: false };
  let pending = '';
  const flush = async (): Promise<void> => {
    if (pending === '') return;
    const chunk = pending;
    pending = '';
    result.bytes += Buffer.byteLength(chunk);
    if (!out.write(chunk)) await once(out, 'drain');
  };
  const write = async (segments: string[]): Promise<void> => {
    for (const s of segments) pending += s + nl;
    if (pending.length > 64 * 1024) await flush();
  };

  let claimIndex = 0;
  outer: for (let p = 0; p < payers; p++) {
    const claimsHere = Math.floor(options.claims / payers) + (p < options.claims % payers ? 1 : 0);
    const payerName = `${PAYERS[p % PAYERS.length]}${p >= PAYERS.length ? ` ${p}` : ''}`;
    const payerId = zero(10000 + p * 7919, 5);
    const payerTax = `1${zero(40000000 + p * 1013, 9)}`;
    const control = zero(seed * 1000 + p + 1, 9);
    result.interchanges++;
    await write([
      `ISA*00*${pad('', 10)}*00*${pad('', 10)}*ZZ*${pad(`PAYER${payerId}`, 15)}*ZZ*${pad('OSPREYPROVIDER', 15)}*260115*0930*^*00501*${control}*0*T*:`,
      `GS*HP*PAYER${payerId}*OSPREYPROV*20260115*0930*${p + 1}*X*005010X221A1`,
    ]);
    let transactions = 0;
    for (let done = 0; done < claimsHere; done += perTx) {
      const n = Math.min(perTx, claimsHere - done);
      const claims: string[][] = [];
      let total = 0;
      for (let k = 0; k < n; k++) {
        const c = claimSegments(prng((seed * 2654435761 + claimIndex + k) >>> 0), claimIndex + k, seed);
        claims.push(c.segments);
        total += c.paid;
      }
      transactions++;
      result.transactions++;
      const st = zero(transactions, 4);
      const header = [
        `ST*835*${st}*005010X221A1`,
        `BPR*I*${money(total)}*C*ACH*CCP*01*999999992*DA*123456789*${payerTax}**01*999988880*DA*98765*20260116`,
        `TRN*1*${seed}${zero(p, 3)}${zero(transactions, 6)}*${payerTax}`,
        `DTM*405*20260115`,
        `N1*PR*${payerName}*XV*${payerId}`,
        `N3*1 SYNTHETIC WAY`,
        `N4*NOWHERE*MN*55400`,
        `PER*BL*PROVIDER SERVICES*TE*8005550100`,
        `N1*PE*OSPREY EXAMPLE CLINIC*XX*1999999984`,
        `N3*100 EXAMPLE AVE`,
        `N4*SOMEWHERE*MN*55401`,
        `REF*TJ*999999999`,
        `LX*1`,
      ];
      let segs = header.length;
      await write(header);
      for (const c of claims) {
        if (options.truncateAfterClaims !== undefined && result.claims >= options.truncateAfterClaims) {
          pending += c[0]?.slice(0, 12) ?? 'CLP*';
          result.truncated = true;
          break outer;
        }
        segs += c.length;
        await write(c);
        result.claims++;
      }
      claimIndex += n;
      await write([`SE*${segs + 1}*${st}`]);
    }
    await write([`GE*${transactions}*${p + 1}`, `IEA*1*${control}`]);
  }
  await flush();
  if (typeof target === 'string' || options.end !== false) {
    out.end();
    await once(out, typeof target === 'string' ? 'close' : 'finish');
  }
  return result;
}
