// SPDX-License-Identifier: Apache-2.0
/**
 * MLLP ACK round-trips on one connection through the real listener and client (127.0.0.1), with a
 * no-op engine handler, the workload of docs/design/0010-hl7-libraries.md ("ACK round-trips/s, 20,000
 * messages, 1 connection"): once one message at a time, once with a window of 32 in flight.
 *
 *   node --import tsx bench/mllp-roundtrip.ts
 */
import { createMllpListener } from '../adapters/inbound/mllp-listener/index.ts';
import { MllpClient } from '../adapters/outbound/mllp-sender/mllp-client.ts';

const N = 20_000;
const text = (i: number): string =>
  `MSH|^~\\&|SEND|FAC|RECV|FAC|20260101120000||ADT^A04^ADT_A01|B${i}|P|2.5.1\rEVN|A04\rPID|1||MRN${i}^^^H||DOE^JANE\rPV1|1|O`;

async function run(window: number): Promise<number> {
  const listener = createMllpListener({ host: '127.0.0.1', port: 0 });
  await listener.start(async () => ({ ackCode: 'AA' }));
  const client = new MllpClient({ host: '127.0.0.1', port: listener.address()!.port });
  await client.connect();
  const start = performance.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < N) await client.send(text(next++));
  };
  await Promise.all(Array.from({ length: window }, worker));
  const rate = N / ((performance.now() - start) / 1000);
  await client.close();
  await listener.stop();
  return Math.round(rate);
}

const results: Record<string, number> = {};
for (const window of [1, 32]) {
  await run(window); // warm-up
  const runs = [await run(window), await run(window), await run(window)].sort((a, b) => a - b);
  results[`window ${window}`] = runs[1] as number;
}
console.log(JSON.stringify({ node: process.version, messages: N, ackRoundTripsPerSec: results }));
