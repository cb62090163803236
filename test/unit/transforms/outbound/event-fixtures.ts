// SPDX-License-Identifier: Apache-2.0
/**
 * Canonical events of the samples, for the outbound transforms' unit tests (which call the
 * transforms directly on events, as the pipeline does after the inbound step).
 */
import { BusinessException, isFiltered, type Filtered, type Transform } from '../../../../engine/transform-sdk/index.ts';
import type { AppointmentEvent } from '../../../../transforms/canonical-events/appointment-event.ts';
import type { EncounterEvent } from '../../../../transforms/canonical-events/encounter-event.ts';
import { checkContract, eventContext, loadChannel, loadLookups, lookupFrom, runSample, type Lookup } from '../sample-harness.ts';

export const lookup: Lookup = lookupFrom(loadLookups());

async function canonical<T>(channel: string, sample: string): Promise<T> {
  const run = runSample(await loadChannel(channel), sample, lookup);
  if (run.canonical.state !== 'OK') throw new Error(`${sample}: ${JSON.stringify(run.canonical)}`);
  return structuredClone(run.canonical.outputs[0]) as T;
}

export const encounterEvent = (stem: string): Promise<EncounterEvent> => canonical('adt-to-rcm-erp', `samples/hl7v2/adt/${stem}.hl7`);
export const appointmentEvent = (stem: string): Promise<AppointmentEvent> => canonical('siu-to-workforce-erp', `samples/hl7v2/siu/${stem}.hl7`);

export type Outcome<Out> = { payloads: Out[] } | { filtered: string } | { exception: { category: string; detail: string; tags: Record<string, string | undefined> } };

/** Runs an outbound transform on an event; payloads are checked against the contract (throws if invalid). */
export function apply<In, Out>(transform: Transform<In, Out>, event: In, contract: string, l: Lookup = lookup): Outcome<Out> {
  try {
    const result = transform.map(event, eventContext(l)) as Out | Out[] | Filtered;
    if (isFiltered(result)) return { filtered: result.reason };
    const payloads = Array.isArray(result) ? result : [result];
    for (const p of payloads) {
      const problems = checkContract(contract, p);
      if (problems.length > 0) throw new Error(`payload does not match ${contract}: ${problems.join('; ')}`);
    }
    return { payloads };
  } catch (err) {
    if (err instanceof BusinessException) return { exception: { category: err.category, detail: err.message, tags: { ...err.tags } } };
    throw err;
  }
}

/** The single payload of an outcome (fails the test otherwise). */
export function only<Out>(outcome: Outcome<Out>): Out {
  if (!('payloads' in outcome) || outcome.payloads.length !== 1) throw new Error(`expected one payload, got ${JSON.stringify(outcome)}`);
  return outcome.payloads[0] as Out;
}
