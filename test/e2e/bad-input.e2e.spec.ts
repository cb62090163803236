// SPDX-License-Identifier: Apache-2.0
/**
 * Bad input of any kind gets a clear answer and never stops the engine or another channel: garbage
 * and header-less frames, truncated and oversize frames, a sender stalled mid-frame, a message type
 * the channel does not accept, a duplicate, and broken channel files next to a good one. Raw
 * sockets write the exact bytes; what happened is read back through the management API.
 */
import net from 'node:net';
import { expect } from 'chai';
import { ErpStandIn } from '../fixtures/erp-stand-in.ts';
import { FS, frame, parseAck, RawMllpClient, sendOne, VT } from '../helpers/mllp-raw-client.ts';
import { adt, channelsDir, testChannelYaml } from '../helpers/test-channel.ts';
import { Hl7Message } from '../../engine/message-formats/hl7v2/index.ts';
import { removeTempDirs, TestEngine } from '../helpers/test-engine.ts';
import { sleep, waitFor } from '../helpers/wait-for.ts';

const CHANNEL = 'adt-in';
const SINK = '/erp/events';

describe('bad input', function () {
  this.timeout(30_000);

  let standIn: ErpStandIn;
  let osprey: TestEngine;
  let blocker: net.Server;
  let blockedPort: number;
  let port: number;
  let n = 0;
  const nextId = (tag: string): string => `BAD-${tag}-${++n}`;

  /** ERROR messages of the test channel, by id. */
  async function errorIds(): Promise<Set<string>> {
    const res = await osprey.get(`/api/messages?channel=${CHANNEL}&state=ERROR&limit=1000`);
    return new Set(res.body.messages.map((m: any) => m.id as string));
  }

  async function channelTotal(): Promise<number> {
    const res = await osprey.get('/api/channels');
    const view = res.body.channels.find((c: any) => c.name === CHANNEL);
    return Object.values(view.counts as Record<string, number>).reduce((a, b) => a + b, 0);
  }

  /** Sends a good message on `client` (or a fresh connection) and waits until it is SENT. */
  async function goodMessageIsServed(client?: RawMllpClient): Promise<void> {
    const controlId = nextId('GOOD');
    const text = adt({ controlId, patientId: `P-${controlId}` });
    const ack = parseAck(client ? await client.request(text) : await sendOne(port, text));
    expect(ack.code, ack.text).to.equal('AA');
    expect(ack.ackedControlId).to.equal(controlId);
    const [m] = await osprey.byControlId(controlId, CHANNEL);
    await osprey.waitForState(m.id, 'SENT');
  }

  before(async function () {
    standIn = await ErpStandIn.start();
    // A port that is taken when the engine starts: the channel asking for it fails alone.
    blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
    blockedPort = (blocker.address() as net.AddressInfo).port;
    const dir = channelsDir({
      [`${CHANNEL}.channel.yaml`]: testChannelYaml({
        name: CHANNEL,
        maxMessageSize: '16KB',
        idleTimeout: '1s',
        destinations: [{ name: 'sink', url: `${standIn.url}${SINK}` }],
      }),
      // Lint error: a transform that does not exist.
      'broken.channel.yaml': testChannelYaml({ name: 'broken', destinations: [{ name: 'sink', url: `${standIn.url}${SINK}` }] }).replace(
        'test/fixtures/transforms/adt-to-test-event.ts',
        'test/fixtures/transforms/no-such-transform.ts',
      ),
      // Valid file, but its port is taken at start.
      'port-taken.channel.yaml': testChannelYaml({ name: 'port-taken', port: blockedPort, destinations: [{ name: 'sink', url: `${standIn.url}${SINK}` }] }),
    });
    osprey = await TestEngine.start({ channelsDir: dir });
    port = osprey.port(CHANNEL);
  });

  after(async function () {
    await osprey?.stop();
    await standIn?.close();
    await new Promise<void>((resolve) => (blocker ? blocker.close(() => resolve()) : resolve()));
    removeTempDirs();
  });

  describe('garbage bytes in a frame', function () {
    it('answers AE/AR with an ERR segment, stores the bytes as ERROR with the reason, and serves the next message on the same connection', async function () {
      const before = await errorIds();
      const garbage = Buffer.from([0x00, 0x01, 0xff, 0xfe, 0x41, 0x42, 0x0d, 0x7c, 0x5e, 0x80, 0x81, 0x0d]);
      const client = await RawMllpClient.connect(port);
      try {
        const ack = parseAck(await client.request(garbage));
        expect(ack.code, ack.text).to.be.oneOf(['AE', 'AR']);
        expect(ack.hl7.segmentIds(), ack.text).to.include('ERR');
        expect(ack.errorCode, ack.text).to.match(/^OSPREY_ERR_/);

        const added = [...(await errorIds())].filter((id) => !before.has(id));
        expect(added, 'one new ERROR message').to.have.lengthOf(1);
        const m = await osprey.message(added[0]!);
        expect(m.state).to.equal('ERROR');
        expect(m.error.code).to.equal(ack.errorCode);
        expect(m.error.detail).to.be.a('string').and.not.empty;
        expect(Buffer.from(m.rawBase64, 'base64').equals(garbage), 'the bytes are kept as received').to.equal(true);
        expect(m.deliveries).to.deep.equal([]);

        await goodMessageIsServed(client);
      } finally {
        client.close();
      }
    });
  });

  describe('a frame without MSH', function () {
    it('answers AE/AR naming the missing header, stores it as ERROR, and goes on', async function () {
      const before = await errorIds();
      const client = await RawMllpClient.connect(port);
      try {
        const ack = parseAck(await client.request('PID|1||NOHEADER^^^RVH^MR||DOE^JANE\rPV1|1|I'));
        expect(ack.code, ack.text).to.be.oneOf(['AE', 'AR']);
        expect(ack.errorCode, ack.text).to.equal('OSPREY_ERR_HL7_NO_MSH');
        const added = [...(await errorIds())].filter((id) => !before.has(id));
        expect(added).to.have.lengthOf(1);
        const m = await osprey.message(added[0]!);
        expect(m.error.code).to.equal('OSPREY_ERR_HL7_NO_MSH');
        await goodMessageIsServed(client);
      } finally {
        client.close();
      }
    });
  });

  describe('a truncated frame followed by a good frame', function () {
    it('drops the partial frame (no ACK, nothing stored) and acknowledges the good one', async function () {
      const total = await channelTotal();
      const partialId = nextId('PARTIAL');
      const goodId = nextId('AFTER-PARTIAL');
      const partial = Buffer.concat([Buffer.from([VT]), Buffer.from(adt({ controlId: partialId, patientId: 'P-PARTIAL' }).slice(0, 120), 'utf8')]);
      const client = await RawMllpClient.connect(port);
      try {
        await client.write(partial);
        const ack = parseAck(await client.request(adt({ controlId: goodId, patientId: 'P-PARTIAL' })));
        expect(ack.code, ack.text).to.equal('AA');
        expect(ack.ackedControlId).to.equal(goodId);
        expect(client.acks, 'one ACK only').to.have.lengthOf(1);
        const [m] = await osprey.byControlId(goodId, CHANNEL);
        await osprey.waitForState(m.id, 'SENT');
        expect(await osprey.byControlId(partialId), 'the partial frame is not stored').to.deep.equal([]);
        expect(await channelTotal()).to.equal(total + 1);
      } finally {
        client.close();
      }
    });
  });

  describe('an oversize frame', function () {
    it('answers AR with OSPREY_ERR_MLLP_FRAME_TOO_LARGE naming its control id, stores its head as ERROR, delivers nothing of it, and serves the next frame', async function () {
      const bigId = nextId('BIG');
      const big = `${adt({ controlId: bigId, patientId: 'P-BIG' })}\rZBG|${'x'.repeat(20 * 1024)}`;
      const requestsBefore = standIn.requests.length;
      const client = await RawMllpClient.connect(port);
      try {
        const ack = parseAck(await client.request(big));
        expect(ack.code, ack.text).to.equal('AR');
        expect(ack.errorCode).to.equal('OSPREY_ERR_MLLP_FRAME_TOO_LARGE');
        expect(ack.ackedControlId, 'MSA-2 salvaged from the head of the frame').to.equal(bigId);
        await goodMessageIsServed(client);
        const found = await osprey.byControlId(bigId);
        expect(found.map((m) => m.state), 'stored once, never processed').to.deep.equal(['ERROR']);
        expect(found[0]!.error?.code).to.equal('OSPREY_ERR_MLLP_FRAME_TOO_LARGE');
        expect(found[0]!.keys.patientId, 'searchable by patient from the head').to.equal('P-BIG');
        expect(standIn.requests.slice(requestsBefore).filter((r) => r.bodyText.includes(bigId))).to.deep.equal([]);
      } finally {
        client.close();
      }
    });
  });

  describe('a sender that stalls mid-frame', function () {
    it('is disconnected by the idle timeout with nothing stored, while another sender is served meanwhile', async function () {
      const stalledId = nextId('STALLED');
      const total = await channelTotal();
      const stalled = await RawMllpClient.connect(port);
      try {
        await stalled.write(Buffer.concat([Buffer.from([VT]), Buffer.from(adt({ controlId: stalledId, patientId: 'P-STALL' }).slice(0, 80), 'utf8')]));
        // Another sender is not held up by the stalled one.
        await goodMessageIsServed();
        expect(await stalled.waitForClose(10_000), 'the engine closes the stalled connection').to.equal(true);
        expect(stalled.acks, 'no ACK for a frame that never ended').to.deep.equal([]);
        expect(await osprey.byControlId(stalledId)).to.deep.equal([]);
        expect(await channelTotal()).to.equal(total + 1);
        await goodMessageIsServed();
      } finally {
        stalled.close();
      }
    });
  });

  describe('a message type the channel does not accept', function () {
    it('answers AR with ERR OSPREY_ERR_HL7_UNSUPPORTED_TYPE (HL7 200) and stores it as ERROR with that code', async function () {
      const controlId = nextId('A02');
      const ack = parseAck(await sendOne(port, adt({ controlId, patientId: 'P-A02', trigger: 'A02' })));
      expect(ack.code, ack.text).to.equal('AR');
      expect(ack.ackedControlId).to.equal(controlId);
      expect(ack.errorCode).to.equal('OSPREY_ERR_HL7_UNSUPPORTED_TYPE');
      expect(ack.hl7ErrorCondition).to.equal('200');
      const [summary, ...rest] = await osprey.byControlId(controlId, CHANNEL);
      expect(rest).to.deep.equal([]);
      const m = await osprey.message(summary.id);
      expect(m.state).to.equal('ERROR');
      expect(m.error.code).to.equal('OSPREY_ERR_HL7_UNSUPPORTED_TYPE');
      expect(m.keys.messageType).to.equal('ADT^A02');
      expect(m.deliveries).to.deep.equal([]);
      await goodMessageIsServed();
    });
  });

  describe('a message that fails the channel validation', function () {
    /** The ADT without the segments named (it still parses). */
    const without = (text: string, ...segments: string[]): string =>
      text
        .split('\r')
        .filter((l) => !segments.includes(l.slice(0, 3)))
        .join('\r');

    it('ADT^A01 without EVN and PV1: AE with ERR-2 naming EVN and ERR-3 100, stored as ERROR, nothing delivered; the corrected resend with the same MSH-10 is processed', async function () {
      const controlId = nextId('NO-EVN');
      const good = adt({ controlId, patientId: 'P-NOEVN' });
      const ack = parseAck(await sendOne(port, without(good, 'EVN', 'PV1')));
      expect(ack.code, ack.text).to.equal('AE');
      expect(ack.ackedControlId).to.equal(controlId);
      expect(ack.hl7.rawField('ERR', 2), ack.text).to.equal('EVN^1');
      expect(ack.hl7ErrorCondition).to.equal('100');
      expect(ack.errorCode).to.equal('OSPREY_ERR_PIPELINE_VALIDATION');
      expect(ack.hl7.get('ERR-8')).to.match(/EVN is missing.*PV1 is missing/);
      const [summary] = await osprey.byControlId(controlId, CHANNEL);
      const m = await osprey.message(summary.id);
      expect(m.state).to.equal('ERROR');
      expect(m.error.code).to.equal('OSPREY_ERR_PIPELINE_VALIDATION');
      expect(m.deliveries).to.deep.equal([]);

      // The sender fixes the message and sends it again under the same control id.
      const again = parseAck(await sendOne(port, good));
      expect(again.code, again.text).to.equal('AA');
      const found = await osprey.byControlId(controlId, CHANNEL);
      expect(found).to.have.lengthOf(2);
      const fixed = found.find((x: any) => x.id !== summary.id);
      await osprey.waitForState(fixed.id, 'SENT');
    });

    it('a line that is not a segment: AE with ERR-3 100, stored as ERROR', async function () {
      const controlId = nextId('NOT-SEG');
      const text = adt({ controlId, patientId: 'P-NOTSEG' }).replace('\rPV1|', '\rwrapped free text from a copy-paste\rPV1|');
      const ack = parseAck(await sendOne(port, text));
      expect(ack.code, ack.text).to.equal('AE');
      expect(ack.hl7ErrorCondition).to.equal('100');
      expect(ack.hl7.get('ERR-8')).to.match(/Segment 4 has an id/);
      expect(ack.text).to.not.include('wrapped');
      const [summary] = await osprey.byControlId(controlId, CHANNEL);
      expect((await osprey.message(summary.id)).state).to.equal('ERROR');
    });

    it('in enhanced mode (MSH-15 set) the commit ACK is CA: the message is stored', async function () {
      const controlId = nextId('ENH');
      const text = without(adt({ controlId, patientId: 'P-ENH' }), 'EVN').replace(/^(MSH(?:\|[^|\r]*){11})/, '$1|||AL|NE');
      expect(Hl7Message.parse(text).get('MSH-15')).to.equal('AL');
      const ack = parseAck(await sendOne(port, text));
      expect(ack.code, ack.text).to.equal('CA');
      expect(ack.ackedControlId).to.equal(controlId);
      const [summary] = await osprey.byControlId(controlId, CHANNEL);
      expect((await osprey.message(summary.id)).state).to.equal('ERROR');
    });
  });

  describe('MSH-2 written ^~\\\\& (escape character doubled)', function () {
    it('is accepted as ^~\\& and delivered; the raw bytes are stored as received', async function () {
      const controlId = nextId('DBL');
      const text = adt({ controlId, patientId: 'P-DBL' }).replace('MSH|^~\\&|', 'MSH|^~\\\\&|');
      const ack = parseAck(await sendOne(port, text));
      expect(ack.code, ack.text).to.equal('AA');
      expect(ack.hl7.rawField('MSH', 2)).to.equal('^~\\&');
      const [summary] = await osprey.byControlId(controlId, CHANNEL);
      await osprey.waitForState(summary.id, 'SENT');
      const m = await osprey.message(summary.id);
      expect(Buffer.from(m.rawBase64, 'base64').toString('utf8')).to.equal(text);
    });
  });

  describe('a duplicate (same sender and MSH-10)', function () {
    it('is acknowledged again and processed once: one message, one set of deliveries', async function () {
      const controlId = nextId('DUP');
      const patientId = 'P-DUP';
      const text = adt({ controlId, patientId });
      const first = parseAck(await sendOne(port, text));
      expect(first.code).to.equal('AA');
      const [original] = await osprey.byControlId(controlId, CHANNEL);
      await osprey.waitForState(original.id, 'SENT');

      // Resent on another connection, as a sender does after a lost ACK.
      const again = parseAck(await sendOne(port, text));
      expect(again.code, again.text).to.equal('AA');
      expect(again.ackedControlId).to.equal(controlId);
      // A later message of the same patient: per-key order means a second processing of the
      // duplicate would have been delivered before it.
      const laterId = nextId('DUP-LATER');
      expect(parseAck(await sendOne(port, adt({ controlId: laterId, patientId, trigger: 'A03' }))).code).to.equal('AA');
      const [later] = await osprey.byControlId(laterId, CHANNEL);
      await osprey.waitForState(later.id, 'SENT');

      const found = await osprey.byControlId(controlId, CHANNEL);
      expect(found.map((m) => m.id), 'stored once').to.deep.equal([original.id]);
      const m = await osprey.message(original.id);
      expect(m.events.filter((e: any) => e.event === 'DUPLICATE'), 'the resend is in the history').to.have.lengthOf(1);
      expect(m.deliveries).to.have.lengthOf(1);
      const key = m.deliveries[0].id;
      expect(standIn.requests.filter((r) => r.idempotencyKey === key), 'delivered once').to.have.lengthOf(1);
      expect(standIn.requests.filter((r) => (r.body as any)?.controlId === controlId)).to.have.lengthOf(1);
    });

    it('is not confused with the same MSH-10 from another sender', async function () {
      const controlId = nextId('SAME-ID');
      expect(parseAck(await sendOne(port, adt({ controlId, patientId: 'P-S1' }))).code).to.equal('AA');
      expect(parseAck(await sendOne(port, adt({ controlId, patientId: 'P-S2', sendingFacility: 'RVAC' }))).code).to.equal('AA');
      const found = await waitFor(async () => {
        const list = await osprey.byControlId(controlId, CHANNEL);
        return list.length === 2 ? list : undefined;
      }, { what: 'two messages with the same MSH-10 from two senders' });
      for (const m of found) await osprey.waitForState(m.id, 'SENT');
      expect(found.map((m: any) => m.keys.sender).sort()).to.deep.equal(['CARESUITE|RVAC', 'CARESUITE|RVH']);
    });
  });

  describe('broken channel files next to a good one', function () {
    it('runs the good channel and shows the broken ones FAILED with their code', async function () {
      const res = await osprey.get('/api/channels');
      expect(res.status).to.equal(200);
      const byName = new Map<string, any>(res.body.channels.map((c: any) => [c.name, c]));
      expect(byName.get(CHANNEL)?.status).to.equal('RUNNING');

      const broken = byName.get('broken');
      expect(broken, JSON.stringify(res.body.channels)).to.exist;
      expect(broken.status).to.equal('FAILED');
      expect(broken.error).to.contain('OSPREY_ERR_CHANNEL_TRANSFORM');
      expect(broken.error).to.contain('no-such-transform.ts');

      const taken = byName.get('port-taken');
      expect(taken, JSON.stringify(res.body.channels)).to.exist;
      expect(taken.status).to.equal('FAILED');
      expect(taken.error).to.match(/EADDRINUSE|in use/i);

      // Liveness is about the process: it serves, so /healthz stays 200 (with the same detail).
      const health = await osprey.get('/healthz');
      expect(health.status).to.equal(200);
      expect(health.body.ready).to.equal(false);
      // Readiness is about the work: a configured channel that does not run makes the instance unready.
      const ready = await osprey.get('/readyz');
      expect(ready.status, JSON.stringify(ready.body)).to.equal(503);
      expect(ready.body.status).to.equal('channels not running');
      expect(ready.body.notRunning).to.include.members(['broken', 'port-taken']).and.not.include(CHANNEL);
      const takenHealth = ready.body.channels.find((c: { name: string }) => c.name === 'port-taken');
      expect(takenHealth.status).to.equal('FAILED');
      expect(takenHealth.error).to.match(/EADDRINUSE|in use/i);
      await goodMessageIsServed();
    });
  });

  describe('wire-level variations a real sender produces', function () {
    it('accepts a frame split across many TCP writes', async function () {
      const controlId = nextId('SPLIT');
      const bytes = frame(adt({ controlId, patientId: 'P-SPLIT' }));
      const client = await RawMllpClient.connect(port);
      try {
        for (let i = 0; i < bytes.length; i += 7) {
          await client.write(bytes.subarray(i, i + 7));
          if (i % 70 === 0) await sleep(2); // separate segments on the wire
        }
        const [ack] = (await client.waitForAcks(1)).map(parseAck);
        expect(ack!.code, ack!.text).to.equal('AA');
        expect(ack!.ackedControlId).to.equal(controlId);
      } finally {
        client.close();
      }
    });

    it('ACKs both frames in order around bytes between them, and stores those bytes once as ERROR (unanswered)', async function () {
      const ids = [nextId('BETWEEN'), nextId('BETWEEN')];
      const before = await errorIds();
      const client = await RawMllpClient.connect(port);
      try {
        const junk = Buffer.from('\r\n  junk \x00 ');
        await client.write(Buffer.concat([frame(adt({ controlId: ids[0]!, patientId: 'P-BETWEEN' })), junk, frame(adt({ controlId: ids[1]!, patientId: 'P-BETWEEN' }))]));
        const acks = (await client.waitForAcks(2)).map(parseAck);
        expect(acks.map((a) => [a.code, a.ackedControlId])).to.deep.equal([
          ['AA', ids[0]],
          ['AA', ids[1]],
        ]);
        // ACKs go out in arrival order, so the junk's record is written before the second ACK.
        const added = [...(await errorIds())].filter((id) => !before.has(id));
        expect(added).to.have.lengthOf(1);
        const m = await osprey.message(added[0]!);
        expect(m.error.code).to.equal('OSPREY_ERR_MLLP_GARBAGE');
        expect(Buffer.from(m.rawBase64, 'base64').equals(junk)).to.equal(true);
      } finally {
        client.close();
      }
    });

    it('accepts LF segment separators and a frame ending in FS without CR', async function () {
      const controlId = nextId('LF');
      const text = adt({ controlId, patientId: 'P-LF' }).replaceAll('\r', '\n');
      const client = await RawMllpClient.connect(port);
      try {
        await client.write(Buffer.concat([Buffer.from([VT]), Buffer.from(text, 'utf8'), Buffer.from([FS])]));
        // The next frame's VT completes the previous one when its CR never came.
        const nextIdValue = nextId('AFTER-LF');
        await client.write(Buffer.concat([frame(adt({ controlId: nextIdValue, patientId: 'P-LF' }))]));
        const acks = (await client.waitForAcks(2)).map(parseAck);
        expect(acks.map((a) => [a.code, a.ackedControlId])).to.deep.equal([
          ['AA', controlId],
          ['AA', nextIdValue],
        ]);
        const [m] = await osprey.byControlId(controlId, CHANNEL);
        const done = await osprey.waitForState(m.id, 'SENT');
        expect(done.keys.patientId).to.equal('P-LF');
      } finally {
        client.close();
      }
    });

    it('decodes a message by its MSH-18 (ISO 8859-1) and keeps the bytes as sent', async function () {
      const controlId = nextId('LATIN1');
      const text = `${adt({ controlId, patientId: 'P-LATIN1' })}`.replace('TEST^PATIENT', 'ØDEGÅRD^ZOË').replace('|P|2.5.1', '|P|2.5.1||||||8859/1');
      const bytes = Buffer.from(text, 'latin1');
      const ack = parseAck(await sendOne(port, bytes));
      expect(ack.code, ack.text).to.equal('AA');
      const [summary] = await osprey.byControlId(controlId, CHANNEL);
      const m = await osprey.message(summary.id);
      expect(m.encoding.toLowerCase()).to.match(/8859-?1|latin1/);
      expect(Buffer.from(m.rawBase64, 'base64').equals(bytes), 'raw bytes as received').to.equal(true);
      expect(m.raw).to.contain('ØDEGÅRD^ZOË');
    });
  });

  describe('bytes that do not match the character set', function () {
    it('answers AE with OSPREY_ERR_HL7_CHARSET naming the control id, and stores the bytes as ERROR', async function () {
      const controlId = nextId('CHARSET');
      // ISO 8859-1 bytes, but no MSH-18: the channel's UTF-8 applies and they are not valid UTF-8.
      const bytes = Buffer.from(adt({ controlId, patientId: 'P-CHARSET' }).replace('TEST^PATIENT', 'ØDEGÅRD^ZOË'), 'latin1');
      const ack = parseAck(await sendOne(port, bytes));
      expect(ack.code, ack.text).to.equal('AE');
      expect(ack.errorCode).to.equal('OSPREY_ERR_HL7_CHARSET');
      expect(ack.ackedControlId).to.equal(controlId);
      const [summary, ...rest] = await osprey.byControlId(controlId, CHANNEL);
      expect(rest).to.deep.equal([]);
      const m = await osprey.message(summary.id);
      expect(m.state).to.equal('ERROR');
      expect(m.error.code).to.equal('OSPREY_ERR_HL7_CHARSET');
      expect(Buffer.from(m.rawBase64, 'base64').equals(bytes)).to.equal(true);
      // Resent correctly (same sender and MSH-10): not a duplicate of the rejected one.
      const fixed = Buffer.from(adt({ controlId, patientId: 'P-CHARSET' }).replace('TEST^PATIENT', 'ØDEGÅRD^ZOË'), 'utf8');
      expect(parseAck(await sendOne(port, fixed)).code).to.equal('AA');
      const both = await osprey.byControlId(controlId, CHANNEL);
      expect(both).to.have.lengthOf(2);
      const good = both.find((x: any) => x.id !== summary.id);
      await osprey.waitForState(good.id, 'SENT');
    });
  });

  describe('after all of the above', function () {
    it('still serves pipelined good messages on one connection, each ACKed in order', async function () {
      const ids = [nextId('PIPE'), nextId('PIPE'), nextId('PIPE')];
      const client = await RawMllpClient.connect(port);
      try {
        await client.write(Buffer.concat(ids.map((id) => frame(adt({ controlId: id, patientId: `P-${id}` })))));
        const acks = (await client.waitForAcks(3)).map(parseAck);
        expect(acks.map((a) => a.code)).to.deep.equal(['AA', 'AA', 'AA']);
        expect(acks.map((a) => a.ackedControlId)).to.deep.equal(ids);
      } finally {
        client.close();
      }
    });
  });
});
