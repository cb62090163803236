// SPDX-License-Identifier: Apache-2.0
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { expect } from 'chai';
import { ContractRegistry } from '../../../engine/channel-runtime/contracts.ts';
import { LookupTables } from '../../../engine/channel-runtime/lookup-tables.ts';
import { runPipeline, type PipelineChannel, type PipelineResources } from '../../../engine/channel-runtime/pipeline.ts';
import { Hl7Message } from '../../../engine/message-formats/hl7v2/index.ts';
import { defineTransform, type Hl7Reader } from '../../../engine/transform-sdk/index.ts';

const ADT = [
  'MSH|^~\\&|EHR|GEN|OSPREY|GEN|20260101120000||ADT^A01^ADT_A01|CTRL1|P|2.5.1',
  'EVN|A01|20260101120000',
  'PID|1||MRN1^^^GEN^MR||DOE^JANE',
  'PV1|1|I|CARD^101^A',
].join('\r');

const toEvent = defineTransform<Hl7Reader, { mrn: string; dept: string }>({
  name: 'test/adt-to-event',
  version: '1.0.0',
  input: 'hl7v2',
  map(msg, ctx) {
    const dept = ctx.enrichment.department;
    if (dept === undefined) ctx.exception('unmapped-department', 'no department', { department: msg.get('PV1-3.1') ?? undefined });
    if (msg.get('PID-3.1') === 'FILTER-ME') return ctx.filter('test filter');
    return { mrn: msg.get('PID-3.1') ?? '', dept: typeof dept === 'string' ? dept : '' };
  },
});
const fanOut = defineTransform<{ mrn: string }, { mrn: string; n: number }>({
  name: 'test/fan-out',
  version: '1.0.0',
  input: 'event',
  map: (event) => [{ mrn: event.mrn, n: 1 }, { mrn: event.mrn, n: 2 }],
});
const broken = defineTransform<unknown, unknown>({
  name: 'test/broken',
  version: '1.0.0',
  input: 'event',
  map: () => {
    throw new TypeError('cannot read properties of undefined');
  },
});
const badOutput = defineTransform<unknown, unknown>({ name: 'test/bad-output', version: '1.0.0', input: 'event', map: () => ({ mrn: 42 }) });

