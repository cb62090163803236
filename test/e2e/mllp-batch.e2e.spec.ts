// SPDX-License-Identifier: Apache-2.0
/**
 * HL7 batches (FHS/BHS … BTS/FTS) in one MLLP frame, against a real engine over TCP: each message
 * stored with its own bytes and processed like a single one, in order per patient, and one batch
 * ACK back that references the received file and batch; a batch whose counts disagree is refused
 * whole (one ERROR record, every message AR, nothing delivered); a malformed message in a batch is
 * stored as ERROR and answered AE inside the batch ACK while the rest go on; `batchAck: errors-only`
 * answers only what was not accepted.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { ErpStandIn } from '../fixtures/erp-stand-in.ts';
import { frame, RawMllpClient } from '../helpers/mllp-raw-client.ts';
import { adt, channelsDir, testChannelYaml } from '../helpers/test-channel.ts';
import { removeTempDirs, REPO_ROOT, TestEngine } from '../helpers/test-engine.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { Hl7Message, splitBatch, type Hl7BatchFile } from '../../engine/message-formats/hl7v2/index.ts';

const ALL = 'batch-all';
const ERRORS_ONLY = 'batch-errors';
const CORPUS = 'batch-corpus';
const CORPUS_DIR = join(REPO_ROOT, 'test', 'fixtures', 'corpus', 'hl7v2', 'batch');

interface BatchOptions {
  fileId?: string;
  batchId?: string;
  /** BTS-1. @defaultValue the number of messages */
  declared?: number;
  /** FTS-1. @defaultValue 1 */
  fileDeclared?: number;
}

/** A file of one batch: FHS BHS (with FHS-11 / BHS-11) messages BTS FTS, segments joined by CR. */
function batchText(messages: string[], o: BatchOptions = {}): string {
  return [
    `FHS|^~\\&|CARESUITE|RVH|OSPREY|RVH|20260306141500||||${o.fileId ?? ''}`,
    `BHS|^~\\&|CARESUITE|RVH|OSPREY|RVH|20260306141500||||${o.batchId ?? ''}`,
    ...messages,
    `BTS|${o.declared ?? messages.length}`,
    `FTS|${o.fileDeclared ?? 1}`,
  ].join('\r');
}

/** The batch ACK, split and checked for its own consistency (its BTS/FTS counts agree with what it holds). */
function parseBatchAck(text: string): { file: Hl7BatchFile; acks: Hl7Message[] } {
  const file = splitBatch(text);
  expect(file.issues, `the batch ACK is consistent: ${JSON.stringify(text)}`).to.deep.equal([]);
  return { file, acks: file.messages.map((m) => Hl7Message.parse(m)) };
}

/** Field n (HL7 numbering) of an envelope segment. */
function envelopeField(segment: string | undefined, n: number): string | undefined {
  return segment?.split(segment[3] as string)[n - 1];
}

/**
 * The bytes of each message of a batch file as the test reads them, independently of the listener:
 * from its MSH line to its last non-blank line, that line's terminator included.
 */
function messageBytes(file: Buffer): Buffer[] {
  const lines = file.toString('latin1').match(/[^\r\n]*(?:\r\n|\r|\n|$)/g) ?? [];
  const out: string[][] = [];
  let current: string[] | undefined;
  for (const line of lines) {
    if (/^(?:FHS|BHS|BTS|FTS)[^A-Za-z0-9]/.test(line)) current = undefined;
    else if (/^MSH[^A-Za-z0-9]/.test(line)) out.push((current = [line]));
    else current?.push(line);
  }
  return out.map((m) => {
    while (m.length > 1 && m[m.length - 1]!.trim() === '') m.pop();
    return Buffer.from(m.join(''), 'latin1');
  });
}

