// SPDX-License-Identifier: Apache-2.0
/**
 * A broken edit of a lookup file does not break the channels: the last good table stays in use,
 * the problem is logged once (not per message) and shown on the channels that use the table, in
 * the API and in the readiness detail (without failing readiness); once the file is fixed, the new
 * table is used and the warning clears. The sample channels run against a temp copy of
 * config/lookups.
 */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { ErpStandIn } from '../fixtures/erp-stand-in.ts';
import { parseAck, sendOne } from '../helpers/mllp-raw-client.ts';
import { recordingLogger } from '../helpers/recording-logger.ts';
import { makeTempDir, REPO_ROOT, removeTempDirs, TestEngine } from '../helpers/test-engine.ts';

const SAMPLE = 'samples/hl7v2/adt/adt-a01-admit-inpatient.hl7';
const CHANNELS = ['adt-to-rcm-erp', 'siu-to-workforce-erp'];

describe('lookup file edits: a broken edit keeps the last good table', function () {
  this.timeout(40_000);

  let standIn: ErpStandIn;
  let osprey: TestEngine;
  let departments: string;
  let good: string;
  const { logger, entries } = recordingLogger();
  let sent = 0;

  /** The admission sample under a new control id; resolves with the accrual's cost center. */
  async function admitAndReadCostCenter(): Promise<string> {
    const controlId = `LOOKUPEDIT${++sent}`;
    const raw = readFileSync(join(REPO_ROOT, SAMPLE), 'utf8').replace('CS20260306141522001', controlId);
    const ack = parseAck(await sendOne(osprey.port('adt-to-rcm-erp'), Buffer.from(raw)));
    expect(ack.code, ack.text).to.be.oneOf(['AA', 'CA']);
    const [summary] = await osprey.byControlId(controlId, 'adt-to-rcm-erp');
    const m = await osprey.waitForState(summary.id, ['SENT', 'ERROR', 'BUSINESS_EXCEPTION', 'DEAD_LETTERED']);
    expect(m.state, JSON.stringify(m.error)).to.equal('SENT');
    return m.deliveries.find((d: any) => d.destination === 'erp-accruals').payload.costCenter;
  }

  const warningsOf = async (path: string) => {
    const res = await osprey.get(path);
    return { status: res.status, warnings: Object.fromEntries((res.body.channels as any[]).map((c) => [c.name, c.warnings])) };
  };
  const refusals = () => entries.filter((e) => e.code === 'OSPREY_ERR_CHANNEL_LOOKUP');

  before(async function () {
    const lookupsDir = makeTempDir('lookups');
    cpSync(join(REPO_ROOT, 'config', 'lookups'), lookupsDir, { recursive: true });
    departments = join(lookupsDir, 'departments.yaml');
    good = readFileSync(departments, 'utf8');
    standIn = await ErpStandIn.start();
    osprey = await TestEngine.start({
      lookupsDir,
      logger,
      env: { RCM_URL: `${standIn.url}/rcm`, ERP_URL: `${standIn.url}/erp`, WORKFORCE_URL: `${standIn.url}/workforce` },
    });
  });

  after(async function () {
    await osprey?.stop();
    await standIn?.close();
    removeTempDirs();
  });

  it('uses the last good table, logs once and warns on each channel using it (readiness stays 200)', async function () {
    expect(await admitAndReadCostCenter()).to.equal('CC-4100');
    // A broken edit: the new value's quote is never closed.
    writeFileSync(departments, good.replace('costCenter: CC-4100', 'costCenter: "CC-4199'));
    await osprey.engine.lookups!.refresh(); // what the engine's watch does within a second

    for (let i = 0; i < 3; i++) expect(await admitAndReadCostCenter()).to.equal('CC-4100');
    await osprey.engine.lookups!.refresh();
    expect(refusals(), 'one log line for the broken file').to.have.lengthOf(1);
    expect(refusals()[0]).to.include({ level: 'error', table: 'departments', file: departments });

    const api = await warningsOf('/api/channels');
    expect(api.status).to.equal(200);
    for (const channel of CHANNELS) {
      expect(api.warnings[channel], channel).to.have.lengthOf(1);
      expect(api.warnings[channel][0]).to.match(/^lookup table "departments" \(.*departments\.yaml\): .*; using the table loaded at /);
    }
    const one = await osprey.get('/api/channels');
    expect(one.body.channels.find((c: any) => c.name === 'adt-to-rcm-erp').status).to.equal('RUNNING');

    const ready = await warningsOf('/readyz');
    expect(ready.status, 'a warning does not fail readiness').to.equal(200);
    for (const channel of CHANNELS) expect(ready.warnings[channel], channel).to.deep.equal(api.warnings[channel]);
  });

  it('uses the fixed table and clears the warning once the file is fixed', async function () {
    writeFileSync(departments, good.replace('costCenter: CC-4100', 'costCenter: CC-4199'));
    await osprey.engine.lookups!.refresh();
    expect(await admitAndReadCostCenter()).to.equal('CC-4199');
    for (const path of ['/api/channels', '/readyz']) {
      const { warnings } = await warningsOf(path);
      for (const channel of CHANNELS) expect(warnings[channel], `${path} ${channel}`).to.equal(undefined);
    }
    expect(refusals()).to.have.lengthOf(1);
  });
});
