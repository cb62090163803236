// SPDX-License-Identifier: Apache-2.0
/**
 * The real RabbitMQ and PostgreSQL for production-mode tests (test/production/): finding the
 * machine's, naming one test run's share of them (a bus prefix and a database schema nobody else
 * uses), removing that share afterwards, and the broker restart (`rabbitmqctl stop_app` /
 * `start_app`) of a node the test started itself (test/helpers/own-services.ts). Nothing here
 * stops, starts or reconfigures the machine's services; `rabbitmqctl` against them only lists.
 *
 * A test that needs a service that is absent is skipped with the reason printed, unless
 * OSPREY_REQUIRE_SERVICES=1 (CI), which makes it a failure. Every wait here is bounded.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { connect, type ChannelModel } from 'amqplib';
import pg from 'pg';
import { stayDown, waitFor } from './wait-for.ts';

const exec = promisify(execFile);

export const RABBITMQ_URL = process.env.OSPREY_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const DATABASE_CANDIDATES = process.env.OSPREY_TEST_POSTGRES_URL
  ? [process.env.OSPREY_TEST_POSTGRES_URL]
  : ['postgres://postgres@127.0.0.1:5432/test', 'postgres://postgres@127.0.0.1:5432/postgres'];

/** CI sets OSPREY_REQUIRE_SERVICES=1: an absent service is then a failure, not a skip. */
export const SERVICES_REQUIRED = process.env.OSPREY_REQUIRE_SERVICES === '1';

/** A URL with its password hidden, for messages. */
export const redact = (url: string): string => url.replace(/\/\/[^@/]*@/, '//');

export interface Services {
  /** One broker URL, or one per node of a cluster, comma-separated (as the engine takes them). */
  rabbitmqUrl: string;
  databaseUrl: string;
  /** rabbitmqctl against this broker; absent: the machine's own ({@link rabbitmqctl}, for listing only). */
  rabbitmqctl?: RabbitMqCtl;
}

/** Runs rabbitmqctl with `args` against one broker, bounded. */
export type RabbitMqCtl = (args: string[], timeoutMs?: number) => Promise<string>;

/**
 * Finds the machine's RabbitMQ and PostgreSQL (and, with `rabbitmqctl: true`, a working
 * `rabbitmqctl`, which the tests that list the broker's queues and consumers need). Resolves with
 * the URLs, or with every reason something is missing.
 */
export async function findServices(options: { rabbitmqctl?: boolean } = {}): Promise<Services | { reason: string }> {
  const reasons: string[] = [];
  let databaseUrl: string | undefined;
  const pgReasons: string[] = [];
  for (const url of DATABASE_CANDIDATES) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      databaseUrl = url;
      break;
    } catch (err) {
      pgReasons.push(`${redact(url)}: ${(err as Error).message}`);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  if (!databaseUrl) reasons.push(`PostgreSQL unreachable (${pgReasons.join('; ')})`);
  try {
    const connection = await connect(RABBITMQ_URL, { timeout: 3000 });
    connection.on('error', () => undefined);
    await connection.close().catch(() => undefined);
  } catch (err) {
    reasons.push(`RabbitMQ unreachable at ${redact(RABBITMQ_URL)}: ${(err as Error).message}`);
  }
  if (options.rabbitmqctl) {
    try {
      await rabbitmqctl(['list_queues', 'name', '-q'], 30_000);
    } catch (err) {
      reasons.push(`rabbitmqctl unavailable (${(err as Error).message.split('\n')[0]})`);
    }
  }
  return reasons.length > 0 || !databaseUrl ? { reason: reasons.join('; ') } : { rabbitmqUrl: RABBITMQ_URL, databaseUrl };
}

/** In a mocha `before`: skip (reason printed) or, with OSPREY_REQUIRE_SERVICES=1, fail. */
export function skipOrFail(context: Mocha.Context, reason: string): never {
  if (SERVICES_REQUIRED) throw new Error(`${reason} (OSPREY_REQUIRE_SERVICES=1: required services must be present)`);
  console.log(`    skipped: ${reason}`);
  context.skip();
}

/** One test run's names: a bus prefix and a database schema that no other run uses. */
export function uniqueNames(label: string): { prefix: string; schema: string } {
  const tag = `${Date.now().toString(36)}${randomUUID().slice(0, 6)}`;
  const safe = label.toLowerCase().replace(/[^a-z0-9]/g, '');
  return { prefix: `osprey-test-${safe}-${tag}`, schema: `osprey_test_${safe}_${tag}`.replace(/-/g, '_') };
}

