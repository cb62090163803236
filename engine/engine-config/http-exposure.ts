// SPDX-License-Identifier: Apache-2.0
/**
 * Who can reach the management port, and what may be served there: the sandbox receiver keeps
 * the payloads the channels delivered (PHI), so it is refused beyond loopback unless the
 * configuration says so in as many words (`sandbox.allowRemote`). Also the variable that lets
 * channel files reach the sandbox wherever the management port is (`${OSPREY_SANDBOX_URL}`).
 */
import type { EngineConfig } from '../config-schemas/engine-config.schema.ts';

/** 127.0.0.0/8, ::1 and localhost: only this machine can reach an address bound there. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/**
 * Why this configuration must not start (the sandbox on a non-loopback address without
 * `sandbox.allowRemote`), or undefined when it may.
 */
export function sandboxExposureProblem(config: Pick<EngineConfig, 'http' | 'sandbox'>): string | undefined {
  if (!config.sandbox?.enabled || config.sandbox.allowRemote || isLoopback(config.http.host)) return undefined;
  return (
    `sandbox.enabled is true and http.host is ${config.http.host}, beyond loopback: the sandbox keeps the payloads delivered to it, which hold PHI. ` +
    'Bind the management API to 127.0.0.1 (OSPREY_HTTP_HOST=127.0.0.1), disable the sandbox, or set sandbox.allowRemote: true'
  );
}

/**
 * The base URL of the sandbox receiver as channels reach it (`${OSPREY_SANDBOX_URL}`): the
 * management address actually in use, with a wildcard host (`0.0.0.0`, `::`) reached on loopback.
 */
export function sandboxUrl(host: string, port: number): string {
  const reachable = host === '0.0.0.0' || host === '::' || host === '' ? '127.0.0.1' : host;
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}/sandbox`;
}

/**
 * The environment channel files are interpolated with: `env`, plus `OSPREY_SANDBOX_URL` (the
 * sandbox at the management address in use) while the sandbox is enabled and `env` does not set
 * it. `address` is where the management API listens (its actual port when configured as 0);
 * without it, the configured one.
 */
export function channelEnvironment(config: Pick<EngineConfig, 'http' | 'sandbox'>, env: NodeJS.ProcessEnv, address?: { port: number }): NodeJS.ProcessEnv {
  if (!config.sandbox?.enabled || env.OSPREY_SANDBOX_URL) return env;
  return { ...env, OSPREY_SANDBOX_URL: sandboxUrl(config.http.host, address?.port ?? config.http.port) };
}
