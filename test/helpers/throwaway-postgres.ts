// SPDX-License-Identifier: Apache-2.0
/**
 * A PostgreSQL server of the test's own, for the fault tests that stop and start the database: a
 * cluster made with `initdb` in a temp dir, its postmaster a CHILD process of the test on a free
 * port of 127.0.0.1 (trust authentication, its socket in the temp dir). Restarting it is what an
 * operator's `pg_ctl stop -m fast` + `pg_ctl start` does (SIGINT, the postmaster's fast shutdown,
 * then a new postmaster on the same data); it runs undetached, unlike under `pg_ctl start`, so every
 * stop waits for the process's exit, never for a pid file or a duration. The machine's PostgreSQL
 * is not touched. `stop()` waits for the postmaster to exit before removing the files; should the
 * test process exit first, its 'exit' handler kills the postmaster.
 *
 * PostgreSQL refuses to run as root: as root, the server and `initdb` run as the `postgres` user
 * (the temp dir is given to it). Every wait is bounded.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, chownSync, closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './engine-process.ts';
import { stayDown, waitFor, within } from './wait-for.ts';

const exec = promisify(execFile);

/** Where the server's programs are: OSPREY_TEST_PG_BIN, or the newest of Debian's /usr/lib/postgresql/<version>/bin. */
function binDir(): string | undefined {
  if (process.env.OSPREY_TEST_PG_BIN) return process.env.OSPREY_TEST_PG_BIN;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  return versions.map((v) => join(root, v, 'bin')).find((dir) => existsSync(join(dir, 'initdb')));
}

const isRoot = (): boolean => process.getuid?.() === 0;

/** The `postgres` user's uid and gid, which the server runs as when the test runs as root. */
function postgresUser(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined) throw new Error('no postgres user in /etc/passwd');
  return { uid: Number(uid), gid: Number(gid) };
}

/** Why a throwaway PostgreSQL cannot run here, or undefined when it can. */
export function throwawayPostgresUnavailable(): string | undefined {
  const bin = binDir();
  if (!bin) return 'PostgreSQL server programs not found (no /usr/lib/postgresql/<version>/bin/initdb; set OSPREY_TEST_PG_BIN)';
  try {
    accessSync(join(bin, 'initdb'), constants.X_OK);
    accessSync(join(bin, 'postgres'), constants.X_OK);
    if (isRoot()) postgresUser();
    return undefined;
  } catch (err) {
    return `a throwaway PostgreSQL cannot run (${(err as Error).message})`;
  }
}

export interface ThrowawayPostgres {
  readonly port: number;
  /** postgres://postgres@127.0.0.1:<port>/postgres (trust). */
  readonly url: string;
  /** The running postmaster's pid (undefined while stopped). */
  readonly pid: number | undefined;
  /**
   * A restart as an operator does it: fast shutdown (waits for the postmaster's exit), `whileDown`,
   * the rest of `downMs`, start, and wait until it accepts connections. If anything fails after the
   * stop, the server is started again before the error is passed on.
   * @returns when it went down and came back (epoch ms).
   */
  restart(downMs: number, whileDown?: () => Promise<void>): Promise<{ stoppedAt: number; upAt: number }>;
  /** Stops the server (immediate shutdown, SIGKILL after a bound), waits for its exit, removes its files. Idempotent. */
  stop(): Promise<void>;
}

/** Resolves once `url` accepts a connection and answers `SELECT 1` (bounded). */
export async function waitForPostgres(url: string, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    async () => {
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.query('SELECT 1');
        return true;
      } finally {
        await client.end().catch(() => undefined);
      }
    },
    { timeoutMs, intervalMs: 100, what: `PostgreSQL at ${url} to accept connections` },
  );
}

/** Every server started in this process and not yet stopped (also while it is still starting). */
const live = new Set<() => Promise<void>>();

/**
 * Stops every throwaway PostgreSQL of this process that has not been stopped, including one whose
 * start is still under way (a `before` hook that timed out never got its handle): for `after` hooks.
 */
export async function stopThrowawayPostgreses(): Promise<void> {
  await Promise.all([...live].map((stop) => stop()));
}

