// SPDX-License-Identifier: Apache-2.0
/**
 * Production mode on a three-node RabbitMQ cluster that loses a node, against the real PostgreSQL
 * and three real RabbitMQ nodes of the test's own on 127.0.0.1 (test/helpers/rabbitmq-cluster.ts;
 * the machine's broker is not touched). The engine's quorum queues are replicated on all three
 * nodes. Two engine instances are given the three nodes' URLs, in different orders, so they connect
 * to different nodes. Mid-stream, the node instance A is connected to is killed with SIGKILL, as a
 * lost host is:
 *
 *   (f) the queues led from that node elect leaders on the survivors; A loses its connection,
 *       connects to the next node of its list and is ready again; B, on another node, keeps its
 *       connection throughout. Then the node is started again, while the stream goes on, and its
 *       replicas rejoin their queues.
 *
 * Afterwards the same checks as the other fault tests (test/helpers/fault-stream.ts): nothing
 * acknowledged is lost, each idempotency key applied once, per-patient order, the API's counts.
 *
 * Skipped with the reason when PostgreSQL or RabbitMQ's scripts are absent; a failure instead when
 * OSPREY_REQUIRE_SERVICES=1 (CI).
 */
import { expect } from 'chai';
import { busOf, readyStatus, report, startStream, verify } from '../helpers/fault-stream.ts';
import { cleanUp, partitionQueues, prepareCluster, startInstances, waitForStandbys, type Cluster, type Instance } from '../helpers/production-cluster.ts';
import { findServices, skipOrFail, type Services } from '../helpers/production-services.ts';
import { rabbitClusterUnavailable, startRabbitCluster, stopRabbitClusters, type RabbitCluster, type RabbitNode } from '../helpers/rabbitmq-cluster.ts';
import { removeTempDirs } from '../helpers/test-engine.ts';
import { waitFor } from '../helpers/wait-for.ts';

/** Each partition queue's leader, members and members online, from the cluster's own list. */
async function quorumPlacement(services: Services, prefix: string): Promise<Map<string, { leader: string; members: string[]; online: string[] }>> {
  const out = await services.rabbitmqctl!(['list_queues', 'name', 'leader', 'members', 'online', '--formatter', 'json', '-q'], 60_000);
  const rows = JSON.parse(out) as Array<{ name: string; leader: string; members: string[]; online: string[] }>;
  const queues = new Set(partitionQueues(prefix));
  return new Map(rows.filter((r) => queues.has(r.name)).map((r) => [r.name, { leader: r.leader, members: [...r.members].sort(), online: [...r.online].sort() }]));
}

