// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import type { OutboundResult } from '../../../engine/adapter-sdk/index.ts';
import type { ErrorCode } from '../../../engine/errors/error-codes.ts';
import {
  classifyResult,
  classifyStatus,
  decideRetry,
  defaultRetryPolicy,
  parseRetryAfter,
  resolveRetryPolicy,
  type RetryPolicy,
} from '../../../engine/delivery/retry-policy.ts';

const noJitter = (): number => 0;
const sentRequest = { method: 'POST', url: 'http://erp.test/x', headers: {}, body: '{}' };

function http(status: number, extra: Partial<OutboundResult> = {}): OutboundResult {
  const cls = classifyStatus(status);
  return {
    outcome: cls,
    status,
    durationMs: 1,
    sentRequest,
    ...(cls === 'success'
      ? {}
      : { error: { code: cls === 'transient' ? 'OSPREY_ERR_DELIVERY_HTTP_TRANSIENT' : 'OSPREY_ERR_DELIVERY_HTTP_PERMANENT', detail: `HTTP ${status}` } }),
    ...extra,
  } as OutboundResult;
}

function failed(code: ErrorCode): OutboundResult {
  return { outcome: code === 'OSPREY_ERR_DELIVERY_BAD_PAYLOAD' ? 'permanent' : 'transient', error: { code, detail: 'x' }, durationMs: 1, sentRequest };
}

const policy: RetryPolicy = resolveRetryPolicy({ backoff: { jitter: 0 } });

