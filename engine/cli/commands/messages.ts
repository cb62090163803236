// SPDX-License-Identifier: Apache-2.0
import { parseArgs } from 'node:util';
import { apiFetch } from '../api-client.ts';

/** `osprey messages`: searches messages, shows one, or replays one, through the management API. */
export async function messagesCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      api: { type: 'string', default: process.env.OSPREY_API_URL ?? `http://127.0.0.1:${process.env.OSPREY_HTTP_PORT ?? 8080}` },
      channel: { type: 'string' },
      state: { type: 'string' },
      'control-id': { type: 'string' },
      'patient-id': { type: 'string' },
      since: { type: 'string' },
      limit: { type: 'string' },
      id: { type: 'string' },
      // With --id: the newest N attempts of each delivery, and older ones before a delivery's attemptsBefore.
      attempts: { type: 'string' },
      'attempts-before': { type: 'string' },
      replay: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const api = values.api!.replace(/\/$/, '');
  if (values.replay) {
    const res = await apiFetch(`${api}/api/messages/${encodeURIComponent(values.replay)}/replay`, { method: 'POST' });
    process.stdout.write(`${JSON.stringify(await res.json(), null, 2)}\n`);
    return res.ok ? 0 : 1;
  }
  if (values.id) {
    const page = new URLSearchParams();
    if (values.attempts) page.set('attempts', values.attempts);
    if (values['attempts-before']) page.set('attemptsBefore', values['attempts-before']);
    const res = await apiFetch(`${api}/api/messages/${encodeURIComponent(values.id)}${page.size > 0 ? `?${page}` : ''}`);
    process.stdout.write(`${JSON.stringify(await res.json(), null, 2)}\n`);
    return res.ok ? 0 : 1;
  }
  const query = new URLSearchParams();
  const map: Record<string, string | undefined> = {
    channel: values.channel,
    state: values.state,
    controlId: values['control-id'],
    patientId: values['patient-id'],
    since: values.since,
    limit: values.limit,
  };
  for (const [k, v] of Object.entries(map)) if (v) query.set(k, v);
  const res = await apiFetch(`${api}/api/messages?${query}`);
  const body = (await res.json()) as {
    messages?: Array<{ id: string; receivedAt: string; channel: string; state: string; keys: { messageType?: string; controlId?: string; patientId?: string }; error?: { code: string }; exceptionCategory?: string }>;
    error?: { code: string; message: string };
  };
  if (!res.ok || !body.messages) {
    process.stderr.write(`${body.error?.code ?? res.status}: ${body.error?.message ?? 'request failed'}\n`);
    return 1;
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify(body.messages, null, 2)}\n`);
    return 0;
  }
  const rows = body.messages.map((m) => [
    m.id,
    m.receivedAt,
    m.channel,
    m.keys.messageType ?? '',
    m.keys.controlId ?? '',
    m.keys.patientId ?? '',
    m.state + (m.exceptionCategory ? ` (${m.exceptionCategory})` : m.error ? ` (${m.error.code})` : ''),
  ]);
  printTable(['ID', 'RECEIVED', 'CHANNEL', 'TYPE', 'CONTROL ID', 'PATIENT', 'STATE'], rows);
  return 0;
}

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  process.stdout.write(`${[line(header), ...rows.map(line)].join('\n')}\n`);
}
