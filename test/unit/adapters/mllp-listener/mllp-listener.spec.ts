// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import iconv from 'iconv-lite';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import type { InboundMessage, IngestOutcome } from '../../../../engine/adapter-sdk/index.ts';
import { OspreyError } from '../../../../engine/errors/error-codes.ts';
import { MllpFramer } from '../../../../engine/message-formats/hl7v2/index.ts';
import { createMllpListener } from '../../../../adapters/inbound/mllp-listener/index.ts';
import { FakeClock } from '../../../helpers/fake-clock.ts';
import { CR, FS, PARTIAL_FRAME, RawPeer, VT, acceptAll, ack, frame, hl7Of, msg, startListener, type Running } from './mllp-test-kit.ts';

// Nothing here sleeps: a test waits for what it needs (an ACK, a close, a log line of the
// listener's: e.g. PARTIAL_FRAME says it has read part of a frame), and the frame deadline runs on a
// FakeClock where it is the subject.

describe('mllp listener', function () {
  let run: Running | undefined;
  const crashes: unknown[] = [];
  const onCrash = (err: unknown): void => {
    crashes.push(err);
  };
  before(() => {
    process.on('uncaughtException', onCrash);
    process.on('unhandledRejection', onCrash);
  });
  after(() => {
    process.off('uncaughtException', onCrash);
    process.off('unhandledRejection', onCrash);
  });
  afterEach(async () => {
    await run?.stop();
    run = undefined;
    expect(crashes, 'no uncaught exception or unhandled rejection').to.deep.equal([]);
  });

  describe('split frames across writes (FS and CR in different packets)', () => {
    it('reassembles and ACKs once', async () => {
      run = await startListener();
      const peer = await RawPeer.connect(run.port);
      const text = msg('SPLIT-1');
      const readUpTo = (bytes: number) => run!.logger.waitFor(PARTIAL_FRAME, (m) => m.partialFrameBytes === bytes);
      // Each part is written once the listener has read the one before: four reads, for sure.
      await peer.write(Buffer.concat([VT, Buffer.from(text.slice(0, 30))]));
      await readUpTo(30);
      await peer.write(Buffer.from(text.slice(30)));
      await readUpTo(text.length);
      await peer.write(FS);
      const [a] = await peer.waitForAcks(1); // FS alone ends the frame
      expect(ack(a as string).get('MSA-1')).to.equal('AA');
      expect(ack(a as string).get('MSA-2')).to.equal('SPLIT-1');
      expect(run.received).to.have.length(1);
      expect(run.received[0]?.text).to.equal(text);
      // The CR that trails it, on its own, is neither junk nor a frame: the next frame is served.
      await peer.write(CR);
      await peer.write(frame(msg('SPLIT-2')));
      expect(ack((await peer.waitForAcks(2))[1] as string).get('MSA-2')).to.equal('SPLIT-2');
      expect(run.received.map((m) => hl7Of(m)?.controlId)).to.deep.equal(['SPLIT-1', 'SPLIT-2']);
      expect(run.logger.entries.filter((e) => e.meta?.code === 'OSPREY_ERR_MLLP_GARBAGE')).to.deep.equal([]);
      peer.end();
    });
  });

  describe('pipelined frames in one write', () => {
    it('ACKs every frame, in order', async () => {
      run = await startListener();
      const peer = await RawPeer.connect(run.port);
      await peer.write(Buffer.concat(['P1', 'P2', 'P3', 'P4'].map((id) => frame(msg(id)))));
      const acks = await peer.waitForAcks(4);
      expect(acks.map((a) => ack(a).get('MSA-2'))).to.deep.equal(['P1', 'P2', 'P3', 'P4']);
      peer.end();
    });

    it('keeps arrival order when the engine finishes out of order', async () => {
      // The engine finishes O2, then O3, then O1: each waits for the one before it to finish.
      const finished: string[] = [];
      const done = new Map<string, () => void>();
      const finishedBefore = new Map(['O2', 'O3'].map((id) => [id, new Promise<void>((resolve) => done.set(id, resolve))]));
      const after: Record<string, string> = { O1: 'O3', O3: 'O2' };
      run = await startListener({}, async (m: InboundMessage): Promise<IngestOutcome> => {
        const id = hl7Of(m)?.controlId ?? '';
        if (after[id] !== undefined) await finishedBefore.get(after[id]!);
        finished.push(id);
        done.get(id)?.();
        return { ackCode: 'AA' };
      });
      const peer = await RawPeer.connect(run.port);
      await peer.write(Buffer.concat(['O1', 'O2', 'O3'].map((id) => frame(msg(id)))));
      const acks = await peer.waitForAcks(3);
      expect(finished).to.deep.equal(['O2', 'O3', 'O1']);
      expect(acks.map((a) => ack(a).get('MSA-2'))).to.deep.equal(['O1', 'O2', 'O3']);
      peer.end();
    });
  });

  describe('missing trailing CR', () => {
    it('FS alone ends the frame and is ACKed at once; the connection keeps working', async () => {
      run = await startListener();
      const peer = await RawPeer.connect(run.port);
      await peer.write(Buffer.concat([VT, Buffer.from(msg('NOCR-1')), FS]));
      expect(ack((await peer.waitForAcks(1))[0] as string).get('MSA-2')).to.equal('NOCR-1');
      await peer.write(frame(msg('NOCR-2')));
      expect(ack((await peer.waitForAcks(2))[1] as string).get('MSA-2')).to.equal('NOCR-2');
      peer.end();
    });
  });

  describe('bytes between frames', () => {
    it('are discarded, logged once by count and code only, and the first junk is handed over once as refused (no ACK for it)', async () => {
      run = await startListener();
      const peer = await RawPeer.connect(run.port);
      await peer.write(Buffer.concat([Buffer.from('SECRET-NOISE'), frame(msg('BT-1')), Buffer.from('\r\n'), frame(msg('BT-2'))]));
      const acks = await peer.waitForAcks(2);
      expect(acks.map((a) => ack(a).get('MSA-2'))).to.deep.equal(['BT-1', 'BT-2']);
      const discarded = run.logger.entries.filter((e) => e.message.startsWith('mllp bytes outside a frame'));
      expect(discarded.map((e) => e.meta?.bytes)).to.deep.equal([12]);
      const refused = run.received.filter((m) => m.refused !== undefined);
      expect(refused.map((m) => [m.refused?.code, m.raw.toString('latin1')])).to.deep.equal([['OSPREY_ERR_MLLP_GARBAGE', 'SECRET-NOISE']]);
      expect(JSON.stringify(run.logger.entries)).to.not.include('SECRET');
      peer.end();
    });
  });

  describe('truncated frame, then a good one', () => {
    it('drops the partial frame and ACKs only the good one', async () => {
      run = await startListener();
      const peer = await RawPeer.connect(run.port);
      await peer.write(Buffer.concat([VT, Buffer.from(msg('TRUNC-1').slice(0, 40))]));
      await run.logger.waitFor(PARTIAL_FRAME); // read on its own: the next VT cuts it short
      await peer.write(Buffer.concat([frame(msg('GOOD-2')), frame(msg('GOOD-3'))]));
      // ACKs go out in arrival order: one for the partial frame would come before GOOD-2's.
      const acks = await peer.waitForAcks(2);
      expect(acks.map((a) => ack(a).get('MSA-2'))).to.deep.equal(['GOOD-2', 'GOOD-3']);
      expect(run.received.map((m) => hl7Of(m)?.controlId)).to.deep.equal(['GOOD-2', 'GOOD-3']);
      expect(run.logger.entries.filter((e) => e.message.startsWith('mllp partial frame discarded')).map((e) => e.meta?.bytes)).to.deep.equal([40]);
      peer.end();
    });
  });

  describe('garbage frame', () => {
    it('is answered AR naming the parse error, and the next message is fine', async () => {
      run = await startListener();
      const peer = await RawPeer.connect(run.port);
      await peer.write(Buffer.concat([frame('hello, this is not HL7'), frame(msg('AFTER-1'))]));
      const [bad, good] = await peer.waitForAcks(2);
      const nak = ack(bad as string);
      expect(nak.get('MSA-1')).to.equal('AR');
      expect(nak.get('ERR-5.1')).to.equal('OSPREY_ERR_HL7_NO_MSH');
      expect(nak.get('ERR-3.1')).to.equal('100');
      expect(ack(good as string).get('MSA-1')).to.equal('AA');
      expect(run.received[0]?.parseError?.code).to.equal('OSPREY_ERR_HL7_NO_MSH');
      expect(hl7Of(run.received[0])).to.equal(undefined);
      peer.end();
    });

    it('a message with broken delimiters gets a NAK that still names its control id', async () => {
      run = await startListener();
      const peer = await RawPeer.connect(run.port);
      await peer.write(frame('MSH|^~|S|SF|R|RF|20260101||ADT^A01|BROKEN-7|P|2.3\rPID|1'));
      const nak = ack((await peer.waitForAcks(1))[0] as string);
      expect(nak.get('MSA-1')).to.equal('AR');
      expect(nak.get('MSA-2')).to.equal('BROKEN-7');
      expect(nak.get('MSA-3')).to.match(/MSH-2/);
      peer.end();
    });
  });

  describe('oversize frame', () => {
    it('is handed to the engine as refused with its head only, gets AR naming OSPREY_ERR_MLLP_FRAME_TOO_LARGE, and framing resumes', async () => {
      run = await startListener({ maxMessageSize: 300 });
      const peer = await RawPeer.connect(run.port);
      const big = msg('BIG-1', 'OBX|1|TX|||' + 'Y'.repeat(6000));
      await peer.write(Buffer.concat([frame(big), frame(msg('SMALL-2'))]));
      const [nakText, okText] = await peer.waitForAcks(2);
      const nak = ack(nakText as string);
      expect(nak.get('MSA-1')).to.equal('AR');
      expect(nak.get('MSA-2')).to.equal('BIG-1');
      expect(nak.get('ERR-5.1')).to.equal('OSPREY_ERR_MLLP_FRAME_TOO_LARGE');
      expect(ack(okText as string).get('MSA-2')).to.equal('SMALL-2');
      expect(run.received.map((m) => hl7Of(m)?.controlId)).to.deep.equal(['BIG-1', 'SMALL-2']);
      const [refused, small] = run.received;
      expect(refused!.refused?.code).to.equal('OSPREY_ERR_MLLP_FRAME_TOO_LARGE');
      expect(refused!.refused?.detail).to.match(/maxMessageSize of 300 bytes; the first 4096 bytes of it are kept/);
      expect(refused!.raw.length, 'the head only').to.equal(4096);
      expect(refused!.raw.toString('latin1').startsWith('MSH|')).to.equal(true);
      expect(small!.refused).to.equal(undefined);
      peer.end();
    });
  });

  describe('BOM, LF and CRLF terminators', () => {
    it('parses them; raw bytes are handed over untouched', async () => {
      run = await startListener();
      const peer = await RawPeer.connect(run.port);
      const bodies = [
        Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(msg('BOM-1').replace(/\r/g, '\n') + '\n')]),
        Buffer.from(msg('CRLF-2').replace(/\r/g, '\r\n') + '\r\n'),
      ];
      await peer.write(Buffer.concat(bodies.map((b) => frame(b))));
      const acks = await peer.waitForAcks(2);
      expect(acks.map((a) => ack(a).get('MSA-1'))).to.deep.equal(['AA', 'AA']);
      expect(run.received[0]?.raw.equals(bodies[0] as Buffer)).to.equal(true);
      expect(run.received[1]?.raw.equals(bodies[1] as Buffer)).to.equal(true);
      expect(hl7Of(run.received[0])?.get('PID-5.1')).to.equal('DOE');
      expect(hl7Of(run.received[1])?.toString()).to.equal(msg('CRLF-2'));
      peer.end();
    });
  });

  describe('8859/1 bytes with MSH-18', () => {
    it('decodes by MSH-18 and answers in the same charset', async () => {
      run = await startListener();
      const peer = await RawPeer.connect(run.port);
      const text = 'MSH|^~\\&|S|SF|Rü|RF|20260101||ADT^A04|LAT-1|P|2.5||||||8859/1\rEVN|A04\rPID|1||1||MÜLLER^Zoë\rPV1|1';
      const bytes = iconv.encode(text, 'latin1');
      await peer.write(frame(bytes));
      const [a] = await peer.waitForAcks(1);
      expect(run.received[0]?.encoding).to.equal('iso-8859-1');
      expect(hl7Of(run.received[0])?.get('PID-5.2')).to.equal('Zoë');
      expect(run.received[0]?.parseError).to.equal(undefined);
      // The ACK's MSH-3 is the original MSH-5 ("Rü"), written as one Latin-1 byte.
      expect(ack(a as string).get('MSH-3')).to.equal('Rü');
      expect(ack(a as string).get('MSH-18')).to.equal('8859/1');
      peer.end();
    });

    it('Latin-1 bytes without MSH-18 on a UTF-8 channel are stored as errored (parseError) and NAKed', async () => {
      run = await startListener();
      const peer = await RawPeer.connect(run.port);
      await peer.write(frame(iconv.encode(msg('LAT-2', 'PID|1||1||MÜLLER'), 'latin1')));
      const nak = ack((await peer.waitForAcks(1))[0] as string);
      expect(nak.get('MSA-1')).to.equal('AR');
      expect(nak.get('MSA-2')).to.equal('LAT-2');
      expect(run.received[0]?.parseError?.code).to.equal('OSPREY_ERR_HL7_CHARSET');
      expect(hl7Of(run.received[0])?.controlId).to.equal('LAT-2');
      peer.end();
    });

    it('the channel charset decodes messages without MSH-18', async () => {
      run = await startListener({ charset: 'windows-1252' });
      const peer = await RawPeer.connect(run.port);
      await peer.write(frame(iconv.encode(msg('W-1', 'PID|1||1||MÜLLER'), 'windows-1252')));
      await peer.waitForAcks(1);
      expect(hl7Of(run.received[0])?.get('PID-5')).to.equal('MÜLLER');
      peer.end();
    });

    it('an unknown channel charset is refused at creation', () => {
      expect(() => createMllpListener({ port: 0, charset: 'KLINGON' })).to.throw(OspreyError).with.property('code', 'OSPREY_ERR_CONFIG_INVALID');
    });
  });

  /** The reasons the listener gave for closing connections, as logged. */
  const closing = (r: Running) => r.logger.entries.filter((e) => e.message === 'mllp connection closing').map((e) => e.meta);

  // The connection's idle timeout is the socket's own (real time, short here); these tests wait for
  // the close, and assert nothing about when it came. The frame deadline runs on a FakeClock.
  describe('idle timeout', () => {
    it('closes a silent connection', async () => {
      run = await startListener({ idleTimeoutMs: 150 });
      const peer = await RawPeer.connect(run.port);
      await peer.closed;
      expect(closing(run).map((m) => [m?.code, m?.reason])).to.deep.equal([['OSPREY_ERR_MLLP_IDLE_TIMEOUT', 'idle']]);
    });

    it('does not close a connection whose ACK the engine is still preparing', async () => {
      run = await startListener({ idleTimeoutMs: 100 }, async () => {
        // The engine answers only after the idle timeout came while it held the ACK.
        await run!.logger.waitFor('mllp connection idle while the engine prepares its ACKs; kept open');
        return { ackCode: 'AA' };
      });
      const peer = await RawPeer.connect(run.port);
      await peer.write(frame(msg('SLOW-1')));
      expect(ack((await peer.waitForAcks(1))[0] as string).get('MSA-2')).to.equal('SLOW-1');
      await peer.closed; // then idles out
      expect(closing(run).map((m) => m?.reason)).to.deep.equal(['idle']);
    });
  });

  describe('sender stalled mid-frame', () => {
    it('is closed by the idle timeout, and nothing reaches the engine', async () => {
      // The frame deadline's clock stands still: only the socket's idle timeout can close it.
      run = await startListener({ idleTimeoutMs: 150 }, acceptAll, { timers: new FakeClock() });
      const peer = await RawPeer.connect(run.port);
      await peer.write(Buffer.concat([VT, Buffer.from(msg('STALL-1').slice(0, 50))]));
      await peer.closed;
      expect(run.received).to.have.length(0);
      expect(closing(run).map((m) => [m?.code, m?.reason])).to.deep.equal([['OSPREY_ERR_MLLP_IDLE_TIMEOUT', 'stalled mid-frame']]);
    });

    it('a sender trickling one frame byte by byte is closed when the frame outlives idleTimeout', async () => {
      const clock = new FakeClock();
      // Each byte is activity, so the socket's idle timeout (60 s of real time) never trips here.
      run = await startListener({ idleTimeoutMs: 60_000 }, acceptAll, { timers: clock });
      const peer = await RawPeer.connect(run.port);
      const bytes = frame(msg('TRICKLE-1'));
      const readUpTo = (n: number) => run!.logger.waitFor(PARTIAL_FRAME, (m) => m.partialFrameBytes === n);
      await peer.write(bytes.subarray(0, 2)); // VT and the first byte: the frame begins at 0 s
      await readUpTo(1);
      // A byte every 5 s: never idle, and 55 s into the frame it is still open.
      for (let i = 2; i <= 12; i++) {
        clock.advance(5_000);
        await peer.write(bytes.subarray(i, i + 1));
        await readUpTo(i);
      }
      expect(closing(run), 'open 55 s into the frame').to.deep.equal([]);
      clock.advance(5_000); // 60 s after the frame began, however recent its last byte
      expect(closing(run).map((m) => m?.reason)).to.deep.equal(['frame not completed within idleTimeout']);
      await peer.closed;
      expect(clock.armed, 'one deadline for the frame').to.equal(1);
      expect(run.received).to.have.length(0);
    });
  });

  describe('max connections', () => {
    it('closes connections beyond maxConnections and serves the others', async () => {
      run = await startListener({ maxConnections: 2 });
      const a = await RawPeer.connect(run.port);
      const b = await RawPeer.connect(run.port);
      await a.write(frame(msg('MC-A')));
      await a.waitForAcks(1); // both first connections are registered by now
      const c = await RawPeer.connect(run.port);
      await c.closed;
      await b.write(frame(msg('MC-B')));
      expect(ack((await b.waitForAcks(1))[0] as string).get('MSA-2')).to.equal('MC-B');
      expect(run.logger.entries.some((e) => e.meta?.code === 'OSPREY_ERR_MLLP_TOO_MANY_CONNECTIONS')).to.equal(true);
      a.end();
      b.end();
    });
  });

  describe('50 concurrent connections', () => {
    it('ACKs every message on every connection', async () => {
      run = await startListener();
      const port = run.port;
      const peers = await Promise.all(Array.from({ length: 50 }, () => RawPeer.connect(port)));
      await Promise.all(peers.map((p, i) => p.write(Buffer.concat([0, 1, 2, 3, 4].map((j) => frame(msg(`C${i}-${j}`)))))));
      const all = await Promise.all(peers.map((p) => p.waitForAcks(5)));
      all.forEach((acks, i) => expect(acks.map((a) => ack(a).get('MSA-2'))).to.deep.equal([0, 1, 2, 3, 4].map((j) => `C${i}-${j}`)));
      expect(run.received).to.have.length(250);
      peers.forEach((p) => p.end());
    });
  });

  describe('peer closes before its ACK is written', () => {
    it('crashes nothing; the listener keeps serving', async () => {
      let release: () => void = () => {};
      const gate = new Promise<void>((r) => (release = r));
      let handed: () => void = () => {};
      const bothHanded = new Promise<void>((r) => (handed = r));
      let count = 0;
      run = await startListener({}, async (m) => {
        if (++count === 2) handed();
        if (hl7Of(m)?.controlId === 'GONE-1') await gate;
        return { ackCode: 'AA' };
      });
      const peer = await RawPeer.connect(run.port);
      await peer.write(Buffer.concat([frame(msg('GONE-1')), frame(msg('GONE-2'))]));
      await bothHanded;
      peer.socket.resetAndDestroy();
      // The listener has seen the peer go with both ACKs still to write.
      expect((await run.logger.waitFor('mllp connection closed')).meta?.pendingAcks).to.equal(2);
      // The ACKs are then built and skipped in promise callbacks, all run before the connect below
      // (an exception there would reach the crash check in afterEach).
      release();
      const next = await RawPeer.connect(run.port);
      await next.write(frame(msg('NEXT-1')));
      expect(ack((await next.waitForAcks(1))[0] as string).get('MSA-1')).to.equal('AA');
      next.end();
    });
  });

  describe('handler throwing', () => {
    it('answers AE naming OSPREY_ERR_MLLP_HANDLER_FAILED and keeps going', async () => {
      run = await startListener({}, async (m) => {
        if (hl7Of(m)?.controlId === 'THROW-1') throw new Error('store exploded with PATIENT DOE');
        return { ackCode: 'AA' };
      });
      const peer = await RawPeer.connect(run.port);
      await peer.write(Buffer.concat([frame(msg('THROW-1')), frame(msg('OK-2'))]));
      const [a1, a2] = await peer.waitForAcks(2);
      expect(ack(a1 as string).get('MSA-1')).to.equal('AE');
      expect(ack(a1 as string).get('ERR-5.1')).to.equal('OSPREY_ERR_MLLP_HANDLER_FAILED');
      expect(ack(a2 as string).get('MSA-1')).to.equal('AA');
      expect(JSON.stringify(run.logger.entries)).to.not.include('DOE');
      peer.end();
    });

    it('an AE from the engine carries its error in ERR', async () => {
      run = await startListener({}, async () => ({ ackCode: 'AE', error: { code: 'OSPREY_ERR_STORE_UNAVAILABLE', detail: 'store down; resend' } }));
      const peer = await RawPeer.connect(run.port);
      await peer.write(frame(msg('AE-1')));
      const a = ack((await peer.waitForAcks(1))[0] as string);
      expect(a.get('MSA-1')).to.equal('AE');
      expect(a.get('ERR-5.1')).to.equal('OSPREY_ERR_STORE_UNAVAILABLE');
      expect(a.get('ERR-8')).to.equal('store down; resend');
      peer.end();
    });

    it('a refusal by validation: AE with ERR-2 in original mode, CA in enhanced mode (stored)', async () => {
      run = await startListener({}, async () => ({
        ackCode: 'AE',
        commitAck: 'CA',
        messageId: 'm-1',
        error: { code: 'OSPREY_ERR_PIPELINE_VALIDATION', detail: 'ADT^A04 requires MSH, EVN, PID, PV1: EVN is missing.', hl7ErrorCode: '100', location: { segment: 'EVN' } },
      }));
      const peer = await RawPeer.connect(run.port);
      const enhanced = 'MSH|^~\\&|SENDAPP|SENDFAC|RCVAPP|RCVFAC|20260101120000||ADT^A04^ADT_A01|ENH-1|P|2.5.1|||AL|NE\rPID|1';
      await peer.write(Buffer.concat([frame(msg('ORIG-1')), frame(enhanced)]));
      const [original, commit] = (await peer.waitForAcks(2)).map((x) => ack(x));
      expect(original!.get('MSA-1')).to.equal('AE');
      expect(original!.rawField('ERR', 2)).to.equal('EVN^1');
      expect(original!.get('ERR-3.1')).to.equal('100');
      expect(commit!.get('MSA-1')).to.equal('CA');
      expect(commit!.get('MSA-2')).to.equal('ENH-1');
      peer.end();
    });
  });

  describe('MSH-2 with its escape character doubled (^~\\\\&)', () => {
    it('is parsed as ^~\\&, answered in the standard form with a warning logged, the raw bytes handed over as received', async () => {
      run = await startListener();
      const peer = await RawPeer.connect(run.port);
      const text = msg('DOUBLED-1').replace('MSH|^~\\&|', 'MSH|^~\\\\&|');
      expect(text.startsWith('MSH|^~\\\\&|')).to.equal(true);
      await peer.write(frame(text));
      const a = ack((await peer.waitForAcks(1))[0]!);
      expect(a.get('MSA-1')).to.equal('AA');
      expect(a.get('MSA-2')).to.equal('DOUBLED-1');
      expect(a.rawField('MSH', 2)).to.equal('^~\\&');
      expect(run.received[0]!.raw.toString('latin1')).to.equal(text);
      expect(hl7Of(run.received[0])?.leniencies).to.deep.equal(['msh2-escape-doubled']);
      const warning = run.logger.entries.find((e) => e.message.startsWith('mllp message header tolerated'));
      expect(warning?.level).to.equal('warn');
      expect(JSON.stringify(run.logger.entries)).to.not.include('DOE');
      peer.end();
    });
  });

  describe('sender allow-list', () => {
    it('closes connections from other addresses and serves listed ones', async () => {
      run = await startListener({ allowFrom: ['10.99.99.99'] });
      const refused = await RawPeer.connect(run.port);
      await refused.closed;
      expect(run.logger.entries.some((e) => e.meta?.code === 'OSPREY_ERR_MLLP_SENDER_NOT_ALLOWED')).to.equal(true);
      await run.stop();
      run = await startListener({ allowFrom: ['127.0.0.1'] });
      const ok = await RawPeer.connect(run.port);
      await ok.write(frame(msg('ALLOW-1')));
      expect(ack((await ok.waitForAcks(1))[0] as string).get('MSA-1')).to.equal('AA');
      ok.end();
    });
  });

  describe('lifecycle', () => {
    it('start and stop are idempotent; a busy port rejects start', async () => {
      run = await startListener();
      await run.listener.start(async () => ({ ackCode: 'AA' }));
      const clash = createMllpListener({ host: '127.0.0.1', port: run.port });
      let error: unknown;
      await clash.start(async () => ({ ackCode: 'AA' })).catch((e: unknown) => (error = e));
      expect((error as NodeJS.ErrnoException)?.code).to.equal('EADDRINUSE');
      await run.stop();
      await run.stop();
      expect(run.listener.address()).to.equal(undefined);
    });

    it('logs never carry message content', async () => {
      run = await startListener();
      const peer = await RawPeer.connect(run.port);
      await peer.write(Buffer.concat([frame(msg('PHI-1', 'PID|1||MRN-SECRET||ZEBRA^QUINN')), frame('not hl7 ZEBRA'), Buffer.from('ZEBRA')]));
      await peer.waitForAcks(2);
      peer.end();
      await run.logger.waitFor('mllp connection closed'); // its last log line
      const logged = JSON.stringify(run.logger.entries);
      expect(logged).to.not.include('ZEBRA');
      expect(logged).to.not.include('MRN-SECRET');
    });
  });

  describe('TLS and mTLS', function () {
    let dir = '';
    let hasOpenssl = true;
    before(function () {
      try {
        execFileSync('openssl', ['version'], { stdio: 'ignore' });
      } catch {
        hasOpenssl = false;
        console.log('      (skipping TLS tests: the openssl CLI is not installed)');
        this.skip();
      }
      dir = mkdtempSync(join(tmpdir(), 'osprey-mllp-tls-'));
      const ssl = (...args: string[]): void => {
        execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
      };
      ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=Osprey Test CA');
      writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
      ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
      ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'server.ext');
      ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=sender');
      ssl('x509', '-req', '-in', 'client.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'client.crt', '-days', '2');
    });
    after(() => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    const tlsExchange = (port: number, opts: tls.ConnectionOptions): Promise<string> =>
      new Promise((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port, ca: readFileSync(join(dir, 'ca.crt')), ...opts }, () => s.write(frame(msg('TLS-1'))));
        const framer = new MllpFramer();
        s.on('data', (c: Buffer) => {
          for (const ev of framer.push(c)) if (ev.type === 'frame') {
            resolve(ev.payload.toString());
            s.destroy();
          }
        });
        s.on('error', reject);
        s.on('close', () => reject(new Error('closed without ACK')));
      });

    it('TLS: ACKs over an encrypted connection', async function () {
      if (!hasOpenssl) this.skip();
      run = await startListener({ tls: { cert: join(dir, 'server.crt'), key: join(dir, 'server.key') } });
      expect(ack(await tlsExchange(run.port, {})).get('MSA-2')).to.equal('TLS-1');
      // A plain-TCP MLLP peer gets no ACK and nothing crashes.
      const plain = await RawPeer.connect(run.port);
      await plain.write(frame(msg('PLAIN-1')));
      await plain.closed;
      expect(plain.acks).to.have.length(0);
    });

    it('mTLS: a client certificate from the CA is required', async function () {
      if (!hasOpenssl) this.skip();
      run = await startListener({ tls: { cert: join(dir, 'server.crt'), key: join(dir, 'server.key'), ca: join(dir, 'ca.crt'), requestCert: true } });
      const withCert = await tlsExchange(run.port, { cert: readFileSync(join(dir, 'client.crt')), key: readFileSync(join(dir, 'client.key')) });
      expect(ack(withCert).get('MSA-1')).to.equal('AA');
      let refused: unknown;
      await tlsExchange(run.port, {}).catch((e: unknown) => (refused = e));
      expect(refused).to.be.instanceOf(Error);
      expect(run.received).to.have.length(1);
    });

    it('unreadable certificate files reject start with OSPREY_ERR_CONFIG_INVALID', async function () {
      if (!hasOpenssl) this.skip();
      const l = createMllpListener({ host: '127.0.0.1', port: 0, tls: { cert: join(dir, 'nope.crt'), key: join(dir, 'server.key') } });
      let error: unknown;
      await l.start(async () => ({ ackCode: 'AA' })).catch((e: unknown) => (error = e));
      expect((error as OspreyError)?.code).to.equal('OSPREY_ERR_CONFIG_INVALID');
    });
  });
});
