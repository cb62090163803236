// SPDX-License-Identifier: Apache-2.0
/**
 * A production-mode cluster for tests: N engine instances as CHILD processes
 * (`node bin/osprey.js start --config <temp yaml>`) sharing one PostgreSQL schema and one RabbitMQ
 * prefix that belong to the test alone, each with its own MLLP and HTTP ports (environment), all
 * running one test channel (ADT, orderBy PID-3.1, one REST destination: an ERP stand-in in the test
 * process, short fixed retry backoff, attempts enough to outlast any outage of a test). `cleanUp()`
 * stops the instances and the stand-in, deletes the prefix's queues and exchanges and drops the
 * schema. Every wait is bounded.
 */
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErpStandIn } from '../fixtures/erp-stand-in.ts';
import { EngineProcess, freePort } from './engine-process.ts';
import { activeConsumers, consumerCounts, deleteBusPrefix, dropSchema, queryOnce, queuesOf, rabbitmqctl, uniqueNames, type Services } from './production-services.ts';
import { testChannelYaml } from './test-channel.ts';
import { makeTempDir } from './test-engine.ts';
import { waitFor } from './wait-for.ts';

export const CHANNEL = 'prod-adt';
export const DESTINATION = 'erp';
/** Where the stand-in receives the channel's deliveries. */
export const PATH = '/erp/events';
export const PARTITIONS = 8;

export interface Instance {
  name: string;
  httpPort: number;
  mllpPort: number;
  env: Record<string, string>;
  logFile: string;
  process?: EngineProcess;
  /** False once killed or stopped (senders fail over on it). */
  alive: boolean;
}

export interface Cluster {
  label: string;
  prefix: string;
  schema: string;
  dir: string;
  configFile: string;
  services: Services;
  standIn: ErpStandIn;
  instances: Instance[];
}

/** What a production-mode engine config of a test sets; what is left out takes the engine's default. */
export interface ProductionConfigOptions {
  prefix: string;
  schema: string;
  channelsDir: string;
  partitions?: number;
  poolSize?: number;
  prefetch?: number;
  deliveryLimit?: number;
  /** Named rate limits (`rateLimits:`), e.g. `{ 'erp-api': { perSecond: 50, burst: 10 } }`. */
  rateLimits?: Record<string, { perSecond: number; burst: number }>;
  /** Default: $OSPREY_TEST_LOG, else warn. */
  logLevel?: string;
}

/** The engine config (YAML) of a test's production-mode instances: its own schema, bus prefix and channels. */
export function productionConfigYaml(o: ProductionConfigOptions): string {
  const optional = (key: string, value: number | undefined) => (value === undefined ? [] : [`  ${key}: ${value}`]);
  return [
    'store:',
    '  type: postgres',
    '  url: ${OSPREY_DATABASE_URL}',
    `  schema: ${o.schema}`,
    ...optional('poolSize', o.poolSize),
    'bus:',
    '  type: rabbitmq',
    '  url: ${OSPREY_RABBITMQ_URL}',
    `  prefix: ${o.prefix}`,
    ...optional('partitions', o.partitions),
    ...optional('prefetch', o.prefetch),
    ...optional('deliveryLimit', o.deliveryLimit),
    'http:',
    '  host: 127.0.0.1',
    '  port: ${OSPREY_HTTP_PORT}',
    'channels:',
    `  dir: ${JSON.stringify(o.channelsDir)}`,
    'lookups:',
    '  dir: config/lookups',
    'contracts:',
    '  module: transforms/contracts/index.ts',
    ...(o.rateLimits ? ['rateLimits:', ...Object.entries(o.rateLimits).map(([name, l]) => `  ${name}: { perSecond: ${l.perSecond}, burst: ${l.burst} }`)] : []),
    'sandbox:',
    '  enabled: false',
    'logging:',
    // OSPREY_TEST_LOG=info (or debug) shows the bus's hand-overs and reconnections in the engine logs.
    `  level: ${o.logLevel ?? process.env.OSPREY_TEST_LOG ?? 'warn'}`,
    '  format: json',
    '',
  ].join('\n');
}

/** The name of the destination's rate limit, when the cluster has one. */
export const RATE_LIMIT = 'erp-api';

/**
 * Writes the channel and the config, starts the stand-in, picks ports; starts no engine.
 * `rateLimit`: the destination draws from the named limit {@link RATE_LIMIT} of the environment.
 */