/** `rabbitmqctl …` (as this user), bounded. */
export async function rabbitmqctl(args: string[], timeoutMs = 60_000): Promise<string> {
  const { stdout } = await exec('rabbitmqctl', args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

/** Resolves once the broker accepts an AMQP connection (bounded). */
export async function waitForRabbitMq(url = RABBITMQ_URL, timeoutMs = 90_000): Promise<void> {
  await waitFor(
    async () => {
      const connection = await connect(url, { timeout: 2000 });
      connection.on('error', () => undefined);
      await connection.close().catch(() => undefined);
      return true;
    },
    { timeoutMs, intervalMs: 250, what: 'RabbitMQ to accept connections' },
  );
}

/**
 * A broker restart as an operator does it, on a node the test started itself (never the machine's):
 * `rabbitmqctl stop_app`, `whileDown` (e.g. check that the engines report not-ready), the rest of
 * `downMs`, then `start_app` and wait for AMQP. If anything fails after the stop, the app is
 * started again before the error is passed on.
 * @returns when the broker went down and came back (epoch ms).
 */
export async function restartRabbitMq(
  node: { readonly url: string; readonly ctl: RabbitMqCtl },
  downMs: number,
  whileDown?: () => Promise<void>,
): Promise<{ stoppedAt: number; startedAt: number; upAt: number }> {
  await node.ctl(['stop_app'], 120_000);
  const stoppedAt = Date.now();
  const failure = await stayDown(stoppedAt, downMs, whileDown);
  const startedAt = Date.now();
  await node.ctl(['start_app'], 180_000);
  await waitForRabbitMq(node.url);
  if (failure) throw failure;
  return { stoppedAt, startedAt, upAt: Date.now() };
}

/** Queues whose name starts with `<prefix>.`, from `rabbitmqctl list_queues` (the broker's own list). */
export async function queuesOf(prefix: string, ctl: RabbitMqCtl = rabbitmqctl): Promise<string[]> {
  const out = await ctl(['list_queues', 'name', '-q'], 60_000);
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter((name) => name.startsWith(`${prefix}.`));
}

/** Exchanges whose name starts with `<prefix>.`. */
export async function exchangesOf(prefix: string, ctl: RabbitMqCtl = rabbitmqctl): Promise<string[]> {
  const out = await ctl(['list_exchanges', 'name', '-q'], 60_000);
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter((name) => name.startsWith(`${prefix}.`));
}

/**
 * Consumers registered on each queue of `prefix`, from `rabbitmqctl list_queues name consumers`
 * (the broker's count includes waiting single-active consumers; AMQP's queue.declare-ok counts
 * only the active one).
 */
export async function consumerCounts(prefix: string, ctl: RabbitMqCtl = rabbitmqctl): Promise<Map<string, number>> {
  const out = await ctl(['list_queues', 'name', 'consumers', '-q'], 60_000);
  const counts = new Map<string, number>();
  for (const line of out.split('\n')) {
    const [name, n] = line.trim().split('\t');
    if (name?.startsWith(`${prefix}.`) && n !== undefined) counts.set(name, Number(n));
  }
  return counts;
}

/**
 * Which connection is the ACTIVE single-active consumer of each queue of `prefix`: queue → the
 * connection's name (`osprey <prefix> <instance id>`), from rabbitmqctl.
 */
export async function activeConsumers(prefix: string, ctl: RabbitMqCtl = rabbitmqctl): Promise<Map<string, string>> {
  const [consumers, channels, connections] = await Promise.all([
    ctl(['list_consumers', 'queue_name', 'channel_pid', 'active', '-q'], 60_000),
    ctl(['list_channels', 'pid', 'connection', '-q'], 60_000),
    ctl(['list_connections', 'pid', 'client_properties', '-q'], 60_000),
  ]);
  const connectionOfChannel = new Map(channels.split('\n').map((l) => l.trim().split('\t') as [string, string]));
  const nameOfConnection = new Map<string, string>();
  for (const line of connections.split('\n')) {
    const pid = line.trim().split('\t')[0] ?? '';
    const name = /connection_name","([^"]*)"/.exec(line)?.[1];
    if (name) nameOfConnection.set(pid, name);
  }
  const active = new Map<string, string>();
  for (const line of consumers.split('\n')) {
    const [queue, channel, isActive] = line.trim().split('\t');
    if (!queue?.startsWith(`${prefix}.`) || isActive !== 'true' || !channel) continue;
    const connection = connectionOfChannel.get(channel) ?? '';
    active.set(queue, nameOfConnection.get(connection) ?? connection);
  }
  return active;
}

/**
 * Deletes every queue and exchange named `<prefix>.…` (found with rabbitmqctl), through the first
 * node of `url` that answers. @returns how many.
 */
export async function deleteBusPrefix(url: string, prefix: string, ctl: RabbitMqCtl = rabbitmqctl): Promise<{ queues: number; exchanges: number }> {
  const queues = await queuesOf(prefix, ctl);
  const exchanges = await exchangesOf(prefix, ctl);
  let connection: ChannelModel | undefined;
  try {
    for (const node of url.split(',')) {
      connection = await connect(node.trim(), { timeout: 5000 }).catch(() => undefined);
      if (connection) break;
    }
    if (!connection) throw new Error(`no node of the broker answers (${redact(url)})`);
    connection.on('error', () => undefined);
    for (const name of queues) {
      const channel = await connection.createChannel();
      channel.on('error', () => undefined);
      await channel.deleteQueue(name).catch(() => undefined);
      await channel.close().catch(() => undefined);
    }
    for (const name of exchanges) {
      const channel = await connection.createChannel();
      channel.on('error', () => undefined);
      await channel.deleteExchange(name).catch(() => undefined);
      await channel.close().catch(() => undefined);
    }
  } finally {
    await connection?.close().catch(() => undefined);
  }
  return { queues: queues.length, exchanges: exchanges.length };
}

/** DROP SCHEMA … CASCADE. */
export async function dropSchema(databaseUrl: string, schema: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`not a plain schema name: ${schema}`);
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Runs one query on a fresh connection (diagnostics: what the store holds). */
export async function queryOnce<T = Record<string, unknown>>(databaseUrl: string, schema: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5000, options: `-c search_path=${schema}` });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end().catch(() => undefined);
  }
}
