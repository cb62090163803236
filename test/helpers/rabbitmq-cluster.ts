// SPDX-License-Identifier: Apache-2.0
/**
 * A RabbitMQ cluster of the test's own: N nodes of the machine's RabbitMQ, started by the test as
 * child processes on free ports of 127.0.0.1, with their own node names, data directories and
 * Erlang cookie, formed at boot by classic peer discovery (one node: a throwaway broker for the
 * fault tests that restart it). The machine's own broker (and anything else using it) is left
 * alone. A node can be killed with SIGKILL, as a lost host is; `stop()` ends every node, waits for
 * every node process and every rabbitmqctl it ran to exit, and only then removes their files (a
 * node still writing into a directory being removed fails the removal with ENOTEMPTY). Should the
 * test process exit first, its 'exit' handler kills the nodes. Every wait is bounded.
 *
 * Needs Debian's layout of the rabbitmq-server package (`/usr/lib/rabbitmq/bin`): the scripts there
 * run the broker as the calling user, which the `/usr/sbin` wrappers do not.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { accessSync, constants, mkdirSync, mkdtempSync, openSync, closeSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './engine-process.ts';
import { waitForRabbitMq } from './production-services.ts';
import { within } from './wait-for.ts';

const exec = promisify(execFile);
const BIN = '/usr/lib/rabbitmq/bin';

/** One node of a test cluster; `ctl` runs rabbitmqctl against it. */
export interface RabbitNode {
  readonly name: string;
  readonly port: number;
  /** amqp://guest:guest@127.0.0.1:<port> (guest may connect from loopback only, which this is). */
  readonly url: string;
  readonly ctl: (args: string[], timeoutMs?: number) => Promise<string>;
  /** False once killed or stopped. */
  alive: boolean;
}

export interface RabbitCluster {
  readonly nodes: RabbitNode[];
  /** Kills the node's Erlang VM with SIGKILL and waits until it is gone. */
  kill9(node: RabbitNode): Promise<void>;
  /** Starts a killed node again on its data and waits until it accepts AMQP connections. */
  restart(node: RabbitNode, timeoutMs?: number): Promise<void>;
  /** Stops every node that runs and removes the cluster's files. */
  stop(): Promise<void>;
}

/** Why a test cluster cannot run here, or undefined when it can. */
export function rabbitClusterUnavailable(): string | undefined {
  try {
    accessSync(join(BIN, 'rabbitmq-server'), constants.X_OK);
    accessSync(join(BIN, 'rabbitmqctl'), constants.X_OK);
    return undefined;
  } catch {
    return `RabbitMQ's scripts not found in ${BIN} (Debian's rabbitmq-server package)`;
  }
}

/**
 * The processes whose HOME is `home` (from /proc): the nodes, every rabbitmqctl, and anything they
 * spawned (port programs, a CLI VM whose shell was killed), with their command lines.
 */
