// SPDX-License-Identifier: Apache-2.0
/**
 * Engine services for the FHIR subscription source: what it knows of each subscription (status,
 * event numbers, heartbeats, registration) and the durable work it owes (resolving id-only and
 * empty notifications, recovering gaps). Declared here so adapters see only the SDK; the engine
 * implements it over its store (SQLite embedded, PostgreSQL in production) and hands it over in
 * `SourceDeps.services` under {@link SUBSCRIPTION_LEDGER}.
 *
 * A notification is answered 2xx only once what it asks of us is durable: its resources stored as
 * messages, or a {@link PendingWork} row for what must still be fetched. A crash after the answer
 * loses nothing: the work rows are picked up again at start, and what they fetch is de-duplicated
 * on resource type/id + versionId by ingest.
 *
 * @see docs/design/0016-fhir-subscriptions.md
 */

export const SUBSCRIPTION_LEDGER = 'subscriptionLedger';

/** What Osprey knows of one subscription feeding one channel. */
export interface SubscriptionRecord {
  channel: string;
  /**
   * The subscription as notifications name it: `Subscription/<id>` when the server says (bundles,
   * `X-Medplum-Subscription`), else `default` (HAPI's and other bare rest-hooks name none).
   */
  subscription: string;
  /** Topic canonical URL (R4B/R5, backport) or R4 criteria, when known. */
  topic?: string;
  /** The server's status of the subscription as last notified (`requested`, `active`, `error`, `off`). */
  status?: string;
  /** Highest event number seen (R4B/R5 `eventsSinceSubscriptionStart` / `eventNumber`). */
  lastEventNumber?: number;
  /**
   * False once the server's numbers proved untrustworthy (Medplum sends "0" on every notification):
   * gaps are then detected by heartbeats and timestamps only.
   */
  eventNumbersTrusted: boolean;
  /** Epoch ms of the last notification of any type, and of each kind. */
  lastNotificationAt?: number;
  lastEventAt?: number;
  lastHeartbeatAt?: number;
  lastHandshakeAt?: number;
  /**
   * The newest `meta.lastUpdated` (ISO instant) among resources taken from this subscription:
   * where a `_lastUpdated` recovery search starts.
   */
  lastResourceUpdated?: string;
  /** Heartbeat period the subscription promises (ms), from registration or configuration. */
  heartbeatPeriodMs?: number;
  /** Counts since first seen. */
  notifications: number;
  events: number;
  /** The last error the server reported (an `error` notification) or registration met. */
  error?: { code: string; detail: string; at: number };
  /** When Osprey registered the subscription on the server itself. */
  registration?: {
    server: string;
    /** `Subscription/<id>` on that server. */
    resource: string;
    state: 'REGISTERED' | 'FAILED' | 'OFF';
    detail?: string;
    at: number;
  };
  firstSeenAt: number;
}

/** Partial update; `undefined` leaves a field as it is. Counters add. */
export interface SubscriptionUpdate {
  topic?: string;
  status?: string;
  lastEventNumber?: number;
  eventNumbersTrusted?: boolean;
  lastNotificationAt?: number;
  lastEventAt?: number;
  lastHeartbeatAt?: number;
  lastHandshakeAt?: number;
  lastResourceUpdated?: string;
  heartbeatPeriodMs?: number;
  addNotifications?: number;
  addEvents?: number;
  error?: { code: string; detail: string; at: number };
  registration?: SubscriptionRecord['registration'];
}

export const PendingWorkKind = {
  /** Fetch one resource an id-only notification named (`focus`). */
  RESOLVE: 'RESOLVE',
  /** Fetch what changed since `since` (an empty notification, a gap, a missed heartbeat). */
  RECOVER: 'RECOVER',
} as const;
export type PendingWorkKind = (typeof PendingWorkKind)[keyof typeof PendingWorkKind];

export const PendingWorkState = {
  PENDING: 'PENDING',
  DONE: 'DONE',
  /** Gave up (a permanent error, e.g. 403): kept, shown in the API; a human replays or ignores it. */
  FAILED: 'FAILED',
} as const;
export type PendingWorkState = (typeof PendingWorkState)[keyof typeof PendingWorkState];

export interface NewPendingWork {
  channel: string;
  subscription: string;
  kind: PendingWorkKind;
  /** Why: `id-only`, `empty`, `gap 4..6`, `missed heartbeat`, `start`. */
  reason: string;
  /** RESOLVE: `Encounter/2` (relative) or an absolute URL on the server. */
  focus?: string;
  /** RESOLVE: the interaction the notification announced, when it said. */
  interaction?: 'create' | 'update' | 'delete';
  /** The server's event number of the notification asking for it. */
  eventNumber?: number;
  /** RECOVER: first and last missing event numbers, when known (for `$events`). */
  fromEvent?: number;
  toEvent?: number;
  /** RECOVER: ISO instant; resources updated after it are fetched. */
  since?: string;
}

export interface PendingWork extends NewPendingWork {
  id: string;
  state: PendingWorkState;
  attempts: number;
  createdAt: number;
  /** Epoch ms before which it is not tried again (backoff). */
  notBefore: number;
  finishedAt?: number;
  /** Resources it fetched and handed to ingest (duplicates included). */
  resources?: number;
  /** How RECOVER fetched: `$events` or `_lastUpdated`. */
  method?: string;
  lastError?: { code: string; detail: string };
}

export interface SubscriptionLedger {
  get(channel: string, subscription: string): Promise<SubscriptionRecord | undefined>;
  /** Every subscription, or one channel's, oldest first. */
  list(channel?: string): Promise<SubscriptionRecord[]>;
  /** Creates the record when new (`eventNumbersTrusted` true, counters 0), then applies the update. */
  update(channel: string, subscription: string, update: SubscriptionUpdate): Promise<SubscriptionRecord>;
  /** Durable before it resolves: the caller may answer the server once it has. */
  enqueue(work: NewPendingWork): Promise<PendingWork>;
  /** PENDING work of a channel whose `notBefore` has passed, oldest first. */
  due(channel: string, now: number, limit: number): Promise<PendingWork[]>;
  /** A failed try: attempts + 1, error kept, tried again not before `notBefore`. */
  retryLater(id: string, error: { code: string; detail: string }, notBefore: number): Promise<void>;
  finish(id: string, outcome: { state: 'DONE' | 'FAILED'; resources?: number; method?: string; error?: { code: string; detail: string } }, now: number): Promise<void>;
  /** Recent work of a channel (any state), newest first: the API's recovery history. */
  history(channel: string, limit: number): Promise<PendingWork[]>;
}
