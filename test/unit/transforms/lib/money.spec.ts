// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { centsToAmount, sumAmounts, toAmount, toCents } from '../../../../transforms/lib/money.ts';

describe('transforms/lib/money', () => {
  it('normalises X12 and CSV amounts to two decimals, sign kept', () => {
    expect(['225', '3.5', '-12.00', '0.10', '+7', '.5', '-0', '00012.30'].map(toAmount)).to.deep.equal(['225.00', '3.50', '-12.00', '0.10', '7.00', '0.50', '0.00', '12.30']);
  });

  it('refuses what is not an amount to the cent instead of rounding it', () => {
    expect(['12.345', '1,180.00', 'abc', '', '.', '1e3', undefined, null].map(toAmount)).to.deep.equal(Array(8).fill(undefined));
    expect(toAmount('12.3400')).to.equal('12.34');
  });

  it('sums exactly where floats drift (0.1 + 0.2; many cents)', () => {
    expect(sumAmounts(['0.10', '0.20'])).to.equal('0.30');
    expect(sumAmounts(Array(1000).fill('0.01'))).to.equal('10.00');
    expect(sumAmounts(['-126.00', '108.00', '26.00'])).to.equal('8.00');
    expect(sumAmounts([])).to.equal('0.00');
  });

  it('handles amounts beyond 2^53 cents', () => {
    expect(toCents('92233720368547758.07')).to.equal(9223372036854775807n);
    expect(centsToAmount(-5n)).to.equal('-0.05');
  });
});
