// SPDX-License-Identifier: Apache-2.0
import { join } from 'node:path';
import { expect } from 'chai';
import { sourceDefinition } from '../../../../../engine/channel-runtime/adapter-registry.ts';
import { x12Format } from '../../../../../engine/message-formats/x12/index.ts';
import type { RemittanceEvent } from '../../../../../transforms/canonical-events/remittance-event.ts';
import type { ErpPayment } from '../../../../../transforms/contracts/erp-payment.ts';
import { checkContract, loadChannel, ROOT, runMessage, type ChannelUnderTest, type SampleRun } from '../../sample-harness.ts';

const TWO_PAYERS = 'samples/x12/835/remittance-2026-03-10-two-payers.835';

function eventOf(run: SampleRun): RemittanceEvent {
  if (run.canonical.state !== 'OK') throw new Error(`expected an event, got ${JSON.stringify(run.canonical)}`);
  return run.canonical.outputs[0] as RemittanceEvent;
}

describe('inbound/x12/835-claim-to-remittance-event', () => {
  let ch: ChannelUnderTest;
  /** The claim-payment records of the two-payer sample, as the SFTP source splits it. */
  let claims: string[];
  const run = (text: string): SampleRun => runMessage(ch, x12Format.parse(text));
  const erpOf = (r: SampleRun): ErpPayment => r.delivered['erp-finance']![0] as ErpPayment;
  before(async () => {
    ch = await loadChannel('sftp-835-to-erp');
    const sample = await sourceDefinition('sftp-batch-poller').readSample!(join(ROOT, TWO_PAYERS), ch.spec.source.config);
    if (!sample.ok) throw new Error(sample.error.detail);
    claims = sample.records.map((r) => r.text);
  });

  it('a partial payment keeps every adjustment: claim and line CAS, several reasons in one CAS, allowed amounts, to the cent', () => {
    const r = run(claims[0]!);
    const e = eventOf(r);
    expect(checkContract('RemittanceEvent@1', e)).to.deep.equal([]);
    expect(e.type).to.equal('payment.posted');
    expect(e.amounts).to.deep.equal({ charged: '503.25', paid: '275.20', patientResponsibility: '86.30' });
    expect(e.payer).to.deep.equal({ id: '10001', name: 'SYNTHETIC HEALTH PLAN' });
    expect(e.payment).to.deep.equal({ traceNumber: 'EFT260310A0001', method: 'ACH', handling: 'I', total: '425.20', date: '2026-03-12' });
    expect(e.serviceLines.map((l) => l.adjustments)).to.deep.equal([
      [{ group: 'CO', reason: '45', amount: '82.00' }, { group: 'PR', reason: '1', amount: '50.00' }, { group: 'PR', reason: '2', amount: '30.00' }],
      [{ group: 'CO', reason: '45', amount: '7.00' }, { group: 'PR', reason: '2', amount: '6.30' }],
      [{ group: 'CO', reason: '97', amount: '52.75' }],
    ]);
    expect(e.serviceLines[0]).to.include({ charged: '412.00', paid: '250.00', allowed: '330.00', serviceDate: '2026-03-06', controlNumber: 'CHG-260306-0001' });
    expect(e.denialReasons).to.deep.equal([]);
    // Charged − paid = every adjustment, exactly: the ERP's write-off and transfer add up.
    expect(erpOf(r).adjustments).to.deep.equal({ contractual: '141.75', patientResponsibility: '86.30', other: '0.00' });
  });

  it('claim-level CAS stays on the claim, not on its line', () => {
    const e = eventOf(run(claims[1]!));
    expect(e.adjustments).to.deep.equal([{ group: 'CO', reason: '45', amount: '48.00' }]);
    expect(e.serviceLines[0]!.adjustments).to.deep.equal([]);
  });

  it('CLP02 = 4 is claim.denied with its denial reasons; the ERP gets a denial, the RCM status denied', () => {
    const r = run(claims[2]!);
    expect(eventOf(r)).to.include({ type: 'claim.denied' });
    expect(eventOf(r).denialReasons).to.deep.equal(['CO-50']);
    expect(erpOf(r)).to.include({ kind: 'denial', claimId: '7100021517' });
    expect(r.delivered['rcm-remittance']![0]).to.include({ status: 'denied', claimStatusCode: '4' });
  });

  it('CLP02 = 22 is payment.reversed with the negative amounts as sent, and an id apart from the corrected payment', () => {
    const reversal = eventOf(run(claims[3]!));
    const corrected = eventOf(run(claims[4]!));
    expect(reversal).to.include({ type: 'payment.reversed' });
    expect(reversal.amounts).to.deep.equal({ charged: '-126.00', paid: '-100.00', patientResponsibility: '0.00' });
    expect(corrected).to.include({ type: 'payment.posted' });
    expect(corrected.claim.id).to.equal(reversal.claim.id);
    expect(corrected.id).to.not.equal(reversal.id);
    expect(erpOf(run(claims[3]!))).to.include({ kind: 'reversal' });
  });

  it('the ingest identity of a reversal differs from its corrected payment (same payer, TRN02, CLP01), so neither is dropped as a duplicate', () => {
    const [a, b] = [claims[3]!, claims[4]!].map((t) => x12Format.keys(x12Format.parse(t)));
    expect(a!.sender).to.equal(b!.sender);
    expect(`${a!.sender}#${a!.controlId}`).to.not.equal(`${b!.sender}#${b!.controlId}`);
    expect(b!.controlId).to.equal('7100021502');
  });

  it('paid 0 with a denial adjustment (CO-197) under CLP02 = 1 is claim.denied', () => {
    const e = eventOf(run(claims[5]!));
    expect(e).to.include({ type: 'claim.denied' });
    expect(e.claim.statusCode).to.equal('1');
    expect(e.denialReasons).to.deep.equal(['CO-197']);
  });

  it('paid 0 because it all went to the patient (PR-1) is a payment of 0, not a denial', () => {
    const text = claims[1]!.replace('CLP*7100021533*1*198*150**', 'CLP*7100021533*1*198*0*150*').replace('CAS*CO*45*48~', 'CAS*CO*45*48~CAS*PR*1*150~').replace('SVC*HC:99214*198*150**1', 'SVC*HC:99214*198*0**1');
    const e = eventOf(run(text));
    expect(e).to.include({ type: 'payment.posted' });
    expect(e.amounts.paid).to.equal('0.00');
  });

  it('the payer id falls back to REF*2U, then TRN03; with neither (nor N1*PR N104) it is a missing-payer business exception', () => {
    const noN104 = claims[0]!.replace('N1*PR*SYNTHETIC HEALTH PLAN*XV*10001~', 'N1*PR*SYNTHETIC HEALTH PLAN~');
    expect(eventOf(run(noN104)).payer.id).to.equal('1410000001');
    const withRef = noN104.replace('N1*PR*SYNTHETIC HEALTH PLAN~', 'N1*PR*SYNTHETIC HEALTH PLAN~REF*2U*SHP77~');
    expect(eventOf(run(withRef)).payer.id).to.equal('SHP77');
    const none = noN104.replace('TRN*1*EFT260310A0001*1410000001~', 'TRN*1*EFT260310A0001~');
    const r = run(none);
    expect(r.state).to.equal('BUSINESS_EXCEPTION');
    expect(r.category).to.equal('missing-payer');
    expect(r.delivered).to.deep.equal({ 'erp-finance': [], 'rcm-remittance': [] });
    // PHI: the detail names the claim and trace, never the patient.
    expect(r.canonical.state === 'BUSINESS_EXCEPTION' && r.canonical.detail).to.not.match(/PRESCOTT|HOLLIS|SHP448812901/);
  });

  it('an amount below the cent or not a number is incomplete-message, never rounded', () => {
    for (const bad of ['275.205', '27x']) {
      const r = run(claims[0]!.replace('*275.20*', `*${bad}*`));
      expect(r.category, bad).to.equal('incomplete-message');
    }
  });

  it('every amount in every payload is a two-decimal string, never a number', () => {
    const amounts: unknown[] = [];
    const walk = (v: unknown, key = ''): void => {
      if (Array.isArray(v)) v.forEach((x) => walk(x));
      else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) walk(x, k);
      else if (['charged', 'paid', 'patientResponsibility', 'contractual', 'other', 'allowed', 'amount', 'total'].includes(key)) amounts.push(v);
    };
    for (const text of claims) {
      const r = run(text);
      walk(r.delivered);
      walk(eventOf(r));
    }
    expect(amounts.length).to.be.greaterThan(50);
    for (const a of amounts) expect(a).to.be.a('string').and.match(/^-?\d+\.\d{2}$/);
  });
});
