// SPDX-License-Identifier: Apache-2.0
/**
 * A TCP relay on 127.0.0.1 to a server (PostgreSQL, a RabbitMQ node) that a test can cut, as a
 * restart, a failover or a lost node does to the clients connected through it, or freeze, as a
 * host that dies without closing its connections does.
 */
import net from 'node:net';

export interface TcpRelay {
  /** The relay's own port on 127.0.0.1. */
  readonly port: number;
  /** `url` with its host and port replaced by the relay's. */
  via(url: string): string;
  /** Drops every relayed connection and stops listening: new connections are refused. */
  cut(): Promise<void>;
  /**
   * Forwards nothing more, either way, and closes nothing: connections, old and new, stay open and
   * silent (no FIN, no RST), as with a host that crashed or a network cut.
   */
  freeze(): void;
}

export async function startTcpRelay(target: { host: string; port: number }): Promise<TcpRelay> {
  const sockets = new Set<net.Socket>();
  let frozen = false;
  const silence = (s: net.Socket): void => {
    s.unpipe();
    s.pause();
  };
  const server = net.createServer((client) => {
    sockets.add(client);
    client.on('error', () => client.destroy());
    client.on('close', () => sockets.delete(client));
    if (frozen) return silence(client);
    const upstream = net.connect(target.port, target.host);
    sockets.add(upstream);
    upstream.on('error', () => upstream.destroy());
    upstream.on('close', () => sockets.delete(upstream));
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    via(url: string): string {
      const relayed = new URL(url);
      relayed.hostname = '127.0.0.1';
      relayed.port = String(port);
      return relayed.toString();
    },
    freeze(): void {
      frozen = true;
      for (const s of sockets) silence(s);
    },
    async cut(): Promise<void> {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
