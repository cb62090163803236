// SPDX-License-Identifier: Apache-2.0
import { parseArgs } from 'node:util';
import { apiFetch, defaultApiUrl, printApiList } from '../api-client.ts';
import { UsageError } from '../usage.ts';

const DURATION = /^(\d+)(ms|s|m|h|d)$/;
const DURATION_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * A `--since` / `--until` value as the API takes it (ISO 8601): a duration ago (`10m`, `2h`,
 * `7d`: the units of channel files), or a time as written (`2026-03-06`, `2026-03-06T14:00:00Z`).
 * @throws UsageError for anything else.
 */
export function parseTimeArg(option: string, text: string, now = Date.now()): string {
  const d = DURATION.exec(text.trim());
  if (d) return new Date(now - Number(d[1]) * DURATION_MS[d[2] as keyof typeof DURATION_MS]).toISOString();
  // Date.parse alone would take "10" (the year 2010) or "March 6": only ISO 8601 dates and times.
  const ms = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(text.trim()) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(ms)) throw new UsageError(`--${option} ${JSON.stringify(text)} is neither a duration (30s, 10m, 2h, 7d) nor an ISO 8601 time (2026-03-06T14:00:00Z)`);
  return new Date(ms).toISOString();
}

/** `osprey messages`: searches messages, shows one, or replays one, through the management API. */
export async function messagesCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      api: { type: 'string', default: defaultApiUrl() },
      channel: { type: 'string' },
      state: { type: 'string' },
      'control-id': { type: 'string' },
      'patient-id': { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
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
    since: values.since === undefined ? undefined : parseTimeArg('since', values.since),
    until: values.until === undefined ? undefined : parseTimeArg('until', values.until),
    limit: values.limit,
  };
  for (const [k, v] of Object.entries(map)) if (v) query.set(k, v);
  type Row = { id: string; receivedAt: string; channel: string; state: string; keys: { messageType?: string; controlId?: string; patientId?: string }; error?: { code: string }; exceptionCategory?: string };
  return printApiList<Row>(`${api}/api/messages?${query}`, 'messages', {
    json: Boolean(values.json),
    header: ['ID', 'RECEIVED', 'CHANNEL', 'TYPE', 'CONTROL ID', 'PATIENT', 'STATE'],
    row: (m) => [
      m.id,
      m.receivedAt,
      m.channel,
      m.keys.messageType ?? '',
      m.keys.controlId ?? '',
      m.keys.patientId ?? '',
      m.state + (m.exceptionCategory ? ` (${m.exceptionCategory})` : m.error ? ` (${m.error.code})` : ''),
    ],
  });
}

