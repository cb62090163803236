// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import net from 'node:net';
import { MllpClient } from '../../../../adapters/outbound/mllp-sender/mllp-client.ts';
import { Hl7Message, MllpFramer, mllpFrame } from '../../../../engine/message-formats/hl7v2/index.ts';
import type { OspreyError } from '../../../../engine/errors/error-codes.ts';
import { hl7Of, msg, startListener, type Running } from '../mllp-listener/mllp-test-kit.ts';

describe('mllp client', () => {
  let run: Running | undefined;
  afterEach(async () => {
    await run?.stop();
    run = undefined;
  });

  it('sends many messages outstanding at once on one connection and matches ACKs in order', async () => {
    run = await startListener({}, async (m) => {
      await new Promise((r) => setTimeout(r, Number(hl7Of(m)?.controlId?.slice(2)) % 3));
      return { ackCode: 'AA' };
    });
    const client = new MllpClient({ host: '127.0.0.1', port: run.port });
    await client.connect();
    const ids = Array.from({ length: 200 }, (_, i) => `CL${i}`);
    const acks = await Promise.all(ids.map((id) => client.send(msg(id))));
    expect(acks.map((a) => Hl7Message.parse(a).get('MSA-2'))).to.deep.equal(ids);
    expect(client.outstanding).to.equal(0);
    await client.close();
  });

  it('connects lazily on the first send', async () => {
    run = await startListener();
    const client = new MllpClient({ host: '127.0.0.1', port: run.port });
    expect(Hl7Message.parse(await client.send(msg('LAZY-1'))).get('MSA-1')).to.equal('AA');
    await client.close();
  });

  it('a refused connection rejects with OSPREY_ERR_DELIVERY_NETWORK', async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const client = new MllpClient({ host: '127.0.0.1', port });
    let err: unknown;
    await client.connect().catch((e: unknown) => (err = e));
    expect((err as OspreyError).code).to.equal('OSPREY_ERR_DELIVERY_NETWORK');
  });

  it('a missing ACK rejects every outstanding send with OSPREY_ERR_DELIVERY_TIMEOUT', async () => {
    // Reads and drops everything (a paused socket would never see the client's FIN).
    const silent = net.createServer((s) => s.on('error', () => {}).resume());
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const client = new MllpClient({ host: '127.0.0.1', port: (silent.address() as net.AddressInfo).port, timeoutMs: 100 });
    const results = await Promise.allSettled([client.send(msg('T1')), client.send(msg('T2'))]);
    expect(results.map((r) => (r.status === 'rejected' ? (r.reason as OspreyError).code : 'ok'))).to.deep.equal(['OSPREY_ERR_DELIVERY_TIMEOUT', 'OSPREY_ERR_DELIVERY_TIMEOUT']);
    await client.close();
    await new Promise<void>((r) => silent.close(() => r()));
  });

  it('a peer that closes mid-way rejects outstanding sends with OSPREY_ERR_DELIVERY_NETWORK', async () => {
    const rude = net.createServer((s) => {
      s.on('error', () => {});
      const f = new MllpFramer();
      let answered = false;
      s.on('data', (c: Buffer) => {
        for (const ev of f.push(c)) {
          if (ev.type !== 'frame' || answered) continue;
          answered = true; // answers the first message, then hangs up
          s.write(mllpFrame(Buffer.from('MSH|^~\\&|R|R|S|S|1||ACK|A1|P|2.5\rMSA|AA|X')), () => s.destroy());
        }
      });
    });
    await new Promise<void>((r) => rude.listen(0, '127.0.0.1', () => r()));
    const client = new MllpClient({ host: '127.0.0.1', port: (rude.address() as net.AddressInfo).port });
    await client.connect();
    const results = await Promise.allSettled([client.send(msg('R1')), client.send(msg('R2'))]);
    expect(results[0]?.status).to.equal('fulfilled');
    expect(results[1]?.status === 'rejected' && (results[1].reason as OspreyError).code).to.equal('OSPREY_ERR_DELIVERY_NETWORK');
    await client.close();
    await new Promise<void>((r) => rude.close(() => r()));
  });
});