describe('HL7 batches over MLLP (e2e)', function () {
  this.timeout(60_000);

  let standIn: ErpStandIn;
  let osprey: TestEngine;
  let run = 0;
  const tag = (): string => `B${Date.now().toString(36).toUpperCase()}${++run}`;

  /** Sends one frame on a fresh connection; resolves with the answer (one frame). */
  async function send(channel: string, payload: string | Buffer): Promise<string> {
    const client = await RawMllpClient.connect(osprey.port(channel));
    try {
      return await client.request(payload, 20_000);
    } finally {
      client.close();
    }
  }

  /** ERROR messages of a channel, by id. */
  async function errorIds(channel: string): Promise<Set<string>> {
    const res = await osprey.get(`/api/messages?channel=${channel}&state=ERROR&limit=1000`);
    return new Set(res.body.messages.map((m: any) => m.id as string));
  }

  /** Waits until the stand-in has applied events of all these control ids at `path`; returns the applied payloads of the path. */
  async function deliveredAt(path: string, controlIds: string[]): Promise<any[]> {
    await waitFor(
      () => {
        const seen = new Set(standIn.applied.filter((a) => a.path === path).map((a) => (a.payload as any).controlId));
        return controlIds.every((id) => seen.has(id));
      },
      { timeoutMs: 20_000, what: `${controlIds.length} events at ${path}` },
    );
    return standIn.applied.filter((a) => a.path === path).map((a) => a.payload as any);
  }

  before(async function () {
    standIn = await ErpStandIn.start();
    const dir = channelsDir({
      [`${ALL}.channel.yaml`]: testChannelYaml({ name: ALL, destinations: [{ name: 'sink', url: `${standIn.url}/erp/${ALL}` }] }),
      [`${ERRORS_ONLY}.channel.yaml`]: testChannelYaml({ name: ERRORS_ONLY, batchAck: 'errors-only', destinations: [{ name: 'sink', url: `${standIn.url}/erp/${ERRORS_ONLY}` }] }),
      [`${CORPUS}.channel.yaml`]: testChannelYaml({
        name: CORPUS,
        accept: ['ADT^A01', 'RSP^K11', 'ORM^O01'],
        destinations: [{ name: 'sink', url: `${standIn.url}/erp/${CORPUS}` }],
      }),
    });
    osprey = await TestEngine.start({ channelsDir: dir });
  });

  after(async function () {
    await osprey?.stop();
    await standIn?.close();
    removeTempDirs();
  });

  describe('a good batch (batchAck: all, the default)', function () {
    it('stores and delivers every message, each patient in batch order, and answers one batch ACK referencing the file and batch', async function () {
      const t = tag();
      const patients = ['A', 'B', 'C'].map((p) => `${t}-P${p}`);
      const messages: string[] = [];
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) {
        for (const patientId of patients) {
          const controlId = `${patientId}-${i}`;
          ids.push(controlId);
          messages.push(adt({ controlId, patientId, recordedAt: `2026030614${String(i).padStart(4, '0')}` }));
        }
      }
      const { file, acks } = parseBatchAck(await send(ALL, batchText(messages, { fileId: `F-${t}`, batchId: `B-${t}` })));

      expect(envelopeField(file.fileHeader, 12), 'FHS-12: the received FHS-11').to.equal(`F-${t}`);
      expect(envelopeField(file.batches[0]?.header, 12), 'BHS-12: the received BHS-11').to.equal(`B-${t}`);
      expect(envelopeField(file.fileHeader, 11), 'FHS-11: a control id of its own').to.match(/^[0-9A-Z]{18}$/);
      expect(envelopeField(file.fileHeader, 3), 'FHS-3: the receiver of the received file').to.equal('OSPREY');
      expect(envelopeField(file.fileHeader, 5), 'FHS-5: its sender').to.equal('CARESUITE');
      expect(file.batches).to.have.lengthOf(1);
      expect(file.batches[0]!.declaredMessageCount, 'BTS-1').to.equal(30);
      expect(file.declaredBatchCount, 'FTS-1').to.equal(1);
      expect(acks.map((a) => a.get('MSA-1'))).to.deep.equal(ids.map(() => 'AA'));
      expect(acks.map((a) => a.get('MSA-2')), 'one ACK per message, in batch order').to.deep.equal(ids);

      // Each message is a message of its own in the store, with its own bytes.
      const [stored] = await osprey.byControlId(ids[4]!, ALL);
      const detail = await osprey.waitForState(stored.id, 'SENT');
      expect(Buffer.from(detail.rawBase64, 'base64').toString('utf8'), 'its bytes, its last segment terminator included').to.equal(`${messages[4]}\r`);

      const events = await deliveredAt(`/erp/${ALL}`, ids);
      for (const patientId of patients) {
        const order = events.filter((e) => e.patientId === patientId).map((e) => e.recordedAt);
        expect(order, `events of ${patientId} in batch order`).to.deep.equal([...order].sort());
        expect(order).to.have.lengthOf(10);
      }

      // The same batch again: every message a duplicate, ACKed AA, nothing processed twice (a later
      // message of the same patients is delivered after where duplicates would have been).
      const again = parseBatchAck(await send(ALL, batchText(messages, { fileId: `F-${t}`, batchId: `B-${t}` })));
      expect(again.acks.map((a) => a.get('MSA-1'))).to.deep.equal(ids.map(() => 'AA'));
      const later = patients.map((patientId) => adt({ controlId: `${patientId}-later`, patientId, recordedAt: '20260306149999' }));
      parseBatchAck(await send(ALL, batchText(later)));
      const after = await deliveredAt(`/erp/${ALL}`, patients.map((p) => `${p}-later`));
      const counts = new Map<string, number>();
      for (const e of after) counts.set(e.controlId, (counts.get(e.controlId) ?? 0) + 1);
      expect(ids.filter((id) => counts.get(id) !== 1), 'each message applied once').to.deep.equal([]);
    });
  });

  describe('a batch whose declared counts do not match', function () {
    it('BTS-1 off: is refused whole — one ERROR record naming the count, every message AR, nothing accepted; the corrected resend is taken', async function () {
      const t = tag();
      const ids = [1, 2, 3].map((i) => `${t}-${i}`);
      const messages = ids.map((controlId) => adt({ controlId, patientId: `${t}-P` }));
      const payload = batchText(messages, { fileId: `F-${t}`, batchId: `B-${t}`, declared: 5 });
      const before = await errorIds(ALL);
      const { file, acks } = parseBatchAck(await send(ALL, payload));

      expect(envelopeField(file.batches[0]?.header, 12)).to.equal(`B-${t}`);
      expect(envelopeField(file.batches[0]?.trailer, 3), 'BTS-2 names the problem').to.match(/BTS-1 of batch 1 declares 5 message\(s\) but the batch holds 3/);
      expect(acks.map((a) => a.get('MSA-1'))).to.deep.equal(['AR', 'AR', 'AR']);
      expect(acks.map((a) => a.get('MSA-2'))).to.deep.equal(ids);
      for (const a of acks) {
        expect(a.get('ERR-5.1')).to.equal('OSPREY_ERR_HL7_BATCH_COUNT');
        expect(a.get('ERR-8')).to.match(/declares 5/);
      }

      for (const id of ids) expect(await osprey.byControlId(id, ALL), `nothing stored under ${id}`).to.deep.equal([]);
      const added = [...(await errorIds(ALL))].filter((id) => !before.has(id));
      expect(added, 'the batch is one ERROR record').to.have.lengthOf(1);
      const m = await osprey.message(added[0]!);
      expect(m.error.code).to.equal('OSPREY_ERR_HL7_BATCH_COUNT');
      expect(Buffer.from(m.rawBase64, 'base64').toString('utf8'), 'the frame kept as received').to.equal(payload);
      expect(m.deliveries).to.deep.equal([]);

      // Corrected, the same messages are accepted: the refusal is never a dedupe original.
      const fixed = parseBatchAck(await send(ALL, batchText(messages, { fileId: `F-${t}`, batchId: `B-${t}` })));
      expect(fixed.acks.map((a) => a.get('MSA-1'))).to.deep.equal(['AA', 'AA', 'AA']);
      const events = await deliveredAt(`/erp/${ALL}`, ids);
      expect(events.filter((e) => ids.includes(e.controlId))).to.have.lengthOf(3);
    });

    it('FTS-1 off: is refused whole as well', async function () {
      const t = tag();
      const ids = [1, 2].map((i) => `${t}-${i}`);
      const { file, acks } = parseBatchAck(await send(ALL, batchText(ids.map((controlId) => adt({ controlId, patientId: `${t}-P` })), { fileDeclared: 2 })));
      expect(acks.map((a) => a.get('MSA-1'))).to.deep.equal(['AR', 'AR']);
      expect(envelopeField(file.fileTrailer, 3), 'FTS-2 names the problem').to.match(/FTS-1 declares 2 batch\(es\) but the file holds 1/);
      for (const id of ids) expect(await osprey.byControlId(id, ALL)).to.deep.equal([]);
    });
  });

  describe('batchAck: errors-only', function () {
    it('a malformed message is stored as ERROR and answered AE inside the batch ACK, alone; the rest are delivered', async function () {
      const t = tag();
      const good = [`${t}-1`, `${t}-3`];
      const bad = `MSH|^~|CARESUITE|RVH|OSPREY|RVH|20260306141522||ADT^A01^ADT_A01|${t}-2|P|2.5.1\rPID|1||${t}-P^^^RVH^MR`;
      const messages = [adt({ controlId: good[0]!, patientId: `${t}-P` }), bad, adt({ controlId: good[1]!, patientId: `${t}-P` })];
      const before = await errorIds(ERRORS_ONLY);
      const { file, acks } = parseBatchAck(await send(ERRORS_ONLY, batchText(messages, { batchId: `B-${t}` })));

      expect(envelopeField(file.batches[0]?.header, 12)).to.equal(`B-${t}`);
      expect(file.batches[0]!.declaredMessageCount, 'BTS-1: the one ACK it holds').to.equal(1);
      expect(acks).to.have.lengthOf(1);
      expect(acks[0]!.get('MSA-1')).to.equal('AE');
      expect(acks[0]!.get('MSA-2'), 'the malformed message, named by its control id').to.equal(`${t}-2`);
      expect(acks[0]!.get('ERR-5.1')).to.match(/^OSPREY_ERR_HL7_/);

      const added = [...(await errorIds(ERRORS_ONLY))].filter((id) => !before.has(id));
      expect(added).to.have.lengthOf(1);
      const m = await osprey.message(added[0]!);
      expect(m.error.code).to.equal(acks[0]!.get('ERR-5.1'));
      expect(Buffer.from(m.rawBase64, 'base64').toString('utf8'), 'the malformed message alone, as received').to.equal(`${bad}\r`);

      const events = await deliveredAt(`/erp/${ERRORS_ONLY}`, good);
      expect(events.filter((e) => e.patientId === `${t}-P`).map((e) => e.controlId)).to.deep.equal(good);
    });

    it('a batch whose messages are all accepted is answered with zero ACKs (BTS-1 0), still referencing the batch', async function () {
      const t = tag();
      const ids = [`${t}-1`, `${t}-2`];
      const { file, acks } = parseBatchAck(await send(ERRORS_ONLY, batchText(ids.map((controlId) => adt({ controlId, patientId: `${t}-P` })), { batchId: `B-${t}` })));
      expect(acks).to.deep.equal([]);
      expect(file.batches[0]!.declaredMessageCount).to.equal(0);
      expect(envelopeField(file.batches[0]?.header, 12)).to.equal(`B-${t}`);
      await deliveredAt(`/erp/${ERRORS_ONLY}`, ids);
    });
  });

  describe('corpus batch files (test/fixtures/corpus/hl7v2/batch)', function () {
    for (const name of ['nodeclient_batch_FHS_BHS_BTS_FTS.hl7', 'mirth_batch_FHS_BHS_CRLF_notrailer.hl7']) {
      it(`${name}: one ACK per message in order, each message stored with its bytes as received`, async function () {
        const bytes = readFileSync(join(CORPUS_DIR, name));
        const expected = messageBytes(bytes);
        const controlIds = expected.map((b) => Hl7Message.parse(b.toString('utf8')).controlId);
        const { acks } = parseBatchAck(await send(CORPUS, frame(bytes)));
        expect(acks.map((a) => a.get('MSA-2'))).to.deep.equal(controlIds);
        for (let i = 0; i < expected.length; i++) {
          const code = acks[i]!.get('MSA-1');
          // Original mode (AA/AE/AR), or the commit ACK of enhanced mode (MSH-15 set: CA/CE/CR).
          expect(code).to.be.oneOf(['AA', 'AE', 'AR', 'CA', 'CE', 'CR']);
          const found = await osprey.byControlId(controlIds[i]!, CORPUS);
          expect(found, `message ${controlIds[i]} stored`).to.have.lengthOf.at.least(1);
          const m = await osprey.message(found[0].id);
          // CA says stored, whatever the channel's validation then decided (docs/design/0001, "Correct ACKs").
          if (code === 'AA') expect(m.state, `stored state agrees with ${code}`).to.not.equal('ERROR');
          if (code !== 'AA' && code !== 'CA') expect(m.state, `stored state agrees with ${code}`).to.equal('ERROR');
          expect(Buffer.from(m.rawBase64, 'base64').equals(expected[i]!), `message ${i + 1}: bytes as received (terminators kept)`).to.equal(true);
        }
      });
    }
  });
});
