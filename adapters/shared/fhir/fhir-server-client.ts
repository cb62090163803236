// SPDX-License-Identifier: Apache-2.0
/**
 * What sources and destinations need of a FHIR server, behind one small interface: reads, searches
 * with paging, operations, writes (plain, conditional, transaction) and the capability statement.
 * The implementation (`fhir-kit-server-client.ts`) wraps fhir-kit-client and adds what it lacks:
 * timeouts, outcome classification for the retry policy, and tokens (bearer, OAuth2 client
 * credentials, SMART backend services with a signed JWT) cached until they expire.
 */
import type { Bundle, CapabilityStatement, OperationOutcome, Resource } from '@medplum/fhirtypes';

/** How Osprey authenticates to a FHIR server (every secret from the environment or a file). */
export type FhirAuthConfig =
  | { type: 'none' }
  | { type: 'bearer'; token: string }
  | { type: 'oauth2-client-credentials'; tokenUrl: string; clientId: string; clientSecret: string; scope?: string }
  | {
      /** SMART Backend Services: a client assertion JWT signed with our private key (RS384 or ES384). */
      type: 'smart-backend';
      tokenUrl: string;
      clientId: string;
      /** PEM private key text (the config reads it from a file or the environment). */
      privateKey: string;
      /** `kid` of the key as registered with the server (JWKS). */
      keyId: string;
      algorithm: 'RS384' | 'ES384';
      scope: string;
    };

export interface FhirServerConfig {
  /** e.g. `https://fhir.example.org/R4` (no trailing slash). */
  baseUrl: string;
  auth: FhirAuthConfig;
  /** Per request, ms. */
  timeoutMs: number;
}

/** How a failed request should be treated: retried later, or not again. */
export type FhirFailureClass = 'transient' | 'permanent';

/** The outcome of one request, success or not, for attempt records and the retry policy. */
export interface FhirExchange<T extends Resource = Resource> {
  ok: boolean;
  /** HTTP status; absent when no answer came (timeout, refused connection). */
  status?: number;
  /** The resource answered (the created/updated resource, a search or transaction-response Bundle). */
  resource?: T;
  /** The OperationOutcome answered, when there was one (kept in the attempt record). */
  outcome?: OperationOutcome;
  /** Set when not ok. */
  failure?: FhirFailureClass;
  /** `OSPREY_ERR_FHIR_*` code and a detail with no resource content, when not ok. */
  error?: { code: string; detail: string };
  /** `Location`, `ETag`, `Retry-After` (ms) when answered. */
  location?: string;
  etag?: string;
  retryAfterMs?: number;
  durationMs: number;
  /** The request as sent, secrets redacted (method, url, headers, body), for the attempt log. */
  request: { method: string; url: string; headers: Record<string, string>; body: string };
}

export interface FhirServerClient {
  readonly baseUrl: string;
  /** GET [base]/[type]/[id]. A 404 or 410 is `ok: false, status` (a deleted resource), not a throw. */
  read(type: string, id: string): Promise<FhirExchange>;
  /** GET an absolute or base-relative URL (a focus reference, a `next` link). */
  readUrl(url: string): Promise<FhirExchange>;
  /** One page of a search. */
  search(type: string, params: Record<string, string | string[]>): Promise<FhirExchange<Bundle>>;
  /**
   * Every resource a search matches, following `next` links, at most `maxResources`; rejects with the
   * failing exchange's error when a page fails.
   */
  searchAll(type: string, params: Record<string, string | string[]>, maxResources: number): Promise<Resource[]>;
  /** `GET [base]/[path]` with query parameters, for operations such as `Subscription/123/$events`. */
  operation(path: string, params: Record<string, string>): Promise<FhirExchange>;
  create(resource: Resource, options?: { ifNoneExist?: string }): Promise<FhirExchange>;
  /** PUT [base]/[type]/[id]. */
  update(resource: Resource): Promise<FhirExchange>;
  /** PUT [base]/[type]?[search]: creates when nothing matches, updates the one match. */
  conditionalUpdate(resource: Resource, search: string): Promise<FhirExchange>;
  /** POST [base] with a `transaction` (or `batch`) Bundle. */
  transaction(bundle: Bundle): Promise<FhirExchange<Bundle>>;
  /** DELETE [base]/[type]/[id]. */
  delete(type: string, id: string): Promise<FhirExchange>;
  /** GET [base]/metadata, cached for the client's life. */
  capabilities(): Promise<CapabilityStatement | undefined>;
  close(): Promise<void>;
}
