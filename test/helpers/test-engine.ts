// SPDX-License-Identifier: Apache-2.0
/**
 * Starts a real Engine in the test process for end-to-end tests: SQLite in a fresh temp dir, the
 * local bus, the management API on 127.0.0.1:0, the sandbox receiver on, MLLP ports 0. The channels
 * folder, the lookups folder and the environment (destination URLs) are the test's to choose.
 * `stop()` stops the engine and removes the temp dir; it is idempotent and safe in `after` hooks.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Engine } from '../../engine/engine.ts';
import { parseEngineConfig, type EngineConfig } from '../../engine/engine-config/load-engine-config.ts';
import { createLogger, silentLogger, type Logger } from '../../engine/observability/logger.ts';
import { waitFor, type WaitOptions } from './wait-for.ts';

/** The repository root (channels, transforms, samples, config). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface TestEngineOptions {
  /** Channel files folder. @defaultValue `<repo>/channels` */
  channelsDir?: string;
  /** Lookup tables folder. @defaultValue `<repo>/config/lookups` */
  lookupsDir?: string;
  /** Environment for `${VAR}` in channel files; `ADT_MLLP_PORT` and `SIU_MLLP_PORT` default to 0. */
  env?: Record<string, string>;
  /** @defaultValue true */
  sandbox?: boolean;
  /** Replaces the default config's rate limits. */
  rateLimits?: EngineConfig['rateLimits'];
  /** Management API port. @defaultValue 0 (any free port) */
  httpPort?: number;
  /** @defaultValue the local bus */
  bus?: EngineConfig['bus'];
  /** @defaultValue silent, or a JSON logger at OSPREY_TEST_LOG's level when that is set */
  logger?: Logger;
}

export interface ApiResponse<T = any> {
  status: number;
  body: T;
}

/** A temp dir removed by {@link removeTempDirs} (or by the caller). */
export function makeTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `osprey-e2e-${prefix}-`));
  tempDirs.add(dir);
  return dir;
}
const tempDirs = new Set<string>();
export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/** Builds the engine configuration a test engine runs with (config/default.yaml with test overrides). */
export function testEngineConfig(dataDir: string, options: Pick<TestEngineOptions, 'channelsDir' | 'lookupsDir' | 'sandbox' | 'rateLimits' | 'httpPort' | 'bus'> = {}): EngineConfig {
  const file = join(REPO_ROOT, 'config', 'default.yaml');
  const base = parseEngineConfig(file, readFileSync(file, 'utf8'), {
    OSPREY_DATA_DIR: dataDir,
    OSPREY_HTTP_HOST: '127.0.0.1',
    OSPREY_HTTP_PORT: '0',
    OSPREY_LOG_LEVEL: 'error',
  });
  return {
    ...base,
    store: { type: 'sqlite', path: join(dataDir, 'osprey.db'), synchronous: 'full' },
    bus: options.bus ?? { type: 'local' },
    http: { host: '127.0.0.1', port: options.httpPort ?? 0 },
    channels: { dir: options.channelsDir ?? join(REPO_ROOT, 'channels') },
    lookups: { dir: options.lookupsDir ?? join(REPO_ROOT, 'config', 'lookups') },
    sandbox: { ...(base.sandbox ?? {}), enabled: options.sandbox ?? true },
    ...(options.rateLimits ? { rateLimits: options.rateLimits } : {}),
  } as EngineConfig;
}

export class TestEngine {
  engine: Engine;
  readonly dataDir: string;
  #stopped = false;

  private constructor(
    engine: Engine,
    dataDir: string,
    private readonly make: () => Engine,
  ) {
    this.engine = engine;
    this.dataDir = dataDir;
  }

  static async start(options: TestEngineOptions = {}): Promise<TestEngine> {
    const dataDir = makeTempDir('data');
    const config = testEngineConfig(dataDir, options);
    const logger = options.logger ?? (process.env.OSPREY_TEST_LOG ? createLogger({ level: process.env.OSPREY_TEST_LOG }) : silentLogger());
    const env = { ADT_MLLP_PORT: '0', SIU_MLLP_PORT: '0', ...(options.env ?? {}) };
    const make = (): Engine => new Engine({ config, projectRoot: REPO_ROOT, env, logger });
    const te = new TestEngine(make(), dataDir, make);
    const engine = te.engine;
    try {
      await engine.start();
    } catch (err) {
      await te.stop();
      throw err;
    }
    return te;
  }

  get baseUrl(): string {
    const a = this.engine.httpAddress;
    if (!a) throw new Error('the engine has no HTTP address (not started?)');
    return `http://127.0.0.1:${a.port}`;
  }

  /** The MLLP port a channel listens on. */
  port(channel: string): number {
    const port = this.engine.channel(channel)?.sourceAddress?.port;
    if (port === undefined) throw new Error(`channel ${channel} is not running`);
    return port;
  }

  async get<T = any>(path: string): Promise<ApiResponse<T>> {
    const res = await fetch(`${this.baseUrl}${path}`);
    return { status: res.status, body: (await res.json()) as T };
  }

  async post<T = any>(path: string, body?: unknown): Promise<ApiResponse<T>> {
    const res = await fetch(`${this.baseUrl}${path}`, {
      method: 'POST',
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: (text === '' ? undefined : JSON.parse(text)) as T };
  }

  /** The message's whole history (`GET /api/messages/:id`); throws unless 200. */
  async message(id: string): Promise<any> {
    const res = await this.get(`/api/messages/${encodeURIComponent(id)}`);
    if (res.status !== 200) throw new Error(`GET /api/messages/${id} answered ${res.status}: ${JSON.stringify(res.body)}`);
    return res.body;
  }

  /** The summaries of messages with this control id (newest first). */
  async byControlId(controlId: string, channel?: string): Promise<any[]> {
    const q = new URLSearchParams({ controlId, ...(channel ? { channel } : {}) });
    const res = await this.get(`/api/messages?${q}`);
    if (res.status !== 200) throw new Error(`search answered ${res.status}`);
    return res.body.messages;
  }

  /** Waits until the message reaches one of `states`; returns its detail. */
  async waitForState(id: string, states: string | string[], options: WaitOptions = {}): Promise<any> {
    const wanted = Array.isArray(states) ? states : [states];
    let last: string | undefined;
    try {
      return await waitFor(
        async () => {
          const m = await this.message(id);
          last = m.state;
          return wanted.includes(m.state) ? m : undefined;
        },
        { timeoutMs: 15_000, ...options, what: options.what ?? `message ${id} to reach ${wanted.join('|')}` },
      );
    } catch (err) {
      throw new Error(`${(err as Error).message}; last state ${last}`);
    }
  }

  /**
   * A clean stop and a new engine on the same data dir (same config and environment): what an
   * operator's restart does. MLLP ports (0) and the API port (0) change. `whileStopped` runs
   * between the stop and the start.
   */
  async restart(whileStopped?: () => void | Promise<void>): Promise<void> {
    await this.engine.stop();
    await whileStopped?.();
    this.engine = this.make();
    await this.engine.start();
  }

  /** Stops the engine and removes its data dir. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    try {
      await this.engine.stop();
    } finally {
      removeTempDir(this.dataDir);
    }
  }
}

/** Removes every temp dir made by {@link makeTempDir} that is still there (an `after` hook backstop). */
export function removeTempDirs(): void {
  for (const dir of [...tempDirs]) removeTempDir(dir);
}
