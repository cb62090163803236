// SPDX-License-Identifier: Apache-2.0
/**
 * The membership rules of the RabbitMQ bus (engine/message-bus/rabbitmq/membership.ts) without a
 * broker: announcements in, a clock set by hand, decisions out. The broker-backed behaviour
 * (hand-over, fail-over) is in test/integration/message-bus/rabbitmq-bus.spec.ts.
 */
import { expect } from 'chai';
import { Membership, type Announcement } from '../../../engine/message-bus/rabbitmq/membership.ts';

const INTERVAL = 1000;
const QUEUE = 'deliver.adt.erp';
const PARTITIONS = 8;

/** A membership of `self` on a clock the test moves. */
function membershipOf(self: string, options: { rebalance?: boolean } = {}) {
  const clock = { now: 1_000_000 };
  const membership = new Membership({ self, intervalMs: INTERVAL, rebalance: options.rebalance ?? true, now: () => clock.now });
  membership.join();
  return { membership, clock };
}

/** What `id` announces when it consumes `partitions` of QUEUE. */
function said(id: string, partitions: number[] = [], extra: Partial<Announcement> = {}): Buffer {
  return Buffer.from(JSON.stringify({ id, queues: { [QUEUE]: partitions }, ...extra }));
}

const all = Array.from({ length: PARTITIONS }, (_, p) => p);