describe('pipeline', () => {
  let dir: string;
  let resources: PipelineResources;
  let tables: LookupTables;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'osprey-pipeline-'));
    writeFileSync(join(dir, 'departments.yaml'), 'CARD: Cardiology\n');
    resources = {
      transforms: new Map<string, never>([
        ['to-event.ts', toEvent as never],
        ['fan-out.ts', fanOut as never],
        ['broken.ts', broken as never],
        ['bad-output.ts', badOutput as never],
      ]),
      lookups: (tables = new LookupTables(dir)),
      contracts: new ContractRegistry({ 'Event@1': Type.Object({ mrn: Type.String() }) }),
    };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const channel = (overrides: Partial<PipelineChannel> = {}): PipelineChannel => ({
    name: 'test',
    steps: [{ validate: 'hl7' }, { enrich: { lookup: 'departments', from: 'PV1-3.1', as: 'department' } }, { transform: 'to-event.ts' }],
    destinations: [{ name: 'erp', contract: 'Event@1' }],
    ...overrides,
  });
  const run = (ch: PipelineChannel, text = ADT) => runPipeline(ch, resources, { messageId: 'm1', receivedAt: 0, message: Hl7Message.parse(text) });

  it('validates, enriches and transforms into one delivery per destination output', () => {
    const outcome = run(channel({ destinations: [{ name: 'erp', contract: 'Event@1' }, { name: 'lines', transform: 'fan-out.ts' }] }));
    expect(outcome.state).to.equal('QUEUED');
    if (outcome.state !== 'QUEUED') return;
    expect(outcome.canonical).to.deep.equal({ mrn: 'MRN1', dept: 'Cardiology' });
    expect(outcome.deliveries.map((d) => [d.destination, d.outputIndex])).to.deep.equal([['erp', 0], ['lines', 0], ['lines', 1]]);
  });

  it('filters on a field allow-list without failing', () => {
    const outcome = run(channel({ steps: [{ filter: { field: 'PV1-2', in: ['O'] } }, { transform: 'to-event.ts' }] }));
    expect(outcome.state).to.equal('FILTERED');
  });

  it('marks the message FILTERED when the transform filters it', () => {
    expect(run(channel(), ADT.replace('MRN1', 'FILTER-ME')).state).to.equal('FILTERED');
  });

  it('turns ctx.exception into a categorised business exception with tags', () => {
    const outcome = run(channel(), ADT.replace('CARD^101', 'XRAY^101'));
    expect(outcome).to.deep.include({ state: 'BUSINESS_EXCEPTION' });
    if (outcome.state === 'BUSINESS_EXCEPTION') {
      expect(outcome.exception.category).to.equal('unmapped-department');
      expect(outcome.exception.tags.department).to.equal('XRAY');
    }
  });

  it('raises unmapped-<lookup> for a required enrich with no entry', () => {
    const outcome = run(
      channel({ steps: [{ enrich: { lookup: 'departments', from: 'PV1-3.1', as: 'department', required: true } }, { transform: 'to-event.ts' }] }),
      ADT.replace('CARD^101', 'XRAY^101'),
    );
    expect(outcome.state === 'BUSINESS_EXCEPTION' && outcome.exception.category).to.equal('unmapped-departments');
  });

  it('records a transform that throws as ERROR with OSPREY_ERR_TRANSFORM_FAILED, never a crash', () => {
    const outcome = run(channel({ destinations: [{ name: 'erp', transform: 'broken.ts' }] }));
    expect(outcome.state === 'ERROR' && outcome.error.code).to.equal('OSPREY_ERR_TRANSFORM_FAILED');
  });

  it('rejects an output that breaks the destination contract (paths, not values)', () => {
    const outcome = run(channel({ destinations: [{ name: 'erp', transform: 'bad-output.ts', contract: 'Event@1' }] }));
    expect(outcome.state === 'ERROR' && outcome.error.code).to.equal('OSPREY_ERR_TRANSFORM_OUTPUT_INVALID');
    if (outcome.state === 'ERROR') expect(outcome.error.detail).to.contain('/mrn').and.not.contain('42');
  });

  it('fails validation for a message without MSH-10', () => {
    const outcome = run(channel(), ADT.replace('|CTRL1|', '||'));
    expect(outcome.state === 'ERROR' && outcome.error.code).to.equal('OSPREY_ERR_PIPELINE_VALIDATION');
  });

  it('records a lookup table that cannot be used as ERROR with OSPREY_ERR_CHANNEL_LOOKUP, not as a transform bug', () => {
    const outcome = run(channel({ steps: [{ enrich: { lookup: 'wards', from: 'PV1-3.1', as: 'ward' } }, { transform: 'to-event.ts' }] }));
    expect(outcome.state === 'ERROR' && outcome.error.code).to.equal('OSPREY_ERR_CHANNEL_LOOKUP');
    if (outcome.state === 'ERROR') expect(outcome.error.detail).to.contain('"wards" not found');
  });

  it('re-reads a lookup table after it changes (fix the lookup, replay)', async () => {
    expect(run(channel(), ADT.replace('CARD^101', 'NEURO^101')).state).to.equal('BUSINESS_EXCEPTION');
    writeFileSync(join(dir, 'departments.yaml'), 'CARD: Cardiology\nNEURO: Neurology\n');
    await tables.refresh(); // what the engine's watch does every second, off the message path
    expect(run(channel(), ADT.replace('CARD^101', 'NEURO^101')).state).to.equal('QUEUED');
  });
});
