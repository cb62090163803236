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