export async function prepareCluster(
  services: Services,
  label: string,
  instanceNames: readonly string[] = ['A', 'B'],
  rateLimit?: { perSecond: number; burst: number },
  bus: { deliveryLimit?: number } = {},
): Promise<Cluster> {
  const { prefix, schema } = uniqueNames(label);
  const standIn = await ErpStandIn.start();
  const dir = makeTempDir(`production-${label}`);
  const channelsDir = join(dir, 'channels');
  mkdirSync(channelsDir);
  writeFileSync(
    join(channelsDir, `${CHANNEL}.channel.yaml`),
    testChannelYaml({
      name: CHANNEL,
      port: '${TEST_MLLP_PORT}',
      // Enough attempts at a short fixed backoff to outlast every outage of a test (no dead letters).
      destinations: [{ name: DESTINATION, url: `${standIn.url}${PATH}`, timeout: '5s', maxAttempts: 100_000, backoff: '200ms', ...(rateLimit ? { rateLimit: RATE_LIMIT } : {}) }],
    }),
  );
  const configFile = join(dir, 'osprey.yaml');
  writeFileSync(
    configFile,
    productionConfigYaml({ prefix, schema, channelsDir, partitions: PARTITIONS, poolSize: 10, prefetch: 50, deliveryLimit: bus.deliveryLimit, ...(rateLimit ? { rateLimits: { [RATE_LIMIT]: rateLimit } } : {}) }),
  );
  const instances: Instance[] = [];
  for (const name of instanceNames) {
    const httpPort = await freePort();
    const mllpPort = await freePort();
    instances.push({
      name,
      httpPort,
      mllpPort,
      logFile: join(dir, `engine-${name}.log`),
      alive: false,
      env: {
        OSPREY_HTTP_PORT: String(httpPort),
        TEST_MLLP_PORT: String(mllpPort),
        OSPREY_DATABASE_URL: services.databaseUrl,
        OSPREY_RABBITMQ_URL: services.rabbitmqUrl,
      },
    });
  }
  return { label, prefix, schema, dir, configFile, services, standIn, instances };
}

/** Starts the instances together (all run the migrations at start: the advisory lock lets one apply them). */
export async function startInstances(cluster: Cluster): Promise<void> {
  await Promise.all(
    cluster.instances.map(async (i) => {
      i.process = await EngineProcess.start({ configFile: cluster.configFile, env: i.env, httpPort: i.httpPort, logFile: i.logFile }, 60_000);
      i.alive = true;
    }),
  );
}

/** The partition queues of the test channel's two stages. */
export const partitionQueues = (prefix: string): string[] =>
  [`pipeline.${CHANNEL}`, `deliver.${CHANNEL}.${DESTINATION}`].flatMap((q) => Array.from({ length: PARTITIONS }, (_, p) => `${prefix}.${q}.p${p}`));

/**
 * Waits until every partition queue has a consumer from each running instance (one active, the
 * others waiting: each instance stands by for the others' partitions, which fail-over needs).
 * Where the active ones are is reported, not required: a standby that became active before the
 * partition's home subscribed hands it over at its next delivery (docs/design/0005-bus.md §6), so
 * an idle cluster can stay uneven until traffic comes.
 * @returns the active partitions per instance, e.g. `A 8, B 8`.
 */
export async function waitForStandbys(cluster: Cluster, timeoutMs = 60_000): Promise<string> {
  const queues = partitionQueues(cluster.prefix);
  const running = cluster.instances.filter((i) => i.alive);
  let last = '';
  try {
    await waitFor(
      async () => {
        const all = await consumerCounts(cluster.prefix, cluster.services.rabbitmqctl);
        last = JSON.stringify(Object.fromEntries(queues.map((q) => [q.slice(cluster.prefix.length + 1), all.get(q) ?? 0])));
        return queues.every((q) => all.get(q) === running.length);
      },
      { timeoutMs, intervalMs: 500, what: 'every partition queue to have a consumer from each instance' },
    );
  } catch (err) {
    throw new Error(`${(err as Error).message}; consumers: ${last}`);
  }
  return activeSplit(cluster);
}

/** The active partition queues per running instance, e.g. `A 8, B 8`. */
export async function activeSplit(cluster: Cluster): Promise<string> {
  const queues = partitionQueues(cluster.prefix);
  const active = await activeConsumers(cluster.prefix, cluster.services.rabbitmqctl);
  return cluster.instances
    .filter((i) => i.alive)
    .map((i) => `${i.name} ${queues.filter((q) => active.get(q)?.includes(`-${i.process!.pid}-`)).length}`)
    .join(', ');
}

