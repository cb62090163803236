// SPDX-License-Identifier: Apache-2.0
/**
 * A rate limit is the receiving system's, for the whole environment: two engine instances sharing
 * a channel send, together, at most the configured rate (each takes half, from the bus's count of
 * live instances). Real PostgreSQL and RabbitMQ, two engine child processes, the ERP stand-in
 * timing what it applies. The assertion is a lower bound on how long the deliveries take (a slow
 * machine only makes it longer), not a speed target.
 *
 * Skipped with the reason when PostgreSQL or RabbitMQ is absent; a failure with
 * OSPREY_REQUIRE_SERVICES=1.
 */
import { expect } from 'chai';
import { parseAck, sendOne } from '../helpers/mllp-raw-client.ts';
import { cleanUp, DESTINATION, diagnostics, PATH, prepareCluster, startInstances, waitForStandbys, type Cluster } from '../helpers/production-cluster.ts';
import { findServices, skipOrFail, type Services } from '../helpers/production-services.ts';
import { adt } from '../helpers/test-channel.ts';
import { removeTempDirs } from '../helpers/test-engine.ts';
import { waitFor } from '../helpers/wait-for.ts';

const LIMIT = { perSecond: 40, burst: 4 };
const MESSAGES = 200;

describe('production mode: a rate limit holds for the environment, not per instance (real PostgreSQL and RabbitMQ)', function () {
  this.timeout(180_000);
  let services: Services;
  let cluster: Cluster | undefined;

  before(async function () {
    this.timeout(60_000);
    const found = await findServices();
    if ('reason' in found) skipOrFail(this, found.reason);
    services = found as Services;
  });

  after(async function () {
    this.timeout(120_000);
    if (cluster) await cleanUp(cluster);
    removeTempDirs();
  });

  it(`two instances together deliver at most ${LIMIT.perSecond}/s (each takes half of the limit)`, async () => {
    cluster = await prepareCluster(services, 'ratelimit', ['A', 'B'], LIMIT);
    await startInstances(cluster);
    // Every partition active on one instance and standing by on the other: both have seen each other.
    await waitForStandbys(cluster);
    const c = cluster;
    // Two senders, one per instance, each its own patients (keys spread over every partition).
    await Promise.all(
      c.instances.map(async (instance, k) => {
        for (let i = 0; i < MESSAGES / 2; i++) {
          const text = adt({ controlId: `RL${k}S${String(i).padStart(4, '0')}`, patientId: `RL-${k}-${i % 25}` });
          const ack = parseAck(await sendOne(instance.mllpPort, text, 15_000));
          expect(ack.code, ack.text).to.equal('AA');
        }
      }),
    );
    try {
      await waitFor(() => c.standIn.appliedTo(PATH).length >= MESSAGES, { timeoutMs: 60_000, intervalMs: 100, what: `${MESSAGES} deliveries applied` });
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${await diagnostics(c)}`);
    }
    const at = c.standIn.appliedTo(PATH).map((a) => a.at).sort((x, y) => x - y);
    const spanS = (at.at(-1)! - at[0]!) / 1000;
    // At the shared limit the last delivery comes no sooner than (N − both bursts) / rate after the
    // first; per instance (each at the whole limit) it would come in about half that time.
    const floorS = (MESSAGES - 2 * LIMIT.burst) / LIMIT.perSecond;
    console.log(`      [rate limit] ${MESSAGES} deliveries of ${DESTINATION} over ${spanS.toFixed(1)} s: ${(MESSAGES / spanS).toFixed(1)}/s for a limit of ${LIMIT.perSecond}/s`);
    expect(spanS, `${MESSAGES} deliveries took ${spanS.toFixed(1)} s: faster than ${LIMIT.perSecond}/s allows`).to.be.at.least(floorS * 0.95);
  });
});
