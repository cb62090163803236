// SPDX-License-Identifier: Apache-2.0
/**
 * X12 835 claim payment (one CLP loop with its header context, as the SFTP source splits a
 * remittance) → `RemittanceEvent@1`. Pure: no I/O, no clock, no randomness.
 *
 * Reads: ISA-13, GS-6, ST-2, BPR-1/2/4/16, TRN-2/3, DTM*405, N1*PR (name, N104 id), REF*2U, N1*PE,
 * CLP-1..9, claim-level CAS, NM1*QC, DTM*232/233/050, and per SVC line: SVC-1..5, DTM*472, CAS,
 * REF*6R, AMT*B6. Loops (which CAS belongs to the claim, which to a line) are read in segment order
 * (transforms/lib/x12-loops.ts).
 *
 * Type: CLP02 = 22 → `payment.reversed` (a take-back of an earlier payment; amounts negative as
 * sent; posted as a reversal, not as a denial, even when a denial CAS is repeated on it — the
 * corrected claim, if any, comes as its own CLP and event). CLP02 = 4, or CLP04 = 0 with a denial
 * adjustment (lib/remittance-codes.ts, any group but PR, claim or line level) → `claim.denied`.
 * Everything else → `payment.posted` (a claim paid 0 because it all went to the deductible
 * included).
 *
 * Business exceptions: `missing-payer` (neither N1*PR N104, REF*2U nor TRN03: the payment cannot be
 * posted to a payer, and the de-duplication identity would be incomplete); `incomplete-message`
 * (no CLP01 or TRN02, an amount that is not a decimal to the cent).
 */
import { defineTransform, type MessageReader, type TransformContext } from '../../../engine/transform-sdk/index.ts';
import { REMITTANCE_EVENT, RemittanceEventType, type Adjustment, type RemittanceEvent, type ServiceLine } from '../../canonical-events/remittance-event.ts';
import { ExceptionCategory } from '../../lib/business-rules.ts';
import { toAmount } from '../../lib/money.ts';
import { CLAIM_STATUS, DENIAL_REASON_CODES } from '../../lib/remittance-codes.ts';
import { casAdjustments, claimLoop, qualified, x12Date, x12Segments, type X12Segment } from '../../lib/x12-loops.ts';

const present = (v: string | null | undefined): string | undefined => (v === undefined || v === null || v.trim() === '' ? undefined : v.trim());

