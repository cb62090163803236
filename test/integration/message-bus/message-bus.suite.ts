// SPDX-License-Identifier: Apache-2.0
/**
 * The conformance suite every MessageBus implementation passes (LocalBus in test/unit, RabbitMqBus
 * in test/integration). It checks the contract's promises: per-key order, keys independent of one
 * another, a rejected item retried without reordering its key, stop waiting for running handlers.
 * No assertion is about time: tests wait for outcomes, with generous limits.
 */
import { expect } from 'chai';
import type { MessageBus, WorkItem } from '../../../engine/message-bus/message-bus.ts';

/** How the suite makes buses; one fixture per test. */
export interface BusFixture {
  /** A started bus. Several calls in one test give several instances sharing the same queues. */
  create(options?: { retryDelayMs?: number }): Promise<MessageBus>;
  /** Stops what `create` made and removes its queues. */
  cleanup(): Promise<void>;
}

/** Resolves when `predicate` holds; rejects with `what` after `timeoutMs` (a limit, not an assertion on speed). */
export async function waitFor(predicate: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Lets pending callbacks run (several event-loop turns), without measuring anything. */
export async function settle(turns = 20): Promise<void> {
  for (let i = 0; i < turns; i += 1) await new Promise((resolve) => setImmediate(resolve));
}

/** A promise with its resolve function, to hold a handler until the test releases it. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** Records what handlers saw and checks that no key ever ran twice at once. */
export class OrderRecorder {
  readonly handled = new Map<string, string[]>();
  readonly active = new Set<string>();
  overlaps = 0;
  total = 0;

  begin(item: WorkItem): void {
    if (this.active.has(item.key)) this.overlaps += 1;
    this.active.add(item.key);
  }

  /** Call when the handler is about to resolve. */
  done(item: WorkItem): void {
    this.active.delete(item.key);
    let list = this.handled.get(item.key);
    if (!list) {
      list = [];
      this.handled.set(item.key, list);
    }
    list.push(item.id);
    this.total += 1;
  }

  /** Call when the handler is about to reject. */
  failed(item: WorkItem): void {
    this.active.delete(item.key);
  }

  /**
   * Each key's handled ids are its published ids in order. With `allowRedelivery`, an id may repeat
   * (at least once) but the first handling of each id must still come in publish order, and a
   * repeat may only re-run ids that were already handled (never run ahead).
   */
  expectOrder(published: Map<string, string[]>, allowRedelivery = false): void {
    for (const [key, ids] of published) {
      const seen = this.handled.get(key) ?? [];
      if (!allowRedelivery) {
        expect(seen, `order of key ${key}`).to.deep.equal(ids);
        continue;
      }
      const firsts: string[] = [];
      const set = new Set<string>();
      for (const id of seen) {
        if (!set.has(id)) {
          set.add(id);
          firsts.push(id);
        }
      }
      expect(firsts, `first handling order of key ${key}`).to.deep.equal(ids);
    }
  }
}

let queueCounter = 0;
/** A queue name unique within the run (RabbitMQ fixtures add their own per-run prefix). */
export function uniqueQueue(label: string): string {
  queueCounter += 1;
  return `pipeline.conformance-${label}-${queueCounter}`;
}

/** Publishes `perKey` items on each of `keys` keys, interleaved, in publish order per key. */
export async function publishInterleaved(
  bus: MessageBus,
  queue: string,
  keys: number,
  perKey: number,
  prefix = 'k',
): Promise<Map<string, string[]>> {
  const published = new Map<string, string[]>();
  const pending: Array<Promise<void>> = [];
  for (let i = 0; i < perKey; i += 1) {
    for (let k = 0; k < keys; k += 1) {
      const key = `${prefix}${k}`;
      const id = `${key}-${i}`;
      let list = published.get(key);
      if (!list) {
        list = [];
        published.set(key, list);
      }
      list.push(id);
      // Publishes are started in order and awaited together: the bus must keep per-key order
      // for concurrent publishes started in order, as the engine's pipeline does.
      pending.push(bus.publish(queue, { id, key }));
    }
  }
  await Promise.all(pending);
  return published;
}

/**
 * Registers the conformance tests in the current `describe`. `fixture` is called once per test.
 */
export function messageBusConformance(fixture: () => BusFixture): void {
  let current: BusFixture;

  beforeEach(() => {
    current = fixture();
  });

  afterEach(async () => {
    await current.cleanup();
  });

  it('keeps per-key order: 1,000 items over 50 keys with random handler delays', async () => {
    const bus = await current.create();
    const queue = uniqueQueue('order');
    const rec = new OrderRecorder();
    await bus.consume(queue, async (item) => {
      rec.begin(item);
      await sleep(Math.floor(Math.random() * 3));
      rec.done(item);
    });
    const published = await publishInterleaved(bus, queue, 50, 20);
    await waitFor(() => rec.total >= 1000, '1,000 items handled');
    await settle();
    expect(rec.total).to.equal(1000);
    expect(rec.overlaps, 'two handlers of one key at once').to.equal(0);
    rec.expectOrder(published);
  });

  it('delivers items published before the consumer subscribed, in order', async () => {
    const bus = await current.create();
    const queue = uniqueQueue('early');
    const rec = new OrderRecorder();
    const published = await publishInterleaved(bus, queue, 3, 10);
    await bus.consume(queue, async (item) => {
      rec.begin(item);
      rec.done(item);
    });
    await waitFor(() => rec.total >= 30, '30 items handled');
    rec.expectOrder(published);
  });

  it('runs different keys concurrently: a slow key does not hold back the others', async () => {
    const bus = await current.create();
    const queue = uniqueQueue('slow-key');
    const rec = new OrderRecorder();
    const held = gate();
    let slowStarted = false;
    await bus.consume(queue, async (item) => {
      rec.begin(item);
      if (item.key === 'slow') {
        slowStarted = true;
        await held.promise;
      }
      rec.done(item);
    });
    await bus.publish(queue, { id: 'slow-0', key: 'slow' });
    await bus.publish(queue, { id: 'slow-1', key: 'slow' });
    await waitFor(() => slowStarted, 'the slow key started');
    const published = await publishInterleaved(bus, queue, 10, 5, 'fast');
    await waitFor(() => rec.total >= 50, 'every fast item handled while the slow key is held');
    expect(rec.handled.get('slow'), 'the slow key is still held').to.equal(undefined);
    held.open();
    await waitFor(() => rec.total >= 52, 'the slow key finished');
    published.set('slow', ['slow-0', 'slow-1']);
    rec.expectOrder(published);
    expect(rec.overlaps).to.equal(0);
  });

  it('retries a rejected item before the later items of its key, and other keys go on meanwhile', async () => {
    const bus = await current.create({ retryDelayMs: 20 });
    const queue = uniqueQueue('retry');
    const rec = new OrderRecorder();
    const attempts = new Map<string, number>();
    await bus.consume(queue, async (item) => {
      rec.begin(item);
      const n = (attempts.get(item.id) ?? 0) + 1;
      attempts.set(item.id, n);
      if (item.id === 'k0-1' && n <= 2) {
        rec.failed(item);
        throw new Error('simulated store outage');
      }
      rec.done(item);
    });
    const published = await publishInterleaved(bus, queue, 4, 5);
    await waitFor(() => rec.total >= 20, '20 items handled');
    await settle();
    expect(attempts.get('k0-1')).to.equal(3);
    expect(rec.total).to.equal(20);
    rec.expectOrder(published);
    expect(rec.overlaps).to.equal(0);
  });

  it('limits the keys in flight to the consumer concurrency', async () => {
    const bus = await current.create();
    const queue = uniqueQueue('concurrency');
    const rec = new OrderRecorder();
    let running = 0;
    let peak = 0;
    await bus.consume(
      queue,
      async (item) => {
        rec.begin(item);
        running += 1;
        peak = Math.max(peak, running);
        await sleep(1);
        running -= 1;
        rec.done(item);
      },
      { concurrency: 3 },
    );
    const published = await publishInterleaved(bus, queue, 12, 4);
    await waitFor(() => rec.total >= 48, '48 items handled');
    expect(peak).to.be.at.most(3);
    expect(peak).to.be.at.least(2);
    rec.expectOrder(published);
  });

  it('stop() waits for in-flight handlers and starts nothing new', async () => {
    const bus = await current.create();
    const queue = uniqueQueue('stop');
    const events: string[] = [];
    const held = gate();
    let started = 0;
    await bus.consume(queue, async (item) => {
      started += 1;
      if (item.id === 'a-0') {
        await held.promise;
        events.push('handler finished');
      }
    });
    await bus.publish(queue, { id: 'a-0', key: 'a' });
    await bus.publish(queue, { id: 'a-1', key: 'a' });
    await waitFor(() => started === 1, 'the first item started');
    const stopping = bus.stop().then(() => events.push('stop resolved'));
    await settle();
    expect(events, 'stop must not resolve while a handler runs').to.deep.equal([]);
    held.open();
    await stopping;
    expect(events).to.deep.equal(['handler finished', 'stop resolved']);
    await settle();
    expect(started, 'nothing starts after stop').to.equal(1);
    // Idempotent.
    await bus.stop();
  });
}