function processesWithHome(home: string): Array<{ pid: number; command: string }> {
  const wanted = `HOME=${home}`;
  const found: Array<{ pid: number; command: string }> = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (!readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes(wanted)) continue;
      // A zombie has exited (it only waits for its parent to reap it): it writes nothing.
      if (/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${entry}/stat`, 'utf8'))) continue;
      found.push({ pid: Number(entry), command: readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ').trim().slice(0, 160) });
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

/**
 * SIGKILLs every process left with HOME `home` and waits until none is left (bounded): what the
 * cluster's processes spawned is not always a child this process could wait for, and an Erlang VM
 * that starts its distribution in a HOME whose cookie was just removed writes a new one there.
 */
async function killLeftovers(home: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = processesWithHome(home);
    if (left.length === 0) return;
    if (Date.now() > deadline) throw new Error(`processes of ${home} still running after SIGKILL: ${left.map((p) => `${p.pid} ${p.command}`).join('; ')}`);
    for (const { pid } of left) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // exited meanwhile
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Every cluster started in this process and not yet stopped (also while it is still forming). */
const live = new Set<() => Promise<void>>();

/**
 * Stops every test cluster of this process that has not been stopped, including one whose start
 * is still under way (a `before` hook that timed out never got its handle): for `after` hooks.
 */
export async function stopRabbitClusters(): Promise<void> {
  await Promise.all([...live].map((stop) => stop()));
}

export async function startRabbitCluster(size = 3, timeoutMs = 120_000): Promise<RabbitCluster> {
  // Not in the shared temp-dir list (removeTempDirs): only stop() removes it, once the nodes are gone.
  const dir = mkdtempSync(join(tmpdir(), 'osprey-test-rabbitmq-'));
  // Every node and every rabbitmqctl call shares the cookie of this HOME.
  const cookie = join(dir, '.erlang.cookie');
  writeFileSync(cookie, `OSPREYTEST${randomUUID().replace(/-/g, '').toUpperCase()}`, { mode: 0o400 });
  const tag = randomUUID().slice(0, 6);
  const specs = await Promise.all(
    Array.from({ length: size }, async (_, i) => ({ name: `osprey-test-${tag}-${i}@localhost`, port: await freePort(), distPort: await freePort() })),
  );
  const children: ChildProcess[] = [];
  /** rabbitmqctl processes still running: stop() waits for them too (their HOME is `dir`). */
  const ctlRuns = new Set<ChildProcess>();
  /** Set when stop() begins: no node starts again. */
  let closing = false;
  /** Set once every node is down: no rabbitmqctl runs any more. */
  let stopped = false;
  // A test process that exits without stop() (a crash, mocha's --exit) must not leave nodes behind.
  const killAll = (): void => {
    for (const child of [...children, ...ctlRuns]) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', killAll);
  /** Starts node i's Erlang VM (again). */
  const launch: Array<() => void> = [];
  const nodes: RabbitNode[] = specs.map((spec, i) => {
    const home = join(dir, `node${i}`);
    mkdirSync(home);
    writeFileSync(
      join(home, 'rabbitmq.conf'),
      [
        `listeners.tcp.local = 127.0.0.1:${spec.port}`,
        'cluster_formation.peer_discovery_backend = classic_config',
        // The nodes start together: no random wait before discovery (the default is up to 60 s).
        'cluster_formation.randomized_startup_delay_range.min = 0',
        'cluster_formation.randomized_startup_delay_range.max = 1',
        ...specs.map((s, n) => `cluster_formation.classic_config.nodes.${n + 1} = ${s.name}`),
        '',
      ].join('\n'),
    );
    writeFileSync(join(home, 'enabled_plugins'), '[].\n');
    writeFileSync(join(home, 'rabbitmq-env.conf'), '\n');
    const env = {
      ...process.env,
      HOME: dir,
      RABBITMQ_NODENAME: spec.name,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(spec.port),
      RABBITMQ_DIST_PORT: String(spec.distPort),
      RABBITMQ_CONF_ENV_FILE: join(home, 'rabbitmq-env.conf'),
      RABBITMQ_CONFIG_FILE: join(home, 'rabbitmq.conf'),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(home, 'enabled_plugins'),
      RABBITMQ_MNESIA_BASE: join(home, 'mnesia'),
      RABBITMQ_LOG_BASE: join(home, 'log'),
      ERL_EPMD_ADDRESS: '127.0.0.1',
      // The script then execs the Erlang VM (no signal-relaying shell): the child is the node.
      RUNNING_UNDER_SYSTEMD: '1',
    };
    launch[i] = () => {
      if (closing) throw new Error(`the test cluster is stopping; ${spec.name} is not started again`);
      const log = openSync(join(home, 'console.log'), 'a');
      const child = spawn(join(BIN, 'rabbitmq-server'), [], { env, stdio: ['ignore', log, log] });
      closeSync(log);
      child.on('error', () => undefined);
      children[i] = child;
      node.alive = true;
      child.once('exit', () => {
        if (children[i] === child) node.alive = false;
      });
    };
    const node: RabbitNode = {
      name: spec.name,
      port: spec.port,
      url: `amqp://guest:guest@127.0.0.1:${spec.port}`,
      alive: true,
      ctl: async (args, ms = 60_000) => {
        if (stopped) throw new Error(`the test cluster was stopped (rabbitmqctl ${args[0] ?? ''})`);
        const run = exec(join(BIN, 'rabbitmqctl'), ['-n', spec.name, ...args], { env: { ...process.env, HOME: dir }, timeout: ms, maxBuffer: 16 * 1024 * 1024 });
        const child = run.child;
        ctlRuns.add(child);
        child.once('exit', () => ctlRuns.delete(child));
        return (await run).stdout;
      },
    };
    return node;
  });
  nodes.forEach((_, i) => launch[i]!());

  const kill9 = async (node: RabbitNode): Promise<void> => {
    const child = children[nodes.indexOf(node)]!;
    node.alive = false;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await gone;
  };
  const restart = async (node: RabbitNode, ms = timeoutMs): Promise<void> => {
    if (node.alive) throw new Error(`${node.name} is running`);
    if (closing) throw new Error('the test cluster is stopping');
    launch[nodes.indexOf(node)]!();
    await waitForRabbitMq(node.url, ms);
  };
  let stopping: Promise<void> | undefined;
  /** Idempotent: every caller gets the one stop, and returns once the files are gone. */
  const stop = (): Promise<void> => (stopping ??= stopOnce());
  const stopOnce = async (): Promise<void> => {
    closing = true;
    await Promise.all(
      nodes.map(async (node) => {
        if (node.alive) await node.ctl(['stop'], 30_000).catch(() => undefined);
        await kill9(node);
      }),
    );
    stopped = true;
    // Nothing may write into the directory any more: every node has exited (kill9 awaits it), and
    // so has every rabbitmqctl (SIGKILL for one still running, then its exit).
    await Promise.all(
      [...ctlRuns].map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const gone = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await within(gone, 30_000, 'a rabbitmqctl run to exit');
      }),
    );
    // And so has anything they spawned that is not a child of this process (seen: a stray Erlang
    // VM writing a new .erlang.cookie while the directory was being removed, ENOTEMPTY).
    await killLeftovers(dir);
    process.removeListener('exit', killAll);
    live.delete(stop);
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch (err) {
      let left = '';
      try {
        left = readdirSync(dir, { recursive: true }).slice(0, 20).join(', ');
      } catch {
        // already gone
      }
      const running = processesWithHome(dir).map((p) => `${p.pid} ${p.command}`);
      throw new Error(`removing ${dir} failed (${(err as Error).message}); left: ${left}; processes with this HOME: ${running.join('; ') || 'none'}`);
    }
  };

  live.add(stop);
  try {
    const deadline = Date.now() + timeoutMs;
    await Promise.all(nodes.map((n) => waitForRabbitMq(n.url, Math.max(1000, deadline - Date.now()))));
    // Peer discovery joins the nodes as they boot: wait until the first sees all of them running.
    for (;;) {
      const status = await nodes[0]!.ctl(['cluster_status', '--formatter', 'json'], 30_000).catch(() => '{}');
      const running = (JSON.parse(status) as { running_nodes?: string[] }).running_nodes ?? [];
      if (nodes.every((n) => running.includes(n.name))) break;
      if (Date.now() > deadline) throw new Error(`the test cluster did not form within ${timeoutMs} ms (running: ${running.join(', ') || 'none'})`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { nodes, kill9, restart, stop };
}
