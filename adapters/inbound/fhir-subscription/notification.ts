// SPDX-License-Identifier: Apache-2.0
/**
 * What one FHIR subscription notification says, whatever shape the server sent it in (Medplum's R4
 * rest-hook, HAPI's empty POST or PUT/DELETE, the R4 Backport IG's `history` bundle with a
 * `Parameters` or `Basic` status, R4B/R5 `subscription-notification` bundles with a
 * `SubscriptionStatus`; JSON or XML). The reader (`notification-reader.ts`) turns a request into
 * this; the source acts on it.
 */
import type { Resource } from '@medplum/fhirtypes';

export type NotificationShape =
  /** R4 rest-hook with the resource as the body (Medplum; HAPI with a payload, POST). */
  | 'rest-hook-resource'
  /** R4 rest-hook with no body (HAPI without a payload; R4 `payload` absent). */
  | 'rest-hook-empty'
  /** R4 rest-hook PUT/DELETE of `[endpoint]/[type]/[id]` (HAPI with a payload). */
  | 'rest-hook-path'
  /** Medplum's delete: body `{}`, the reference in `X-Medplum-Deleted-Resource`. */
  | 'rest-hook-deleted-header'
  /** Backport IG STU 1.1: `history` bundle, status a `Parameters`. */
  | 'backport-parameters'
  /** Backport IG STU 1.2: `history` bundle, status a `Basic`. */
  | 'backport-basic'
  /** R4B/R5 (and the backport draft): bundle whose first entry is a `SubscriptionStatus`. */
  | 'subscription-status';

export type NotificationType = 'handshake' | 'heartbeat' | 'event-notification' | 'query-status' | 'query-event' | 'error';

/** What a notification carries of each event (R4B/R5 `payload` content). */
export type PayloadContent = 'empty' | 'id-only' | 'full-resource';

export interface NotificationEvent {
  /** The server's event number (R4B/R5 `eventNumber`, backport `event-number`); absent in R4 rest-hooks. */
  eventNumber?: number;
  /** When the event happened, if the server said. */
  timestamp?: string;
  /**
   * The resource the event is about, as `Type/id` (relative) when it can be told, with the absolute
   * URL kept when the server gave one; absent for an `empty` payload.
   */
  focus?: { type: string; id: string; versionId?: string; url?: string };
  /** `create` / `update` / `delete`, when the server said (Medplum header, HAPI method, bundle `request.method`). */
  interaction?: 'create' | 'update' | 'delete';
  /** The resource itself when the payload is `full-resource`. */
  resource?: Resource;
}

export interface FhirNotification {
  shape: NotificationShape;
  type: NotificationType;
  /** `Subscription/<id>` (relative) when the notification names it; else `default`. */
  subscription: string;
  /** The subscription's absolute URL when given (tells which server). */
  subscriptionUrl?: string;
  /** Topic canonical URL (R4B/R5, backport). */
  topic?: string;
  /** The subscription's status as the server states it (`active`, `error`, …). */
  status?: string;
  /** R4B/R5 `eventsSinceSubscriptionStart` (backport `events-since-subscription-start`). */
  eventsSinceSubscriptionStart?: number;
  payload: PayloadContent;
  events: NotificationEvent[];
  /** The notification bundle's own id, when it has one. */
  id?: string;
  /** Errors the server reports (`SubscriptionStatus.error`), as text. */
  errors?: string[];
}
