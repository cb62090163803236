// SPDX-License-Identifier: Apache-2.0
/**
 * HL7 v2 model throughput: parse + read 5 fields (MSH-9.1, MSH-10, PID-3.1, PID-5.1, PID-7), the
 * same workload as docs/design/0010-hl7-libraries.md, so the figures compare with its table. Also
 * times the eager-split baseline of that note, validateStructure and buildAck.
 *
 *   node --import tsx bench/hl7-parse.ts            (the corpus in test/fixtures/corpus, or OSPREY_CORPUS=…)
 *
 * Each figure is the median of 3 runs of 1.5 s after a warm-up, in messages per second, one
 * process. Results are printed as a table and as JSON (docs/design/0001-hl7-v2-model.md cites them).
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Hl7Message, buildAck, validateStructure } from '../engine/message-formats/hl7v2/index.ts';

const corpus = process.env.OSPREY_CORPUS ?? join(resolve(dirname(fileURLToPath(import.meta.url)), '..'), 'test', 'fixtures', 'corpus', 'hl7v2');
const inputs = {
  'ADT^A01 1.1 KB (11 seg, CRLF)': readFileSync(join(corpus, 'adt/mirth_TestADT_msg2_A01_CRLF.hl7'), 'utf8'),
  'ORU^R01 53 KB (190 seg, LF)': readFileSync(join(corpus, 'large/cdc_RawHL7DataDAART_53KB.hl7'), 'utf8'),
};

let sink = 0;
const FIELDS = ['MSH-9.1', 'MSH-10', 'PID-3.1', 'PID-5.1', 'PID-7'];

const workloads: Record<string, (text: string) => void> = {
  'Hl7Message parse + 5 fields': (text) => {
    const m = Hl7Message.parse(text);
    for (const f of FIELDS) sink += (m.get(f) ?? '').length;
  },
  'baseline eager split + 5 fields': (text) => {
    // The note's baseline: split everything, index by hand (no escapes, no MSH numbering rules).
    const segs = text.split(/\r\n|\r|\n/).map((s) => s.split('|'));
    const msh = segs[0] as string[];
    const pid = segs.find((s) => s[0] === 'PID') ?? [];
    sink += (msh[8] ?? '').split('^')[0]!.length + (msh[9] ?? '').length + (pid[3] ?? '').split('^')[0]!.length + (pid[5] ?? '').split('^')[0]!.length + (pid[7] ?? '').length;
  },
  'parse + validateStructure': (text) => {
    sink += validateStructure(Hl7Message.parse(text)).length;
  },
  'parse + buildAck(AA)': (text) => {
    sink += buildAck(Hl7Message.parse(text), { code: 'AA' }).length;
  },
};

function rate(fn: (t: string) => void, text: string, ms: number): number {
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let i = 0; i < 50; i++) fn(text);
    n += 50;
    now = performance.now();
  }
  return (n * 1000) / (now - start);
}

const results: Record<string, Record<string, number>> = {};
for (const [wname, fn] of Object.entries(workloads)) {
  results[wname] = {};
  for (const [iname, text] of Object.entries(inputs)) {
    rate(fn, text, 300); // warm-up
    const runs = [rate(fn, text, 1500), rate(fn, text, 1500), rate(fn, text, 1500)].sort((a, b) => a - b);
    (results[wname] as Record<string, number>)[iname] = Math.round(runs[1] as number);
  }
}

const names = Object.keys(inputs);
console.log(`| workload (msgs/s, median of 3 × 1.5 s) | ${names.join(' | ')} |`);
console.log(`|---|${names.map(() => '---:').join('|')}|`);
for (const [w, r] of Object.entries(results)) console.log(`| ${w} | ${names.map((n) => (r[n] ?? 0).toLocaleString('en-US')).join(' | ')} |`);
console.log(JSON.stringify({ node: process.version, results, sink: sink > 0 }));
