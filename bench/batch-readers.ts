// SPDX-License-Identifier: Apache-2.0
/**
 * Micro-benchmark of the streaming batch-file readers: generates a synthetic CSV charge file and an
 * HL7 v2 batch file of about `--mb` MB each (default 50) in a temporary directory, then runs each
 * reader in a fresh child process (so its peak RSS, VmHWM, is the reader's own) and reports
 * records/s, MB/s and peak RSS. The last line of stdout is one JSON object.
 *
 *   node --import tsx bench/batch-readers.ts [--mb 50] [--keep]
 */
import { execFileSync } from 'node:child_process';
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import type { CsvRecordSchemaInput } from '../engine/message-formats/csv-record/index.ts';

const CSV_SCHEMA: CsvRecordSchemaInput = {
  delimiter: '|',
  required: ['charge_id', 'mrn', 'amount'],
  types: { service_date: { type: 'date', format: 'MM/DD/YYYY' }, units: 'integer', amount: { type: 'decimal', scale: 2 } },
  keys: { id: 'charge_id', patient: 'mrn', visit: 'encounter_number', facility: 'facility' },
  kind: 'charge',
  sender: 'bench',
  trailer: { tag: 'TRAILER', countField: 2, totalField: 3, totalOf: 'amount' },
};

async function write(path: string, targetBytes: number, head: string, line: (i: number) => string, tail: (n: number, total: bigint) => string): Promise<number> {
  const out = createWriteStream(path);
  let bytes = 0;
  let n = 0;
  let cents = 0n;
  const put = async (s: string): Promise<void> => {
    bytes += Buffer.byteLength(s);
    if (!out.write(s)) await once(out, 'drain');
  };
  await put(head);
  while (bytes < targetBytes) {
    const l = line(n);
    cents += BigInt(1000 + (n % 50000));
    n++;
    await put(l);
  }
  await put(tail(n, cents));
  out.end();
  await once(out, 'close');
  return n;
}

const csvRow = (i: number): string => {
  const cents = 1000 + (i % 50000);
  const amount = `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
  return `CHG-${String(i).padStart(9, '0')}|E${1000000 + (i % 90000)}|71${String(i % 9999999).padStart(8, '0')}|RVH|03/${String(1 + (i % 28)).padStart(2, '0')}/2026|99213|${1 + (i % 4)}|${amount}|Office visit, established patient, level 3\r\n`;
};

const hl7Message = (i: number): string =>
  [
    `MSH|^~\\&|CARESUITE|RVH|RCM|RVH|20260306120000-0600||DFT^P03|B${i}|P|2.5.1|||||||UNICODE UTF-8`,
    `EVN|P03|20260306120000-0600`,
    `PID|1||E${1000000 + (i % 90000)}^^^RVH^MR||Doe^Jane^Q||19650601|F|||123 Main St^^Edina^MN^55416^US`,
    `PV1|1|I|4W^401^A^RVH||||10101^Smith^John|||MED||||||||71${String(i).padStart(8, '0')}`,
    `FT1|1|||20260306|20260306|CG|99213^Office visit^CPT|||1|||||||||||||||10101^Smith^John`,
    `OBX|1|ST|NOTE||MSH in data must not split the message`,
  ].join('\r') + '\r\n';

function child(kind: string, path: string): Record<string, unknown> {
  const out = execFileSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', kind, path], { encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out.trim().split('\n').at(-1) as string) as Record<string, unknown>;
}

function peakRssMb(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m === null ? Math.round(process.memoryUsage().rss / 1048576) : Math.round(Number(m[1]) / 1024);
}

async function runChild(kind: string, path: string): Promise<void> {
  const csv = await import('../engine/message-formats/csv-record/index.ts');
  const hl7 = await import('../engine/message-formats/hl7v2/index.ts');
  const started = process.hrtime.bigint();
  let records = 0;
  let errors = 0;
  let extra: Record<string, unknown> = {};
  if (kind === 'baseline') {
    // imports only: the floor every other figure stands on
  } else if (kind === 'csv-check') {
    const r = await csv.checkCsvFile(createReadStream(path), CSV_SCHEMA);
    records = r.rows;
    extra = { ok: r.ok, total: r.total };
  } else if (kind === 'csv-read') {
    for await (const item of csv.readCsvRecords(createReadStream(path), CSV_SCHEMA)) {
      records++;
      if (item.error !== undefined) errors++;
    }
  } else if (kind === 'csv-read-parse') {
    // What ingest does per record: parse the stored text and extract the keys.
    for await (const item of csv.readCsvRecords(createReadStream(path), CSV_SCHEMA)) {
      records++;
      if (csv.csvRecordFormat.keys(csv.csvRecordFormat.parse(item.text)).controlId === undefined) errors++;
    }
  } else if (kind === 'hl7-check') {
    const r = await hl7.checkHl7BatchEnvelope(createReadStream(path));
    records = r.messages;
    extra = { ok: r.ok };
  } else if (kind === 'hl7-read') {
    for await (const item of hl7.readHl7BatchMessages(createReadStream(path))) {
      records++;
      if (item.error !== undefined) errors++;
    }
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const mb = kind === 'baseline' ? 0 : statSync(path).size / 1048576;
  console.log(
    JSON.stringify({ kind, records, errors, seconds: +seconds.toFixed(2), recordsPerSec: Math.round(records / seconds), mbPerSec: +(mb / seconds).toFixed(1), peakRssMb: peakRssMb(), ...extra }),
  );
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--child') return runChild(args[1] as string, args[2] as string);
  const mbIndex = args.indexOf('--mb');
  const mb = mbIndex >= 0 ? Number(args[mbIndex + 1]) : 50;
  const dir = mkdtempSync(join(tmpdir(), 'osprey-batch-bench-'));
  try {
    const csvPath = join(dir, 'charges.csv');
    const hl7Path = join(dir, 'batch.hl7');
    const header = 'charge_id|mrn|encounter_number|facility|service_date|cpt|units|amount|description\r\n';
    const csvRows = await write(csvPath, mb * 1048576, header, csvRow, (n, cents) => `TRAILER|${n}|${cents / 100n}.${String(cents % 100n).padStart(2, '0')}\r\n`);
    const hl7Messages = await write(hl7Path, mb * 1048576, 'FHS|^~\\&|CARESUITE|RVH||||||||F1\r\nBHS|^~\\&|CARESUITE|RVH||||||||B1\r\n', hl7Message, (n) => `BTS|${n}\r\nFTS|1\r\n`);
    console.error(`generated ${csvRows} CSV rows (${(statSync(csvPath).size / 1048576).toFixed(1)} MB), ${hl7Messages} HL7 messages (${(statSync(hl7Path).size / 1048576).toFixed(1)} MB) in ${dir}`);
    const results = [child('baseline', csvPath)];
    for (const kind of ['csv-check', 'csv-read', 'csv-read-parse']) results.push(child(kind, csvPath));
    for (const kind of ['hl7-check', 'hl7-read']) results.push(child(kind, hl7Path));
    for (const r of results) console.log(`${String(r.kind).padEnd(15)} ${String(r.records).padStart(9)} records  ${String(r.recordsPerSec).padStart(8)} rec/s  ${String(r.mbPerSec).padStart(6)} MB/s  peak RSS ${r.peakRssMb} MB`);
    console.log(JSON.stringify({ mb, node: process.version, csvRows, hl7Messages, results }));
  } finally {
    if (!args.includes('--keep')) rmSync(dir, { recursive: true, force: true });
  }
}

await main();
