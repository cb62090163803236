// SPDX-License-Identifier: Apache-2.0
/**
 * The listener's memory bounds over real loopback sockets: frames in flight across all connections
 * (maxBytesInFlight: reading stops, nothing is dropped), ACKs a sender leaves unread
 * (maxUnreadAckBytes, idleTimeout: disconnected with a log line), and unframed junk (one stored
 * ERROR per connection, not one per read).
 */
import { expect } from 'chai';
import type { InboundHandler, IngestOutcome } from '../../../../engine/adapter-sdk/index.ts';
import { RawPeer, ack, frame, hl7Of, msg, pause, startListener, type Running } from './mllp-test-kit.ts';

/** A handler that holds every message until `release()`; `arrived` resolves once `n` have come. */
function gate() {
  const held: Array<() => void> = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  let count = 0;
  const handler: InboundHandler = (m) => {
    count++;
    for (const w of waiters.filter((x) => count >= x.n)) w.resolve();
    return new Promise<IngestOutcome>((resolve) => held.push(() => resolve({ ackCode: 'AA', messageId: hl7Of(m)?.controlId ?? '' })));
  };
  return {
    handler,
    get count() {
      return count;
    },
    arrived: (n: number) => new Promise<void>((resolve) => (count >= n ? resolve() : waiters.push({ n, resolve }))),
    release: () => held.splice(0).forEach((f) => f()),
  };
}

/** An AE whose ERR-8 is ~100 KB: a few ACKs fill the loopback socket buffers of a peer that does not read. */
const bigAck: InboundHandler = async () => ({ ackCode: 'AE', error: { code: 'OSPREY_ERR_MLLP_HANDLER_FAILED', detail: 'x'.repeat(100_000) } });

