// SPDX-License-Identifier: Apache-2.0
import { parseArgs } from 'node:util';
import { defaultApiUrl, printApiList } from '../api-client.ts';

/** A file as `GET /api/files` answers it (the fields the table shows). */
interface FileRow {
  name: string;
  channel: string;
  state: string;
  version: number;
  recordsTotal?: number;
  recordsDone: number;
  recordsErrored: number;
  error?: { code: string };
  pickedAt: string;
}

/**
 * `osprey files`: the files file sources took (newest first), through the management API: a table
 * of name, channel, state, records done / total, errored records and when it was picked up.
 */
export async function filesCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      api: { type: 'string', default: defaultApiUrl() },
      channel: { type: 'string' },
      state: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const api = values.api!.replace(/\/$/, '');
  const query = new URLSearchParams();
  if (values.channel) query.set('channel', values.channel);
  // States are upper case in the API; `--state done` is what people type.
  if (values.state) query.set('state', values.state.toUpperCase());
  if (values.limit) query.set('limit', values.limit);
  return printApiList<FileRow>(`${api}/api/files${query.size > 0 ? `?${query}` : ''}`, 'files', {
    json: Boolean(values.json),
    header: ['NAME', 'CHANNEL', 'STATE', 'DONE/TOTAL', 'ERRORS', 'PICKED AT'],
    row: (f) => [
      f.version > 1 ? `${f.name} (v${f.version})` : f.name,
      f.channel,
      f.state + (f.error ? ` (${f.error.code})` : ''),
      `${f.recordsDone}/${f.recordsTotal ?? '?'}`,
      String(f.recordsErrored),
      f.pickedAt,
    ],
  });
}
