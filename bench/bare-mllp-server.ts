// SPDX-License-Identifier: Apache-2.0
/**
 * The transport limit: an MLLP server that does nothing but frame, parse the header and ACK at once,
 * with the engine's own framer and ACK builder, in a child process of bench/run.ts like the engine.
 * The same load against it shows what the sockets, the framing and the load generator alone allow
 * on this machine, so the engine's figures can be read as a fraction of that.
 *
 * IPC: → `{ type: 'ready', port }`; ← `{ type: 'stop' }`.
 */
import net from 'node:net';
import { serveAsBenchChild } from './lib/child-server.ts';
import { buildAck, decodeHl7, encodeHl7, Hl7Message, MllpFramer, mllpFrame } from '../engine/message-formats/hl7v2/index.ts';

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  const framer = new MllpFramer();
  socket.on('error', () => undefined);
  socket.on('data', (chunk: Buffer) => {
    for (const ev of framer.push(chunk)) {
      if (ev.type !== 'frame') continue;
      const { text, encoding } = decodeHl7(ev.payload, 'utf-8');
      let hl7: Hl7Message | undefined;
      try {
        hl7 = Hl7Message.parse(text);
      } catch {
        hl7 = undefined;
      }
      const ack = buildAck(hl7, { code: hl7 ? 'AA' : 'AE', ...(hl7 ? {} : { rawText: text, error: { code: 'OSPREY_ERR_HL7_NO_MSH', detail: 'unreadable' } }) });
      socket.write(mllpFrame(encodeHl7(ack, encoding)));
    }
  });
});

serveAsBenchChild(server);
