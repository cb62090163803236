// SPDX-License-Identifier: Apache-2.0
import { expect, use } from 'chai';
import chaiAsPromised from 'chai-as-promised';
import { LocalBus } from '../../../engine/message-bus/local-bus.ts';
import type { MessageBus, WorkItem } from '../../../engine/message-bus/message-bus.ts';
import { messageBusConformance, OrderRecorder, publishInterleaved, settle } from '../../integration/message-bus/message-bus.suite.ts';

use(chaiAsPromised);

describe('LocalBus', () => {
  describe('conformance', () => {
    messageBusConformance(() => {
      const buses: MessageBus[] = [];
      return {
        async create(options) {
          const bus = new LocalBus({ retryDelayMs: options?.retryDelayMs ?? 10 });
          await bus.start();
          buses.push(bus);
          return bus;
        },
        async cleanup() {
          await Promise.all(buses.map((b) => b.stop()));
        },
      };
    });
  });

  describe('fairness', () => {
    it('gives a waiting key its turn before a busy key runs again (no starvation)', async () => {
      const bus = new LocalBus();
      const order: string[] = [];
      await bus.consume(
        'q',
        async (item) => {
          order.push(item.id);
        },
        { concurrency: 1 },
      );
      // Published without awaiting in between, so the whole backlog of `a` is queued before b arrives.
      const publishes = Array.from({ length: 50 }, (_, i) => bus.publish('q', { id: `a-${i}`, key: 'a' }));
      publishes.push(bus.publish('q', { id: 'b-0', key: 'b' }));
      await Promise.all(publishes);
      await bus.idle();
      // One slot: a-0 runs first; a then goes to the back of the ready line, behind b.
      expect(order.indexOf('b-0')).to.equal(1);
      expect(order.filter((id) => id.startsWith('a-'))).to.deep.equal(Array.from({ length: 50 }, (_, i) => `a-${i}`));
      await bus.stop();
    });
  });

  describe('failures', () => {
    it('retries a handler that throws synchronously, and logs the failure without content', async () => {
      const warnings: Array<{ msg: string; meta: Record<string, unknown> }> = [];
      const logger = {
        warn: (msg: string, meta: Record<string, unknown>) => warnings.push({ msg, meta }),
        error: () => undefined,
      } as never;
      const bus = new LocalBus({ retryDelayMs: 1, logger });
      let calls = 0;
      const done: string[] = [];
      await bus.consume('q', ((item: WorkItem) => {
        calls += 1;
        if (calls === 1) throw new Error('sync boom');
        done.push(item.id);
        return Promise.resolve();
      }) as never);
      await bus.publish('q', { id: 'm1', key: 'k' });
      await bus.idle();
      expect(done).to.deep.equal(['m1']);
      expect(warnings).to.have.length(1);
      expect(warnings[0]?.meta).to.include({ queue: 'q', messageId: 'm1', failures: 1, error: 'sync boom' });
      await bus.stop();
    });

    it('does not retry a rejection that happens while the bus stops', async () => {
      const bus = new LocalBus({ retryDelayMs: 1 });
      let calls = 0;
      let release!: () => void;
      await bus.consume('q', async () => {
        calls += 1;
        await new Promise<void>((resolve) => {
          release = resolve;
        });
        throw new Error('engine stopping');
      });
      await bus.publish('q', { id: 'm1', key: 'k' });
      await settle();
      const stopped = bus.stop();
      release();
      await stopped;
      await settle();
      expect(calls).to.equal(1);
    });
  });

  describe('lifecycle', () => {
    it('rejects publish and consume after stop, and a second consumer on one queue', async () => {
      const bus = new LocalBus();
      await bus.consume('q', async () => undefined);
      await expect(bus.consume('q', async () => undefined)).to.be.rejectedWith(/already has a consumer/);
      await bus.stop();
      await expect(bus.publish('q', { id: 'x', key: 'k' })).to.be.rejectedWith(/stopped/);
      await expect(bus.consume('r', async () => undefined)).to.be.rejectedWith(/stopped/);
    });

    it('idle() waits for work that handlers publish to other queues', async () => {
      const bus = new LocalBus();
      const rec = new OrderRecorder();
      await bus.consume('first', async (item) => {
        await bus.publish('second', { id: `${item.id}-next`, key: item.key });
      });
      await bus.consume('second', async (item) => {
        await new Promise((resolve) => setTimeout(resolve, 1));
        rec.begin(item);
        rec.done(item);
      });
      await publishInterleaved(bus, 'first', 5, 4);
      await bus.idle();
      expect(rec.total).to.equal(20);
      expect(bus.depth('first') + bus.depth('second')).to.equal(0);
      await bus.stop();
    });

    it('copies published items: a caller mutating its object afterwards changes nothing', async () => {
      const bus = new LocalBus();
      const seen: WorkItem[] = [];
      const item = { id: 'a', key: 'k' };
      await bus.publish('q', item);
      item.id = 'changed';
      await bus.consume('q', async (i) => {
        seen.push(i);
      });
      await bus.idle();
      expect(seen).to.deep.equal([{ id: 'a', key: 'k' }]);
      await bus.stop();
    });
  });
});
