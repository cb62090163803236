// SPDX-License-Identifier: Apache-2.0
// A throw-away project folder (channels, transforms, lookups) under the OS temp dir, for loader tests.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export interface FixtureProject {
  root: string;
  channelsDir: string;
  lookupsDir: string;
  write(relativePath: string, content: string): string;
  remove(): void;
}

export function createFixtureProject(): FixtureProject {
  const root = mkdtempSync(join(tmpdir(), 'osprey-channels-'));
  const project: FixtureProject = {
    root,
    channelsDir: join(root, 'channels'),
    lookupsDir: join(root, 'config', 'lookups'),
    write(relativePath, content) {
      const file = join(root, relativePath);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, content);
      return file;
    },
    remove() {
      rmSync(root, { recursive: true, force: true });
    },
  };
  mkdirSync(project.channelsDir, { recursive: true });
  project.write('config/lookups/departments.yaml', 'CARD: { costCenter: "4100" }\n');
  project.write(
    'transforms/adt-to-event.ts',
    "export default { name: 'hl7v2/adt-to-event', version: '1.0.0', input: 'hl7v2', map: (m: unknown) => m };\n",
  );
  project.write('transforms/not-a-transform.ts', 'export default { hello: 1 };\n');
  return project;
}

/** A valid channel using every block; `name` must match the file it is written to. */
export function validChannel(name = 'adt-to-rcm', port = '${ADT_PORT:-6661}'): string {
  return `apiVersion: osprey/v1
kind: Channel
metadata:
  name: ${name}
  version: 1.0.0
  owner: integration-team
spec:
  source:
    type: mllp-listener
    port: ${port}
    accept: [ADT^A01, ADT^A03]
    maxMessageSize: 512KB
    idleTimeout: 90s
    allowFrom: [127.0.0.1]
    tls:
      cert: \${ADT_TLS_CERT}
      key: \${ADT_TLS_KEY}
  orderBy: PID-3.1
  steps:
    - validate: hl7
    - filter: { field: PV1-2, in: [I, O, E] }
    - enrich: { lookup: departments, from: PV1-3.1, as: department }
    - transform: transforms/adt-to-event.ts
  destinations:
    - name: rcm
      type: rest
      url: \${RCM_URL:-http://127.0.0.1:8080/sandbox/rcm}/billing
      contract: BillingReadiness@1
      auth:
        type: oauth2-client-credentials
        tokenUrl: \${IDP_URL}
        clientId: \${RCM_CLIENT_ID}
        clientSecret: \${RCM_CLIENT_SECRET}
      timeout: 15s
      retry:
        maxAttempts: 5
        backoff: { type: fixed, initial: 2s }
        maxElapsed: 1h
      rateLimit: rcm-api
      batch: { maxItems: 20, maxWait: 2s }
    - name: erp
      type: rest
      url: http://127.0.0.1:8080/sandbox/erp
`;
}

/** Environment that satisfies {@link validChannel}. */
export const validEnv: NodeJS.ProcessEnv = {
  ADT_TLS_CERT: 'certs/server.pem',
  ADT_TLS_KEY: 'certs/server.key',
  IDP_URL: 'https://idp.example.org/token',
  RCM_CLIENT_ID: 'osprey',
  RCM_CLIENT_SECRET: 'not-a-real-secret',
};
