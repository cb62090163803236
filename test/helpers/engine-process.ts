// SPDX-License-Identifier: Apache-2.0
/**
 * Runs the engine as a CHILD process, the way it runs in production (`node <ENGINE_NODE_OPTIONS>
 * bin/osprey.js start --config <file>`), so a test can kill it with SIGKILL and start it again on the same data dir.
 * stdout and stderr go to a log file in the test's temp dir (shown when a start fails).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { ENGINE_NODE_OPTIONS } from '../../engine/engine-config/node-options.ts';
import { REPO_ROOT } from './test-engine.ts';
import { waitFor } from './wait-for.ts';

/** A port that was free a moment ago (bound on 127.0.0.1:0 and released). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * The engine configuration of a child-process engine on the embedded default (SQLite with
 * `synchronous: full`, the local bus), its API on 127.0.0.1 at `${OSPREY_HTTP_PORT}`, no sandbox,
 * warn-level JSON logs. `extra` lines (top-level YAML, e.g. `rateLimits:`) are appended.
 */
export function embeddedEngineConfigYaml(o: { dbPath: string; channelsDir: string; extra?: string[] }): string {
  return [
    'store:',
    '  type: sqlite',
    `  path: ${JSON.stringify(o.dbPath)}`,
    '  synchronous: full',
    'bus:',
    '  type: local',
    'http:',
    '  host: 127.0.0.1',
    '  port: ${OSPREY_HTTP_PORT}',
    'channels:',
    `  dir: ${JSON.stringify(o.channelsDir)}`,
    'lookups:',
    '  dir: config/lookups',
    ...(o.extra ?? []),
    'sandbox:',
    '  enabled: false',
    'logging:',
    '  level: warn',
    '  format: json',
    '',
  ].join('\n');
}

export interface EngineProcessOptions {
  configFile: string;
  /** Added to the test process's environment. */
  env: Record<string, string>;
  /** The management API port the config reads from OSPREY_HTTP_PORT (must be in `env`). */
  httpPort: number;
  logFile: string;
}

export class EngineProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #exited = false;

  private constructor(child: ChildProcess, readonly options: EngineProcessOptions) {
    this.child = child;
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.#exited = true;
        resolve({ code, signal });
      }),
    );
  }

  /** Spawns the engine and resolves once `/readyz` answers 200 (every channel running, recovery done). */
  static async start(options: EngineProcessOptions, readyTimeoutMs = 30_000): Promise<EngineProcess> {
    const fd = openSync(options.logFile, 'a');
    const child = spawn(process.execPath, [...ENGINE_NODE_OPTIONS, join(REPO_ROOT, 'bin', 'osprey.js'), 'start', '--config', options.configFile], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    const p = new EngineProcess(child, options);
    try {
      await waitFor(
        async () => {
          if (p.#exited) throw new Error('the engine process exited');
          const res = await fetch(`${p.baseUrl}/readyz`);
          return res.status === 200;
        },
        { timeoutMs: readyTimeoutMs, intervalMs: 50, what: 'the engine process to be ready' },
      );
    } catch (err) {
      await p.kill9();
      throw new Error(`${(err as Error).message}\n--- engine log ---\n${p.log().slice(-4000)}`);
    }
    return p;
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.options.httpPort}`;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get hasExited(): boolean {
    return this.#exited;
  }

  log(): string {
    try {
      return readFileSync(this.options.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  async get<T = any>(path: string): Promise<{ status: number; body: T }> {
    const res = await fetch(`${this.baseUrl}${path}`);
    return { status: res.status, body: (await res.json()) as T };
  }

  /** kill -9: no shutdown code runs. Resolves once the process is gone. */
  async kill9(): Promise<void> {
    if (this.#exited) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM (a clean stop), then SIGKILL if it has not exited within `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.#exited) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}
