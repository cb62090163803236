// SPDX-License-Identifier: Apache-2.0
/**
 * Download speed of the SFTP connection (adapters/shared/sftp/sftp-connection.ts) from a throwaway
 * OpenSSH server on 127.0.0.1: ssh2's own read stream (one request in flight) against the parallel
 * reader at a few concurrencies, rounds alternating so that machine noise spreads over all modes.
 * Run it under each Node line to compare them (docs/design/0014-sftp-connection.md):
 *
 *   node --import tsx bench/sftp-download.ts [--mb 32] [--rounds 3]
 *   /path/to/node24/bin/node --import tsx bench/sftp-download.ts
 *
 * The last line of stdout is one JSON object: node version, file size and median MB/s per mode.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { connectSftp } from '../adapters/shared/sftp/sftp-connection.ts';
import { startThrowawaySshd } from '../test/helpers/throwaway-sshd.ts';

const { values } = parseArgs({ options: { mb: { type: 'string', default: '32' }, rounds: { type: 'string', default: '3' } } });
const mb = Number(values.mb);
const rounds = Number(values.rounds);
const modes = [
  { name: 'ssh2-stream', concurrency: 1, chunkSize: 32_768 },
  { name: 'parallel-4x32k', concurrency: 4, chunkSize: 32_768 },
  { name: 'parallel-16x32k', concurrency: 16, chunkSize: 32_768 },
  { name: 'parallel-64x32k', concurrency: 64, chunkSize: 32_768 },
  { name: 'parallel-16x64k', concurrency: 16, chunkSize: 65_536 },
] as const;

const sshd = await startThrowawaySshd();
try {
  const file = join(sshd.root, 'bench.bin');
  const content = randomBytes(mb * 1024 * 1024);
  writeFileSync(file, content);
  const conn = await connectSftp({ host: sshd.host, port: sshd.port, user: sshd.user, keyFile: sshd.keyFile, hostKey: sshd.hostKeyFingerprint });
  const speeds = new Map<string, number[]>(modes.map((m) => [m.name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const mode of modes) {
      const started = performance.now();
      let bytes = 0;
      for await (const chunk of conn.createReadStream(file, mode)) bytes += (chunk as Buffer).length;
      const seconds = (performance.now() - started) / 1000;
      if (bytes !== content.length) throw new Error(`${mode.name}: read ${bytes} bytes of ${content.length}`);
      speeds.get(mode.name)!.push(bytes / 1024 / 1024 / seconds);
      process.stderr.write(`round ${round + 1} ${mode.name}: ${(bytes / 1024 / 1024 / seconds).toFixed(1)} MB/s\n`);
    }
  }
  await conn.end();
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(JSON.stringify({ node: process.version, mb, rounds, mbPerSecond: Object.fromEntries([...speeds].map(([k, v]) => [k, Number(median(v).toFixed(1))])) }));
} finally {
  await sshd.stop();
}
