// SPDX-License-Identifier: Apache-2.0
// Evaluation of hl7v2-dictionary@1.8.0 for message-structure validation (docs/design/0001-hl7-v2-model.md,
// "Structure validation"). NOT a project dependency: run it from a scratch directory,
//   mkdir /tmp/dict && cd /tmp/dict && npm init -y && npm install hl7v2-dictionary@1.8.0
//   node /path/to/osprey/bench/hl7-dictionary-eval.mjs      (OSPREY_CORPUS=<dir> for another corpus)
// It prints the dictionary's required segments per corpus ADT/SIU message, what is missing, and timings.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
const tImp0 = performance.now();
const { dictionaries, findNearestHL7Version } = await import('hl7v2-dictionary');
const tImp1 = performance.now();
const heap = process.memoryUsage().heapUsed / 1e6;
// Structure check driven by the dictionary: required segments (min>=1) of the top level and of required groups, in order.
function requiredOf(def) {
  const out = [];
  const entries = Object.entries(def.segments ?? {}).sort((a, b) => a[1].idx - b[1].idx);
  for (const [name, s] of entries) {
    if ((s.min ?? 0) < 1) continue;
    if (s.segments) { const inner = requiredOf(s); out.push(...inner.slice(0, 1)); } else out.push(name);
  }
  return out;
}
function check(text) {
  const segs = text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/).filter(Boolean);
  const msh = segs[0].split('|');
  const [type, trig, struct] = (msh[8] ?? '').split('^');
  let v = (msh[11] ?? '').split('^')[0];
  let dict = dictionaries[v] ?? dictionaries[findNearestHL7Version?.(v) ?? '2.5'];
  const def = dict.messages[struct] ?? dict.messages[`${type}_${trig}`];
  if (!def) return { missing: ['<no definition>'] };
  const req = requiredOf(def);
  const ids = segs.map((s) => s.slice(0, 3));
  let from = 0; const missing = [];
  for (const r of req) { const at = ids.indexOf(r, from); if (at < 0) missing.push(r); else from = at + 1; }
  return { req, missing, key: def === dict.messages[struct] ? struct : `${type}_${trig}` };
}
// Default: the corpus vendored in this repository, found from this script (it runs from a scratch dir).
const root = process.env.OSPREY_CORPUS ?? fileURLToPath(new URL('../test/fixtures/corpus/hl7v2', import.meta.url));
const files = [...readdirSync(join(root, 'adt')).map((f) => join(root, 'adt', f)), ...readdirSync(join(root, 'siu')).map((f) => join(root, 'siu', f))];
const texts = files.map((f) => readFileSync(f, 'utf8'));
for (let i = 0; i < files.length; i++) { const r = check(texts[i]); console.log(files[i].split('/').slice(-1)[0], r.key, (r.req ?? []).join(','), 'missing:', r.missing.join(',')); }
let n = 0; const t0 = performance.now();
while (performance.now() - t0 < 1500) { for (const t of texts) { check(t); n++; } }
console.log(JSON.stringify({ importMs: +(tImp1 - tImp0).toFixed(0), heapAfterImportMB: +heap.toFixed(1), checksPerSec: Math.round(n / ((performance.now() - t0) / 1000)) }));
console.log('ADT_A01 2.5 ROL entries at top level:', Object.keys(dictionaries['2.5'].messages.ADT_A01.segments).filter(k => k === 'ROL').length);
console.log('SIU_S12 2.8', JSON.stringify(dictionaries['2.8'].messages.SIU_S12)?.slice(0, 600));
