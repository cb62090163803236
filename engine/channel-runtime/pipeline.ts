// SPDX-License-Identifier: Apache-2.0
/**
 * The channel pipeline as a pure function of one parsed message: validate, filter, enrich, transform,
 * then per destination its own transform and the contract check. It returns the outcome the store
 * records; it does no I/O of its own (lookup tables are read from memory). `osprey test`
 * runs exactly this function, so what a channel test shows is what the engine does.
 */
import { validationAckError, type Hl7Message } from '../message-formats/hl7v2/index.ts';
import type { FormatMessage } from '../message-formats/message-format.ts';
import type { NewDelivery, ProcessingOutcome } from '../message-store/message-store.ts';
import { BusinessException, createTransformContext, isFiltered, type LookupValue, type Transform, type TransformContext } from '../transform-sdk/index.ts';
import { isOspreyError } from '../errors/error-codes.ts';
import type { ContractRegistry } from './contracts.ts';
import type { LookupSource } from './lookup-tables.ts';

export type PipelineStep =
  | { validate: 'hl7' }
  | { filter: { field: string; in?: string[]; notIn?: string[] } }
  | { enrich: { lookup: string; from: string; as: string; required?: boolean } }
  | { transform: string };

export interface PipelineDestination {
  name: string;
  transform?: string;
  contract?: string;
}

export interface PipelineChannel {
  name: string;
  steps: readonly PipelineStep[];
  destinations: readonly PipelineDestination[];
}

export interface PipelineResources {
  /** Loaded transforms by the path written in the channel file. */
  transforms: ReadonlyMap<string, Transform<unknown, unknown>>;
  /** Read from memory: the pipeline does no I/O of its own. */
  lookups: LookupSource;
  contracts: ContractRegistry;
}

export interface PipelineInput {
  messageId: string;
  receivedAt: number;
  /** The parsed message, in its format (HL7 v2, an X12 claim payment, a CSV record …). */
  message: FormatMessage;
  /** Facility business key, used to tag business exceptions. */
  facility?: string;
}

/** Everything a transform or step may raise that is not a business exception is a transform bug. */
export function runPipeline(channel: PipelineChannel, resources: PipelineResources, input: PipelineInput): ProcessingOutcome {
  const enrichment: Record<string, LookupValue | undefined> = {};
  const ctx = createTransformContext({
    channel: channel.name,
    messageId: input.messageId,
    receivedAt: new Date(input.receivedAt).toISOString(),
    enrichment,
    lookup: (table, key) => resources.lookups.get(table, key),
  });
  let events: unknown[] | undefined;

  try {
    for (const step of channel.steps) {
      if ('validate' in step) {
        // The linter allows `validate: hl7` on HL7 v2 sources only; a replayed message of another
        // format reaching it is an error of its own, not a crash.
        if (input.message.format !== 'hl7v2') {
          return { state: 'ERROR', error: { code: 'OSPREY_ERR_PIPELINE_VALIDATION', detail: `validate: hl7 cannot check a ${input.message.format} message` } };
        }
        const invalid = validationAckError(input.message as Hl7Message);
        if (invalid !== undefined) return { state: 'ERROR', error: { code: invalid.code, detail: invalid.detail } };
      } else if ('filter' in step) {
        const { field, in: allowed, notIn } = step.filter;
        const value = input.message.get(field) ?? '';
        if ((allowed && !allowed.includes(value)) || (notIn && notIn.includes(value))) {
          return { state: 'FILTERED', reason: `filter on ${field}: value ${allowed ? 'not in allow-list' : 'in deny-list'}` };
        }
      } else if ('enrich' in step) {
        const { lookup, from, as, required } = step.enrich;
        const key = input.message.get(from) ?? '';
        const value = resources.lookups.get(lookup, key);
        if (value === undefined && required) {
          throw new BusinessException(`unmapped-${lookup}`, `${from} has no entry in lookup "${lookup}"`, { facility: input.facility });
        }
        enrichment[as] = value;
      } else if ('transform' in step) {
        const result = applyTransform(resources, step.transform, events ?? [input.message], ctx);
        if ('filtered' in result) return { state: 'FILTERED', reason: result.filtered };
        events = result.outputs;
      } else {
        step satisfies never;
      }
    }

    // A channel without a transform step forwards the message text itself, named by its format.
    const canonical = events ?? [{ [input.message.format === 'hl7v2' ? 'hl7' : input.message.format]: input.message.toString() }];
    const deliveries: NewDelivery[] = [];
    const filteredDestinations: Array<{ destination: string; reason: string }> = [];
    for (const destination of channel.destinations) {
      const payloads = destination.transform ? applyTransform(resources, destination.transform, canonical, ctx) : { outputs: canonical };
      if ('filtered' in payloads) {
        filteredDestinations.push({ destination: destination.name, reason: payloads.filtered });
        continue;
      }
      let outputIndex = 0;
      for (const payload of payloads.outputs) {
        const problems = destination.contract ? resources.contracts.check(destination.contract, payload) : [];
        if (problems.length > 0) {
          return {
            state: 'ERROR',
            error: {
              code: 'OSPREY_ERR_TRANSFORM_OUTPUT_INVALID',
              detail: `${destination.name}: payload does not match ${destination.contract}: ${problems.slice(0, 5).join('; ')}`,
            },
          };
        }
        deliveries.push({ destination: destination.name, outputIndex: outputIndex++, payload });
      }
      if (payloads.outputs.length === 0) filteredDestinations.push({ destination: destination.name, reason: 'no output' });
    }
    return { state: 'QUEUED', canonical: canonical.length === 1 ? canonical[0] : canonical, deliveries, filteredDestinations };
  } catch (err) {
    if (err instanceof BusinessException) {
      return { state: 'BUSINESS_EXCEPTION', exception: { category: err.category, detail: err.message, tags: { ...err.tags } } };
    }
    // A table that cannot be used is the lookup's problem (shown on the channel), not a transform bug.
    const code = isOspreyError(err) && err.code === 'OSPREY_ERR_CHANNEL_LOOKUP' ? err.code : 'OSPREY_ERR_TRANSFORM_FAILED';
    return { state: 'ERROR', error: { code, detail: describeError(err) } };
  }
}

/** Runs a transform over each input; filtered inputs drop out, the message is filtered only if all do. */
function applyTransform(
  resources: PipelineResources,
  path: string,
  inputs: readonly unknown[],
  ctx: TransformContext,
): { outputs: unknown[] } | { filtered: string } {
  const transform = resources.transforms.get(path);
  if (!transform) throw new Error(`transform ${path} is not loaded`);
  const outputs: unknown[] = [];
  const reasons: string[] = [];
  for (const input of inputs) {
    const result = transform.map(input, ctx);
    if (isFiltered(result)) reasons.push(result.reason);
    else if (Array.isArray(result)) outputs.push(...result);
    else if (result !== undefined) outputs.push(result);
  }
  if (outputs.length === 0 && reasons.length > 0) return { filtered: `${transform.name}: ${reasons.join('; ')}` };
  return { outputs };
}

function describeError(err: unknown): string {
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return text.length > 500 ? `${text.slice(0, 500)}…` : text;
}
