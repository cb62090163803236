// SPDX-License-Identifier: Apache-2.0
/**
 * The README's quickstart, end to end: the real sample channels and lookups, every sample of
 * samples/hl7v2/adt and samples/hl7v2/siu sent over MLLP (real TCP), delivered to a real HTTP
 * stand-in for the RCM / ERP / workforce systems, and everything checked through the management API
 * the way an operator would look at it. What is expected comes from the channels' own declarative
 * tests (`channels/*.channel.test.yaml`) and golden files (`samples/expected/`).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'chai';
import { Hl7Message } from '../../engine/message-formats/hl7v2/index.ts';
import { ErpStandIn } from '../fixtures/erp-stand-in.ts';
import { parseAck, RawMllpClient, type ParsedAck } from '../helpers/mllp-raw-client.ts';
import { destinationTargets, sampleCases, sampleFiles, type DestinationTarget, type SampleCase } from '../helpers/samples.ts';
import { freePort } from '../helpers/engine-process.ts';
import { REPO_ROOT, removeTempDirs, TestEngine } from '../helpers/test-engine.ts';
import { waitFor } from '../helpers/wait-for.ts';

const CHANNELS = ['adt-to-rcm-erp', 'siu-to-workforce-erp'] as const;
const PREFIX: Record<string, string> = { RCM_URL: '/rcm', ERP_URL: '/erp', WORKFORCE_URL: '/workforce' };
/** What a case's expected state means once everything is final. */
const FINAL_STATE: Record<string, string> = { QUEUED: 'SENT', FILTERED: 'FILTERED', BUSINESS_EXCEPTION: 'BUSINESS_EXCEPTION', ERROR: 'ERROR' };

interface Sent {
  sample: SampleCase;
  hl7: Hl7Message;
  ack: ParsedAck;
  messageId?: string;
  detail?: any;
}

