// SPDX-License-Identifier: Apache-2.0
/**
 * How the CLI calls the management API: with the bearer token from `OSPREY_API_TOKEN` (the first,
 * when it lists several), never from a flag, so it stays out of shell history and `ps`.
 */
export function apiFetch(url: string, init: RequestInit = {}, token = process.env.OSPREY_API_TOKEN?.split(',')[0]): Promise<Response> {
  if (!token) return fetch(url, init);
  return fetch(url, { ...init, headers: { ...(init.headers as Record<string, string> | undefined), authorization: `Bearer ${token}` } });
}
