// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { routeFor, type ChannelRoute } from '../../../../engine/cli/commands/send.ts';

describe('cli/commands/send', () => {
  describe('routeFor: which running channel a message type goes to', () => {
    const channel = (name: string, accept: string[], port: number | undefined, status = 'RUNNING'): ChannelRoute => ({ name, accept, status, ...(port === undefined ? {} : { source: { port } }) });

    it('names the one running channel that accepts the type', () => {
      const routes = [channel('adt', ['ADT^A01', 'ADT^A03'], 6661), channel('siu', ['SIU^S12'], 6662)];
      expect(routeFor(routes, 'SIU^S12')).to.deep.equal({ channel: 'siu', port: 6662, others: [] });
      expect(routeFor(routes, 'ORU^R01')).to.equal(undefined);
    });

    it('takes the first when several accept it, and names the others (for the warning)', () => {
      const routes = [channel('adt-billing', ['ADT^A01'], 6661), channel('adt-bed-board', ['ADT^A01'], 6663), channel('adt-old', ['ADT^A01'], 6664)];
      expect(routeFor(routes, 'ADT^A01')).to.deep.equal({ channel: 'adt-billing', port: 6661, others: ['adt-bed-board', 'adt-old'] });
    });

    it('skips channels that are not running or have no port', () => {
      const routes = [channel('failed', ['ADT^A01'], 6661, 'FAILED'), channel('no-port', ['ADT^A01'], undefined), channel('ok', ['ADT^A01'], 6665)];
      expect(routeFor(routes, 'ADT^A01')).to.deep.equal({ channel: 'ok', port: 6665, others: [] });
    });
  });
});