describe('quickstart: the sample channels end to end', function () {
  this.timeout(60_000);

  let standIn: ErpStandIn;
  let osprey: TestEngine;
  const sent: Sent[] = [];
  const targets: DestinationTarget[] = CHANNELS.flatMap((c) => destinationTargets(c));
  const pathOf = (t: DestinationTarget): string => `${PREFIX[t.envVar]}${t.suffix}`;

  before(async function () {
    standIn = await ErpStandIn.start();
    osprey = await TestEngine.start({
      env: { RCM_URL: `${standIn.url}/rcm`, ERP_URL: `${standIn.url}/erp`, WORKFORCE_URL: `${standIn.url}/workforce` },
    });
    for (const channel of CHANNELS) {
      const client = await RawMllpClient.connect(osprey.port(channel));
      try {
        for (const sample of sampleCases(channel)) {
          const ack = parseAck(await client.request(sample.raw));
          sent.push({ sample, hl7: Hl7Message.parse(sample.raw.toString('utf8')), ack });
        }
      } finally {
        client.close();
      }
    }
    // Every message reaches the final state its channel test declares.
    for (const s of sent) {
      const [summary] = await waitFor(async () => {
        const found = await osprey.byControlId(s.hl7.controlId as string, s.sample.channel);
        return found.length > 0 ? found : undefined;
      }, { what: `message ${s.hl7.controlId} in the store` });
      s.messageId = summary.id as string;
      s.detail = await osprey.waitForState(s.messageId, FINAL_STATE[s.sample.expectState] as string, { timeoutMs: 20_000 });
    }
  });

  after(async function () {
    await osprey?.stop();
    await standIn?.close();
    removeTempDirs();
  });

  it('sends every sample file of samples/hl7v2/adt and samples/hl7v2/siu (each is a channel test case)', function () {
    const files = [...sampleFiles('adt'), ...sampleFiles('siu')].sort();
    expect(sent.map((s) => s.sample.input).sort()).to.deep.equal(files);
  });

  describe('ACKs', function () {
    it('acknowledges every sample with AA, or CA when the sample asks for enhanced mode (MSH-15)', function () {
      for (const { sample, hl7, ack } of sent) {
        const wanted = (hl7.get('MSH-15') ?? '') !== '' ? 'CA' : 'AA';
        expect(ack.code, `${sample.stem}: ${ack.text}`).to.equal(wanted);
        expect(ack.hl7.get('ERR-1'), sample.stem).to.equal(undefined);
      }
    });

    it('answers with MSA-2 = the sent MSH-10, sender and receiver swapped, MSH-11/12 carried, a fresh MSH-10', function () {
      const ackIds = new Set<string>();
      for (const { sample, hl7, ack } of sent) {
        const a = ack.hl7;
        expect(ack.ackedControlId, sample.stem).to.equal(hl7.get('MSH-10'));
        expect(a.rawField('MSH', 3), `${sample.stem} MSH-3`).to.equal(hl7.rawField('MSH', 5));
        expect(a.rawField('MSH', 4), `${sample.stem} MSH-4`).to.equal(hl7.rawField('MSH', 6));
        expect(a.rawField('MSH', 5), `${sample.stem} MSH-5`).to.equal(hl7.rawField('MSH', 3));
        expect(a.rawField('MSH', 6), `${sample.stem} MSH-6`).to.equal(hl7.rawField('MSH', 4));
        expect(a.rawField('MSH', 11), `${sample.stem} MSH-11`).to.equal(hl7.rawField('MSH', 11));
        expect(a.rawField('MSH', 12), `${sample.stem} MSH-12`).to.equal(hl7.rawField('MSH', 12));
        expect(a.get('MSH-9.1')).to.equal('ACK');
        expect(a.get('MSH-9.2'), sample.stem).to.equal(hl7.get('MSH-9.2'));
        const ackId = a.get('MSH-10') as string;
        expect(ackId, sample.stem).to.be.a('string').and.not.equal(hl7.get('MSH-10'));
        ackIds.add(ackId);
      }
      expect(ackIds.size, 'every ACK has its own MSH-10').to.equal(sent.length);
    });
  });

  describe('final states', function () {
    it('brings each message to the state its channel test declares (SENT / FILTERED / BUSINESS_EXCEPTION), with the category', function () {
      for (const { sample, detail } of sent) {
        expect(detail.state, sample.stem).to.equal(FINAL_STATE[sample.expectState]);
        if (sample.expectCategory) {
          expect(detail.exceptionCategory, sample.stem).to.equal(sample.expectCategory);
          expect(detail.exception?.category, sample.stem).to.equal(sample.expectCategory);
        }
        if (detail.state === 'SENT') {
          expect(detail.deliveries, sample.stem).to.not.be.empty;
          for (const d of detail.deliveries) expect(d.state, `${sample.stem} ${d.destination}`).to.equal('SENT');
        }
        if (detail.state === 'FILTERED') expect(detail.filterReason, sample.stem).to.be.a('string').and.not.empty;
      }
    });
  });

  describe('deliveries at the receiver', function () {
    it('delivers exactly the payloads of samples/expected/<channel>/<stem>.<destination>.json, no more, no fewer', async function () {
      // The batched destination flushes after its maxWait: wait until every expected item arrived.
      for (const t of targets) {
        const expected = sent.filter((s) => s.sample.channel === t.channel).flatMap((s) => s.sample.expect[t.destination] ?? []);
        await waitFor(() => standIn.appliedTo(pathOf(t)).length >= expected.length, { timeoutMs: 15_000, what: `${expected.length} payloads at ${pathOf(t)}` });
        const received = standIn.payloadsAt(pathOf(t));
        expect(received, `${t.channel}/${t.destination} at ${pathOf(t)}`).to.have.lengthOf(expected.length);
        expect(received, `${t.channel}/${t.destination}`).to.have.deep.members(expected);
      }
      const known = new Set(targets.map(pathOf));
      expect(standIn.requests.filter((r) => !known.has(r.path)), 'requests to unknown paths').to.be.empty;
    });

    it('sends each payload once, under the Idempotency-Key <message id>:<destination>:<output index> the store shows', function () {
      for (const { sample, detail } of sent) {
        for (const d of detail.deliveries ?? []) {
          expect(d.id, sample.stem).to.equal(`${detail.id}:${d.destination}:${d.outputIndex}`);
          const applied = standIn.applied.filter((a) => a.idempotencyKey === d.id);
          expect(applied, `${sample.stem} ${d.destination} applied once`).to.have.lengthOf(1);
          expect(applied[0]!.payload, `${sample.stem} ${d.destination} payload`).to.deep.equal(d.payload);
        }
      }
      expect(standIn.arrivals.filter((a) => a.duplicate), 'nothing was sent twice').to.be.empty;
      for (const r of standIn.requests) {
        expect(r.idempotencyKey, `request ${r.n} to ${r.path}`).to.be.a('string').and.not.empty;
        expect(r.method).to.equal('POST');
        expect(r.headers['content-type']).to.match(/^application\/json/);
      }
    });

    it('sends the batched destination as a JSON array of { idempotencyKey, payload } under a batch key', function () {
      const batched = targets.filter((t) => t.batched);
      expect(batched, 'the sample channels have a batched destination').to.not.be.empty;
      for (const t of batched) {
        const requests = standIn.requestsTo(pathOf(t));
        expect(requests).to.not.be.empty;
        for (const r of requests) {
          expect(r.idempotencyKey).to.match(/^batch-[0-9a-f]{64}$/);
          expect(r.body).to.be.an('array').that.is.not.empty;
          for (const item of r.body as Array<{ idempotencyKey: string }>) expect(item.idempotencyKey).to.match(new RegExp(`:${t.destination}:\\d+$`));
        }
      }
    });
  });

  describe('GET /api/channels', function () {
    it('lists both channels RUNNING with their MLLP port, labels and counts per state that match what happened', async function () {
      const res = await osprey.get('/api/channels');
      expect(res.status).to.equal(200);
      expect(res.body.channels.find((c: any) => c.name === 'adt-to-rcm-erp')?.labels, 'metadata.labels as written').to.deep.equal({ workflow: 'encounter', sourceSystem: 'ehr-adt' });
      for (const channel of CHANNELS) {
        const view = res.body.channels.find((c: any) => c.name === channel);
        expect(view, channel).to.exist;
        expect(view.status).to.equal('RUNNING');
        expect(view.source.port).to.equal(osprey.port(channel));
        expect(view.destinations).to.deep.equal(targets.filter((t) => t.channel === channel).map((t) => t.destination));
        const expected: Record<string, number> = {};
        for (const s of sent.filter((x) => x.sample.channel === channel)) {
          const state = FINAL_STATE[s.sample.expectState] as string;
          expected[state] = (expected[state] ?? 0) + 1;
        }
        expect(view.counts, channel).to.deep.equal(expected);
      }
    });
  });

  describe('message search', function () {
    it('finds every message by ?controlId=', async function () {
      for (const { sample, hl7, messageId } of sent) {
        const found = await osprey.byControlId(hl7.controlId as string);
        expect(found.map((m) => m.id), sample.stem).to.deep.equal([messageId]);
        expect(found[0].keys.controlId).to.equal(hl7.controlId);
        expect(found[0].keys.messageType).to.equal(hl7.messageType);
      }
    });

    it('finds all of a patient’s messages by ?patientId=, newest first, and no one else’s', async function () {
      const byPatient = new Map<string, Sent[]>();
      for (const s of sent) {
        const pid = s.hl7.get('PID-3.1') as string;
        byPatient.set(pid, [...(byPatient.get(pid) ?? []), s]);
      }
      for (const [pid, mine] of byPatient) {
        const res = await osprey.get(`/api/messages?patientId=${encodeURIComponent(pid)}`);
        expect(res.status).to.equal(200);
        const ids = res.body.messages.map((m: any) => m.id);
        expect(ids, pid).to.have.members(mine.map((s) => s.messageId));
        const seqs = res.body.messages.map((m: any) => m.seq);
        expect(seqs, `${pid} newest first`).to.deep.equal([...seqs].sort((a: number, b: number) => b - a));
        for (const m of res.body.messages) expect(m.keys.patientId).to.equal(pid);
      }
      expect([...byPatient.values()].some((list) => list.length >= 4), 'one patient has a whole lifecycle').to.equal(true);
    });

    it('filters by time with ?since= and ?until= (ISO 8601 or epoch ms)', async function () {
      const details = await Promise.all(sent.map((s) => osprey.message(s.messageId!)));
      const times = details.map((d) => Date.parse(d.receivedAt));
      const first = Math.min(...times);
      const last = Math.max(...times);
      const all = await osprey.get(`/api/messages?since=${encodeURIComponent(new Date(first).toISOString())}&until=${last}&limit=1000`);
      expect(all.status).to.equal(200);
      expect(all.body.messages.map((m: any) => m.id)).to.have.members(sent.map((s) => s.messageId));
      const none = await osprey.get(`/api/messages?since=${last + 60_000}`);
      expect(none.body.messages).to.deep.equal([]);
      const before = await osprey.get(`/api/messages?until=${first - 1}`);
      expect(before.body.messages).to.deep.equal([]);
    });

    it('filters by state and channel together', async function () {
      const res = await osprey.get('/api/messages?channel=adt-to-rcm-erp&state=BUSINESS_EXCEPTION');
      expect(res.status).to.equal(200);
      const expected = sent.filter((s) => s.sample.channel === 'adt-to-rcm-erp' && s.sample.expectState === 'BUSINESS_EXCEPTION').map((s) => s.messageId);
      expect(res.body.messages.map((m: any) => m.id)).to.have.members(expected);
    });
  });

  describe('GET /api/messages/:id (one message’s whole history)', function () {
    it('has the raw message, keys, canonical output, timestamped events and every delivery attempt with request and response', async function () {
      const s = sent.find((x) => x.sample.stem === 'adt-a03-discharge-inpatient');
      expect(s, 'sample adt-a03-discharge-inpatient').to.exist;
      const m = await osprey.message(s!.messageId!);
      expect(m.id).to.equal(s!.messageId);
      expect(m.channel).to.equal('adt-to-rcm-erp');
      expect(m.state).to.equal('SENT');
      expect(m.raw).to.equal(s!.sample.raw.toString('utf8'));
      expect(Buffer.from(m.rawBase64, 'base64').equals(s!.sample.raw)).to.equal(true);
      expect(m.keys).to.include({ controlId: s!.hl7.controlId, patientId: 'E1048221', messageType: 'ADT^A03' });
      expect(m.canonical).to.be.an('object').that.includes({ schema: 'EncounterEvent@1', type: 'encounter.discharged' });
      expect(Date.parse(m.receivedAt)).to.be.a('number').and.not.NaN;

      const kinds = m.events.map((e: any) => e.event);
      for (const k of ['RECEIVED', 'TRANSFORMED', 'QUEUED', 'ATTEMPT', 'SENT']) expect(kinds, `event ${k}`).to.include(k);
      for (const e of m.events) expect(e.at, `event ${e.event}`).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      const times = m.events.map((e: any) => Date.parse(e.at));
      expect(times, 'events in time order').to.deep.equal([...times].sort((a: number, b: number) => a - b));

      expect(m.deliveries.map((d: any) => d.destination).sort()).to.deep.equal(['erp-accruals', 'rcm-billing']);
      for (const d of m.deliveries) {
        expect(d.state).to.equal('SENT');
        expect(d.attempts).to.equal(1);
        expect(d.attemptLog).to.have.lengthOf(1);
        const a = d.attemptLog[0];
        expect(a.outcome).to.equal('SENT');
        expect(Date.parse(a.startedAt)).to.not.be.NaN;
        expect(a.durationMs).to.be.a('number');
        expect(a.request.method).to.equal('POST');
        expect(a.request.url).to.equal(`${standIn.url}${pathOf(targets.find((t) => t.destination === d.destination)!)}`);
        expect(a.request.headers['Idempotency-Key'] ?? a.request.headers['idempotency-key']).to.equal(d.id);
        expect(JSON.parse(a.request.body)).to.deep.equal(d.payload);
        expect(a.response.status).to.equal(200);
        expect(JSON.parse(a.response.body)).to.deep.include({ status: 'accepted' });
      }
    });

    it('shows a business exception with its category, detail and tags, and no deliveries', async function () {
      const s = sent.find((x) => x.sample.expectState === 'BUSINESS_EXCEPTION' && x.sample.expectCategory === 'unmapped-department');
      const m = await osprey.message(s!.messageId!);
      expect(m.state).to.equal('BUSINESS_EXCEPTION');
      expect(m.exception.category).to.equal('unmapped-department');
      expect(m.exception.detail).to.be.a('string').and.not.empty;
      expect(m.exception.tags).to.have.property('facility');
      expect(m.deliveries).to.deep.equal([]);
      expect(m.events.map((e: any) => e.event)).to.include('BUSINESS_EXCEPTION');
    });
  });

  describe('API errors', function () {
    it('answers an unknown message id with 404 and a stable JSON code', async function () {
      const res = await osprey.get('/api/messages/01HZZZZZZZZZZZZZZZZZZZZZZZ');
      expect(res.status).to.equal(404);
      expect(res.body.error.code).to.equal('OSPREY_ERR_API_NOT_FOUND');
      expect(res.body.error.message).to.be.a('string');
      const replay = await osprey.post('/api/messages/01HZZZZZZZZZZZZZZZZZZZZZZZ/replay');
      expect(replay.status).to.equal(404);
      expect(replay.body.error.code).to.equal('OSPREY_ERR_API_NOT_FOUND');
    });

    for (const [query, field] of [
      ['state=DONE', 'state'],
      ['state=sent', 'state'],
      ['since=yesterday', 'since'],
      ['until=not-a-time', 'until'],
      ['limit=0', 'limit'],
      ['limit=1001', 'limit'],
      ['limit=ten', 'limit'],
      ['limit=2.5', 'limit'],
      ['before=abc', 'before'],
    ] as const) {
      it(`answers ?${query} with 400 OSPREY_ERR_API_BAD_REQUEST naming ${field}`, async function () {
        const res = await osprey.get(`/api/messages?${query}`);
        expect(res.status).to.equal(400);
        expect(res.body.error.code).to.equal('OSPREY_ERR_API_BAD_REQUEST');
        expect(res.body.error.message).to.contain(field);
      });
    }

    it('answers an unknown route with 404 JSON', async function () {
      const res = await osprey.get('/api/nothing-here');
      expect(res.status).to.equal(404);
      expect(res.body.error.code).to.equal('OSPREY_ERR_API_NOT_FOUND');
    });

    it('refuses to replay a SENT message with 409 OSPREY_ERR_API_NOT_REPLAYABLE', async function () {
      const s = sent.find((x) => x.detail?.state === 'SENT');
      const res = await osprey.post(`/api/messages/${s!.messageId}/replay`);
      expect(res.status).to.equal(409);
      expect(res.body.error.code).to.equal('OSPREY_ERR_API_NOT_REPLAYABLE');
    });
  });
});

