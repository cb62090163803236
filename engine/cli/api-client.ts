// SPDX-License-Identifier: Apache-2.0
/**
 * How the CLI calls the management API: with the bearer token from `OSPREY_API_TOKEN` (the first,
 * when it lists several), never from a flag, so it stays out of shell history and `ps`.
 */
export function apiFetch(url: string, init: RequestInit = {}, token = firstToken(process.env.OSPREY_API_TOKEN)): Promise<Response> {
  if (!token) return fetch(url, init);
  return fetch(url, { ...init, headers: { ...(init.headers as Record<string, string> | undefined), authorization: `Bearer ${token}` } });
}

/** The token a client sends from a list (`http.apiToken`, `OSPREY_API_TOKEN`: new first while rotating). */
export function firstToken(tokens: string | undefined): string | undefined {
  return tokens?.split(',')[0];
}

/** The management API the CLI talks to without `--api`: `OSPREY_API_URL`, else 127.0.0.1 on `OSPREY_HTTP_PORT` (8080). */
export function defaultApiUrl(env: NodeJS.ProcessEnv = process.env): string {
  return env.OSPREY_API_URL || `http://127.0.0.1:${env.OSPREY_HTTP_PORT || 8080}`;
}

/**
 * A list command's whole output: GETs `url`, takes the array under `field`, and prints it as JSON
 * (`--json`) or as a table (`header` and one `row` per item). An API error is printed to stderr as
 * `CODE: message`. Returns the exit code.
 */
export async function printApiList<T>(url: string, field: string, options: { json: boolean; header: string[]; row: (item: T) => string[] }): Promise<number> {
  const res = await apiFetch(url);
  const body = (await res.json()) as Record<string, unknown> & { error?: { code: string; message: string } };
  const items = body[field] as T[] | undefined;
  if (!res.ok || !Array.isArray(items)) {
    process.stderr.write(`${body.error?.code ?? res.status}: ${body.error?.message ?? 'request failed'}\n`);
    return 1;
  }
  if (options.json) process.stdout.write(`${JSON.stringify(items, null, 2)}\n`);
  else printTable(options.header, items.map(options.row));
  return 0;
}

/** Prints rows under a header, columns padded to their widest cell. */
export function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  process.stdout.write(`${[line(header), ...rows.map(line)].join('\n')}\n`);
}
