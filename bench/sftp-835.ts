// SPDX-License-Identifier: Apache-2.0
/**
 * `npm run bench -- --scenario sftp-835 [--claims 100000] [--deadline 600] [--payers 4]`: the SFTP
 * source end to end. A throwaway OpenSSH server on 127.0.0.1 (test/helpers/throwaway-sshd.ts), a
 * generated 835 of `--claims` claim payments dropped in its inbox (written under `.name.filepart`,
 * then renamed: the drop instant is the rename), the embedded engine as a child process (`node
 * bin/osprey.js start`, SQLite `synchronous: full`, local bus) running one `sftp-batch-poller`
 * channel with no transform, delivering each claim to a local HTTP receiver in this process.
 *
 * Reports claims/s from the drop to the last delivery, the engine's peak RSS (VmHWM) and CPU, and
 * ends with one JSON line using the MLLP bench's keys where they apply (`msgsPerSec`, `peakRssMb`,
 * `complete`, `engineCpuMsPerMessage`, `duplicateDeliveries`, `measuredSeconds` …). Progress goes
 * to stderr; everything started is stopped and removed at the end.
 */
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generate835 } from '../test/helpers/generate-835.ts';
import { embeddedEngineConfigYaml, EngineProcess, freePort } from '../test/helpers/engine-process.ts';
import { claimIdOf, sftpTestChannelYaml } from '../test/helpers/sftp-test-channel.ts';
import { startThrowawaySshd, type ThrowawaySshd } from '../test/helpers/throwaway-sshd.ts';
import { processCpuMs } from './lib/host-cpu.ts';
import { round } from './lib/stats.ts';

const CHANNEL = 'sftp-835-bench';
const log = (line: string): void => void process.stderr.write(`${line}\n`);

const { values } = parseArgs({
  options: {
    scenario: { type: 'string' },
    claims: { type: 'string', default: '100000' },
    payers: { type: 'string', default: '4' },
    deadline: { type: 'string', default: '600' },
  },
  strict: true,
});
const CLAIMS = Number(values.claims);
const PAYERS = Number(values.payers);
const DEADLINE_S = Number(values.deadline);
for (const [k, v] of Object.entries({ claims: CLAIMS, payers: PAYERS, deadline: DEADLINE_S })) {
  if (!Number.isInteger(v) || v < 1) {
    log(`--${k} must be a positive integer`);
    process.exit(2);
  }
}

const tmp = mkdtempSync(join(tmpdir(), 'osprey-bench-sftp-'));
let sshd: ThrowawaySshd | undefined;
let engine: EngineProcess | undefined;
let receiver: http.Server | undefined;

/** The receiver: answers 200 at once, counts each claim once (by CLP01), remembers the last first arrival. */
const seen = new Set<string>();
let duplicates = 0;
let unparsable = 0;
let lastDeliveryAt = NaN;
function record(payload: unknown, at: number): void {
  const id = claimIdOf(payload);
  if (!id) {
    unparsable++;
    return;
  }
  if (seen.has(id)) duplicates++;
  else {
    seen.add(id);
    lastDeliveryAt = at;
  }
}

