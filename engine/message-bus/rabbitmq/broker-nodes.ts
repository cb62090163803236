// SPDX-License-Identifier: Apache-2.0
/**
 * The broker's nodes: the `url` setting read as one URL or one per cluster node, the heartbeat
 * asked for, the address logs name, and which node to connect to next.
 */

/**
 * The broker URLs of a `url` setting: one, or one per cluster node (a list, or comma-separated as an
 * environment variable gives it). A comma inside a URL (a password) must be percent-encoded, as in
 * any URL. Throws a RangeError on an empty list or a URL that is not amqp(s)://.
 */
export function brokerUrls(url: string | readonly string[]): string[] {
  const urls = (typeof url === 'string' ? url.split(',') : [...url]).map((u) => u.trim()).filter((u) => u !== '');
  if (urls.length === 0) throw new RangeError('url must name at least one broker');
  for (const u of urls) if (!/^amqps?:\/\//.test(u)) throw new RangeError(`not an amqp:// or amqps:// URL: ${brokerAddress(u)}`);
  return urls;
}

/**
 * AMQP heartbeat asked for when the URL does not set one (`?heartbeat=N`, seconds). A node whose
 * host dies without closing its connections (a crash, a network cut) is noticed after two missed
 * heartbeats: ~20 s, against two minutes with the server's default of 60 s, during which this
 * instance would neither consume nor publish (its work waits in the store) and `/readyz` would
 * still say ready. RabbitMQ advises 5–20 s.
 */
const DEFAULT_HEARTBEAT_S = 10;

/** `url` with `heartbeat=DEFAULT_HEARTBEAT_S` unless it sets its own. */
export function withDefaultHeartbeat(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.searchParams.has('heartbeat')) return url;
    parsed.searchParams.set('heartbeat', String(DEFAULT_HEARTBEAT_S));
    return parsed.toString();
  } catch {
    return url; // amqplib reports the unparsable URL
  }
}

/** `host:port` of a broker URL, for logs: never the credentials or the rest. */
export function brokerAddress(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || (parsed.protocol === 'amqps:' ? 5671 : 5672)}`;
  } catch {
    return '(unparsable URL)';
  }
}

/** The nodes of a `url` setting, one of which is the next to connect to. */
export class BrokerNodes {
  private readonly urls: string[];
  private index = 0;

  /** Throws a RangeError as {@link brokerUrls} does. */
  constructor(url: string | readonly string[]) {
    this.urls = brokerUrls(url);
  }

  /** The URL to connect to next. */
  get current(): string {
    return this.urls[this.index]!;
  }

  /**
   * Moves on to the next node of a cluster (nothing changes with one URL), returning the addresses
   * of the one left and the next, for logs. After a failure there, the next is the likeliest to be
   * up; a node coming back takes its turn again once the others have had theirs.
   */
  next(): { node: string; next: string } {
    const node = brokerAddress(this.urls[this.index]!);
    this.index = (this.index + 1) % this.urls.length;
    return { node, next: brokerAddress(this.urls[this.index]!) };
  }
}