/** `initdb` a new cluster into a temp dir and start its postmaster on a free port. */
export async function startThrowawayPostgres(timeoutMs = 120_000): Promise<ThrowawayPostgres> {
  const missing = throwawayPostgresUnavailable();
  if (missing) throw new Error(missing);
  const bin = binDir()!;
  const user = isRoot() ? postgresUser() : undefined;
  // Not in the shared temp-dir list (removeTempDirs): only stop() removes it, once the server is gone.
  const dir = mkdtempSync(join(tmpdir(), 'osprey-test-postgres-'));
  const data = join(dir, 'data');
  const socketDir = join(dir, 'socket');
  mkdirSync(socketDir);
  if (user) {
    chownSync(dir, user.uid, user.gid);
    chownSync(socketDir, user.uid, user.gid);
  }
  const as = user ? { uid: user.uid, gid: user.gid } : {};
  const port = await freePort();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const initdb = exec(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'], { ...as, cwd: dir, timeout: 120_000 });

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let stopped = false;
  const launch = (): void => {
    if (stopped) throw new Error('the throwaway PostgreSQL was stopped for good');
    const log = openSync(join(dir, 'postgres.log'), 'a');
    if (user) chownSync(join(dir, 'postgres.log'), user.uid, user.gid);
    const c = spawn(
      join(bin, 'postgres'),
      ['-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${socketDir}`, '-c', 'max_connections=200'],
      { ...as, cwd: dir, stdio: ['ignore', log, log] },
    );
    closeSync(log);
    c.on('error', () => undefined);
    exited = new Promise((resolve) => c.once('exit', () => resolve()));
    child = c;
  };
  const running = (): boolean => child !== undefined && child.exitCode === null && child.signalCode === null;
  // A test process that exits without stop() (a crash, mocha's --exit) must not leave a server behind.
  const killOnExit = (): void => {
    if (running()) child!.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  /** Sends `signal` (SIGINT: fast shutdown; SIGQUIT: immediate) and waits for the exit; SIGKILL after `graceMs`. */
  const shutDown = async (signal: NodeJS.Signals, graceMs: number): Promise<void> => {
    if (!running()) return;
    const c = child!;
    const gone = exited;
    c.kill(signal);
    try {
      await within(gone, graceMs, `the throwaway PostgreSQL's ${signal} shutdown`);
    } catch {
      c.kill('SIGKILL');
      await within(gone, 30_000, 'the throwaway PostgreSQL to exit after SIGKILL');
    }
  };
  const tail = (): string => {
    try {
      return readFileSync(join(dir, 'postgres.log'), 'utf8').slice(-2000);
    } catch {
      return '';
    }
  };

  let stopping: Promise<void> | undefined;
  /** Idempotent: every caller gets the one stop, and returns once the files are gone. */
  const stop = (): Promise<void> => (stopping ??= stopOnce());
  const stopOnce = async (): Promise<void> => {
    stopped = true;
    // initdb first, if it still runs; then the postmaster, which waits for its backends before it
    // exits: once both have, nothing writes here.
    if (initdb.child.exitCode === null && initdb.child.signalCode === null) {
      const gone = new Promise((resolve) => initdb.child.once('exit', resolve));
      initdb.child.kill('SIGKILL');
      await within(gone, 30_000, 'initdb to exit');
    }
    await shutDown('SIGQUIT', 30_000);
    process.removeListener('exit', killOnExit);
    live.delete(stop);
    rmSync(dir, { recursive: true, force: true });
  };
  live.add(stop);

  try {
    await initdb;
    launch();
    await waitForPostgres(url, timeoutMs);
  } catch (err) {
    const log = tail();
    await stop();
    throw new Error(`${(err as Error).message}\n--- postgres log ---\n${log}`);
  }

  return {
    port,
    url,
    get pid() {
      return running() ? child!.pid : undefined;
    },
    async restart(downMs, whileDown) {
      await shutDown('SIGINT', 120_000);
      const stoppedAt = Date.now();
      const failure = await stayDown(stoppedAt, downMs, whileDown);
      launch();
      try {
        await waitForPostgres(url, timeoutMs);
      } catch (err) {
        throw new Error(`${(err as Error).message}\n--- postgres log ---\n${tail()}`);
      }
      if (failure) throw failure;
      return { stoppedAt, upAt: Date.now() };
    },
    stop,
  };
}
