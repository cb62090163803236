// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { MllpFramer, type MllpFrameEvent } from '../../../../adapters/inbound/mllp-listener/mllp-framer.ts';
import { CR, FS, VT, frame, msg } from './mllp-test-kit.ts';

const frames = (events: MllpFrameEvent[]): string[] => events.flatMap((e) => (e.type === 'frame' ? [e.payload.toString('latin1')] : []));
const feed = (f: MllpFramer, chunks: Buffer[]): MllpFrameEvent[] => chunks.flatMap((c) => f.push(c));

describe('mllp framer', () => {
  const m1 = msg('F1');
  const m2 = msg('F2');
  const wire = Buffer.concat([frame(m1), frame(m2)]);

  it('reassembles a frame split at every possible byte boundary (FS and CR in different reads included)', () => {
    for (let cut = 1; cut < wire.length; cut++) {
      const f = new MllpFramer();
      const events = feed(f, [wire.subarray(0, cut), wire.subarray(cut)]);
      expect(frames(events), `cut at ${cut}`).to.deep.equal([m1, m2]);
      expect(events.filter((e) => e.type !== 'frame'), `cut at ${cut}`).to.deep.equal([]);
    }
  });

  it('reads byte by byte', () => {
    const f = new MllpFramer();
    const events = feed(f, [...wire].map((b) => Buffer.from([b])));
    expect(frames(events)).to.deep.equal([m1, m2]);
  });

  it('returns every frame of one read', () => {
    expect(frames(new MllpFramer().push(Buffer.concat([wire, frame('MSH|x')])))).to.deep.equal([m1, m2, 'MSH|x']);
  });

  it('FS without CR ends the frame at once; the next VT starts the next frame', () => {
    const f = new MllpFramer();
    expect(frames(f.push(Buffer.concat([VT, Buffer.from(m1), FS])))).to.deep.equal([m1]);
    expect(f.inFrame).to.equal(false);
    const events = f.push(Buffer.concat([VT, Buffer.from(m2), FS, CR]));
    expect(events).to.have.length(1);
    expect(frames(events)).to.deep.equal([m2]);
  });

  it('discards and reports bytes between frames', () => {
    const events = new MllpFramer().push(Buffer.concat([Buffer.from('junk'), frame(m1), Buffer.from('\r\n  '), frame(m2), Buffer.from('tail')]));
    expect(events.map((e) => e.type)).to.deep.equal(['garbage', 'frame', 'garbage', 'frame', 'garbage']);
    expect(events.filter((e) => e.type === 'garbage').map((e) => (e as { bytes: number }).bytes)).to.deep.equal([4, 4, 4]);
    // Each report carries the discarded bytes themselves (a view of the pushed chunk).
    expect(events.flatMap((e) => (e.type === 'garbage' ? [e.data.toString('latin1')] : []))).to.deep.equal(['junk', '\r\n  ', 'tail']);
    const split = new MllpFramer();
    expect(split.push(Buffer.from('ab')).flatMap((e) => (e.type === 'garbage' ? [e.data.toString('latin1')] : []))).to.deep.equal(['ab']);
    expect(split.push(Buffer.concat([Buffer.from('cd'), frame(m1)])).flatMap((e) => (e.type === 'garbage' ? [e.data.toString('latin1')] : []))).to.deep.equal(['cd']);
  });

  it('resyncs on VT: a truncated frame is dropped, the next one is whole', () => {
    const events = new MllpFramer().push(Buffer.concat([VT, Buffer.from('MSH|^~\\&|half a mess'), frame(m2)]));
    expect(events.map((e) => e.type)).to.deep.equal(['truncated', 'frame']);
    expect(frames(events)).to.deep.equal([m2]);
  });

  it('oversize: reported once with the head, discarded up to its end, then framing resumes', () => {
    const f = new MllpFramer({ maxFrameSize: 50 });
    const big = 'MSH|^~\\&|A|B|C|D|1||ADT^A01|BIG-1|P|2.5\r' + 'X'.repeat(500);
    const events = feed(f, [frame(big).subarray(0, 100), frame(big).subarray(100), frame('MSH|ok')]);
    expect(events.map((e) => e.type)).to.deep.equal(['oversize', 'frame']);
    const over = events[0] as Extract<MllpFrameEvent, { type: 'oversize' }>;
    expect(over.limit).to.equal(50);
    expect(over.head.toString('latin1')).to.include('BIG-1');
    expect(frames(events)).to.deep.equal(['MSH|ok']);
    expect(f.bufferedBytes).to.equal(0);
  });

  it('oversize followed directly by a VT resyncs on it', () => {
    const f = new MllpFramer({ maxFrameSize: 10 });
    const events = f.push(Buffer.concat([VT, Buffer.from('0123456789ABCDEF'), frame('MSH|ok')]));
    expect(events.map((e) => e.type)).to.deep.equal(['oversize', 'frame']);
  });

  it('inFrame tracks a sender stalled mid-frame; reset() forgets it', () => {
    const f = new MllpFramer();
    f.push(Buffer.concat([VT, Buffer.from('MSH|')]));
    expect(f.inFrame).to.equal(true);
    expect(f.bufferedBytes).to.equal(4);
    f.reset();
    expect(f.inFrame).to.equal(false);
    expect(frames(f.push(frame('MSH|a')))).to.deep.equal(['MSH|a']);
  });

  it('payloads are copies, not views of the read buffer', () => {
    const chunk = frame('MSH|abc');
    const [ev] = new MllpFramer().push(chunk);
    chunk.fill(0);
    expect((ev as { payload: Buffer }).payload.toString()).to.equal('MSH|abc');
  });
});
