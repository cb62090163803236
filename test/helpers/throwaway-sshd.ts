// SPDX-License-Identifier: Apache-2.0
/**
 * An OpenSSH server of the test's own, for the SFTP tests: a temp dir with a throwaway ed25519 host
 * key, a user key, `authorized_keys` and an `sshd_config` (SFTP by `internal-sftp`, 127.0.0.1 only,
 * a free port, key authentication for the current user only), and `/usr/sbin/sshd -D -e` as a CHILD
 * process of the test. The machine's sshd (if any) is not touched.
 *
 * `stop()` ends the listener and every session process it forked (a per-connection sshd calls
 * setsid(), so neither the listener's SIGTERM nor a process-group signal reaches it: its pids are
 * taken from /proc before the listener goes) and waits for all of them to exit, so "the server is
 * gone" means a client's open connection is cut too, as when a host goes down. Every wait is
 * bounded; should the test process exit first, its 'exit' handler kills what is left.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './engine-process.ts';
import { waitFor, within } from './wait-for.ts';

const exec = promisify(execFile);

const SSHD = process.env.OSPREY_TEST_SSHD ?? '/usr/sbin/sshd';
const SSH_KEYGEN = process.env.OSPREY_TEST_SSH_KEYGEN ?? 'ssh-keygen';
/** sshd's privilege-separation directory (Debian's build); sshd refuses to start without it. */
const PRIVSEP_DIR = '/run/sshd';

const isRoot = (): boolean => process.getuid?.() === 0;

/** Why a throwaway sshd cannot run here, or undefined when it can. */
export function throwawaySshdUnavailable(): string | undefined {
  try {
    accessSync(SSHD, constants.X_OK);
  } catch {
    return `OpenSSH server not found at ${SSHD} (apt-get install openssh-server; or set OSPREY_TEST_SSHD)`;
  }
  if (!existsSync(PRIVSEP_DIR)) {
    if (!isRoot()) return `${PRIVSEP_DIR} (sshd's privilege-separation directory) does not exist and only root can make it`;
    mkdirSync(PRIVSEP_DIR, { recursive: true, mode: 0o755 });
  }
  return undefined;
}

export interface ThrowawaySshd {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** The user the tests log in as (the test process's own). */
  readonly user: string;
  /** Path of the user's private key (OpenSSH PEM, no passphrase). */
  readonly keyFile: string;
  /** The host key's fingerprint as `ssh-keygen -lf` prints it: `SHA256:<base64, no padding>`. */
  readonly hostKeyFingerprint: string;
  /** A directory the SFTP user sees at this same absolute path; tests drop and read files here. */
  readonly root: string;
  /** The running listener's pid (undefined while stopped). */
  readonly pid: number | undefined;
  /** Ends the listener and its sessions, waits for them to exit; start() again with restart(). Idempotent. */
  stopServer(): Promise<void>;
  /** Starts the server again on the same port (after stopServer or replaceHostKey), waits until it answers. */
  startServer(): Promise<void>;
  /** stopServer() then startServer(). */
  restart(): Promise<void>;
  /** Makes a new host key and restarts, so clients see a changed key; returns the new fingerprint. */
  replaceHostKey(): Promise<string>;
  /** Stops the server for good and removes its files. Idempotent. */
  stop(): Promise<void>;
}

/** Every server of this process not yet stopped for good. */
const live = new Set<() => Promise<void>>();

/** Stops every throwaway sshd of this process (for `after` hooks; a `before` that timed out never got its handle). */
export async function stopThrowawaySshds(): Promise<void> {
  await Promise.all([...live].map((stop) => stop()));
}

/** `SHA256:…` of a public key file, as `ssh-keygen -lf` prints it. */
async function fingerprintOf(publicKeyFile: string): Promise<string> {
  const { stdout } = await exec(SSH_KEYGEN, ['-l', '-E', 'sha256', '-f', publicKeyFile], { timeout: 10_000 });
  const match = /\b(SHA256:[A-Za-z0-9+/]+)/.exec(stdout);
  if (!match) throw new Error(`ssh-keygen printed no SHA256 fingerprint: ${stdout.trim()}`);
  return match[1]!;
}

async function keygen(file: string): Promise<void> {
  rmSync(file, { force: true });
  rmSync(`${file}.pub`, { force: true });
  await exec(SSH_KEYGEN, ['-q', '-t', 'ed25519', '-N', '', '-C', 'osprey-test', '-f', file], { timeout: 10_000 });
}

/** Resolves once something on host:port speaks SSH (sends its `SSH-2.0-` banner). */
export function sshBanner(host: string, port: number, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    let seen = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.on('error', () => done(false));
    socket.on('data', (chunk) => {
      seen += chunk.toString('latin1');
      if (seen.includes('\n')) done(seen.startsWith('SSH-2.0-'));
    });
    socket.on('close', () => done(false));
  });
}