describe('quickstart as the README tells it: `osprey send` to the built-in sandbox receiver', function () {
  this.timeout(90_000);

  let osprey: TestEngine;

  before(async function () {
    // A management port other than 8080 and no destination URLs: the sample channels' defaults
    // (`${OSPREY_SANDBOX_URL}/…`) must reach this engine's own sandbox, not whatever has 8080.
    const port = await freePort();
    expect(port).to.not.equal(8080);
    osprey = await TestEngine.start({ httpPort: port });
  });

  after(async function () {
    await osprey?.stop();
    removeTempDirs();
  });

  it('routes every sample to the channel that accepts its type, prints each ACK, and the sandbox receives every expected payload once', async function () {
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [join(REPO_ROOT, 'bin', 'osprey.js'), 'send', 'samples/hl7v2/adt', 'samples/hl7v2/siu', '--api', osprey.baseUrl],
        { cwd: REPO_ROOT, timeout: 60_000 },
        (err, out, errOut) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout: String(out), stderr: String(errOut) }),
      );
    });
    expect(code, stdout + stderr).to.equal(0);
    expect(stderr, 'each type has one channel: no warning').to.equal('');
    const lines = stdout.trim().split('\n');
    const cases = CHANNELS.flatMap((c) => sampleCases(c));
    expect(lines, stdout).to.have.lengthOf(cases.length);
    for (const c of cases) {
      const line = lines.find((l) => l.startsWith(c.input));
      expect(line, c.input).to.exist;
      expect(line).to.match(new RegExp(`→ ${c.channel} :${osprey.port(c.channel)}\\s+CA$`));
    }

    // The sandbox keeps one record per request; a batched request carries its items in the body.
    const flatten = (records: any[]): Array<{ path: string; key: string; payload: unknown }> =>
      records.flatMap((r) =>
        Array.isArray(r.body) && r.body.every((i: any) => typeof i?.idempotencyKey === 'string')
          ? r.body.map((i: any) => ({ path: `/${r.system}/${r.path}`, key: i.idempotencyKey, payload: i.payload }))
          : [{ path: `/${r.system}/${r.path}`, key: r.idempotencyKey, payload: r.body }],
      );
    const targets = CHANNELS.flatMap((c) => destinationTargets(c));
    const expectedAt = new Map<string, unknown[]>();
    for (const c of cases) {
      for (const [dest, payloads] of Object.entries(c.expect)) {
        const t = targets.find((x) => x.channel === c.channel && x.destination === dest)!;
        const path = `${PREFIX[t.envVar]}${t.suffix}`;
        expectedAt.set(path, [...(expectedAt.get(path) ?? []), ...payloads]);
      }
    }
    const expected = [...expectedAt.values()].reduce((n, list) => n + list.length, 0);
    const received = await waitFor(
      async () => {
        const res = await osprey.get('/sandbox/received?limit=1000');
        return flatten(res.body.records).length >= expected ? res.body : undefined;
      },
      { timeoutMs: 20_000, what: `${expected} payloads at the sandbox` },
    );
    expect(received.counts.duplicates).to.equal(0);
    expect(received.counts.applied).to.equal(received.counts.received);
    const items = flatten(received.records);
    expect(items).to.have.lengthOf(expected);
    expect(new Set(items.map((i) => i.key)).size, 'one key per payload').to.equal(expected);
    for (const [path, payloads] of expectedAt) {
      expect(items.filter((i) => i.path === path).map((i) => i.payload), path).to.have.deep.members(payloads);
    }
  });
});
