// SPDX-License-Identifier: Apache-2.0
/**
 * Summarises a V8 CPU profile (`node --cpu-prof`, or `npm run bench -- --cpu-prof <dir>`, which
 * profiles the engine child): where the busy time goes, by function (self and inclusive) and by file
 * or package, as a share of the busy (non-idle) CPU time. Paths are shown relative to the repo.
 *
 *   node --import tsx bench/profile-summary.ts <file.cpuprofile> [--top 25]
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileRow {
  name: string;
  ms: number;
  pct: number;
}
export interface ProfileSummary {
  wallMs: number;
  busyMs: number;
  selfByFunction: ProfileRow[];
  inclusiveByFunction: ProfileRow[];
  selfByFile: ProfileRow[];
}

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function fileOf(url: string): string {
  if (url === '') return '(native)';
  let path = url.startsWith('file://') ? fileURLToPath(url) : url;
  if (path.startsWith(repoRoot)) path = path.slice(repoRoot.length + 1);
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
  return nm ? `node_modules/${nm[1]}` : path;
}

function keyOf(n: ProfileNode): string {
  const { functionName, url, lineNumber } = n.callFrame;
  if (url === '') return functionName || '(anonymous)';
  let path = url.startsWith('file://') ? fileURLToPath(url) : url;
  if (path.startsWith(repoRoot)) path = path.slice(repoRoot.length + 1);
  return `${path}:${functionName || '(anonymous)'}:${lineNumber + 1}`;
}

const NOT_BUSY = new Set(['(idle)', '(program)']);

export function summariseProfile(profile: CpuProfile, top = 25): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000));
  const wallMs = (profile.endTime - profile.startTime) / 1000;
  let busyMs = 0;
  const selfFn = new Map<string, number>();
  const selfFile = new Map<string, number>();
  for (const [id, ms] of self) {
    const n = byId.get(id)!;
    if (NOT_BUSY.has(n.callFrame.functionName)) continue;
    busyMs += ms;
    const k = keyOf(n);
    selfFn.set(k, (selfFn.get(k) ?? 0) + ms);
    const f = n.callFrame.url === '' ? n.callFrame.functionName : fileOf(n.callFrame.url);
    selfFile.set(f, (selfFile.get(f) ?? 0) + ms);
  }
  // Inclusive: a node's self time counts once for every distinct function on its stack.
  const inclusive = new Map<string, number>();
  const root = profile.nodes[0];
  const walk = (n: ProfileNode, onPath: string[]): void => {
    const k = keyOf(n);
    const added = !onPath.includes(k);
    if (added) onPath.push(k);
    const ms = NOT_BUSY.has(n.callFrame.functionName) ? 0 : (self.get(n.id) ?? 0);
    if (ms > 0) for (const p of onPath) inclusive.set(p, (inclusive.get(p) ?? 0) + ms);
    for (const c of n.children ?? []) walk(byId.get(c)!, onPath);
    if (added) onPath.pop();
  };
  if (root) for (const c of root.children ?? []) walk(byId.get(c)!, []);
  const rows = (m: Map<string, number>): ProfileRow[] =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, ms]) => ({ name, ms: Math.round(ms), pct: Math.round((ms / busyMs) * 1000) / 10 }));
  return { wallMs, busyMs, selfByFunction: rows(selfFn), inclusiveByFunction: rows(inclusive), selfByFile: rows(selfFile) };
}

export function formatProfileSummary(s: ProfileSummary): string {
  const table = (title: string, rs: ProfileRow[]): string => `${title}\n${rs.map((r) => `  ${r.pct.toFixed(1).padStart(5)}%  ${String(r.ms).padStart(7)} ms  ${r.name}`).join('\n')}`;
  return [
    `wall ${Math.round(s.wallMs)} ms, busy (non-idle) ${Math.round(s.busyMs)} ms = ${Math.round((s.busyMs / s.wallMs) * 100)}% of one core; percentages are of busy time`,
    table('self time by file / package:', s.selfByFile),
    table('self time by function:', s.selfByFunction),
    table('inclusive time by function (callees included):', s.inclusiveByFunction),
  ].join('\n');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' } } });
  for (const file of positionals) {
    process.stdout.write(`${file}\n${formatProfileSummary(summariseProfile(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, Number(values.top)))}\n`);
  }
}
