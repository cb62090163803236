// SPDX-License-Identifier: Apache-2.0
/**
 * Work the bus gives up on reaches the store (real RabbitMQ, SQLite store): a work item the broker
 * dead-letters (as it does after the delivery limit) turns its delivery DEAD_LETTERED with
 * OSPREY_ERR_BUS_DEAD_LETTERED, the dead-letter queue is emptied, and a replay re-queues the delivery.
 * Before, the store kept such a delivery QUEUED with nothing left to send it. The item is put in the
 * dead-letter exchange by the test, as the broker does: making a real handler fail 20 times would
 * only test the bus's counting, which the bus's own tests cover.
 */
import { connect } from 'amqplib';
import { expect } from 'chai';
import { queueNames } from '../../engine/message-bus/message-bus.ts';
import { topologyNames } from '../../engine/message-bus/rabbitmq-topology.ts';
import { ErpStandIn, unavailable } from '../fixtures/erp-stand-in.ts';
import { parseAck, sendOne } from '../helpers/mllp-raw-client.ts';
import { deleteBusPrefix, findServices, skipOrFail, uniqueNames, type Services } from '../helpers/production-services.ts';
import { adt, channelsDir, testChannelYaml } from '../helpers/test-channel.ts';
import { removeTempDirs, TestEngine } from '../helpers/test-engine.ts';
import { waitFor } from '../helpers/wait-for.ts';

const CHANNEL = 'dead-letters';
const PATH = '/erp/dead-letters';

describe('production mode: work the bus dead-letters is marked in the store and replayable (real RabbitMQ)', function () {
  this.timeout(90_000);
  let services: Services;
  let standIn: ErpStandIn | undefined;
  let osprey: TestEngine | undefined;
  const { prefix } = uniqueNames('deadletters');

  before(async function () {
    this.timeout(60_000);
    const found = await findServices({ rabbitmqctl: true });
    if ('reason' in found) skipOrFail(this, found.reason);
    services = found as Services;
  });

  after(async function () {
    this.timeout(60_000);
    await osprey?.stop();
    await standIn?.close();
    if (services) await deleteBusPrefix(services.rabbitmqUrl, prefix).catch(() => undefined);
    removeTempDirs();
  });

  it('turns a dead-lettered delivery DEAD_LETTERED with OSPREY_ERR_BUS_DEAD_LETTERED, empties the dead-letter queue, and a replay re-queues it', async () => {
    standIn = await ErpStandIn.start();
    standIn.setDefault(PATH, unavailable);
    const dir = channelsDir({
      // Retries far apart: the delivery waits, QUEUED, while the test dead-letters its work item.
      [`${CHANNEL}.channel.yaml`]: testChannelYaml({ name: CHANNEL, destinations: [{ name: 'erp', url: `${standIn.url}${PATH}`, maxAttempts: 50, backoff: '10m' }] }),
    });
    osprey = await TestEngine.start({ channelsDir: dir, bus: { type: 'rabbitmq', url: services.rabbitmqUrl, prefix, partitions: 2, prefetch: 10, deliveryLimit: 20 } });

    const ack = parseAck(await sendOne(osprey.port(CHANNEL), adt({ controlId: 'DLQ-1', patientId: 'P-DLQ' })));
    expect(ack.code, ack.text).to.equal('AA');
    const [summary] = await osprey.byControlId('DLQ-1', CHANNEL);
    const id = summary.id as string;
    const deliveryId = `${id}:erp:0`;
    await waitFor(async () => (await osprey!.message(id)).deliveries[0]?.attempts === 1, { timeoutMs: 20_000, what: 'the first attempt (503)' });

    // What the broker does when the bus rejects an item past its delivery limit.
    const queue = queueNames.delivery(CHANNEL, 'erp');
    const connection = await connect(services.rabbitmqUrl);
    connection.on('error', () => undefined);
    try {
      const channel = await connection.createConfirmChannel();
      channel.publish(topologyNames(prefix).deadLetterExchange, queue, Buffer.from(JSON.stringify({ id: deliveryId, key: 'P-DLQ' })), {
        persistent: true,
        headers: { 'x-first-death-reason': 'rejected' },
      });
      await channel.waitForConfirms();

      await waitFor(async () => (await osprey!.message(id)).state === 'DEAD_LETTERED', { timeoutMs: 20_000, what: 'the message DEAD_LETTERED' });
      const detail = await osprey.message(id);
      expect(detail.deliveries[0]).to.deep.include({ state: 'DEAD_LETTERED', attempts: 1 });
      expect(detail.deliveries[0].lastError.code).to.equal('OSPREY_ERR_BUS_DEAD_LETTERED');
      expect(detail.deliveries[0].lastError.detail).to.contain('rejected');
      await waitFor(async () => (await channel.checkQueue(topologyNames(prefix).deadLetterQueue(queue))).messageCount === 0, {
        timeoutMs: 10_000,
        what: 'the dead-letter queue emptied',
      });
      await channel.close();
    } finally {
      await connection.close().catch(() => undefined);
    }

    // Replayable as any dead-lettered delivery. (Here the original handler still holds the key,
    // waiting for its next try, so the replayed item waits behind it; after a real dead-lettering
    // that handler has given up.)
    const replay = await osprey.post(`/api/messages/${id}/replay`);
    expect(replay.status, JSON.stringify(replay.body)).to.equal(202);
    expect(replay.body).to.deep.include({ replayed: 'deliveries', deliveries: [deliveryId] });
    const replayed = await osprey.message(id);
    expect(replayed.state).to.equal('QUEUED');
    expect(replayed.deliveries[0]).to.deep.include({ state: 'QUEUED', attempts: 0 });
  });
});
