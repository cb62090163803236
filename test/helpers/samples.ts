// SPDX-License-Identifier: Apache-2.0
/**
 * The sample channels' own declarations, read the way a user would read them: each
 * `channels/*.channel.test.yaml` case (input sample, expected state and category, expected payload
 * files per destination) and where each destination of `channels/*.channel.yaml` delivers.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { REPO_ROOT } from './test-engine.ts';

export interface SampleCase {
  channel: string;
  name: string;
  /** Path relative to the repository root. */
  input: string;
  /** File stem, e.g. `adt-a01-admit-inpatient`. */
  stem: string;
  /** The raw sample bytes as sent on the wire. */
  raw: Buffer;
  /** QUEUED (delivered: SENT at the end), FILTERED, BUSINESS_EXCEPTION or ERROR. */
  expectState: string;
  expectCategory?: string;
  expectCode?: string;
  /** Destination → payloads it should receive. */
  expect: Record<string, unknown[]>;
}

/** Cases of `channels/<channel>.channel.test.yaml`, in file order. */
export function sampleCases(channel: string): SampleCase[] {
  const file = join(REPO_ROOT, 'channels', `${channel}.channel.test.yaml`);
  const doc = parseYaml(readFileSync(file, 'utf8')) as { cases: Array<Record<string, any>> };
  return doc.cases.map((c) => ({
    channel,
    name: String(c.name),
    input: String(c.input),
    stem: basename(String(c.input), '.hl7'),
    raw: readFileSync(join(REPO_ROOT, String(c.input))),
    expectState: String(c.expectState ?? 'QUEUED'),
    ...(c.expectCategory ? { expectCategory: String(c.expectCategory) } : {}),
    ...(c.expectCode ? { expectCode: String(c.expectCode) } : {}),
    expect: Object.fromEntries(
      Object.entries((c.expect ?? {}) as Record<string, string>).map(([dest, path]) => [dest, JSON.parse(readFileSync(join(REPO_ROOT, path), 'utf8')) as unknown[]]),
    ),
  }));
}

/** Sample files of a folder under samples/hl7v2 (`adt`, `siu`), sorted. */
export function sampleFiles(folder: string): string[] {
  return readdirSync(join(REPO_ROOT, 'samples', 'hl7v2', folder))
    .filter((f) => f.endsWith('.hl7'))
    .sort()
    .map((f) => `samples/hl7v2/${folder}/${f}`);
}

export interface DestinationTarget {
  channel: string;
  destination: string;
  /** The environment variable the URL starts with (`ERP_URL`). */
  envVar: string;
  /** What the channel appends to it (`/accruals`). */
  suffix: string;
  batched: boolean;
}

/** Where each destination of a sample channel delivers, from its `url: ${VAR:-…}/suffix`. */
export function destinationTargets(channel: string): DestinationTarget[] {
  const doc = parseYaml(readFileSync(join(REPO_ROOT, 'channels', `${channel}.channel.yaml`), 'utf8')) as {
    spec: { destinations: Array<{ name: string; url: string; batch?: unknown }> };
  };
  return doc.spec.destinations.map((d) => {
    // The default may hold one reference itself (`${RCM_URL:-${OSPREY_SANDBOX_URL}/rcm}/billing-readiness`).
    const m = /^\$\{([A-Z_]+)(?::-(?:[^}$]|\$\{[^}]*\})*)?\}(.*)$/.exec(d.url);
    if (!m) throw new Error(`${channel}/${d.name}: url ${d.url} is not \${VAR}/suffix`);
    return { channel, destination: d.name, envVar: m[1] as string, suffix: m[2] as string, batched: d.batch !== undefined };
  });
}
