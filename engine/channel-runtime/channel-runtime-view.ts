// SPDX-License-Identifier: Apache-2.0
/**
 * The runtime's view of a validated channel: what the engine needs to run it, with every default
 * filled in, durations in milliseconds and sizes in bytes. The YAML keeps units for reviewers
 * (`idleTimeout: 60s`); the runtime never parses units.
 *
 * Paths: transform paths stay as written (relative to the project root; the loaded modules are in
 * {@link ChannelRuntime.transforms}, keyed by that path); TLS file paths are made absolute against
 * the project root, so the source does not depend on the process's working directory.
 */
import { isAbsolute, resolve } from 'node:path';
import type { Static } from '@sinclair/typebox';
import type { RestDestinationSchema } from '../config-schemas/channel.schema.ts';
import type { ChannelDefinition, ChannelSource, ChannelStep, RestAuthDefinition } from '../config-schemas/channel.schema.ts';
import { parseDuration } from '../config-schemas/units.ts';
import type { SourceIngestSettings } from '../adapter-sdk/source-definition.ts';
import { destinationDefinition, sourceDefinition } from './adapter-registry.ts';
import type { Transform } from '../transform-sdk/index.ts';

/** A channel's source: how ingest treats its messages, and the adapter's own runtime config. */
export interface SourceRuntime extends SourceIngestSettings {
  /** A registered source type (engine/channel-runtime/adapter-registry.ts). */
  type: string;
  /** What the source's `SourceDefinition.toConfig` made of the settings: units resolved, defaults filled. */
  config: unknown;
  ack: {
    mode: 'after-store';
    /** The original-mode answer to a message that fails the `validate` step. @defaultValue 'AE' */
    onValidationError: 'AE' | 'AA';
  };
}

/** A destination's retry policy in ms; a valid `RetryPolicyInput` of `engine/delivery/retry-policy.ts`. */
export interface RetryRuntime {
  /** @defaultValue 10 */
  maxAttempts: number;
  /** @defaultValue `{ type: 'exponential', initialMs: 500, maxMs: 300_000, jitter: 0.2 }` */
  backoff: { type: 'exponential' | 'fixed'; initialMs: number; maxMs: number; jitter: number };
  /** @defaultValue [408, 429, 500, 502, 503, 504] */
  retryOn: number[];
  /** @defaultValue [] */
  treatAsSuccess: number[];
  /** Absent: only `maxAttempts` bounds the retries. */
  maxElapsedMs?: number;
}

export interface RestDestinationRuntime {
  name: string;
  type: 'rest';
  url: string;
  /** @defaultValue 'POST' */
  method: 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** @defaultValue {} */
  headers: Record<string, string>;
  /** Transform path as written; the module is in {@link ChannelRuntime.transforms}. */
  transform?: string;
  /** `Name@major`. */
  contract?: string;
  /** Secrets resolved from the environment. @defaultValue `{ type: 'none' }` */
  auth: RestAuthDefinition;
  /** @defaultValue 10_000 */
  timeoutMs: number;
  retry: RetryRuntime;
  /** Name of a rate limit of the engine config. */
  rateLimit?: string;
  batch?: { maxItems: number; maxWaitMs: number };
}

/** A destination of a registered type (adapter-registry.ts): the channel's part, and the adapter's config. */
export interface RegisteredDestinationRuntime {
  name: string;
  type: string;
  transform?: string;
  contract?: string;
  retry: RetryRuntime;
  rateLimit?: string;
  /** What the definition's `toConfig` made of the adapter's settings. */
  config: unknown;
}

/** A destination: `rest`, or a registered type. */
export type DestinationRuntime = RestDestinationRuntime | RegisteredDestinationRuntime;

export function isRestDestination(d: DestinationRuntime): d is RestDestinationRuntime {
  return d.type === 'rest';
}

/** Steps as written, defaults filled in (`enrich.required` is always set). */
export type StepRuntime = ChannelStep;