describe('production mode on a three-node RabbitMQ cluster (two engine instances, real PostgreSQL)', function () {
  this.timeout(300_000);
  let services: Services;
  let rabbit: RabbitCluster | undefined;
  let cluster: Cluster | undefined;

  before(async function () {
    this.timeout(180_000);
    const found = await findServices();
    if ('reason' in found) skipOrFail(this, found.reason);
    const missing = rabbitClusterUnavailable();
    if (missing) skipOrFail(this, missing);
    const started = Date.now();
    rabbit = await startRabbitCluster(3);
    console.log(`      [production cluster] three RabbitMQ nodes clustered in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const nodes = rabbit.nodes;
    services = {
      databaseUrl: (found as Services).databaseUrl,
      rabbitmqUrl: nodes.map((n) => n.url).join(','),
      // Asked of a node that runs.
      rabbitmqctl: (args, ms) => (nodes.find((n) => n.alive) ?? nodes[0]!).ctl(args, ms),
    };
  });

  afterEach(async function () {
    this.timeout(120_000);
    const c = cluster;
    cluster = undefined;
    if (c) await cleanUp(c);
  });

  after(async function () {
    this.timeout(60_000);
    // Every node exits before its files go, also those of a cluster still forming when `before` timed out.
    await stopRabbitClusters();
    removeTempDirs();
  });

  it('(f) the node one instance is connected to is killed (SIGKILL) and comes back: its queues fail over, the instance reconnects to the next node, nothing ACKed is lost, each key applied once, per-patient order', async function () {
    const c = (cluster = await prepareCluster(services, 'rabbitnode'));
    const [a, b] = c.instances as [Instance, Instance];
    const [n0, n1, n2] = rabbit!.nodes as [RabbitNode, RabbitNode, RabbitNode];
    a.env.OSPREY_RABBITMQ_URL = [n0, n1, n2].map((n) => n.url).join(',');
    b.env.OSPREY_RABBITMQ_URL = [n1, n2, n0].map((n) => n.url).join(',');
    await startInstances(c);
    await waitForStandbys(c);

    const before = await quorumPlacement(services, c.prefix);
    expect(before.size, 'partition queues found').to.equal(partitionQueues(c.prefix).length);
    const allNodes = [n0, n1, n2].map((n) => n.name).sort();
    for (const [queue, placement] of before) expect(placement.members, `${queue} replicated on every node`).to.deep.equal(allNodes);
    const ledFromLost = [...before.values()].filter((p) => p.leader === n0.name).length;

    const address = (n: RabbitNode): string => `127.0.0.1:${n.port}`;
    expect(await busOf(a), 'A on the first node of its list (/healthz)').to.deep.equal({ connected: true, node: address(n0) });
    expect(await busOf(b), 'B on the first node of its list').to.deep.equal({ connected: true, node: address(n1) });

    let killed: Promise<void> | undefined;
    let killedAt = 0;
    let ackedAtKill = 0;
    let readyAgainAt = 0;
    let backAt = 0;
    const stream = startStream(c, 'RN', (n) => {
      if (killed || n < 300) return;
      ackedAtKill = n;
      killedAt = Date.now();
      killed = rabbit!.kill9(n0).then(async () => {
        await waitFor(async () => (await busOf(a))?.node === address(n1), { timeoutMs: 60_000, intervalMs: 100, what: 'instance A connected to the next node of its list' });
        await waitFor(async () => (await readyStatus(a)) === 200, { timeoutMs: 60_000, intervalMs: 100, what: 'instance A /readyz to answer 200 again' });
        readyAgainAt = Date.now();
        // The operator brings the node back while the stream goes on; its replicas catch up.
        await rabbit!.restart(n0);
        backAt = Date.now();
      });
      killed.catch(() => undefined); // awaited below
    });
    const streamEnd = await stream.done;
    expect(killed, 'the node was killed mid-stream').to.exist;
    await killed;
    expect(ackedAtKill, 'killed before the stream ended').to.be.lessThan(stream.messages.length);
    expect(a.process!.log(), "A's log names the lost node and the next").to.contain('bus connection lost; reconnecting').and.contain(`127.0.0.1:${n0.port}`);
    expect(await busOf(b), 'B stayed on its node').to.deep.equal({ connected: true, node: address(n1) });
    expect(await readyStatus(b), 'B ready').to.equal(200);

    const after = await quorumPlacement(services, c.prefix);
    const leaders = [...after.values()].map((p) => p.leader);
    expect(leaders.filter((l) => l === n0.name), 'no queue led from the lost node').to.deep.equal([]);
    expect(leaders.every((l) => l === n1.name || l === n2.name), 'every queue led from a survivor').to.equal(true);

    const figures = await verify(c, stream, streamEnd, Math.max(streamEnd, readyAgainAt));
    const rejoined = await waitFor(
      async () => {
        const placement = await quorumPlacement(services, c.prefix);
        return [...placement.values()].every((p) => p.online.length === 3) ? placement : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500, what: 'every partition queue with its three members online again' },
    );
    expect(rejoined.size).to.equal(before.size);
    report(
      'f: a RabbitMQ cluster node killed',
      figures,
      `node killed after ${ackedAtKill} ACKs; ${ledFromLost} of ${before.size} partition queues were led from it; instance A ready again ${((readyAgainAt - killedAt) / 1000).toFixed(1)} s after the kill, on the next node of its list; the node back ${((backAt - killedAt) / 1000).toFixed(1)} s after the kill, its replicas online again`,
    );
  });
});