describe('RabbitMQ bus membership (pure rules)', () => {
  it('makes this instance the home of every partition while it is alone, or when spreading is off', () => {
    const { membership } = membershipOf('a');
    expect(all.every((p) => membership.isHome(QUEUE, p))).to.equal(true);
    const { membership: fixed } = membershipOf('a', { rebalance: false });
    fixed.receive(said('b', all));
    expect(all.every((p) => fixed.isHome(QUEUE, p))).to.equal(true);
  });

  it('spreads the partitions of a queue over the members consuming it, the same way on every member', () => {
    const a = membershipOf('a').membership;
    const b = membershipOf('b').membership;
    a.receive(said('b'));
    b.receive(said('a'));
    const homesOnA = all.map((p) => a.homeOf(QUEUE, p));
    const homesOnB = all.map((p) => b.homeOf(QUEUE, p));
    expect(homesOnA, 'both members compute the same homes').to.deep.equal(homesOnB);
    expect(homesOnA.filter((h) => h === 'a')).to.have.length(PARTITIONS / 2);
    expect(homesOnA.filter((h) => h === 'b')).to.have.length(PARTITIONS / 2);
  });

  it('gives no partition of a queue to a member that does not consume it', () => {
    const { membership } = membershipOf('a');
    membership.receive(Buffer.from(JSON.stringify({ id: 'b', queues: { 'pipeline.other': [0] } })));
    expect(all.every((p) => membership.isHome(QUEUE, p))).to.equal(true);
  });

  it('reports a newcomer, the member count when it changes, and a reassignment when who consumes what changes', () => {
    const { membership } = membershipOf('a');
    expect(membership.count).to.equal(1);
    const first = membership.receive(said('b'))!;
    expect(first).to.deep.include({ from: 'b', newcomer: true, bye: false, members: 2, reassigned: true });
    const again = membership.receive(said('b', [1, 2]))!;
    expect(again.newcomer).to.equal(false);
    expect(again.members, 'no change, no report').to.equal(undefined);
    expect(again.reassigned, 'the same queues: the same homes').to.equal(false);
    const bye = membership.receive(said('b', [], { bye: true }))!;
    expect(bye).to.deep.include({ bye: true, members: 1, reassigned: true });
    expect(membership.count).to.equal(1);
  });

  it('ignores its own announcements and anything that is not an announcement', () => {
    const { membership } = membershipOf('a');
    expect(membership.receive(said('a', all))).to.equal(undefined);
    expect(membership.receive(Buffer.from('not json'))).to.equal(undefined);
    expect(membership.receive(Buffer.from('null'))).to.equal(undefined);
    expect(membership.receive(Buffer.from('{"queues":{}}'))).to.equal(undefined);
    expect(membership.count).to.equal(1);
  });

  it('forgets a member silent for 3 intervals, not sooner; the survivor with the smallest id reports it lost', () => {
    const { membership, clock } = membershipOf('a');
    membership.receive(said('b'));
    const heardAt = clock.now;
    clock.now += 3 * INTERVAL;
    expect(membership.tick()).to.deep.equal({ lost: [], reassigned: false }, 'silent for exactly 3 intervals: still a member');
    clock.now += 1;
    expect(membership.tick()).to.deep.equal({ lost: [heardAt], members: 1, reassigned: true });

    // 'c' survives too and has a larger id than 'a': it forgets 'b' without reporting it.
    const c = membershipOf('c');
    c.membership.receive(said('a'));
    c.membership.receive(said('b'));
    c.clock.now += 2 * INTERVAL;
    c.membership.receive(said('a'));
    c.clock.now += INTERVAL + 1;
    const change = c.membership.tick();
    expect(change.lost, 'a, alive, reports it').to.deep.equal([]);
    expect(change.members).to.equal(2);
  });

  it('hands a partition back only to a home that announced, after this instance became active, a consumer waiting on it, within 2 intervals', () => {
    const { membership, clock } = membershipOf('a');
    membership.receive(said('b', all));
    const theirs = all.find((p) => !membership.isHome(QUEUE, p))!;
    const activeSince = clock.now;
    expect(membership.homeIsWaiting(QUEUE, theirs, activeSince), 'heard no later than this instance became active: no proof it is alive').to.equal(false);
    clock.now += 10;
    membership.receive(said('b', []));
    expect(membership.homeIsWaiting(QUEUE, theirs, activeSince), 'alive, but not waiting on it').to.equal(false);
    membership.receive(said('b', [theirs]));
    expect(membership.homeIsWaiting(QUEUE, theirs, activeSince)).to.equal(true);
    clock.now += 2 * INTERVAL + 1;
    expect(membership.homeIsWaiting(QUEUE, theirs, activeSince), 'silent for over 2 intervals since').to.equal(false);
    const ours = all.find((p) => membership.isHome(QUEUE, p))!;
    expect(membership.homeIsWaiting(QUEUE, ours, activeSince), 'our own partition').to.equal(false);
  });

  it('suspects the home of a partition taken over, and forgets it after 2 intervals unless it is heard from', () => {
    const { membership, clock } = membershipOf('a');
    membership.receive(said('b', all));
    const theirs = all.find((p) => !membership.isHome(QUEUE, p))!;
    const ours = all.find((p) => membership.isHome(QUEUE, p))!;
    expect(membership.tookOver(QUEUE, ours, clock.now), 'our own partition').to.equal(undefined);

    const since = clock.now;
    expect(membership.tookOver(QUEUE, theirs, since)).to.deep.equal({ home: 'b', suspectForMs: 2 * INTERVAL });
    expect(membership.tookOver(QUEUE, theirs, since), 'suspected already: no second timer').to.deep.equal({ home: 'b' });
    clock.now += 2 * INTERVAL;
    const due = membership.suspectDue('b', since);
    expect(due).to.deep.equal({ lost: [since], members: 1, reassigned: true, forgotten: true });
    expect(membership.tookOver(QUEUE, theirs, clock.now), 'forgotten: the partition is ours now').to.equal(undefined);
  });

  it('keeps a suspected home that announced itself again (it reconnected)', () => {
    const { membership, clock } = membershipOf('a');
    membership.receive(said('b', all));
    const theirs = all.find((p) => !membership.isHome(QUEUE, p))!;
    const since = clock.now;
    membership.tookOver(QUEUE, theirs, since);
    clock.now += INTERVAL;
    membership.receive(said('b', all));
    clock.now += INTERVAL;
    expect(membership.suspectDue('b', since)).to.deep.equal({ lost: [], reassigned: false, forgotten: false });
    expect(membership.count).to.equal(2);
    expect(membership.tookOver(QUEUE, theirs, clock.now), 'a later take-over suspects it again').to.deep.equal({ home: 'b', suspectForMs: 2 * INTERVAL });
  });
});
