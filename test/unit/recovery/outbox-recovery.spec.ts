// SPDX-License-Identifier: Apache-2.0
/**
 * The outbox recovery (engine/recovery/outbox-recovery.ts) against a real SQLite store (a temp
 * file) and the real local bus: the start-up recovery reads the store in pages, and on the local
 * bus never holds more than two pages' worth of work items however large the backlog; every item
 * is recovered, in order per key; work that arrives meanwhile waits in the store behind it.
 */
import { join } from 'node:path';
import { expect } from 'chai';
import { LocalBus } from '../../../engine/message-bus/local-bus.ts';
import { queueNames, type MessageBus, type WorkItem } from '../../../engine/message-bus/message-bus.ts';
import type { MessageStore, NewMessage, PendingPage } from '../../../engine/message-store/message-store.ts';
import { SqliteStore } from '../../../engine/message-store/sqlite-store.ts';
import type { Logger } from '../../../engine/observability/logger.ts';
import { OutboxRecovery } from '../../../engine/recovery/outbox-recovery.ts';
import { makeTempDir, removeTempDirs } from '../../helpers/test-engine.ts';

const CHANNEL = 'adt';
const DESTINATION = 'erp';
const DELIVERY_QUEUE = queueNames.delivery(CHANNEL, DESTINATION);
const PIPELINE_QUEUE = queueNames.pipeline(CHANNEL);
const PAGE = 10;

/** The store, counting its reads of unfinished work (and the page size each asked for). */
function countingReads(store: SqliteStore): { store: MessageStore; reads: number[] } {
  const reads: number[] = [];
  const counted = Object.create(store) as MessageStore;
  counted.pendingDeliveries = (page: PendingPage<never>) => {
    reads.push(page.limit);
    return store.pendingDeliveries(page);
  };
  counted.pendingMessages = (page: PendingPage<never>) => {
    reads.push(page.limit);
    return store.pendingMessages(page);
  };
  return { store: counted, reads };
}

/** A logger that keeps its messages and resolves `waitFor(message)` when one is logged. */
function recordingLogger() {
  const lines: string[] = [];
  const waiters: Array<{ message: string; resolve: () => void }> = [];
  const log = (message: string): void => {
    lines.push(message);
    for (const w of waiters.filter((x) => x.message === message)) w.resolve();
  };
  return {
    lines,
    logger: { info: log, warn: log } as unknown as Pick<Logger, 'info' | 'warn'>,
    waitFor: (message: string): Promise<void> =>
      lines.includes(message) ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ message, resolve })),
  };
}

