// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { isOspreyError } from '../../../../engine/errors/error-codes.ts';
import { GroupCommitter, type ItemResult } from '../../../../engine/message-store/group-commit.ts';

/** A flush that records its batches and answers each item with `value * 10` (or fails odd ones). */
function recorder(options: { failOdd?: boolean; throwWith?: Error; async?: boolean } = {}) {
  const batches: number[][] = [];
  let inFlight = 0;
  let maxSeenInFlight = 0;
  const flush = async (ops: readonly number[]): Promise<ItemResult<number>[]> => {
    batches.push([...ops]);
    inFlight++;
    maxSeenInFlight = Math.max(maxSeenInFlight, inFlight);
    try {
      if (options.async) await new Promise((r) => setTimeout(r, 5));
      if (options.throwWith) throw options.throwWith;
      return ops.map((v) => (options.failOdd && v % 2 === 1 ? { ok: false, error: new Error(`odd ${v}`) } : { ok: true, value: v * 10 }));
    } finally {
      inFlight--;
    }
  };
  return { flush, batches, maxInFlight: () => maxSeenInFlight };
}

describe('GroupCommitter', () => {
  it('writes everything submitted in one turn as one batch, in order', async () => {
    const r = recorder();
    const gc = new GroupCommitter(r.flush);
    const results = await Promise.all([1, 2, 3, 4].map((v) => gc.submit(v)));
    expect(results).to.deep.equal([10, 20, 30, 40]);
    expect(r.batches).to.deep.equal([[1, 2, 3, 4]]);
  });

  it('works with a synchronous flush', async () => {
    const batches: number[][] = [];
    const gc = new GroupCommitter<number, number>((ops) => {
      batches.push([...ops]);
      return ops.map((v) => ({ ok: true, value: v + 1 }));
    });
    expect(await Promise.all([gc.submit(1), gc.submit(2)])).to.deep.equal([2, 3]);
    expect(batches).to.have.length(1);
  });

  it('splits at maxBatch', async () => {
    const r = recorder();
    const gc = new GroupCommitter(r.flush, { maxBatch: 3, maxInFlight: 4 });
    await Promise.all([1, 2, 3, 4, 5, 6, 7].map((v) => gc.submit(v)));
    expect(r.batches).to.deep.equal([[1, 2, 3], [4, 5, 6], [7]]);
  });

  it('fails only the items the flush reports as failed', async () => {
    const r = recorder({ failOdd: true });
    const gc = new GroupCommitter(r.flush);
    const settled = await Promise.allSettled([1, 2, 3, 4].map((v) => gc.submit(v)));
    expect(settled.map((s) => s.status)).to.deep.equal(['rejected', 'fulfilled', 'rejected', 'fulfilled']);
    expect((settled[0] as PromiseRejectedResult).reason.message).to.equal('odd 1');
  });

  it('rejects the whole batch with OSPREY_ERR_STORE_UNAVAILABLE when the flush throws, keeping the cause', async () => {
    const cause = new Error('disk I/O error');
    const r = recorder({ throwWith: cause });
    const gc = new GroupCommitter(r.flush);
    const settled = await Promise.allSettled([1, 2].map((v) => gc.submit(v)));
    for (const s of settled) {
      expect(s.status).to.equal('rejected');
      const reason = (s as PromiseRejectedResult).reason;
      expect(isOspreyError(reason) && reason.code).to.equal('OSPREY_ERR_STORE_UNAVAILABLE');
      expect(reason.cause).to.equal(cause);
    }
  });

  it('queues what arrives during a flush into the next batch (one flush in flight by default)', async () => {
    const r = recorder({ async: true });
    const gc = new GroupCommitter(r.flush);
    const first = gc.submit(1);
    await new Promise((resolve) => setImmediate(resolve)); // the first batch is now being written
    const rest = [2, 3, 4].map((v) => gc.submit(v));
    await Promise.all([first, ...rest]);
    expect(r.batches).to.deep.equal([[1], [2, 3, 4]]);
    expect(r.maxInFlight()).to.equal(1);
  });

  it('overlaps batches up to maxInFlight', async () => {
    const r = recorder({ async: true });
    const gc = new GroupCommitter(r.flush, { maxBatch: 2, maxInFlight: 2 });
    await Promise.all([1, 2, 3, 4, 5, 6].map((v) => gc.submit(v)));
    expect(r.maxInFlight()).to.equal(2);
    expect(r.batches.flat()).to.deep.equal([1, 2, 3, 4, 5, 6]);
  });

  it('close waits for queued writes, then refuses new ones', async () => {
    const r = recorder({ async: true });
    const gc = new GroupCommitter(r.flush);
    const pending = [1, 2, 3].map((v) => gc.submit(v));
    await gc.close();
    expect(await Promise.all(pending)).to.deep.equal([10, 20, 30]);
    const err = await gc.submit(4).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isOspreyError(err) && err.code).to.equal('OSPREY_ERR_STORE_UNAVAILABLE');
    await gc.close();
  });
});
