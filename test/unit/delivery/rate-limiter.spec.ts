// SPDX-License-Identifier: Apache-2.0
import { expect, use } from 'chai';
import chaiAsPromised from 'chai-as-promised';
import { OspreyError } from '../../../engine/errors/error-codes.ts';
import { createRateLimiterRegistry, RateLimiterRegistry, TokenBucket } from '../../../engine/delivery/rate-limiter.ts';
import { FakeClock } from '../../helpers/fake-clock.ts';

use(chaiAsPromised);

/** Lets every ready promise callback run (no timers involved). */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

// Where a test is about time (what waits, when it is served, how many timers) the bucket runs on a
// FakeClock that moves only when the test advances it; the others use the real clock and check
// only outcomes that do not depend on the machine's speed (order).

describe('delivery/rate-limiter', () => {
  describe('TokenBucket', () => {
    it('starts full: burst acquisitions go at once, the next one waits', async () => {
      const bucket = new TokenBucket({ perSecond: 1, burst: 3 }, new FakeClock());
      await Promise.all([bucket.acquire(), bucket.acquire(), bucket.acquire()]);
      const stop = new AbortController();
      let fourth = false;
      const p = bucket.acquire(1, stop.signal).then(() => {
        fourth = true;
      });
      await settle();
      expect(fourth).to.equal(false);
      expect(bucket.waiting).to.equal(1);
      stop.abort(new Error('test over'));
      await p.catch(() => undefined);
      expect(bucket.waiting).to.equal(0);
    });

    it('refills over time and serves waiters in FIFO order', async () => {
      const bucket = new TokenBucket({ perSecond: 1000, burst: 1 });
      const order: number[] = [];
      await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          bucket.acquire().then(() => {
            order.push(i);
          }),
        ),
      );
      expect(order).to.deep.equal(Array.from({ length: 20 }, (_, i) => i));
    });

    it('does not let small requests overtake a larger one queued before them (no starvation)', async () => {
      const bucket = new TokenBucket({ perSecond: 500, burst: 4 });
      await bucket.acquire(4); // empty
      const order: string[] = [];
      await Promise.all([
        bucket.acquire(4).then(() => order.push('big')),
        bucket.acquire(1).then(() => order.push('small-1')),
        bucket.acquire(1).then(() => order.push('small-2')),
      ]);
      expect(order).to.deep.equal(['big', 'small-1', 'small-2']);
    });

    it('arms at most one timer while many wait (no polling)', async () => {
      const clock = new FakeClock();
      const bucket = new TokenBucket({ perSecond: 2000, burst: 1 }, clock);
      await bucket.acquire();
      let served = 0;
      const waits = Array.from({ length: 10 }, () => bucket.acquire().then(() => (served += 1)));
      await settle();
      expect([clock.armed, clock.pending], 'ten waiters, one timer for the head').to.deep.equal([1, 1]);
      expect(clock.nextAt, 'set for the head’s token (0.5 ms at 2000/s, at least 1 ms)').to.equal(1);
      // Each timer serves one waiter (one token per 0.5 ms, burst 1) and sets the next.
      for (let tick = 1; tick <= 10; tick++) {
        clock.advance(1);
        await settle();
        expect(served, `served after ${tick} ms`).to.equal(tick);
        expect(clock.pending, 'never more than one timer').to.be.at.most(1);
      }
      await Promise.all(waits);
      expect(clock.armed, 'one timer per waiter, never a busy loop').to.equal(10);
      expect(clock.pending).to.equal(0);
    });

    it('an aborted head lets the next waiter through', async () => {
      const bucket = new TokenBucket({ perSecond: 1, burst: 2 }, new FakeClock());
      await bucket.acquire(1); // 1 token left
      const stop = new AbortController();
      const big = bucket.acquire(2, stop.signal);
      let smallDone = false;
      const small = bucket.acquire(1).then(() => {
        smallDone = true;
      });
      await settle();
      expect(smallDone).to.equal(false); // FIFO: waits behind the big one
      stop.abort(new Error('shutdown'));
      await expect(big).to.be.rejectedWith('shutdown');
      await small;
      expect(smallDone).to.equal(true);
    });

    it('at a share, drops tokens above the new burst and serves at the new rate', async () => {
      const clock = new FakeClock();
      const bucket = new TokenBucket({ perSecond: 1000, burst: 10 }, clock);
      bucket.share(0.5);
      // A full bucket of 10 keeps 5: five go at once, the sixth waits for a token at 500/s (2 ms).
      await Promise.all(Array.from({ length: 5 }, () => bucket.acquire()));
      let sixth = false;
      const p = bucket.acquire().then(() => {
        sixth = true;
      });
      await settle();
      expect(sixth).to.equal(false);
      clock.advance(1.5);
      await settle();
      expect(sixth, 'not before 2 ms (1000/s would have served it at 1 ms)').to.equal(false);
      clock.advance(0.5);
      await p;
      expect(() => bucket.share(0)).to.throw(RangeError);
      expect(() => bucket.share(1.5)).to.throw(RangeError);
    });

    it('rejects requests it could never serve, and bad limits', async () => {
      const bucket = new TokenBucket({ perSecond: 5, burst: 2 });
      await expect(bucket.acquire(3)).to.be.rejectedWith(RangeError);
      await expect(bucket.acquire(0)).to.be.rejectedWith(RangeError);
      expect(() => new TokenBucket({ perSecond: 0 })).to.throw(RangeError);
      expect(() => new TokenBucket({ perSecond: 5, burst: 0.5 })).to.throw(RangeError);
      expect(new TokenBucket({ perSecond: 20 }).burst).to.equal(20);
      expect(new TokenBucket({ perSecond: 0.5 }).burst).to.equal(1);
    });
  });

  describe('RateLimiterRegistry', () => {
    it('gives channels naming the same limit one shared bucket', async () => {
      const registry = new RateLimiterRegistry({ 'erp-api': { perSecond: 1, burst: 2 }, 'rcm-api': { perSecond: 1, burst: 2 } }, new FakeClock());
      const channelA = registry.get('erp-api');
      const channelB = registry.get('erp-api');
      expect(channelA).to.equal(channelB);
      expect(registry.get('rcm-api')).to.not.equal(channelA);

      // A and B drain the same two tokens: B's second request must wait.
      await channelA.acquire();
      await channelB.acquire();
      const stop = new AbortController();
      let third = false;
      const p = channelB.acquire(1, stop.signal).then(() => {
        third = true;
      });
      await registry.get('rcm-api').acquire(2); // another limit is untouched
      await settle();
      expect(third).to.equal(false);
      stop.abort(new Error('done'));
      await p.catch(() => undefined);
    });

    it('reports an undefined name with OSPREY_ERR_CHANNEL_RATE_LIMIT', () => {
      const registry = createRateLimiterRegistry({ rateLimits: { 'erp-api': { perSecond: 10 } } });
      expect(registry.has('erp-api')).to.equal(true);
      expect(registry.names()).to.deep.equal(['erp-api']);
      try {
        registry.get('nope');
        expect.fail('should throw');
      } catch (err) {
        expect(err).to.be.instanceOf(OspreyError);
        expect((err as OspreyError).code).to.equal('OSPREY_ERR_CHANNEL_RATE_LIMIT');
      }
    });

    it('resolves a name to the shared bucket and an inline limit to a private one', () => {
      const registry = new RateLimiterRegistry({ 'erp-api': { perSecond: 10 } });
      expect(registry.resolve('erp-api')).to.equal(registry.get('erp-api'));
      const inline1 = registry.resolve({ perSecond: 5 });
      const inline2 = registry.resolve({ perSecond: 5 });
      expect(inline1).to.be.instanceOf(TokenBucket);
      expect(inline1).to.not.equal(inline2);
      expect(registry.resolve(undefined)).to.equal(undefined);
    });

    it('gives each of N engine instances 1/N of every limit, named or inline, and the whole again when alone', async () => {
      const registry = new RateLimiterRegistry({ 'erp-api': { perSecond: 200, burst: 200 }, tiny: { perSecond: 2, burst: 1 } });
      const inlineBefore = registry.resolve({ perSecond: 30, burst: 30 })!;
      registry.share(4);
      const inlineAfter = registry.resolve({ perSecond: 40 })!;
      expect([registry.get('erp-api').perSecond, registry.get('erp-api').burst]).to.deep.equal([50, 50]);
      expect([registry.get('tiny').perSecond, registry.get('tiny').burst]).to.deep.equal([0.5, 1]);
      expect([inlineBefore.perSecond, inlineBefore.burst]).to.deep.equal([7.5, 7.5]);
      expect([inlineAfter.perSecond, inlineAfter.burst]).to.deep.equal([10, 10]);
      registry.share(1);
      expect([registry.get('erp-api').perSecond, registry.get('erp-api').burst]).to.deep.equal([200, 200]);
      expect(registry.get('erp-api').limit).to.deep.equal({ perSecond: 200, burst: 200 });
    });

    it('validates every limit when built', () => {
      expect(() => new RateLimiterRegistry({ bad: { perSecond: -1 } })).to.throw(RangeError);
    });
  });
});