/** The test channel's counts per state (`GET /api/channels`). */
export async function channelCounts(api: EngineProcess): Promise<Record<string, number>> {
  const res = await api.get('/api/channels');
  return (res.body.channels.find((c: any) => c.name === CHANNEL)?.counts ?? {}) as Record<string, number>;
}

/** Every stored message of the test channel (paged through the API), newest first. */
export async function allMessages(api: EngineProcess): Promise<any[]> {
  const out: any[] = [];
  let before: number | undefined;
  for (let page = 0; page < 100; page++) {
    const res = await api.get(`/api/messages?channel=${CHANNEL}&limit=1000${before !== undefined ? `&before=${before}` : ''}`);
    if (res.status !== 200) throw new Error(`GET /api/messages answered ${res.status}`);
    const batch = res.body.messages as any[];
    out.push(...batch);
    if (batch.length < 1000) return out;
    before = Math.min(...batch.map((m) => m.seq as number));
  }
  throw new Error('more than 100 pages of messages');
}

/** What the store and the broker hold, for a failure message when the work does not drain. */
export async function diagnostics(cluster: Cluster): Promise<string> {
  const lines: string[] = [];
  try {
    const m = await queryOnce(cluster.services.databaseUrl, cluster.schema, 'SELECT state, count(*)::int AS n FROM messages GROUP BY state ORDER BY state');
    const d = await queryOnce(cluster.services.databaseUrl, cluster.schema, 'SELECT state, count(*)::int AS n FROM deliveries GROUP BY state ORDER BY state');
    lines.push(`store messages: ${JSON.stringify(m)}; deliveries: ${JSON.stringify(d)}`);
    const stuck = await queryOnce(
      cluster.services.databaseUrl,
      cluster.schema,
      `SELECT m.id, m.control_id, m.state, m.updated_at, (SELECT string_agg(d.state, ',') FROM deliveries d WHERE d.message_id = m.id) AS deliveries
         FROM messages m WHERE m.state IN ('RECEIVED', 'QUEUED') ORDER BY m.seq LIMIT 10`,
    );
    lines.push(`first unfinished: ${JSON.stringify(stuck)}`);
  } catch (err) {
    lines.push(`store not readable: ${(err as Error).message}`);
  }
  try {
    const ctl = cluster.services.rabbitmqctl ?? rabbitmqctl;
    const depth = await consumerCounts(cluster.prefix, ctl);
    lines.push(`consumers per queue: ${JSON.stringify(Object.fromEntries(depth))}`);
    const ready = await ctl(['list_queues', 'name', 'messages_ready', 'messages_unacknowledged', '-q'], 60_000);
    lines.push(`ready/unacked per queue: ${ready.split('\n').filter((l) => l.startsWith(cluster.prefix)).map((l) => l.slice(cluster.prefix.length + 1).replace(/\t/g, ' ')).join('; ')}`);
  } catch (err) {
    lines.push(`broker not readable: ${(err as Error).message}`);
  }
  for (const i of cluster.instances) {
    const log = i.process?.log() ?? '';
    lines.push(`--- engine ${i.name} log (last lines) ---\n${log.split('\n').slice(-15).join('\n')}`);
  }
  return lines.join('\n');
}

/** Stops every instance (SIGTERM, then SIGKILL) and the stand-in, deletes the prefix's queues and exchanges, drops the schema. */
export async function cleanUp(cluster: Cluster): Promise<void> {
  for (const i of cluster.instances) {
    i.alive = false;
    await i.process?.stop().catch(() => undefined);
  }
  await cluster.standIn.close().catch(() => undefined);
  // OSPREY_TEST_KEEP_LOGS=<dir>: keep the engines' logs (the temp dir is removed).
  const keep = process.env.OSPREY_TEST_KEEP_LOGS;
  if (keep) {
    mkdirSync(keep, { recursive: true });
    for (const i of cluster.instances) if (existsSync(i.logFile)) copyFileSync(i.logFile, join(keep, `${cluster.label}-${i.name}.log`));
  }
  const problems: string[] = [];
  const { services } = cluster;
  await deleteBusPrefix(services.rabbitmqUrl, cluster.prefix, services.rabbitmqctl).catch((err: Error) => problems.push(`bus prefix ${cluster.prefix}: ${err.message}`));
  await dropSchema(services.databaseUrl, cluster.schema).catch((err: Error) => problems.push(`schema ${cluster.schema}: ${err.message}`));
  const left = await queuesOf(cluster.prefix, services.rabbitmqctl).catch(() => []);
  if (left.length > 0) problems.push(`queues left behind: ${left.join(', ')}`);
  if (problems.length > 0) throw new Error(`cleanup failed: ${problems.join('; ')}`);
}
