// SPDX-License-Identifier: Apache-2.0
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MllpClient } from '../../../adapters/outbound/mllp-sender/mllp-client.ts';
import { Hl7Message, splitBatch } from '../../message-formats/hl7v2/index.ts';
import { apiFetch, defaultApiUrl } from '../api-client.ts';

/** A channel as `GET /api/channels` shows it: what `send` routes by. */
export interface ChannelRoute {
  name: string;
  accept?: string[];
  status: string;
  source?: { port?: number };
}

/**
 * `osprey send <file|dir…>`: an MLLP client that sends each message of each file (batch and
 * multi-message files are split) and prints its ACK. Without --port, each message goes to the
 * running engine's channel that accepts its type (asked from the management API): each line names
 * the channel, and a warning on stderr says when several running channels accept the type.
 */
export async function sendCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string' },
      tls: { type: 'boolean', default: false },
      ca: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      insecure: { type: 'boolean', default: false },
      api: { type: 'string', default: defaultApiUrl() },
      timeout: { type: 'string', default: '10000' },
    },
  });
  if (positionals.length === 0) throw new Error('give one or more files or directories of HL7 messages');
  const files = positionals.flatMap(expandFiles);
  const routes = values.port ? undefined : await fetchRoutes(values.api!);
  const clients = new Map<number, MllpClient>();
  const tls = values.tls
    ? {
        ca: values.ca ? readFileSync(values.ca, 'utf8') : undefined,
        cert: values.cert ? readFileSync(values.cert, 'utf8') : undefined,
        key: values.key ? readFileSync(values.key, 'utf8') : undefined,
        rejectUnauthorized: !values.insecure,
      }
    : undefined;

  let failures = 0;
  const warned = new Set<string>();
  try {
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      for (const message of splitBatch(text).messages) {
        const type = messageTypeOf(message);
        const route = routes ? routeFor(routes, type) : undefined;
        if (route && route.others.length > 0 && !warned.has(type)) {
          warned.add(type);
          process.stderr.write(
            `warning: ${type} is accepted by ${route.others.length + 1} running channels (${[route.channel, ...route.others].join(', ')}); ` +
              `sending to ${route.channel} — use --port to choose\n`,
          );
        }
        const port = values.port ? Number(values.port) : route?.port;
        if (!port) {
          process.stdout.write(`${file}: ${type || 'unknown type'} → no running channel accepts it (use --port)\n`);
          failures++;
          continue;
        }
        let client = clients.get(port);
        if (!client) {
          client = new MllpClient({ host: values.host!, port, tls, timeoutMs: Number(values.timeout) });
          await client.connect();
          clients.set(port, client);
        }
        const ack = await client.send(message);
        const code = /(?:^|\r)MSA\|([^|\r]*)/.exec(ack)?.[1] ?? '??';
        const err = /(?:^|\r)ERR\|([^\r]*)/.exec(ack)?.[1];
        if (code !== 'AA' && code !== 'CA') failures++;
        const target = route ? `${route.channel} :${port}` : `:${port}`;
        process.stdout.write(`${file}  ${type}  → ${target}  ${code}${err ? `  ERR|${err}` : ''}\n`);
        if (process.env.OSPREY_SEND_VERBOSE) process.stdout.write(`${ack.replace(/\r/g, '\n')}\n`);
      }
    }
  } finally {
    for (const client of clients.values()) await client.close();
  }
  return failures > 0 ? 1 : 0;
}

function expandFiles(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .sort()
    .flatMap((name) => expandFiles(join(path, name)))
    .filter((f) => /\.(hl7|txt|er7)$/i.test(f));
}

function messageTypeOf(text: string): string {
  try {
    return Hl7Message.parse(text).messageType ?? '';
  } catch {
    return '';
  }
}

async function fetchRoutes(api: string): Promise<ChannelRoute[]> {
  try {
    const res = await apiFetch(`${api.replace(/\/$/, '')}/api/channels`);
    return ((await res.json()) as { channels: ChannelRoute[] }).channels;
  } catch {
    throw new Error(`no --port given and the engine's API at ${api} is not reachable; is "npm start" running?`);
  }
}

/**
 * The running channel a message type goes to: the first (in the API's order) that accepts it and
 * has a port, with the names of the others that accept it too (a warning: the sender may mean one of them).
 */
export function routeFor(routes: readonly ChannelRoute[], type: string): { channel: string; port: number; others: string[] } | undefined {
  const matching = routes.filter((r) => r.status === 'RUNNING' && r.accept?.includes(type) && r.source?.port !== undefined);
  const [first, ...others] = matching;
  return first ? { channel: first.name, port: first.source!.port!, others: others.map((r) => r.name) } : undefined;
}
