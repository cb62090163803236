// SPDX-License-Identifier: Apache-2.0
/**
 * Who the machine's PostgreSQL and RabbitMQ are, to prove a test run left them alone: the
 * PostgreSQL postmaster's pid (its data directory's `postmaster.pid`) and start time, and the
 * RabbitMQ node's OS pid (`rabbitmqctl status`). A restart changes them. What cannot be read here
 * (a service absent, a data directory this user may not read) is given as a reason instead.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const exec = promisify(execFile);

const DATABASE_CANDIDATES = process.env.OSPREY_TEST_POSTGRES_URL
  ? [process.env.OSPREY_TEST_POSTGRES_URL]
  : ['postgres://postgres@127.0.0.1:5432/test', 'postgres://postgres@127.0.0.1:5432/postgres'];

export type Identity = { pid: number; detail: string } | { reason: string };

export interface MachineServices {
  postgres: Identity;
  rabbitmq: Identity;
}

/** The machine's PostgreSQL postmaster (the server the tests' URLs reach). */
async function postgresIdentity(): Promise<Identity> {
  const reasons: string[] = [];
  for (const url of DATABASE_CANDIDATES) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      const { rows } = await client.query<{ dir: string; started: Date }>("SELECT current_setting('data_directory') AS dir, pg_postmaster_start_time() AS started");
      const { dir, started } = rows[0]!;
      let pid: number;
      try {
        pid = Number(readFileSync(join(dir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      } catch (err) {
        return { reason: `PostgreSQL's postmaster.pid not readable (${(err as Error).message})` };
      }
      return { pid, detail: `started ${started.toISOString()}` };
    } catch (err) {
      reasons.push((err as Error).message);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  return { reason: `PostgreSQL not reachable (${reasons.join('; ')})` };
}

/** The machine's RabbitMQ node (the one `rabbitmqctl` addresses by default). */
async function rabbitmqIdentity(): Promise<Identity> {
  try {
    const { stdout } = await exec('rabbitmqctl', ['status', '--formatter', 'json'], { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 });
    const status = JSON.parse(stdout) as { pid?: number; data_directory?: string };
    if (typeof status.pid !== 'number') return { reason: 'rabbitmqctl status gave no pid' };
    return { pid: status.pid, detail: status.data_directory ?? '' };
  } catch (err) {
    return { reason: `rabbitmqctl status failed (${(err as Error).message.split('\n')[0]})` };
  }
}

/** Reads both identities (bounded: each step has a timeout). */
export async function machineServices(): Promise<MachineServices> {
  const [postgres, rabbitmq] = await Promise.all([postgresIdentity(), rabbitmqIdentity()]);
  return { postgres, rabbitmq };
}

/**
 * What changed between two readings, one line per service that was readable both times and is not
 * the same process any more. Empty: both untouched (or unreadable, see {@link unreadable}).
 */
export function changes(before: MachineServices, after: MachineServices): string[] {
  const out: string[] = [];
  for (const name of ['postgres', 'rabbitmq'] as const) {
    const a = before[name];
    const b = after[name];
    if ('pid' in a && 'reason' in b) out.push(`${name}: pid ${a.pid} before the run, afterwards ${b.reason}`);
    if ('pid' in a && 'pid' in b && (a.pid !== b.pid || a.detail !== b.detail)) out.push(`${name}: pid ${a.pid} (${a.detail}) before the run, pid ${b.pid} (${b.detail}) after`);
  }
  return out;
}

/** The services whose identity could not be read at the start, with the reason. */
export function unreadable(before: MachineServices): string[] {
  return (['postgres', 'rabbitmq'] as const).flatMap((name) => {
    const id = before[name];
    return 'reason' in id ? [`${name}: ${id.reason}`] : [];
  });
}
