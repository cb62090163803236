// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { computeBackoff, type BackoffOptions } from '../../../engine/delivery/backoff.ts';

const exp: BackoffOptions = { type: 'exponential', initialMs: 500, maxMs: 300_000, jitter: 0 };

describe('delivery/backoff', () => {
  describe('exponential', () => {
    it('doubles from initial on each attempt', () => {
      expect([1, 2, 3, 4, 5].map((a) => computeBackoff(exp, a))).to.deep.equal([500, 1000, 2000, 4000, 8000]);
    });

    it('never exceeds max, even after very many attempts', () => {
      expect(computeBackoff(exp, 10)).to.equal(256_000);
      expect(computeBackoff(exp, 11)).to.equal(300_000);
      expect(computeBackoff(exp, 5000)).to.equal(300_000);
      expect(computeBackoff({ ...exp, jitter: 0.5 }, 5000, () => 0)).to.equal(300_000);
    });

    it('is monotonic without jitter', () => {
      let previous = 0;
      for (let a = 1; a <= 40; a += 1) {
        const d = computeBackoff(exp, a);
        expect(d).to.be.at.least(previous);
        previous = d;
      }
    });

    it('treats attempt 0 or garbage as the first retry rather than NaN', () => {
      expect(computeBackoff(exp, 0)).to.equal(500);
      expect(computeBackoff(exp, Number.NaN)).to.equal(500);
    });

    it('gives 0 for an initial of 0 instead of NaN at huge attempts', () => {
      expect(computeBackoff({ ...exp, initialMs: 0 }, 5000)).to.equal(0);
    });
  });

  describe('fixed', () => {
    it('waits initial every time, capped by max', () => {
      const fixed: BackoffOptions = { type: 'fixed', initialMs: 2000, maxMs: 60_000, jitter: 0 };
      expect([1, 2, 7, 30].map((a) => computeBackoff(fixed, a))).to.deep.equal([2000, 2000, 2000, 2000]);
      expect(computeBackoff({ ...fixed, maxMs: 1000 }, 1)).to.equal(1000);
    });
  });

  describe('jitter', () => {
    it('stays within [base·(1−jitter), base] for every random value', () => {
      const options: BackoffOptions = { ...exp, jitter: 0.2 };
      for (let a = 1; a <= 12; a += 1) {
        const base = computeBackoff(exp, a);
        for (const r of [0, 0.1, 0.5, 0.999999]) {
          const d = computeBackoff(options, a, () => r);
          expect(d, `attempt ${a} r ${r}`).to.be.within(Math.floor(base * 0.8), base);
        }
      }
    });

    it('is exact at the ends of the random range', () => {
      const options: BackoffOptions = { ...exp, jitter: 0.2 };
      expect(computeBackoff(options, 3, () => 0)).to.equal(2000);
      expect(computeBackoff(options, 3, () => 1)).to.equal(1600);
    });

    it('spreads real random delays across the range', () => {
      const options: BackoffOptions = { ...exp, jitter: 0.5 };
      const seen = new Set<number>();
      for (let i = 0; i < 200; i += 1) {
        const d = computeBackoff(options, 4);
        expect(d).to.be.within(2000, 4000);
        seen.add(d);
      }
      expect(seen.size).to.be.greaterThan(20);
    });

    it('full jitter (1) ranges from 0 to base', () => {
      const options: BackoffOptions = { ...exp, jitter: 1 };
      expect(computeBackoff(options, 2, () => 0)).to.equal(1000);
      expect(computeBackoff(options, 2, () => 0.999999)).to.equal(0);
    });

    it('clamps out-of-range jitter and random values', () => {
      expect(computeBackoff({ ...exp, jitter: 7 }, 1, () => 0.5)).to.equal(250);
      expect(computeBackoff({ ...exp, jitter: -1 }, 1, () => 0.5)).to.equal(500);
      expect(computeBackoff({ ...exp, jitter: 0.2 }, 1, () => 42)).to.equal(400);
    });

    it('does not draw a random number when jitter is 0', () => {
      let calls = 0;
      computeBackoff(exp, 3, () => {
        calls += 1;
        return 0.5;
      });
      expect(calls).to.equal(0);
    });
  });
});
