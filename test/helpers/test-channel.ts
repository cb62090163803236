// SPDX-License-Identifier: Apache-2.0
/**
 * Channel files and HL7 messages for the end-to-end tests' own channels: a small ADT channel whose
 * transform is test/fixtures/transforms/adt-to-test-event.ts, with short, fixed retry settings so a
 * delivery fault plays out in milliseconds, and a message generator with unique control ids.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir } from './test-engine.ts';

export const TEST_TRANSFORM = 'test/fixtures/transforms/adt-to-test-event.ts';

export interface TestDestination {
  name: string;
  url: string;
  /** @defaultValue '300ms' */
  timeout?: string;
  /** @defaultValue 4 */
  maxAttempts?: number;
  /** Fixed backoff. @defaultValue '50ms' */
  backoff?: string;
  retryOn?: number[];
  /** A named rate limit of the engine config. */
  rateLimit?: string;
  batch?: { maxItems: number; maxWait: string };
}

export interface TestChannelOptions {
  name: string;
  /** @defaultValue 0 */
  port?: number | string;
  /** @defaultValue ADT A01, A03, A04, A08 */
  accept?: string[];
  /** @defaultValue PID-3.1 */
  orderBy?: string;
  maxMessageSize?: string;
  idleTimeout?: string;
  /** The listener's answer to an HL7 batch (absent: the listener's default). */
  batchAck?: 'all' | 'errors-only';
  destinations: TestDestination[];
}

export function testChannelYaml(o: TestChannelOptions): string {
  const lines = [
    'apiVersion: osprey/v1',
    'kind: Channel',
    'metadata:',
    `  name: ${o.name}`,
    '  version: 1.0.0',
    '  owner: e2e-tests',
    'spec:',
    '  source:',
    '    type: mllp-listener',
    '    host: 127.0.0.1',
    `    port: ${o.port ?? 0}`,
    `    accept: [${(o.accept ?? ['ADT^A01', 'ADT^A03', 'ADT^A04', 'ADT^A08']).join(', ')}]`,
    ...(o.maxMessageSize ? [`    maxMessageSize: ${o.maxMessageSize}`] : []),
    ...(o.idleTimeout ? [`    idleTimeout: ${o.idleTimeout}`] : []),
    ...(o.batchAck ? [`    batchAck: ${o.batchAck}`] : []),
    '    dedupe: { window: 24h }',
    `  orderBy: ${o.orderBy ?? 'PID-3.1'}`,
    '  steps:',
    '    - validate: hl7',
    `    - transform: ${TEST_TRANSFORM}`,
    '  destinations:',
  ];
  for (const d of o.destinations) {
    const backoff = d.backoff ?? '50ms';
    lines.push(
      `    - name: ${d.name}`,
      '      type: rest',
      `      url: ${d.url}`,
      '      auth: { type: none }',
      `      timeout: ${d.timeout ?? '300ms'}`,
      '      retry:',
      `        maxAttempts: ${d.maxAttempts ?? 4}`,
      `        backoff: { type: fixed, initial: ${backoff}, max: ${backoff}, jitter: 0 }`,
      ...(d.retryOn ? [`        retryOn: [${d.retryOn.join(', ')}]`] : []),
      ...(d.rateLimit ? [`      rateLimit: ${d.rateLimit}`] : []),
      ...(d.batch ? [`      batch: { maxItems: ${d.batch.maxItems}, maxWait: ${d.batch.maxWait} }`] : []),
    );
  }
  return `${lines.join('\n')}\n`;
}

/** A temp channels folder holding the given files (`name` → content). */
export function channelsDir(files: Record<string, string>): string {
  const dir = makeTempDir('channels');
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return dir;
}

export interface AdtOptions {
  controlId: string;
  patientId: string;
  /** @defaultValue A01 */
  trigger?: string;
  /** @defaultValue CARESUITE */
  sendingApp?: string;
  /** @defaultValue RVH */
  sendingFacility?: string;
  /** PV1-3.1. @defaultValue 4WMED */
  department?: string;
  /** EVN-2. @defaultValue 20260306141500 */
  recordedAt?: string;
  /** PV1-2. @defaultValue I */
  patientClass?: string;
  /** PV1-19. @defaultValue V<patientId> */
  visitNumber?: string;
}

/** A small, valid ADT message (segments joined by CR, original-mode ACK: no MSH-15). */
export function adt(o: AdtOptions): string {
  const trigger = o.trigger ?? 'A01';
  const structure = trigger === 'A03' ? 'ADT_A03' : trigger === 'A11' ? 'ADT_A09' : 'ADT_A01';
  return [
    `MSH|^~\\&|${o.sendingApp ?? 'CARESUITE'}|${o.sendingFacility ?? 'RVH'}|OSPREY|RVH|20260306141522-0600||ADT^${trigger}^${structure}|${o.controlId}|P|2.5.1`,
    `EVN|${trigger}|${o.recordedAt ?? '20260306141500'}`,
    `PID|1||${o.patientId}^^^RVH^MR||TEST^PATIENT||19700101|F`,
    `PV1|1|${o.patientClass ?? 'I'}|${o.department ?? '4WMED'}^412^B^RVH|E|||10041^HARTWELL^MIRIAM^R^^^MD|||MED||||7|||10041^HARTWELL^MIRIAM^R^^^MD||${o.visitNumber ?? `V${o.patientId}`}^^^RVH^VN`,
  ].join('\r');
}