describe('delivery/retry-policy', () => {
  describe('defaults', () => {
    it('match the channel-file defaults', () => {
      expect(defaultRetryPolicy.maxAttempts).to.equal(10);
      expect(defaultRetryPolicy.backoff).to.deep.equal({ type: 'exponential', initialMs: 500, maxMs: 300_000, jitter: 0.2 });
      expect(defaultRetryPolicy.retryOn).to.deep.equal([408, 429, 500, 502, 503, 504]);
      expect(defaultRetryPolicy.treatAsSuccess).to.deep.equal([]);
      expect(Object.isFrozen(defaultRetryPolicy)).to.equal(true);
    });

    it('resolveRetryPolicy fills a partial block, the backoff field by field', () => {
      const p = resolveRetryPolicy({ maxAttempts: 3, backoff: { initialMs: 2000 }, treatAsSuccess: [409] });
      expect(p.maxAttempts).to.equal(3);
      expect(p.backoff).to.deep.equal({ type: 'exponential', initialMs: 2000, maxMs: 300_000, jitter: 0.2 });
      expect(p.retryOn).to.deep.equal([408, 429, 500, 502, 503, 504]);
      expect(p.treatAsSuccess).to.deep.equal([409]);
    });
  });

  describe('classifyStatus', () => {
    it('2xx is success, retryOn is transient, anything else is permanent', () => {
      for (const s of [200, 201, 202, 204, 299]) expect(classifyStatus(s), String(s)).to.equal('success');
      for (const s of [408, 429, 500, 502, 503, 504]) expect(classifyStatus(s), String(s)).to.equal('transient');
      for (const s of [301, 302, 400, 401, 403, 404, 409, 422, 501, 505]) expect(classifyStatus(s), String(s)).to.equal('permanent');
    });

    it('treatAsSuccess wins, and retryOn replaces the default list', () => {
      const lists = { retryOn: [409, 503], treatAsSuccess: [404] };
      expect(classifyStatus(404, lists)).to.equal('success');
      expect(classifyStatus(409, lists)).to.equal('transient');
      expect(classifyStatus(500, lists)).to.equal('permanent');
      expect(classifyStatus(503, { treatAsSuccess: [503] })).to.equal('success');
    });
  });

  describe('parseRetryAfter', () => {
    const now = Date.parse('2025-03-01T12:00:00Z');
    it('reads delay-seconds', () => {
      expect(parseRetryAfter('120', now)).to.equal(120_000);
      expect(parseRetryAfter(' 0 ', now)).to.equal(0);
      expect(parseRetryAfter(['7', '9'], now)).to.equal(7000);
    });
    it('reads an HTTP-date, and a past date as 0', () => {
      expect(parseRetryAfter('Sat, 01 Mar 2025 12:00:30 GMT', now)).to.equal(30_000);
      expect(parseRetryAfter('Sat, 01 Mar 2025 11:00:00 GMT', now)).to.equal(0);
    });
    it('ignores what it does not understand', () => {
      for (const v of [undefined, '', 'soon', '-5', '1.5', '12abc x', '99999999999999999999']) {
        expect(parseRetryAfter(v, now), String(v)).to.equal(undefined);
      }
    });
  });

  describe('decideRetry', () => {
    it('retries each transient status with the backoff', () => {
      for (const s of [408, 429, 500, 502, 503, 504]) {
        expect(decideRetry(policy, 1, http(s), noJitter), String(s)).to.deep.equal({ action: 'retry', delayMs: 500 });
      }
      expect(decideRetry(policy, 4, http(503), noJitter)).to.deep.equal({ action: 'retry', delayMs: 4000 });
    });

    it('dead-letters each permanent status at once, with HTTP_PERMANENT', () => {
      for (const s of [400, 401, 403, 404, 409, 422, 501]) {
        expect(decideRetry(policy, 1, http(s), noJitter), String(s)).to.deep.equal({ action: 'dead-letter', code: 'OSPREY_ERR_DELIVERY_HTTP_PERMANENT' });
      }
    });

    it('retries timeouts (ambiguous, made safe by the idempotency key), network and auth failures', () => {
      for (const code of ['OSPREY_ERR_DELIVERY_TIMEOUT', 'OSPREY_ERR_DELIVERY_NETWORK', 'OSPREY_ERR_DELIVERY_AUTH'] as const) {
        expect(decideRetry(policy, 2, failed(code), noJitter), code).to.deep.equal({ action: 'retry', delayMs: 1000 });
      }
    });

    it('dead-letters a timeout when the destination is not idempotent (retryAmbiguous: false)', () => {
      const p = { ...policy, retryAmbiguous: false };
      expect(decideRetry(p, 1, failed('OSPREY_ERR_DELIVERY_TIMEOUT'))).to.deep.equal({ action: 'dead-letter', code: 'OSPREY_ERR_DELIVERY_TIMEOUT' });
      expect(decideRetry(p, 1, failed('OSPREY_ERR_DELIVERY_NETWORK'), noJitter).action).to.equal('retry');
    });

    it('dead-letters a permanent non-HTTP failure with its own code', () => {
      expect(decideRetry(policy, 1, failed('OSPREY_ERR_DELIVERY_BAD_PAYLOAD'))).to.deep.equal({ action: 'dead-letter', code: 'OSPREY_ERR_DELIVERY_BAD_PAYLOAD' });
    });

    it('dead-letters as EXHAUSTED after maxAttempts', () => {
      const p = { ...policy, maxAttempts: 3 };
      expect(decideRetry(p, 1, http(503), noJitter).action).to.equal('retry');
      expect(decideRetry(p, 2, http(503), noJitter).action).to.equal('retry');
      expect(decideRetry(p, 3, http(503), noJitter)).to.deep.equal({ action: 'dead-letter', code: 'OSPREY_ERR_DELIVERY_EXHAUSTED' });
      expect(decideRetry({ ...policy, maxAttempts: 1 }, 1, http(500))).to.deep.equal({ action: 'dead-letter', code: 'OSPREY_ERR_DELIVERY_EXHAUSTED' });
      // A permanent failure keeps its own code even on the last attempt.
      expect(decideRetry(p, 3, http(400))).to.deep.equal({ action: 'dead-letter', code: 'OSPREY_ERR_DELIVERY_HTTP_PERMANENT' });
    });

    it('honours Retry-After when it is longer than the backoff', () => {
      expect(decideRetry(policy, 1, http(503, { retryAfterMs: 30_000 }), noJitter)).to.deep.equal({ action: 'retry', delayMs: 30_000 });
      expect(decideRetry(policy, 1, http(429, { retryAfterMs: 2000 }), noJitter)).to.deep.equal({ action: 'retry', delayMs: 2000 });
    });

    it('keeps the backoff when Retry-After is shorter', () => {
      expect(decideRetry(policy, 5, http(503, { retryAfterMs: 1000 }), noJitter)).to.deep.equal({ action: 'retry', delayMs: 8000 });
    });

    it('honours Retry-After given as an HTTP-date (parsed into retryAfterMs)', () => {
      const now = Date.now();
      const retryAfterMs = parseRetryAfter(new Date(now + 90_000).toUTCString(), now);
      const d = decideRetry(policy, 1, http(503, { retryAfterMs: retryAfterMs! }), noJitter);
      expect(d.action).to.equal('retry');
      // toUTCString drops the milliseconds, hence the 1 s tolerance.
      expect(d.action === 'retry' && d.delayMs).to.be.within(89_000, 90_000);
    });

    it('caps Retry-After at maxRetryAfterMs (1 h by default)', () => {
      const days = 3 * 24 * 3_600_000;
      expect(decideRetry(policy, 1, http(503, { retryAfterMs: days }), noJitter)).to.deep.equal({ action: 'retry', delayMs: 3_600_000 });
      expect(decideRetry({ ...policy, maxRetryAfterMs: 60_000 }, 1, http(503, { retryAfterMs: days }), noJitter)).to.deep.equal({ action: 'retry', delayMs: 60_000 });
    });

    it('gives up with MAX_ELAPSED when the next attempt would start after maxElapsed', () => {
      const p = { ...policy, maxElapsedMs: 10_000 };
      expect(decideRetry(p, 1, http(503), { random: noJitter, elapsedMs: 9000 })).to.deep.equal({ action: 'retry', delayMs: 500 });
      expect(decideRetry(p, 1, http(503), { random: noJitter, elapsedMs: 9600 })).to.deep.equal({ action: 'dead-letter', code: 'OSPREY_ERR_DELIVERY_MAX_ELAPSED' });
      expect(decideRetry(p, 1, http(503), { random: noJitter, firstAttemptAt: 1000, now: 10_600 }).action).to.equal('dead-letter');
      expect(decideRetry(p, 1, http(503), { random: noJitter, firstAttemptAt: 1000, now: 2000 }).action).to.equal('retry');
      // Without timing input maxElapsed cannot apply; maxAttempts still does.
      expect(decideRetry(p, 1, http(503), noJitter).action).to.equal('retry');
    });

    it('applies the destination retryOn over the adapter classification', () => {
      const p = { ...policy, retryOn: [409] };
      // The adapter (built with the defaults) called 409 permanent; this destination retries it.
      expect(decideRetry(p, 1, http(409), noJitter)).to.deep.equal({ action: 'retry', delayMs: 500 });
      // …and 503, no longer listed, becomes permanent.
      expect(decideRetry(p, 1, http(503), noJitter)).to.deep.equal({ action: 'dead-letter', code: 'OSPREY_ERR_DELIVERY_HTTP_PERMANENT' });
    });

    it('treatAsSuccess: classifyResult says success for a result the adapter also called success', () => {
      const p = { ...policy, treatAsSuccess: [409] };
      const ok = { ...http(409), outcome: 'success' as const, error: undefined };
      expect(classifyResult(ok, p)).to.equal('success');
      expect(() => decideRetry(p, 1, ok)).to.throw(RangeError);
      // An adapter that did not know the list reported a failure: its own class stands (no silent success).
      expect(classifyResult(http(409), p)).to.equal('permanent');
    });

    it('uses the jitter source it is given', () => {
      const p = resolveRetryPolicy({ backoff: { jitter: 0.5 } });
      expect(decideRetry(p, 2, http(500), () => 0.5)).to.deep.equal({ action: 'retry', delayMs: 750 });
      const d = decideRetry(p, 2, http(500));
      expect(d.action === 'retry' && d.delayMs).to.be.within(500, 1000);
    });
  });
});
