// SPDX-License-Identifier: Apache-2.0
import { parseArgs } from 'node:util';
import { Engine } from '../../engine.ts';
import { loadEngineConfig } from '../../engine-config/load-engine-config.ts';
import { apiFetch, firstToken } from '../api-client.ts';

/** `osprey start`: runs until SIGINT/SIGTERM, then stops cleanly (in-flight work stays in the store). */
export async function startCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string' } } });
  const config = loadEngineConfig({ file: values.config, env: process.env });
  const engine = new Engine({ config });
  await engine.start();

  const http = engine.httpAddress;
  const base = `http://${http?.host === '::' || http?.host === '0.0.0.0' ? '127.0.0.1' : http?.host}:${http?.port}`;
  const lines = [`Osprey is running. Management API: ${base}/api/channels  (health: ${base}/healthz)`];
  for (const issue of engine.channelIssues.filter((i) => i.severity === 'error')) {
    lines.push(`  ✗ ${issue.file}:${issue.line}  ${issue.code}  ${issue.message}`);
  }
  const res = await apiFetch(`${base}/api/channels`, {}, firstToken(config.http.apiToken)).then((r) => r.json() as Promise<{ channels: Array<{ name: string; status: string; summary?: string; reason?: string; error?: string }> }>);
  for (const c of res.channels) {
    const mark = c.status === 'RUNNING' ? '✓' : c.reason ? '–' : '✗';
    lines.push(`  ${mark} ${c.name}  ${c.status}${c.status === 'RUNNING' && c.summary ? `  ${c.summary}` : ''}${c.reason ? `  (${c.reason})` : ''}${c.error ? `  ${c.error}` : ''}`);
  }
  if (engine.sandbox) lines.push(`Sandbox ERP/RCM receiver: ${base}/sandbox/received`);
  lines.push('Send the samples:  npx osprey send samples/hl7v2/adt    then: npx osprey messages');
  process.stdout.write(`${lines.join('\n')}\n`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    engine.logger.info('stopping', { signal });
    await engine.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  return 0;
}
