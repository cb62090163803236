// SPDX-License-Identifier: Apache-2.0
/**
 * A business exception is not a crash: a message whose department is not in the lookup stops in
 * BUSINESS_EXCEPTION with its category and tags, an operator adds the department to the lookup file
 * (no restart) and replays the message through the API, and it is delivered. The sample channels
 * run against a temp copy of config/lookups, so the fix never touches the repository.
 */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { ErpStandIn } from '../fixtures/erp-stand-in.ts';
import { parseAck, sendOne } from '../helpers/mllp-raw-client.ts';
import { makeTempDir, REPO_ROOT, removeTempDirs, TestEngine } from '../helpers/test-engine.ts';
import { waitFor } from '../helpers/wait-for.ts';

const FINAL = ['SENT', 'FILTERED', 'BUSINESS_EXCEPTION', 'ERROR', 'DEAD_LETTERED'];

describe('business exception: fix the lookup, replay, delivered', function () {
  this.timeout(40_000);

  let standIn: ErpStandIn;
  let osprey: TestEngine;
  let lookupsDir: string;

  async function sendSample(channel: string, file: string): Promise<{ id: string; controlId: string }> {
    const raw = readFileSync(join(REPO_ROOT, file));
    const ack = parseAck(await sendOne(osprey.port(channel), raw));
    expect(ack.code, ack.text).to.be.oneOf(['AA', 'CA']);
    const controlId = ack.ackedControlId as string;
    const [m] = await osprey.byControlId(controlId, channel);
    return { id: m.id as string, controlId };
  }

  /**
   * Replays a message after a lookup fix. The engine checks lookup files for edits every second, off
   * the message path; the test runs that check itself so the replay sees the edit.
   */
  async function replayAfterFix(id: string): Promise<any> {
    await osprey.engine.lookups!.refresh();
    const res = await osprey.post(`/api/messages/${id}/replay`);
    expect(res.status, JSON.stringify(res.body)).to.equal(202);
    expect(res.body).to.include({ id, replayed: 'pipeline' });
    return osprey.waitForState(id, FINAL.filter((s) => s !== 'BUSINESS_EXCEPTION'));
  }

  function addRow(table: string, key: string, row: Record<string, string>): void {
    const file = join(lookupsDir, `${table}.yaml`);
    const lines = Object.entries(row).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`);
    writeFileSync(file, `${readFileSync(file, 'utf8')}\n${JSON.stringify(key)}:\n${lines.join('\n')}\n`);
  }

  before(async function () {
    lookupsDir = makeTempDir('lookups');
    cpSync(join(REPO_ROOT, 'config', 'lookups'), lookupsDir, { recursive: true });
    standIn = await ErpStandIn.start();
    osprey = await TestEngine.start({
      lookupsDir,
      env: { RCM_URL: `${standIn.url}/rcm`, ERP_URL: `${standIn.url}/erp`, WORKFORCE_URL: `${standIn.url}/workforce` },
    });
  });

  after(async function () {
    await osprey?.stop();
    await standIn?.close();
    removeTempDirs();
  });

  describe('an ADT admission to an unmapped department', function () {
    it('stops in BUSINESS_EXCEPTION with category and tags, is listed as such, and replaying before the fix changes nothing', async function () {
      const { id } = await sendSample('adt-to-rcm-erp', 'samples/hl7v2/adt/adt-a01-unmapped-department.hl7');
      const m = await osprey.waitForState(id, FINAL);
      expect(m.state).to.equal('BUSINESS_EXCEPTION');
      expect(m.exceptionCategory).to.equal('unmapped-department');
      expect(m.exception).to.deep.include({ category: 'unmapped-department' });
      expect(m.exception.detail).to.contain('PEDS3');
      expect(m.exception.tags).to.include({ facility: 'RVH' });
      expect(m.error.code).to.equal('OSPREY_ERR_BUSINESS_EXCEPTION');
      expect(m.deliveries).to.deep.equal([]);

      const listed = await osprey.get('/api/messages?state=BUSINESS_EXCEPTION&channel=adt-to-rcm-erp');
      const row = listed.body.messages.find((x: any) => x.id === id);
      expect(row, 'listed among business exceptions').to.exist;
      expect(row.exceptionCategory).to.equal('unmapped-department');

      // Replayed with the lookup still unfixed: the same exception again, nothing delivered.
      const res = await osprey.post(`/api/messages/${id}/replay`);
      expect(res.status).to.equal(202);
      const again = await waitFor(async () => {
        const x = await osprey.message(id);
        return x.events.filter((e: any) => e.event === 'BUSINESS_EXCEPTION').length >= 2 ? x : undefined;
      }, { what: 'the replay to run' });
      expect(again.state).to.equal('BUSINESS_EXCEPTION');
      expect(again.events.map((e: any) => e.event)).to.include('REPLAYED');
      expect(standIn.requests).to.deep.equal([]);
    });

    it('is SENT after the department is added to the lookup file and the message is replayed, under keys of the same message id', async function () {
      const [summary] = await osprey.byControlId('CS20260311162040005', 'adt-to-rcm-erp');
      const id = summary.id as string;
      addRow('departments', 'PEDS3', { name: '3 Pediatrics', costCenter: 'CC-4600', facility: 'RVH' });

      const m = await replayAfterFix(id);
      expect(m.state).to.equal('SENT');
      expect(m.exception).to.equal(undefined);
      expect(m.exceptionCategory).to.equal(undefined);
      expect(m.deliveries.map((d: any) => d.destination)).to.deep.equal(['erp-accruals']);
      const d = m.deliveries[0];
      expect(d.id).to.equal(`${id}:erp-accruals:0`);
      expect(d.payload).to.deep.include({ departmentCode: 'PEDS3', costCenter: 'CC-4600', operation: 'accrue', visitNumber: '7100021560' });

      const applied = standIn.appliedTo('/erp/accruals');
      expect(applied.map((a) => a.idempotencyKey)).to.deep.equal([d.id]);
      expect(applied[0]!.payload).to.deep.equal(d.payload);
      expect(standIn.requestsTo('/rcm/billing-readiness'), 'RCM filters an admission').to.deep.equal([]);
      const events = m.events.map((e: any) => e.event);
      expect(events.filter((e: string) => e === 'REPLAYED').length).to.equal(2);
      expect(events.at(-1)).to.equal('SENT');
    });
  });

  describe('a SIU booking at an unmapped location', function () {
    it('is delivered to both destinations after the location is added and the message replayed', async function () {
      const { id } = await sendSample('siu-to-workforce-erp', 'samples/hl7v2/siu/siu-s12-book-unmapped-location.hl7');
      const before = await osprey.waitForState(id, FINAL);
      expect(before.state).to.equal('BUSINESS_EXCEPTION');
      expect(before.exceptionCategory).to.equal('unmapped-department');

      addRow('departments', 'DERMCL', { name: 'Dermatology Clinic', costCenter: 'CC-5700', facility: 'RVAC' });
      const m = await replayAfterFix(id);
      expect(m.state).to.equal('SENT');
      expect(m.deliveries.map((d: any) => `${d.destination}:${d.state}`).sort()).to.deep.equal(['erp-labor-plan:SENT', 'workforce-staffing:SENT']);
      const staffing = standIn.appliedTo('/workforce/staffing-demand').filter((a) => a.idempotencyKey.startsWith(`${id}:`));
      expect(staffing).to.have.lengthOf(1);
      expect((staffing[0]!.payload as any).department).to.deep.include({ code: 'DERMCL', costCenter: 'CC-5700' });
      const lines = standIn.appliedTo('/erp/labor-plans/batch').filter((a) => a.idempotencyKey.startsWith(`${id}:`));
      expect(lines).to.have.lengthOf(1);
      expect(lines[0]!.payload).to.deep.include({ departmentCode: 'DERMCL', costCenter: 'CC-5700' });
    });
  });
});
