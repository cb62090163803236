// SPDX-License-Identifier: Apache-2.0
/**
 * The benchmark's ERP/RCM stand-in, run as a child process of bench/run.ts (forked, with IPC) so its
 * work never competes with the load generator's event loop. A plain node:http server on 127.0.0.1
 * that answers 200 at once and records, per request, when it arrived and which message it was for.
 *
 * The message is found from the body: every payload of the sample channel carries `sourceEventId`
 * (the ADT transform's deterministic event id of the source message); a batch body is an array of
 * `{ idempotencyKey, payload }` (engine/delivery/batcher.ts) or of bare payloads. The destination is
 * the first path segment (`/rcm/…`, `/erp/…`, from RCM_URL / ERP_URL). Nothing of the body is kept
 * or printed beyond that id.
 *
 * Protocol (IPC): → `{ type: 'ready', port }` once listening; → `{ type: 'arrivals', items }` every
 * 20 ms while there are new ones, items `[sourceEventId, destination, atMs]` with `atMs` from
 * process.hrtime (CLOCK_MONOTONIC, the same clock in every process of the machine, so the driver can
 * subtract its own send times); ← `{ type: 'stop' }` closes the server and exits.
 */
import http from 'node:http';
import { serveAsBenchChild } from './lib/child-server.ts';

type Arrival = [string, string, number];

const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

let pending: Arrival[] = [];
let requests = 0;
let unparsable = 0;

function idsOf(body: unknown): string[] {
  if (Array.isArray(body)) return body.flatMap((item) => idsOf(typeof item === 'object' && item !== null && 'payload' in item ? (item as { payload: unknown }).payload : item));
  if (typeof body === 'object' && body !== null) {
    const id = (body as { sourceEventId?: unknown }).sourceEventId;
    if (typeof id === 'string') return [id];
  }
  return [];
}

const server = http.createServer((req, res) => {
  const at = nowMs();
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    requests++;
    // Answer first: the receiver's own processing is not what is measured.
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' });
    res.end('{}');
    const destination = (req.url ?? '/').split('/')[1] ?? '';
    let ids: string[] = [];
    try {
      ids = idsOf(JSON.parse(Buffer.concat(chunks).toString('utf8')));
    } catch {
      ids = [];
    }
    if (ids.length === 0) unparsable++;
    for (const id of ids) pending.push([id, destination, at]);
  });
});
server.keepAliveTimeout = 60_000;

const timer = setInterval(() => {
  if (pending.length === 0) return;
  const items = pending;
  pending = [];
  process.send?.({ type: 'arrivals', items, requests, unparsable });
}, 20);

serveAsBenchChild(server, () => {
  clearInterval(timer);
  if (pending.length > 0) process.send?.({ type: 'arrivals', items: pending, requests, unparsable });
  server.closeAllConnections();
});
