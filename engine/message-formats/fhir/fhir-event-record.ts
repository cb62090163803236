// SPDX-License-Identifier: Apache-2.0
/**
 * The stored text of one FHIR event (docs/design/0016): a `history` Bundle with one entry holding
 * the resource (absent for a delete), its `fullUrl`, and `request` saying what happened — POST
 * create, PUT update, DELETE delete. Valid FHIR that says by itself what happened, so a replay
 * needs nothing else.
 */
import type { Bundle, Resource } from '@medplum/fhirtypes';

export type FhirInteraction = 'create' | 'update' | 'delete';

export interface FhirEvent {
  /** `Type/id` (relative). */
  reference: string;
  interaction: FhirInteraction;
  /** The resource as the server sent or answered it; absent for a delete. */
  resource?: Resource;
  /** The absolute URL the server gave the resource, when known. */
  fullUrl?: string;
}

const METHOD: Record<FhirInteraction, 'POST' | 'PUT' | 'DELETE'> = { create: 'POST', update: 'PUT', delete: 'DELETE' };

export function fhirEventBundle(event: FhirEvent): Bundle {
  const [type] = event.reference.split('/');
  const entry: NonNullable<Bundle['entry']>[number] = {
    fullUrl: event.fullUrl ?? event.reference,
    request: { method: METHOD[event.interaction], url: event.interaction === 'create' ? (type ?? event.reference) : event.reference },
  };
  if (event.resource && event.interaction !== 'delete') entry.resource = event.resource;
  return { resourceType: 'Bundle', type: 'history', entry: [entry] };
}

/** The event as the text a `fhir` message stores. */
export function fhirEventText(event: FhirEvent): string {
  return JSON.stringify(fhirEventBundle(event));
}
