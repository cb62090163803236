// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { changes, unreadable, type MachineServices } from './machine-services.ts';

describe('test helpers: machine-services (the check that a run left the machine’s services alone)', () => {
  const started = 'started 2026-01-01T00:00:00.000Z';
  const before: MachineServices = { postgres: { pid: 100, detail: started }, rabbitmq: { pid: 200, detail: '/var/lib/rabbitmq' } };

  it('sees nothing when both are the same processes', () => {
    expect(changes(before, structuredClone(before))).to.deep.equal([]);
  });

  it('names a service whose pid or start time changed, or that is gone', () => {
    const restarted: MachineServices = { postgres: { pid: 101, detail: started }, rabbitmq: { reason: 'rabbitmqctl status failed (node down)' } };
    expect(changes(before, restarted)).to.deep.equal([
      'postgres: pid 100 (started 2026-01-01T00:00:00.000Z) before the run, pid 101 (started 2026-01-01T00:00:00.000Z) after',
      'rabbitmq: pid 200 before the run, afterwards rabbitmqctl status failed (node down)',
    ]);
    // A pid reused by a restarted server still shows in its start time.
    const sameRecycledPid: MachineServices = { ...before, postgres: { pid: 100, detail: 'started 2026-01-01T00:05:00.000Z' } };
    expect(changes(before, sameRecycledPid)).to.have.length(1);
  });

  it('reports what could not be read at the start instead of comparing it', () => {
    const partly: MachineServices = { postgres: { reason: 'PostgreSQL not reachable' }, rabbitmq: before.rabbitmq };
    expect(unreadable(partly)).to.deep.equal(['postgres: PostgreSQL not reachable']);
    expect(changes(partly, before)).to.deep.equal([]);
  });
});
