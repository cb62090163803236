// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { parseTimeArg } from '../../../../engine/cli/commands/messages.ts';
import { UsageError } from '../../../../engine/cli/usage.ts';

describe('cli/commands/messages', () => {
  describe('--since / --until', () => {
    const now = Date.parse('2026-03-06T15:00:00.000Z');

    it('takes a duration ago, in the units of channel files', () => {
      expect(parseTimeArg('since', '10m', now)).to.equal('2026-03-06T14:50:00.000Z');
      expect(parseTimeArg('since', '2h', now)).to.equal('2026-03-06T13:00:00.000Z');
      expect(parseTimeArg('since', '7d', now)).to.equal('2026-02-27T15:00:00.000Z');
      expect(parseTimeArg('since', '30s', now)).to.equal('2026-03-06T14:59:30.000Z');
      expect(parseTimeArg('since', '500ms', now)).to.equal('2026-03-06T14:59:59.500Z');
    });

    it('takes an ISO 8601 time as written', () => {
      expect(parseTimeArg('since', '2026-03-06T14:00:00Z', now)).to.equal('2026-03-06T14:00:00.000Z');
      expect(parseTimeArg('until', '2026-03-06T14:00:00-06:00', now)).to.equal('2026-03-06T20:00:00.000Z');
      expect(parseTimeArg('since', '2026-03-06', now)).to.equal('2026-03-06T00:00:00.000Z');
    });

    it('refuses anything else with a UsageError that shows both forms', () => {
      for (const text of ['10 minutes', '10', 'm10', '', 'yesterday']) {
        expect(() => parseTimeArg('since', text, now), text).to.throw(UsageError, /30s, 10m, 2h, 7d.*ISO 8601/);
      }
    });
  });
});