async function main(): Promise<Record<string, unknown>> {
  const loadAvgAtStart = loadavg()[0] as number;
  receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = performance.now();
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' });
      res.end('{}');
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
        if (Array.isArray(body)) for (const item of body) record((item as { payload?: unknown }).payload ?? item, at);
        else record(body, at);
      } catch {
        unparsable++;
      }
    });
  });
  receiver.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => receiver!.listen({ host: '127.0.0.1', port: 0 }, () => resolve()));
  const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/erp/claims`;

  sshd = await startThrowawaySshd();
  const inbox = join(sshd.root, 'remittance', 'inbox');
  mkdirSync(inbox, { recursive: true });
  const channels = join(tmp, 'channels');
  mkdirSync(channels);
  writeFileSync(join(channels, `${CHANNEL}.channel.yaml`), sftpTestChannelYaml({ name: CHANNEL, sshd, directory: inbox, url, pollInterval: '200ms' }));
  const configFile = join(tmp, 'osprey.yaml');
  writeFileSync(configFile, embeddedEngineConfigYaml({ dbPath: join(tmp, 'osprey.db'), channelsDir: channels }));
  const httpPort = await freePort();
  engine = await EngineProcess.start({ configFile, env: { OSPREY_HTTP_PORT: String(httpPort), OSPREY_LOG_LEVEL: 'warn' }, httpPort, logFile: join(tmp, 'engine.log') });
  log(`bench: sftp-835, ${CLAIMS} claims (${PAYERS} payers), engine pid ${engine.pid}, sshd :${sshd.port}, temp ${tmp}`);

  const temp = join(inbox, '.remittance.835.filepart');
  const made = await generate835(temp, { claims: CLAIMS, payers: PAYERS, seed: 835 });
  log(`bench: generated ${(made.bytes / 1048576).toFixed(1)} MB`);
  const cpuAtStart = processCpuMs(engine.pid!);
  const droppedAt = performance.now();
  renameSync(temp, join(inbox, 'remittance.835'));
  const deadlineAt = droppedAt + DEADLINE_S * 1000;
  let lastReport = droppedAt;
  while (seen.size < made.claims && performance.now() < deadlineAt) {
    if (engine.hasExited) throw new Error(`the engine exited during the run\n${engine.log().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 20));
    if (performance.now() - lastReport > 5000) {
      lastReport = performance.now();
      log(`  ${seen.size}/${made.claims} claims delivered`);
    }
  }
  const complete = seen.size === made.claims;
  const engineCpuMs = processCpuMs(engine.pid!) - cpuAtStart;
  const peakRssMb = peakRss(engine.pid!);
  const files = (await engine.get(`/api/files?channel=${CHANNEL}`)).body.files as Array<{ state: string; recordsDone: number; recordsTotal?: number }>;
  const spanMs = (complete ? lastDeliveryAt : performance.now()) - droppedAt;
  const result = {
    scenario: 'sftp-835',
    claims: made.claims,
    fileMb: round(made.bytes / 1048576),
    payers: PAYERS,
    channel: CHANNEL,
    store: 'sqlite',
    bus: 'local',
    instances: 1,
    synchronous: 'full',
    complete,
    msgsPerSec: round(seen.size / (spanMs / 1000)),
    claimsPerSec: round(seen.size / (spanMs / 1000)),
    peakRssMb: round(peakRssMb),
    engineCpuPercentOfOneCore: round((engineCpuMs / spanMs) * 100),
    engineCpuMsPerMessage: round(engineCpuMs / Math.max(1, seen.size)),
    fullyDelivered: seen.size,
    deliveries: seen.size,
    expectedDeliveries: made.claims,
    duplicateDeliveries: duplicates,
    unparsableSinkRequests: unparsable,
    fileState: files[0]?.state ?? null,
    measuredSeconds: round(spanMs / 1000),
    cpus: cpus().length,
    loadAvgAtStart: round(loadAvgAtStart),
    node: process.version,
  };
  const line = (label: string, value: string): string => `  ${label.padEnd(30)} ${value}`;
  process.stdout.write(
    [
      `Osprey benchmark — sftp-835: one 835 on a throwaway OpenSSH server → sftp-batch-poller → local HTTP receiver (SQLite, local bus)`,
      line('file', `${result.fileMb} MB, ${made.claims} claim payments, ${PAYERS} payers`),
      line('complete', complete ? 'yes' : `NO (${seen.size}/${made.claims} claims delivered)`),
      line('end to end', `${result.claimsPerSec} claims/s (drop → last delivery, ${result.measuredSeconds} s)`),
      line('engine peak RSS (VmHWM)', `${result.peakRssMb} MB`),
      line('engine CPU', `${result.engineCpuPercentOfOneCore}% of one core, ${result.engineCpuMsPerMessage} ms per claim (all threads)`),
      line('duplicates at the receiver', String(duplicates)),
      '',
    ].join('\n'),
  );
  return result;
}

function peakRss(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

let final: Record<string, unknown>;
let exitCode = 0;
try {
  final = await main();
  if (final.complete !== true) exitCode = 1;
} catch (err) {
  log(`bench: ${(err as Error).message}`);
  final = { scenario: 'sftp-835', error: (err as Error).message.split('\n')[0], complete: false, claims: CLAIMS };
  exitCode = 1;
} finally {
  await engine?.kill9();
  await sshd?.stop();
  receiver?.closeAllConnections();
  receiver?.close();
  rmSync(tmp, { recursive: true, force: true });
}
process.stdout.write(`${JSON.stringify(final!)}\n`);
process.exit(exitCode);
