// SPDX-License-Identifier: Apache-2.0
/**
 * RabbitMqBus parts that need no broker: partitioning, names, option checks, and the publish
 * timeout when the broker cannot be reached (a closed local port). The broker-backed behaviour is
 * in test/integration/message-bus/rabbitmq-bus.spec.ts.
 */
import { expect, use } from 'chai';
import chaiAsPromised from 'chai-as-promised';
import { BusError } from '../../../engine/message-bus/bus-errors.ts';
import { KeyedDispatcher } from '../../../engine/message-bus/keyed-dispatcher.ts';
import { brokerAddress, brokerUrls, RabbitMqBus, withDefaultHeartbeat } from '../../../engine/message-bus/rabbitmq-bus.ts';
import { partitionOf, topologyNames } from '../../../engine/message-bus/rabbitmq-topology.ts';

use(chaiAsPromised);

/** Nothing listens on port 1 of the loopback: connections are refused at once. */
const UNREACHABLE = 'amqp://guest:guest@127.0.0.1:1';

describe('RabbitMQ topology', () => {
  it('partitions keys with FNV-1a, stably (these values must never change)', () => {
    // A change here would route a key's next items to another partition than its queued ones.
    expect(partitionOf('', 8)).to.equal(5);
    expect(partitionOf('a', 8)).to.equal(4);
    expect(partitionOf('MRN000123', 8)).to.equal(0);
    expect(partitionOf('patient-42', 8)).to.equal(7);
    expect(partitionOf('é', 8)).to.equal(1);
  });

  it('spreads keys over every partition', () => {
    const counts = new Array<number>(8).fill(0);
    for (let i = 0; i < 2000; i += 1) {
      const p = partitionOf(`MRN${String(i).padStart(6, '0')}`, 8);
      counts[p] = (counts[p] ?? 0) + 1;
    }
    for (const count of counts) expect(count).to.be.within(150, 350);
  });

  it('derives every name from the prefix and refuses a prefix that could not name a queue', () => {
    const names = topologyNames('osprey-prod');
    expect(names.workExchange).to.equal('osprey-prod.work');
    expect(names.deadLetterExchange).to.equal('osprey-prod.dlx');
    expect(names.partitionQueue('deliver.adt.erp', 3)).to.equal('osprey-prod.deliver.adt.erp.p3');
    expect(names.routingKey('deliver.adt.erp', 3)).to.equal('deliver.adt.erp.p3');
    expect(names.deadLetterQueue('deliver.adt.erp')).to.equal('osprey-prod.deliver.adt.erp.dlq');
    expect(() => topologyNames('has space')).to.throw(RangeError);
    expect(() => topologyNames('')).to.throw(RangeError);
  });
});

