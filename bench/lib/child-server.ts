// SPDX-License-Identifier: Apache-2.0
/**
 * The lifecycle every bench server child shares (the HTTP sink, the bare MLLP server): listen on a
 * free loopback port and report it to the driver (`{ type: 'ready', port }`), stop on the driver's
 * `{ type: 'stop' }` (after `beforeStop`), and never outlive the driver if it dies.
 */
import type { Server } from 'node:net';

export function serveAsBenchChild(server: Server, beforeStop: () => void = () => undefined): void {
  process.on('message', (msg: { type?: string }) => {
    if (msg?.type !== 'stop') return;
    beforeStop();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  });
  process.on('disconnect', () => process.exit(0));
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    process.send?.({ type: 'ready', port: typeof address === 'object' && address !== null ? address.port : 0 });
  });
}
