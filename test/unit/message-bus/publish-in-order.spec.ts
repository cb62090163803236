// SPDX-License-Identifier: Apache-2.0
/** publishInOrder: a backlog published many at a time, a key's items never past a failed one. */
import { expect, use } from 'chai';
import chaiAsPromised from 'chai-as-promised';
import { publishInOrder } from '../../../engine/message-bus/publish-in-order.ts';
import type { WorkItem } from '../../../engine/message-bus/message-bus.ts';

use(chaiAsPromised);

/** A publish that confirms after a turn, rejects the ids in `nacked`, and records the calls. */
function fakeBus(nacked: Set<string>) {
  const calls: string[] = [];
  const confirmed: string[] = [];
  const confirmations = new Map<string, () => void>();
  /** Resolves once `id` is confirmed. */
  const confirmedOf = (id: string): Promise<void> =>
    confirmed.includes(id) ? Promise.resolve() : new Promise((resolve) => confirmations.set(id, resolve));
  let inFlight = 0;
  let maxInFlight = 0;
  const publish = async (_queue: string, item: WorkItem): Promise<void> => {
    calls.push(item.id);
    inFlight += 1;
    maxInFlight = Math.max(maxInFlight, inFlight);
    await new Promise((resolve) => setImmediate(resolve));
    inFlight -= 1;
    if (nacked.has(item.id)) throw new Error(`nacked ${item.id}`);
    confirmed.push(item.id);
    confirmations.get(item.id)?.();
  };
  return { publish, calls, confirmed, confirmedOf, maxInFlight: () => maxInFlight };
}

const items = (...ids: string[]): Array<[string, WorkItem]> => ids.map((id) => ['deliver.adt.erp', { id, key: id.split('-')[0]! }]);

describe('publishInOrder', () => {
  it('publishes different keys at once and a key’s items one after the other, in order', async () => {
    const bus = fakeBus(new Set());
    await publishInOrder(bus.publish, items('a-1', 'b-1', 'a-2', 'c-1', 'a-3', 'b-2'), 500);
    expect(bus.confirmed).to.deep.equal(['a-1', 'b-1', 'c-1', 'a-2', 'b-2', 'a-3']);
    expect(bus.maxInFlight(), 'a, b and c at once').to.equal(3);
  });

  it('publishes none of a key’s items after one that failed, and the other keys’ items still', async () => {
    const bus = fakeBus(new Set(['a-2']));
    await expect(publishInOrder(bus.publish, items('a-1', 'b-1', 'a-2', 'b-2', 'a-3', 'b-3'), 500)).to.be.rejectedWith('nacked a-2');
    // An explicit end of the window: b-3 is confirmed the turn after a-2 failed, and a-3 would
    // have been published on the turn a-2 failed.
    await bus.confirmedOf('b-3');
    expect(bus.calls, 'a-3 never published').to.not.include('a-3');
    expect(bus.confirmed).to.include.members(['a-1', 'b-1', 'b-2', 'b-3']);
  });

  it('publishes window after window', async () => {
    const bus = fakeBus(new Set());
    await publishInOrder(bus.publish, items('a-1', 'b-1', 'c-1', 'd-1', 'e-1'), 2);
    expect(bus.confirmed).to.deep.equal(['a-1', 'b-1', 'c-1', 'd-1', 'e-1']);
    expect(bus.maxInFlight()).to.equal(2);
  });
});
