// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { pickReadyFiles, type ListedFile, type PickupRules } from '../../../../adapters/inbound/sftp-batch-poller/file-pickup.ts';

const NOW = Date.parse('2026-03-06T12:00:00Z');
const file = (name: string, ageMs = 60_000, size = 100): ListedFile => ({ name, size, mtimeMs: NOW - ageMs });
const rules = (over: Partial<PickupRules> = {}): PickupRules => ({
  globs: ['*.835', '*.x12'],
  mode: 'temp-name',
  tempSuffixes: ['.filepart', '.tmp', '.part'],
  markerSuffixes: ['.done', '.ctl'],
  minAgeMs: 30_000,
  ...over,
});
const names = (files: ListedFile[]) => files.map((f) => f.name);

describe('sftp-batch-poller: safe pickup', () => {
  describe('temp-name', () => {
    it('takes complete names matching a glob, never a file under upload or hidden', () => {
      const listing = [file('a.835'), file('.b.835.filepart'), file('c.835.tmp'), file('.d.835'), file('e.x12'), file('notes.txt'), file('f.835.part')];
      expect(names(pickReadyFiles(listing, rules(), NOW).ready)).to.deep.equal(['a.835', 'e.x12']);
    });

    it('orders the ready files oldest first, then by name', () => {
      const listing = [file('b.835', 10_000), file('a.835', 10_000), file('old.835', 99_000)];
      expect(names(pickReadyFiles(listing, rules(), NOW).ready)).to.deep.equal(['old.835', 'a.835', 'b.835']);
    });
  });

  describe('marker', () => {
    it('takes a file only once its marker is listed (name.done or stem.ctl) and says which marker', () => {
      const listing = [file('a.835'), file('a.835.done'), file('b.835'), file('c.835'), file('c.ctl')];
      const decision = pickReadyFiles(listing, rules({ mode: 'marker' }), NOW);
      expect(names(decision.ready)).to.deep.equal(['a.835', 'c.835']);
      expect([...decision.markers]).to.deep.equal([
        ['a.835', 'a.835.done'],
        ['c.835', 'c.ctl'],
      ]);
    });

    it('never takes a marker file itself, even when a glob would match it', () => {
      const decision = pickReadyFiles([file('a.dat'), file('a.dat.done')], rules({ mode: 'marker', globs: ['*'] }), NOW);
      expect(names(decision.ready)).to.deep.equal(['a.dat']);
    });
  });

  describe('stable', () => {
    it('waits for size and time unchanged across two polls and the minimum age', () => {
      const r = rules({ mode: 'stable' });
      const first = pickReadyFiles([file('a.835', 60_000, 100), file('young.835', 5_000)], r, NOW);
      expect(first.ready, 'nothing on the first sight').to.deep.equal([]);
      const growing = pickReadyFiles([file('a.835', 60_000, 200), file('young.835', 5_000)], r, NOW, first.seen);
      expect(growing.ready, 'a.835 grew').to.deep.equal([]);
      const settled = pickReadyFiles([file('a.835', 60_000, 200), file('young.835', 5_000)], r, NOW, growing.seen);
      expect(names(settled.ready), 'young.835 is stable but younger than minAge').to.deep.equal(['a.835']);
    });
  });
});