describe('outbox recovery', () => {
  let sqlite: SqliteStore;
  let n = 0;

  beforeEach(async () => {
    sqlite = new SqliteStore({ path: join(makeTempDir('outbox-recovery'), 'store.db') });
    await sqlite.open();
  });

  afterEach(async () => {
    await sqlite.close();
  });

  after(() => removeTempDirs());

  /** Stores a message of `key`: with a QUEUED delivery to erp, or left RECEIVED for the pipeline. */
  async function stored(key: string, kind: 'delivery' | 'pipeline' = 'delivery'): Promise<WorkItem> {
    const id = `m${String(++n).padStart(4, '0')}`;
    const message: NewMessage = {
      id,
      channel: CHANNEL,
      receivedAt: Date.now(),
      raw: Buffer.from(`MSH|^~\\&|EHR|HOSP|||20240101||ADT^A01|${id}|P|2.5\r`),
      encoding: 'UTF-8',
      keys: { controlId: id, sender: 'EHR|HOSP' },
      orderKey: key,
      state: 'RECEIVED',
      dedupeWindowMs: 0,
      ...(kind === 'delivery' ? { outcome: { state: 'QUEUED' as const, canonical: {}, deliveries: [{ destination: DESTINATION, outputIndex: 0, payload: { id } }] } } : {}),
    };
    await sqlite.receive(message);
    return { id: kind === 'delivery' ? `${id}:${DESTINATION}:0` : id, key };
  }

  /** Marks a delivery SENT, as its worker would after the receiver's 200. */
  async function sent(deliveryId: string): Promise<void> {
    await sqlite.recordAttempts([
      { deliveryId, startedAt: Date.now(), durationMs: 1, request: { method: 'POST', url: 'http://127.0.0.1/erp', headers: {}, body: '{}' }, response: { status: 200, body: '{}' }, outcome: 'SENT' },
    ]);
  }

  /** Every item published to the bus and how many the bus held at most (buffered ones included). */
  function watchedBus(bus: LocalBus) {
    const published: WorkItem[] = [];
    let maxHeld = 0;
    const publish = bus.publish.bind(bus);
    bus.publish = async (queue, item) => {
      await publish(queue, item);
      published.push(item);
      maxHeld = Math.max(maxHeld, bus.depth(DELIVERY_QUEUE) + bus.depth(PIPELINE_QUEUE));
    };
    return { published, maxHeld: () => maxHeld };
  }

  it('on the local bus, publishes a backlog of many pages a page at a time as it drains: never more than two pages held, every item once, in order per key', async () => {
    const expected: WorkItem[] = [];
    for (let i = 0; i < 53; i++) expected.push(await stored(`P${i % 4}`));
    const pipeline: WorkItem[] = [];
    for (let i = 0; i < 12; i++) pipeline.push(await stored(`P${i % 4}`, 'pipeline'));
    const { store, reads } = countingReads(sqlite);
    const bus = new LocalBus();
    const watched = watchedBus(bus);
    const log = recordingLogger();
    const recovery = new OutboxRecovery({ store, bus, logger: log.logger, isRunning: () => true, pageSize: PAGE });

    const before = await recovery.recoverAtStart();
    expect(before, 'only the first page before the sources start').to.deep.equal({ deliveries: PAGE, messages: 0 });
    expect(bus.depth(DELIVERY_QUEUE)).to.equal(PAGE);
    expect(recovery.inBacklog, 'new work waits in the store behind the rest').to.equal(true);
    expect(await recovery.publish(DELIVERY_QUEUE, { id: 'new', key: 'P0' }), 'deferred to the store').to.equal(false);

    // As the stages do, a handler skips work the store has as finished (a duplicate publish: the
    // backlog pass after the recovery publishes again what is still unfinished at that moment).
    const handled: string[] = [];
    await bus.consume(DELIVERY_QUEUE, async (item) => {
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (item.id === 'new' || (await sqlite.loadDelivery(item.id))?.state !== 'QUEUED') return;
      handled.push(item.id);
      await sent(item.id);
    });
    await bus.consume(PIPELINE_QUEUE, async (item) => {
      if ((await sqlite.loadForProcessing(item.id))?.state !== 'RECEIVED') return;
      handled.push(item.id);
      await sqlite.recordProcessing(item.id, { state: 'FILTERED', reason: 'processed by the test' });
    });
    recovery.consumersStarted();
    await log.waitFor('recovered the rest of the unfinished work from the store');
    await bus.idle();

    expect(watched.maxHeld(), 'items held by the bus at most').to.be.at.most(2 * PAGE);
    expect(reads.length, 'the store is read a page at a time').to.be.at.least(Math.ceil(53 / PAGE) + Math.ceil(12 / PAGE));
    expect(reads.every((limit) => limit === PAGE)).to.equal(true);
    const recovered = [...expected, ...pipeline].map((x) => x.id);
    expect([...handled].sort(), 'every item recovered, done once').to.deep.equal([...recovered].sort());
    // The bus orders a key's items per queue.
    for (const [queue, items] of [
      ['deliveries', expected],
      ['pipeline', pipeline],
    ] as const) {
      for (let k = 0; k < 4; k++) {
        const inStoreOrder = items.filter((x) => x.key === `P${k}`).map((x) => x.id);
        expect(handled.filter((id) => inStoreOrder.includes(id)), `${queue} of P${k}`).to.deep.equal(inStoreOrder);
      }
    }
    await bus.stop();
    recovery.stop();
  });

  it('publishes the work that waited in the store during the start-up recovery after it, behind its key’s recovered work, then ends the backlog', async () => {
    for (let i = 0; i < 25; i++) await stored(`P${i % 2}`);
    const bus = new LocalBus();
    const log = recordingLogger();
    const recovery = new OutboxRecovery({ store: sqlite, bus, logger: log.logger, isRunning: () => true, pageSize: PAGE });
    await recovery.recoverAtStart();
    // A message arrives while the rest waits: stored (and ACKed), its delivery left to the store.
    const late = await stored('P0');
    expect(await recovery.publish(DELIVERY_QUEUE, late)).to.equal(false);

    const handled: string[] = [];
    await bus.consume(DELIVERY_QUEUE, async (item) => {
      if ((await sqlite.loadDelivery(item.id))?.state !== 'QUEUED') return;
      handled.push(item.id);
      await sent(item.id);
    });
    recovery.consumersStarted();
    await log.waitFor('bus available again: the stored backlog is published');
    await bus.idle();
    expect(recovery.inBacklog).to.equal(false);
    const ofP0 = handled.filter((id) => id !== late.id);
    expect(handled.lastIndexOf(late.id), 'after every recovered item').to.be.greaterThan(handled.indexOf(ofP0[ofP0.length - 1]!));
    expect(await recovery.publish(DELIVERY_QUEUE, { id: 'direct', key: 'P1' }), 'published directly again').to.equal(true);
    await bus.stop();
    recovery.stop();
  });

  it('recovers a backlog of at most one page whole before the sources start, with no backlog after', async () => {
    for (let i = 0; i < PAGE - 1; i++) await stored(`P${i % 3}`);
    await stored('P0', 'pipeline');
    const bus = new LocalBus();
    const recovery = new OutboxRecovery({ store: sqlite, bus, logger: recordingLogger().logger, isRunning: () => true, pageSize: PAGE });
    expect(await recovery.recoverAtStart()).to.deep.equal({ deliveries: PAGE - 1, messages: 1 });
    expect(recovery.inBacklog).to.equal(false);
    expect(bus.depth(DELIVERY_QUEUE) + bus.depth(PIPELINE_QUEUE)).to.equal(PAGE);
    recovery.stop();
  });

  it('gives a broker-backed bus the whole backlog at start, read in pages, and skips the work of channels not running', async () => {
    for (let i = 0; i < 35; i++) await stored(`P${i % 3}`);
    const { store, reads } = countingReads(sqlite);
    const published: Array<[string, WorkItem]> = [];
    const broker: MessageBus = {
      start: async () => undefined,
      stop: async () => undefined,
      consume: async () => undefined,
      publish: async (queue, item) => {
        published.push([queue, item]);
      },
      connected: true,
    };
    const recovery = new OutboxRecovery({ store, bus: broker, logger: recordingLogger().logger, isRunning: () => true, pageSize: PAGE });
    expect(await recovery.recoverAtStart()).to.deep.equal({ deliveries: 35, messages: 0 });
    expect(recovery.inBacklog).to.equal(false);
    expect(published).to.have.length(35);
    expect(reads.length).to.be.at.least(4);

    const none = new OutboxRecovery({ store, bus: broker, logger: recordingLogger().logger, isRunning: () => false, pageSize: PAGE });
    expect(await none.recoverAtStart()).to.deep.equal({ deliveries: 0, messages: 0 });
    recovery.stop();
    none.stop();
  });
});