export default defineTransform<MessageReader, RemittanceEvent>({
  name: 'x12/835-claim-to-remittance-event',
  version: '1.0.0',
  input: 'x12',
  // Explicit parameter types: TypeScript narrows after `ctx.exception(...)` (returns never) only then.
  map(msg: MessageReader, ctx: TransformContext) {
    const segments = x12Segments(msg);
    const header = segments.slice(0, Math.max(0, segments.findIndex((s) => s.id === 'CLP')));
    // The payer's loop (1000A): from N1*PR up to the next N1 (the payee's).
    const prAt = header.findIndex((s) => s.id === 'N1' && s.element(1) === 'PR');
    const afterPr = prAt < 0 ? [] : header.slice(prAt + 1);
    const payerLoop = afterPr.slice(0, afterPr.findIndex((s) => s.id === 'N1') < 0 ? afterPr.length : afterPr.findIndex((s) => s.id === 'N1'));
    const payerN1 = qualified(header, 'N1', 'PR');
    const payeeN1 = qualified(header, 'N1', 'PE');

    const claimId = present(msg.get('CLP-1'));
    const tags = { ...(present(payeeN1?.element(4)) ? { facility: payeeN1!.element(4) } : {}) };
    if (claimId === undefined) ctx.exception(ExceptionCategory.incompleteMessage, 'CLP01 (claim submitter identifier) is empty', tags);
    const traceNumber = present(msg.get('TRN-2'));
    if (traceNumber === undefined) ctx.exception(ExceptionCategory.incompleteMessage, `claim ${claimId}: TRN02 (check/EFT trace number) is empty`, tags);

    // The payer's id: N1*PR N104 (payer identification), else the additional payer id REF*2U of the
    // payer loop, else TRN03 (the payer's originating company id) — the same order the x12 format's
    // de-duplication identity uses. Without any, the payment belongs to no one.
    const ref2u = qualified(payerLoop, 'REF', '2U');
    const payerId = present(payerN1?.element(4)) ?? present(ref2u?.element(2)) ?? present(msg.get('TRN-3'));
    if (payerId === undefined) {
      ctx.exception(ExceptionCategory.missingPayer, `claim ${claimId} (trace ${traceNumber}): no payer id in N1*PR N104, REF*2U or TRN03`, tags);
    }

    const amount = (value: string | undefined, what: string, fallback?: string): string => {
      const a = value === undefined && fallback !== undefined ? fallback : toAmount(value);
      if (a === undefined) ctx.exception(ExceptionCategory.incompleteMessage, `claim ${claimId}: ${what} is not an amount to the cent`, tags);
      return a;
    };

    const { claim: claimSegs, lines } = claimLoop(segments);
    const adjustmentsOf = (segs: readonly X12Segment[], where: string): Adjustment[] =>
      segs.filter((s) => s.id === 'CAS').flatMap((s) => casAdjustments(s).map((a) => ({ ...a, amount: amount(a.amount, `${where} CAS ${a.group}-${a.reason} amount`) })));

    const adjustments = adjustmentsOf(claimSegs, 'claim');
    const serviceLines: ServiceLine[] = lines.map((line, i) => {
      const svc = line[0] as X12Segment;
      const modifiers = [3, 4, 5, 6].map((c) => svc.component(1, c)).filter((m) => m !== '');
      const serviceDate = x12Date(present(qualified(line, 'DTM', '472')?.element(2)) ?? present(qualified(line, 'DTM', '150')?.element(2)));
      const allowed = present(qualified(line, 'AMT', 'B6')?.element(2));
      const control = present(qualified(line, 'REF', '6R')?.element(2));
      return {
        procedure: { qualifier: svc.component(1, 1), code: svc.component(1, 2), modifiers },
        charged: amount(present(svc.element(2)), `line ${i + 1} SVC02`),
        paid: amount(present(svc.element(3)), `line ${i + 1} SVC03`),
        units: present(svc.element(5)) ?? '1',
        ...(serviceDate === undefined ? {} : { serviceDate }),
        ...(allowed === undefined ? {} : { allowed: amount(allowed, `line ${i + 1} AMT*B6`) }),
        ...(control === undefined ? {} : { controlNumber: control }),
        adjustments: adjustmentsOf(line, `line ${i + 1}`),
      };
    });

    const statusCode = present(msg.get('CLP-2')) ?? '';
    const paid = amount(present(msg.get('CLP-4')), 'CLP04 (paid)');
    const denialReasons = [...adjustments, ...serviceLines.flatMap((l) => l.adjustments)]
      .filter((a) => a.group !== 'PR' && DENIAL_REASON_CODES.has(a.reason))
      .map((a) => `${a.group}-${a.reason}`)
      .filter((r, i, all) => all.indexOf(r) === i);
    const type =
      statusCode === '22' ? RemittanceEventType.paymentReversed
      : statusCode === '4' || (paid === '0.00' && denialReasons.length > 0) ? RemittanceEventType.claimDenied
      : RemittanceEventType.paymentPosted;

    const periodStart = x12Date(present(qualified(claimSegs, 'DTM', '232')?.element(2)));
    const periodEnd = x12Date(present(qualified(claimSegs, 'DTM', '233')?.element(2)));
    const receivedDate = x12Date(present(qualified(claimSegs, 'DTM', '050')?.element(2)));
    const payerClaimControlNumber = present(msg.get('CLP-7'));
    const filingIndicator = present(msg.get('CLP-6'));
    const claim: RemittanceEvent['claim'] = {
      id: claimId,
      ...(payerClaimControlNumber === undefined ? {} : { payerClaimControlNumber }),
      statusCode,
      status: CLAIM_STATUS[statusCode] ?? `unknown-${statusCode || 'empty'}`,
      ...(filingIndicator === undefined ? {} : { filingIndicator }),
      ...(periodStart === undefined && periodEnd === undefined ? {} : { statementPeriod: { ...(periodStart ? { start: periodStart } : {}), ...(periodEnd ? { end: periodEnd } : {}) } }),
      ...(receivedDate === undefined ? {} : { receivedDate }),
    };

    const patientNm1 = qualified(claimSegs, 'NM1', 'QC');
    const patient: NonNullable<RemittanceEvent['patient']> = {};
    if (patientNm1) {
      const memberId = present(patientNm1.element(9));
      if (memberId !== undefined) patient.memberId = memberId;
      const family = patientNm1.element(3);
      const given = present(patientNm1.element(4));
      const middle = present(patientNm1.element(5));
      if (family !== '' || given !== undefined) patient.name = { family, ...(given ? { given } : {}), ...(middle ? { middle } : {}) };
    }

    const payerName = present(payerN1?.element(2));
    const payeeName = present(payeeN1?.element(2));
    const payeeId = present(payeeN1?.element(4));
    const paymentDate = x12Date(present(msg.get('BPR-16')));
    const productionDate = x12Date(present(qualified(header, 'DTM', '405')?.element(2)));

    return {
      schema: REMITTANCE_EVENT,
      // Channel- and file-independent: the same claim payment in a re-sent remittance gets the same id.
      // CLP02 is part of it because a reversal and its corrected payment share CLP01 and TRN02.
      id: ctx.deterministicId(REMITTANCE_EVENT, payerId, traceNumber, claimId, statusCode),
      type,
      claim,
      amounts: {
        charged: amount(present(msg.get('CLP-3')), 'CLP03 (charged)'),
        paid,
        patientResponsibility: amount(present(msg.get('CLP-5')), 'CLP05 (patient responsibility)', '0.00'),
      },
      adjustments,
      denialReasons: type === RemittanceEventType.claimDenied ? denialReasons : [],
      serviceLines,
      payer: { id: payerId, ...(payerName === undefined ? {} : { name: payerName }) },
      ...(payeeN1 ? { payee: { ...(payeeId ? { id: payeeId } : {}), ...(payeeName ? { name: payeeName } : {}) } } : {}),
      ...(patientNm1 ? { patient } : {}),
      payment: {
        traceNumber,
        method: present(msg.get('BPR-4')) ?? '',
        handling: present(msg.get('BPR-1')) ?? '',
        total: amount(present(msg.get('BPR-2')), 'BPR02 (total payment)'),
        ...(paymentDate === undefined ? {} : { date: paymentDate }),
      },
      source: {
        interchangeControlNumber: present(msg.get('ISA-13')) ?? '',
        groupControlNumber: present(msg.get('GS-6')) ?? '',
        transactionSetControlNumber: present(msg.get('ST-2')) ?? '',
        ...(productionDate === undefined ? {} : { productionDate }),
      },
    };
  },
});