describe('mllp listener bounds', function () {
  this.timeout(20_000);
  let run: Running | undefined;
  const peers: RawPeer[] = [];

  afterEach(async () => {
    for (const p of peers.splice(0)) p.end();
    await run?.stop();
    run = undefined;
  });

  const connect = async (): Promise<RawPeer> => {
    const p = await RawPeer.connect(run!.port);
    peers.push(p);
    return p;
  };

  describe('maxBytesInFlight across connections', () => {
    it('stops reading from every connection once the frames in flight reach it, and drops nothing', async () => {
      const g = gate();
      // ~2 KB frames and a budget that the 8th frame in flight reaches.
      const filler = `PID|1||MRN^^^H||${'Z'.repeat(1900)}`;
      const size = Buffer.byteLength(msg('BUDGET-00', filler));
      const budget = Math.floor(size * 7.5);
      run = await startListener({ maxBytesInFlight: budget }, g.handler);
      const a = await connect();
      const b = await connect();
      // One frame per write, so that the listener reads them one by one.
      for (let i = 0; i < 8; i++) await (i % 2 === 0 ? a : b).write(frame(msg(`BUDGET-${String(i).padStart(2, '0')}`, filler)));
      await g.arrived(8);
      const stopped = run.logger.entries.find((e) => e.message.includes('maxBytesInFlight reached'));
      expect(stopped?.meta?.bytesInFlight).to.equal(size * 8);

      // Both connections keep sending; nothing more is read while the engine holds the budget.
      for (let i = 8; i < 20; i++) await (i % 2 === 0 ? a : b).write(frame(msg(`BUDGET-${String(i).padStart(2, '0')}`, filler)));
      // Proving a negative, so a short real wait: no event marks a read that does not happen. It
      // cannot fail wrongly: the listener paused every connection in the same turn as it handed over
      // frame 8 (before `arrived(8)` resolved, so before these writes), and the gate holds all 8
      // frames, so the budget stays reached however slow the machine. A listener that still read
      // would hand a local write over within milliseconds: 300 ms is for a busy machine.
      await pause(300);
      expect(g.count, 'frames handed to the engine while over budget').to.equal(8);

      // Answers free the budget; every frame is then read, handled and ACKed in order.
      const releaser = setInterval(() => g.release(), 20);
      try {
        const [acksA, acksB] = await Promise.all([a.waitForAcks(10), b.waitForAcks(10)]);
        expect(acksA.map((x) => ack(x).get('MSA-2'))).to.deep.equal([0, 2, 4, 6, 8, 10, 12, 14, 16, 18].map((i) => `BUDGET-${String(i).padStart(2, '0')}`));
        expect(acksB.map((x) => ack(x).get('MSA-2'))).to.deep.equal([1, 3, 5, 7, 9, 11, 13, 15, 17, 19].map((i) => `BUDGET-${String(i).padStart(2, '0')}`));
      } finally {
        clearInterval(releaser);
      }
      expect(run.logger.entries.some((e) => e.message.includes('reads again'))).to.equal(true);
    });
  });

  describe('a sender that does not read its ACKs', () => {
    it('is disconnected once more than maxUnreadAckBytes wait, with a log line; others are served', async () => {
      run = await startListener({ maxUnreadAckBytes: 256 * 1024, idleTimeoutMs: 60_000 }, bigAck);
      const deaf = await connect();
      deaf.socket.pause(); // reads nothing
      const frames = Array.from({ length: 200 }, (_, i) => frame(msg(`DEAF-${i}`)));
      deaf.socket.write(Buffer.concat(frames));
      // A peer that reads nothing does not see the close either: wait on the listener's side.
      await run.logger.waitFor('mllp connection closed');
      const line = run.logger.entries.find((e) => e.message === 'mllp sender does not read its ACKs; disconnecting');
      expect(line?.level).to.equal('warn');
      expect(line?.meta?.code).to.equal('OSPREY_ERR_MLLP_ACKS_UNREAD');
      expect(line?.meta?.unreadAckBytes).to.be.greaterThan(256 * 1024);
      expect(run.logger.entries.find((e) => e.message === 'mllp connection closing')?.meta?.reason).to.equal('more than maxUnreadAckBytes of ACKs unread');
      expect(JSON.stringify(run.logger.entries)).to.not.include('DEAF-');

      const other = await connect();
      await other.write(frame(msg('HEARING-1')));
      expect(ack((await other.waitForAcks(1))[0]!).get('MSA-2')).to.equal('HEARING-1');
    });

    it('is disconnected after idleTimeout with its ACKs unread, and stops being read meanwhile', async () => {
      run = await startListener({ maxUnreadAckBytes: 1024 * 1024 * 1024, idleTimeoutMs: 400 }, bigAck);
      const deaf = await connect();
      deaf.socket.pause();
      deaf.socket.write(Buffer.concat(Array.from({ length: 200 }, (_, i) => frame(msg(`SLOW-READER-${i}`)))));
      // 200 ACKs of ~100 KB (20 MB) overflow the loopback buffers (a few MB): the listener stops reading from this sender.
      await run.logger.waitFor('mllp ACKs back up: nothing more is read from the sender until it reads them');
      deaf.socket.write(Buffer.concat(Array.from({ length: 100 }, (_, i) => frame(msg(`SLOW-READER-${200 + i}`)))));
      await run.logger.waitFor('mllp connection closed');
      const closing = run.logger.entries.find((e) => e.message === 'mllp connection closing');
      expect(closing?.meta).to.include({ reason: 'ACKs unread for idleTimeout', code: 'OSPREY_ERR_MLLP_ACKS_UNREAD' });
      // Reading stopped when the ACKs backed up: the frames sent after that never reached the engine.
      expect(run.received.length).to.equal(200);
    });
  });

  describe('unframed junk', () => {
    it('becomes one ERROR record and one log line per connection, however many reads it takes', async () => {
      run = await startListener();
      const noisy = await connect();
      const junk = Buffer.alloc(4096, 'J');
      for (let i = 0; i < 10; i++) {
        await noisy.write(junk);
        await pause(5); // separate reads
      }
      await noisy.write(frame(msg('AFTER-JUNK')));
      expect(ack((await noisy.waitForAcks(1))[0]!).get('MSA-2')).to.equal('AFTER-JUNK');
      const refused = run.received.filter((m) => m.refused?.code === 'OSPREY_ERR_MLLP_GARBAGE');
      expect(refused).to.have.lengthOf(1);
      expect(refused[0]!.raw.length).to.be.at.most(4096);
      expect(run.logger.entries.filter((e) => e.message.startsWith('mllp bytes outside a frame'))).to.have.lengthOf(1);
      expect(noisy.acks, 'junk is not answered').to.have.lengthOf(1);
      noisy.end();
      expect((await run.logger.waitFor('mllp connection closed')).meta?.unframedBytes).to.equal(10 * 4096);

      // A new connection may record its own.
      const again = await connect();
      await again.write(Buffer.from('more junk'));
      await again.write(frame(msg('AFTER-JUNK-2')));
      await again.waitForAcks(1);
      expect(run.received.filter((m) => m.refused?.code === 'OSPREY_ERR_MLLP_GARBAGE')).to.have.lengthOf(2);
    });

    it('stores nothing for whitespace between frames (a CR LF after FS)', async () => {
      run = await startListener();
      const peer = await connect();
      await peer.write(Buffer.concat([frame(msg('WS-1')), Buffer.from('\r\n \t'), frame(msg('WS-2')), Buffer.from('\n')]));
      await peer.waitForAcks(2);
      expect(run.received.filter((m) => m.refused !== undefined)).to.deep.equal([]);
    });
  });
});
