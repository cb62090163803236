// SPDX-License-Identifier: Apache-2.0
/**
 * The measurement behind docs/design/0012-x12-splitter.md: Osprey's own X12 splitter against the
 * npm packages x12-parser and node-x12, on the public 835 samples in test/fixtures/corpus/x12
 * (claims found, delimiters, envelope checks) and on a generated 835 (claims/s, peak RSS).
 * The two packages are not dependencies of Osprey; install them without saving first:
 *
 *   npm install --no-save x12-parser node-x12
 *   node --import tsx bench/x12/compare-x12-splitters.mjs [claims=120000]
 *
 * Each (library, file) run is a child process of its own so peak RSS is that run's alone.
 */
import { execFileSync } from 'node:child_process';
import { createReadStream, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const corpus = join(repo, 'test/fixtures/corpus/x12');

async function runOne(lib, file, mode) {
  let peak = process.memoryUsage().rss;
  const sample = () => { peak = Math.max(peak, process.memoryUsage().rss); };
  const timer = setInterval(sample, 5);
  const t0 = performance.now();
  const out = { lib, file: file.split('/').pop(), claims: 0, svc01: undefined, component: undefined, envelope: undefined, error: undefined };
  try {
    if (lib === 'osprey') {
      const x12 = await import(join(repo, 'engine/message-formats/x12/index.ts'));
      if (mode === 'corpus') out.envelope = (await x12.validateX12Envelope(createReadStream(file))).map((i) => i.code).join(',') || 'ok';
      for await (const r of x12.split835(createReadStream(file))) {
        out.claims++;
        if (out.svc01 === undefined) {
          const m = x12.X12Message.parse(r.text);
          out.component = m.delimiters.component;
          out.svc01 = m.get('SVC-1.2');
        }
        if (out.claims % 1000 === 0) sample();
      }
    } else if (lib === 'x12-parser') {
      const { X12parser, X12grouper, Schema } = await import('x12-parser');
      const schema = new Schema('005010X221A1', { start: 'CLP', end: null, name: 'claim', terminators: ['CLP', 'LX', 'PLB', 'SE'] }, true);
      const stream = createReadStream(file).pipe(new X12parser('utf8')).pipe(new X12grouper(schema));
      for await (const item of stream) {
        if (item?.name === 'claim' || item?.name === 'CLP') {
          out.claims++;
          const svc = (item.data ?? []).find((s) => s.name === 'SVC');
          // x12-parser names SVC01's components '1' and '1-1' (its own scheme): show both.
          if (out.svc01 === undefined && svc) out.svc01 = `${svc['1']}|${svc['1-1']}`;
        }
        if (out.claims % 1000 === 0) sample();
      }
    } else if (lib === 'node-x12') {
      const { X12Parser } = await import('node-x12');
      if (mode === 'corpus') {
        // Whole-file parse: the only mode with envelope checks (strict throws on the first).
        const text = readFileSync(file, 'utf8');
        try {
          new X12Parser(true).parse(text);
          out.envelope = 'ok';
        } catch (e) {
          out.envelope = 'throws: ' + String(e.message).replace(/^X12 Standard: /, '').slice(0, 70);
        }
        const loose = new X12Parser(false);
        loose.parse(text);
        const diag = loose.diagnostics.map((d) => d.message.replace(/^X12 Standard: /, '').slice(0, 30));
        if (diag.length) out.envelope += ` | loose diagnostics: ${diag.length}`;
      }
      const stream = createReadStream(file).pipe(new X12Parser(false));
      for await (const seg of stream) {
        if (seg.tag === 'CLP') out.claims++;
        if (seg.tag === 'SVC' && out.svc01 === undefined) out.svc01 = seg.valueOf(1);
        if (out.claims % 1000 === 0) sample();
      }
    }
  } catch (e) {
    out.error = String(e?.message ?? e).slice(0, 80);
  }
  clearInterval(timer);
  sample();
  out.seconds = +((performance.now() - t0) / 1000).toFixed(2);
  out.claimsPerSecond = Math.round(out.claims / out.seconds);
  out.peakRssMB = Math.round(peak / 1024 / 1024);
  return out;
}

if (process.argv[2] === '--child') {
  const [, , , lib, file, mode] = process.argv;
  process.stdout.write(JSON.stringify(await runOne(lib, file, mode)));
} else {
  const claims = Number(process.argv[2] ?? 120000);
  const libs = ['osprey', 'x12-parser', 'node-x12'];
  const child = (lib, file, mode) => {
    try {
      return JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', lib, file, mode], { cwd: repo, encoding: 'utf8', maxBuffer: 1e6, stdio: ['ignore', 'pipe', 'pipe'] }));
    } catch (e) {
      // A library that throws inside its stream transform takes the process down: record that.
      const why = String(e.stderr ?? e.message).split('\n').find((l) => /Error/.test(l)) ?? 'exited';
      return { lib, file: file.split('/').pop(), crashed: why.trim().slice(0, 90) };
    }
  };
  console.log('## corpus');
  for (const f of readdirSync(corpus).sort()) {
    for (const lib of libs) console.log(JSON.stringify(child(lib, join(corpus, f), 'corpus')));
  }
  const dir = mkdtempSync(join(tmpdir(), 'osprey-x12-bench-'));
  const big = join(dir, 'big.835');
  const { generate835 } = await import(join(repo, 'test/helpers/generate-835.ts'));
  await generate835(big, { claims, payers: 3, seed: 5 });
  console.log(`## generated: ${claims} claims, ${(statSync(big).size / 1024 / 1024).toFixed(1)} MB`);
  for (const lib of libs) console.log(JSON.stringify(child(lib, big, 'big')));
  rmSync(dir, { recursive: true, force: true });
}