/** Pids of every process descended from `root` (read from /proc: Linux). */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name (field 2) may hold spaces and parentheses: fields start after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // the process exited while we read
    }
  }
  const found: number[] = [];
  const queue = [root];
  for (let i = 0; i < queue.length && i < 10_000; i++) {
    for (const child of children.get(queue[i]!) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    // A zombie still answers kill(0); it has exited all the same.
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

/** Makes the keys and config in a temp dir and starts sshd on a free port of 127.0.0.1. */
export async function startThrowawaySshd(timeoutMs = 30_000): Promise<ThrowawaySshd> {
  const missing = throwawaySshdUnavailable();
  if (missing) throw new Error(missing);
  const dir = mkdtempSync(join(tmpdir(), 'osprey-test-sshd-'));
  const root = join(dir, 'sftp-root');
  mkdirSync(root);
  const hostKey = join(dir, 'ssh_host_ed25519_key');
  const userKey = join(dir, 'user_ed25519_key');
  const user = userInfo().username;
  await Promise.all([keygen(hostKey), keygen(userKey)]);
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${userKey}.pub`), { mode: 0o600 });
  let fingerprint = await fingerprintOf(`${hostKey}.pub`);
  const port = await freePort();
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `ListenAddress 127.0.0.1`,
      `HostKey ${hostKey}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      // The temp dir's modes are the test's business, not sshd's.
      `StrictModes no`,
      `PubkeyAuthentication yes`,
      `PasswordAuthentication no`,
      `KbdInteractiveAuthentication no`,
      `UsePAM no`,
      `AllowUsers ${user}`,
      // As root (CI), the test's user is root: by key only.
      `PermitRootLogin ${isRoot() ? 'prohibit-password' : 'no'}`,
      `Subsystem sftp internal-sftp`,
      `AllowTcpForwarding no`,
      `X11Forwarding no`,
      `PrintMotd no`,
      `LogLevel VERBOSE`,
      '',
    ].join('\n'),
  );
  // Check the config before starting: a bad one is reported with sshd's own words.
  await exec(SSHD, ['-t', '-f', config, '-p', String(port)], { timeout: 10_000 });

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let stoppedForGood = false;
  const running = (): boolean => child !== undefined && child.exitCode === null && child.signalCode === null;
  const killOnExit = (): void => {
    if (!running()) return;
    for (const pid of descendants(child!.pid!)) process.kill(pid, 'SIGKILL');
    child!.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  const logFile = join(dir, 'sshd.log');
  const tail = (): string => {
    try {
      return readFileSync(logFile, 'utf8').slice(-2000);
    } catch {
      return '';
    }
  };

  const startServer = async (): Promise<void> => {
    if (stoppedForGood) throw new Error('the throwaway sshd was stopped for good');
    if (running()) return;
    const log = openSync(logFile, 'a');
    const c = spawn(SSHD, ['-D', '-e', '-f', config, '-p', String(port)], { cwd: dir, stdio: ['ignore', log, log] });
    closeSync(log);
    c.on('error', () => undefined);
    exited = new Promise((resolve) => c.once('exit', () => resolve()));
    child = c;
    try {
      await waitFor(
        async () => {
          if (!running()) throw new Error('sshd exited');
          return sshBanner('127.0.0.1', port);
        },
        { timeoutMs, intervalMs: 50, what: `the throwaway sshd on 127.0.0.1:${port} to send its banner` },
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- sshd log ---\n${tail()}`);
    }
  };

  const stopServer = async (): Promise<void> => {
    if (!running()) return;
    const c = child!;
    const gone = exited;
    const sessions = descendants(c.pid!);
    c.kill('SIGTERM');
    for (const pid of sessions) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    try {
      await within(gone, 10_000, "the throwaway sshd's exit after SIGTERM");
    } catch {
      c.kill('SIGKILL');
      await within(gone, 10_000, 'the throwaway sshd to exit after SIGKILL');
    }
    try {
      await waitFor(() => sessions.every((pid) => !alive(pid)), { timeoutMs: 10_000, intervalMs: 20, what: "the throwaway sshd's sessions to exit" });
    } catch {
      for (const pid of sessions.filter(alive)) process.kill(pid, 'SIGKILL');
      await waitFor(() => sessions.every((pid) => !alive(pid)), { timeoutMs: 10_000, intervalMs: 20, what: "the throwaway sshd's sessions to exit after SIGKILL" });
    }
  };

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      stoppedForGood = true;
      await stopServer();
      process.removeListener('exit', killOnExit);
      live.delete(stop);
      rmSync(dir, { recursive: true, force: true });
    })());
  live.add(stop);

  try {
    await startServer();
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    host: '127.0.0.1',
    port,
    user,
    keyFile: userKey,
    get hostKeyFingerprint() {
      return fingerprint;
    },
    root,
    get pid() {
      return running() ? child!.pid : undefined;
    },
    stopServer,
    startServer,
    async restart() {
      await stopServer();
      await startServer();
    },
    async replaceHostKey() {
      await stopServer();
      await keygen(hostKey);
      fingerprint = await fingerprintOf(`${hostKey}.pub`);
      await startServer();
      return fingerprint;
    },
    stop,
  };
}