describe('RabbitMqBus without a broker', () => {
  it('checks its options', () => {
    expect(() => new RabbitMqBus({ url: UNREACHABLE, prefix: 'p', partitions: 0 })).to.throw(RangeError);
    expect(() => new RabbitMqBus({ url: UNREACHABLE, prefix: 'p', prefetch: 1.5 })).to.throw(RangeError);
    expect(() => new RabbitMqBus({ url: UNREACHABLE, prefix: 'p', deliveryLimit: 0 })).to.throw(RangeError);
  });

  it('takes one broker URL or one per cluster node (a list, or comma-separated), and logs a node without its credentials', () => {
    expect(brokerUrls('amqp://u:p@mq1:5672/v')).to.deep.equal(['amqp://u:p@mq1:5672/v']);
    expect(brokerUrls(' amqp://u:p@mq1:5672/v, amqps://u:p@mq2/v ,amqp://mq3 ')).to.deep.equal(['amqp://u:p@mq1:5672/v', 'amqps://u:p@mq2/v', 'amqp://mq3']);
    expect(brokerUrls(['amqp://mq1', 'amqp://mq2'])).to.deep.equal(['amqp://mq1', 'amqp://mq2']);
    expect(() => brokerUrls(' , ')).to.throw(RangeError, 'at least one broker');
    expect(() => brokerUrls('amqp://mq1,http://u:secret@mq2')).to.throw(RangeError, 'mq2:');
    expect(() => brokerUrls('amqp://mq1,http://u:secret@mq2')).to.not.throw(/secret/);
    expect(() => new RabbitMqBus({ url: 'amqp://mq1,mq2', prefix: 'p' })).to.throw(RangeError);
    expect(brokerAddress('amqp://osprey:s3cret@mq1.example.org:5673/osprey')).to.equal('mq1.example.org:5673');
    expect(brokerAddress('amqps://osprey:s3cret@mq1.example.org/osprey')).to.equal('mq1.example.org:5671');
    expect(brokerAddress('amqp://mq1')).to.equal('mq1:5672');
  });

  it('asks for a 10 s heartbeat unless the URL sets one (a silent node noticed in ~20 s, not 2 min)', () => {
    expect(withDefaultHeartbeat('amqp://u:p@mq1:5672/osprey')).to.equal('amqp://u:p@mq1:5672/osprey?heartbeat=10');
    expect(withDefaultHeartbeat('amqps://u:p%2Cq@mq1/%2F?frame_max=0')).to.equal('amqps://u:p%2Cq@mq1/%2F?frame_max=0&heartbeat=10');
    expect(withDefaultHeartbeat('amqp://u:p@mq1/osprey?heartbeat=0')).to.equal('amqp://u:p@mq1/osprey?heartbeat=0');
  });

  it('rejects a publish with OSPREY_ERR_BUS_PUBLISH_TIMEOUT when no connection comes within publishTimeoutMs', async () => {
    const warnings: string[] = [];
    const logger = { info: () => undefined, error: () => undefined, warn: (m: string) => warnings.push(m) };
    const bus = new RabbitMqBus({ url: UNREACHABLE, prefix: 'p', publishTimeoutMs: 200, reconnectDelayMs: 20, logger: logger as never });
    try {
      const err = await bus.publish('pipeline.x', { id: 'm1', key: 'k' }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(BusError);
      expect(err).to.have.property('code', 'OSPREY_ERR_BUS_PUBLISH_TIMEOUT');
      expect(err).to.have.property('errorClass', 'transient');
      expect(bus.connected).to.equal(false);
      expect(warnings.some((w) => w.startsWith('bus connection failed'))).to.equal(true);
    } finally {
      await bus.stop();
    }
  });

  it('rejects waiting publishes and start() with OSPREY_ERR_BUS_STOPPED when stopped, and stays stopped', async () => {
    const bus = new RabbitMqBus({ url: UNREACHABLE, prefix: 'p', publishTimeoutMs: 60_000, reconnectDelayMs: 20 });
    const starting = bus.start();
    const publishing = bus.publish('pipeline.x', { id: 'm1', key: 'k' });
    await bus.stop();
    await expect(starting).to.be.rejected.and.eventually.have.property('code', 'OSPREY_ERR_BUS_STOPPED');
    await expect(publishing).to.be.rejected.and.eventually.have.property('code', 'OSPREY_ERR_BUS_STOPPED');
    await expect(bus.publish('pipeline.x', { id: 'm2', key: 'k' })).to.be.rejected.and.eventually.have.property('code', 'OSPREY_ERR_BUS_STOPPED');
    await expect(bus.start()).to.be.rejected.and.eventually.have.property('code', 'OSPREY_ERR_BUS_STOPPED');
    await bus.stop(); // idempotent
  });
});

describe('KeyedDispatcher', () => {
  it('skips entries that are no longer live and drops an entry when told to', async () => {
    const ran: string[] = [];
    const dead = new Set(['b']);
    const d = new KeyedDispatcher<string>({
      concurrency: 4,
      run: async (entry) => {
        ran.push(entry);
        if (entry === 'c') throw new Error('poison');
      },
      onFailure: () => 'drop',
      isLive: (entry) => !dead.has(entry),
    });
    for (const entry of ['a', 'b', 'c', 'd']) d.push('k', entry);
    await d.idle();
    expect(ran).to.deep.equal(['a', 'c', 'd']);
    expect(d.size).to.equal(0);
    await d.stop();
  });

  it('refuses a concurrency below 1', () => {
    expect(() => new KeyedDispatcher({ concurrency: 0, run: async () => undefined, onFailure: () => 'drop' })).to.throw(RangeError);
  });
});