export interface ChannelRuntime {
  name: string;
  version: string;
  owner?: string;
  description?: string;
  /** @defaultValue {} */
  labels: Record<string, string>;
  /** Absolute path of the channel file. */
  file: string;
  source: SourceRuntime;
  /** HL7 path of the ordering key. @defaultValue 'MSH-10' (no ordering across messages) */
  orderBy: string;
  steps: StepRuntime[];
  destinations: DestinationRuntime[];
  /**
   * Every transform the channel names (steps and destinations), loaded and checked with
   * `isTransform` during validation, keyed by the path as written.
   */
  transforms: ReadonlyMap<string, Transform<unknown, unknown>>;
}

/**
 * Builds the runtime view from a definition that passed validation and had its defaults applied.
 * @throws RangeError only if given an unvalidated definition (a duration without a unit …).
 */
export function toChannelRuntime(
  definition: ChannelDefinition,
  context: { file: string; projectRoot: string; transforms: ReadonlyMap<string, Transform<unknown, unknown>> },
): ChannelRuntime {
  const { metadata, spec } = definition;
  const src = spec.source as ChannelSource;
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(context.projectRoot, p));
  const source = sourceDefinition(src.type);
  const ingest = source.ingest(src);
  const steps: StepRuntime[] = (spec.steps ?? []).map((step) =>
    'enrich' in step ? { enrich: { ...step.enrich, required: step.enrich.required ?? true } } : step,
  );
  const destinations: DestinationRuntime[] = spec.destinations.map((d) => {
    const backoff = d.retry?.backoff;
    const retry: RetryRuntime = {
      maxAttempts: d.retry?.maxAttempts ?? 10,
      backoff: {
        type: backoff?.type ?? 'exponential',
        initialMs: parseDuration(backoff?.initial ?? '500ms'),
        maxMs: parseDuration(backoff?.max ?? '5m'),
        jitter: backoff?.jitter ?? 0.2,
      },
      retryOn: [...(d.retry?.retryOn ?? [408, 429, 500, 502, 503, 504])],
      treatAsSuccess: [...(d.retry?.treatAsSuccess ?? [])],
      ...(d.retry?.maxElapsed !== undefined ? { maxElapsedMs: parseDuration(d.retry.maxElapsed) } : {}),
    };
    if (d.type !== 'rest') {
      const { name, type, transform, contract, retry: _retry, rateLimit, ...settings } = d as { name: string; type: string; transform?: string; contract?: string; retry?: unknown; rateLimit?: string };
      return {
        name,
        type,
        ...(transform !== undefined ? { transform } : {}),
        ...(contract !== undefined ? { contract } : {}),
        retry,
        ...(rateLimit !== undefined ? { rateLimit } : {}),
        config: destinationDefinition(type).toConfig(settings, { abs }),
      } satisfies RegisteredDestinationRuntime;
    }
    const rest = d as Static<typeof RestDestinationSchema>;
    return {
      name: rest.name,
      type: 'rest',
      url: rest.url,
      method: rest.method ?? 'POST',
      headers: { ...(rest.headers ?? {}) },
      ...(rest.transform !== undefined ? { transform: rest.transform } : {}),
      ...(rest.contract !== undefined ? { contract: rest.contract } : {}),
      auth: rest.auth ?? { type: 'none' },
      timeoutMs: parseDuration(rest.timeout ?? '10s'),
      retry,
      ...(rest.rateLimit !== undefined ? { rateLimit: rest.rateLimit } : {}),
      ...(rest.batch ? { batch: { maxItems: rest.batch.maxItems, maxWaitMs: parseDuration(rest.batch.maxWait) } } : {}),
    } satisfies RestDestinationRuntime;
  });
  return {
    name: metadata.name,
    version: metadata.version,
    ...(metadata.owner !== undefined ? { owner: metadata.owner } : {}),
    ...(metadata.description !== undefined ? { description: metadata.description } : {}),
    labels: { ...(metadata.labels ?? {}) },
    file: context.file,
    source: {
      type: src.type,
      ...ingest,
      config: source.toConfig(src, { abs }),
      ack: { mode: 'after-store', onValidationError: ingest.onValidationError },
    },
    orderBy: spec.orderBy ?? 'MSH-10',
    steps,
    destinations,
    transforms: context.transforms,
  };
}
