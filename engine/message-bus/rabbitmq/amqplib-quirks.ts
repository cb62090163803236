// SPDX-License-Identifier: Apache-2.0
/**
 * Everything this bus relies on of amqplib beyond its typed API, in one place: its socket (not
 * part of its API: every use checks what it finds), a `close()` that may never settle, a nack
 * recognised by its error's text, and the synchronous throws of a closed channel. An amqplib
 * upgrade is checked here first.
 */
import { connect, type ChannelModel } from 'amqplib';
import { withDefaultHeartbeat } from './broker-nodes.ts';

/**
 * Longest wait for a broker's TCP connection and AMQP handshake: a node whose host is down answers
 * nothing (no refusal), and without a bound the next node would be tried only after the OS gives up
 * (minutes).
 */
const CONNECT_TIMEOUT_MS = 10_000;

/** Longest wait for a connection's orderly close before its socket is destroyed. */
const CLOSE_TIMEOUT_MS = 5_000;

/**
 * Opens a connection to one node: the default heartbeat unless the URL sets one, a bounded
 * handshake, Nagle's algorithm off and the frames of one event-loop turn written together.
 * `name` shows in the broker's connection list.
 */
export async function openConnection(url: string, name: string): Promise<ChannelModel> {
  const connection = await connect(withDefaultHeartbeat(url), {
    timeout: CONNECT_TIMEOUT_MS,
    // amqplib leaves Nagle's algorithm on: every publish confirm and ack then waits for the
    // delayed-ACK timer (measured: ACK p50 50 ms → 22 ms, 155 → 333 msgs/s end to end).
    noDelay: true,
    clientProperties: { connection_name: name },
  });
  coalesceSocketWrites(connection);
  return connection;
}

/**
 * Closes a connection; never hangs. amqplib's `close()` never settles when the socket died just
 * before it (measured: a relay cut, then `close()`: still pending 5 s later, after the connection's
 * 'close' event), and a peer that went silent never answers it: so it also ends at that event, or
 * after CLOSE_TIMEOUT_MS by destroying the socket. Without this, `stop()` during a broker outage
 * and the connect loop after a half-opened connection hung for good.
 */
export function closeConnection(connection: ChannelModel): Promise<void> {
  const socket = socketOf(connection);
  if (socket?.destroyed) return Promise.resolve(); // gone already, its 'close' event too
  return new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      connection.removeListener('close', done);
      resolve();
    };
    const timer = setTimeout(() => {
      socket?.destroy?.();
      done();
    }, CLOSE_TIMEOUT_MS);
    connection.once('close', done);
    connection.close().then(done, done);
  });
}

/** True for the error amqplib fails a confirm with when the broker nacked the publish. */
export function isNack(err: unknown): boolean {
  return err instanceof Error && err.message === 'message nacked';
}

/** amqplib throws synchronously on a closed channel; an ack or nack there is moot (the broker redelivers). */
export function safely(action: () => unknown): void {
  try {
    action();
  } catch {
    // channel closed: nothing to do
  }
}

/** What this module uses of the socket under an amqplib connection. */
type AmqpSocket = { write?: unknown; cork?: () => void; uncork?: () => void; destroyed?: boolean; destroy?: () => void };

/** amqplib's socket under a connection (not part of its API: every use checks what it finds). */
function socketOf(connection: ChannelModel): AmqpSocket | undefined {
  return (connection as unknown as { connection?: { stream?: AmqpSocket } }).connection?.stream;
}

/**
 * Makes the frames amqplib writes in one turn of the event loop leave in one socket write.
 * amqplib's multiplexer writes each channel's pending frames with its own `socket.write`: with
 * TCP_NODELAY, one system call and one packet each (a publish on the confirm channel, an ack on
 * each partition's channel …). On loopback the kernel also runs the receiving side of TCP inside
 * each of those calls; they were ~7% of the engine's busy time in production mode. Corked until
 * the end of the current turn, they go as one `writev`. amqplib has no public handle on its socket
 * (`connection.connection.stream`); without one this does nothing and every frame is written as before.
 */
function coalesceSocketWrites(connection: ChannelModel): void {
  const socket = socketOf(connection);
  if (!socket || typeof socket.write !== 'function' || typeof socket.cork !== 'function' || typeof socket.uncork !== 'function') return;
  const write = socket.write as (...args: unknown[]) => boolean;
  const cork = socket.cork.bind(socket);
  const uncork = socket.uncork.bind(socket);
  let corked = false;
  socket.write = function coalescedWrite(this: unknown, ...args: unknown[]): boolean {
    if (!corked) {
      corked = true;
      cork();
      process.nextTick(() => {
        corked = false;
        uncork();
      });
    }
    return write.apply(this, args);
  };
}
