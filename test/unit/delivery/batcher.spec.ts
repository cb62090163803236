// SPDX-License-Identifier: Apache-2.0
import { expect, use } from 'chai';
import chaiAsPromised from 'chai-as-promised';
import { Batcher, batchIdempotencyKey, buildBatchBody } from '../../../engine/delivery/batcher.ts';
import { FakeClock } from '../../helpers/fake-clock.ts';

use(chaiAsPromised);

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('delivery/batcher', () => {
  it('flushes as soon as maxItems are gathered, with the items in order', async () => {
    const flushed: number[][] = [];
    const batcher = new Batcher<number, string>({
      maxItems: 3,
      maxWaitMs: 60_000,
      flush: async (items) => {
        flushed.push(items);
        return `batch-${flushed.length}`;
      },
    });
    const results = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => batcher.add(n)));
    expect(flushed).to.deep.equal([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(results).to.deep.equal(['batch-1', 'batch-1', 'batch-1', 'batch-2', 'batch-2', 'batch-2']);
    expect(batcher.pending).to.equal(0);
    await batcher.close();
  });

  it('flushes a partial batch maxWait after its first item', async () => {
    // Time is the subject: the timer runs on a clock the test advances.
    const clock = new FakeClock();
    const flushed: string[][] = [];
    const batcher = new Batcher<string, number>({
      maxItems: 100,
      maxWaitMs: 15,
      timers: clock,
      flush: async (items) => {
        flushed.push(items);
        return items.length;
      },
    });
    const a = batcher.add('a');
    clock.advance(10);
    const b = batcher.add('b');
    await settle();
    expect(flushed).to.deep.equal([]); // not full, not yet due
    expect([clock.armed, clock.nextAt], 'one timer, from the first item').to.deep.equal([1, 15]);
    clock.advance(4.9);
    await settle();
    expect(flushed).to.deep.equal([]);
    clock.advance(0.1);
    expect(await Promise.all([a, b])).to.deep.equal([2, 2]);
    expect(flushed).to.deep.equal([['a', 'b']]);
    // The next item starts a new batch and a new timer.
    const c = batcher.add('c');
    expect(clock.nextAt).to.equal(30);
    clock.advance(15);
    expect(await c).to.equal(1);
    expect(flushed).to.deep.equal([['a', 'b'], ['c']]);
    await batcher.close();
  });

  it('close() flushes what is pending and then refuses new items', async () => {
    const flushed: number[][] = [];
    const batcher = new Batcher<number, string>({
      maxItems: 10,
      maxWaitMs: 60_000,
      flush: async (items) => {
        flushed.push(items);
        return 'ok';
      },
    });
    const pending = [batcher.add(1), batcher.add(2)];
    expect(batcher.pending).to.equal(2);
    await batcher.close();
    expect(flushed).to.deep.equal([[1, 2]]);
    expect(await Promise.all(pending)).to.deep.equal(['ok', 'ok']);
    await expect(batcher.add(3)).to.be.rejectedWith('closed');
    await batcher.close(); // idempotent
  });

  it('rejects every add of a failed batch and goes on with the next batches', async () => {
    let calls = 0;
    const batcher = new Batcher<number, string>({
      maxItems: 2,
      maxWaitMs: 60_000,
      flush: async () => {
        calls += 1;
        if (calls === 1) throw new Error('ERP down');
        return 'ok';
      },
    });
    const first = [batcher.add(1), batcher.add(2)];
    const second = [batcher.add(3), batcher.add(4)];
    const settled = await Promise.allSettled([...first, ...second]);
    expect(settled.map((s) => s.status)).to.deep.equal(['rejected', 'rejected', 'fulfilled', 'fulfilled']);
    expect((settled[0] as PromiseRejectedResult).reason).to.have.property('message', 'ERP down');
    await batcher.close();
  });

  it('sends one batch at a time, in order, even when a later batch fills first', async () => {
    const events: string[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const batcher = new Batcher<number, void>({
      maxItems: 2,
      maxWaitMs: 60_000,
      flush: async (items) => {
        events.push(`start ${items.join(',')}`);
        if (items[0] === 1) await gate;
        events.push(`end ${items.join(',')}`);
      },
    });
    const all = [1, 2, 3, 4].map((n) => batcher.add(n));
    await settle();
    expect(events).to.deep.equal(['start 1,2']); // batch 2 is full but waits its turn
    release();
    await Promise.all(all);
    expect(events).to.deep.equal(['start 1,2', 'end 1,2', 'start 3,4', 'end 3,4']);
    await batcher.close();
  });

  it('rejects invalid options', () => {
    const flush = async (): Promise<void> => undefined;
    expect(() => new Batcher({ maxItems: 0, maxWaitMs: 10, flush })).to.throw(RangeError);
    expect(() => new Batcher({ maxItems: 1.5, maxWaitMs: 10, flush })).to.throw(RangeError);
    expect(() => new Batcher({ maxItems: 5, maxWaitMs: -1, flush })).to.throw(RangeError);
  });

  describe('batch body and key', () => {
    it('buildBatchBody is a bare array of { idempotencyKey, payload } in batch order', () => {
      const body = buildBatchBody([
        { idempotencyKey: 'm1:erp:0', payload: { a: 1 } },
        { idempotencyKey: 'm2:erp:0', payload: { b: 2 }, extra: 'dropped' } as never,
      ]);
      expect(JSON.parse(JSON.stringify(body))).to.deep.equal([
        { idempotencyKey: 'm1:erp:0', payload: { a: 1 } },
        { idempotencyKey: 'm2:erp:0', payload: { b: 2 } },
      ]);
    });

    it('batchIdempotencyKey is stable for the same members whatever their order', () => {
      const k = batchIdempotencyKey(['m1', 'm2', 'm3']);
      expect(k).to.match(/^batch-[0-9a-f]{64}$/);
      expect(batchIdempotencyKey(['m3', 'm1', 'm2'])).to.equal(k);
      expect(batchIdempotencyKey(['m1', 'm2'])).to.not.equal(k);
    });

    it('batchIdempotencyKey does not collide by concatenation', () => {
      expect(batchIdempotencyKey(['a', 'bc'])).to.not.equal(batchIdempotencyKey(['ab', 'c']));
      expect(batchIdempotencyKey(['a\nb'])).to.not.equal(batchIdempotencyKey(['a', 'b']));
    });
  });
});
