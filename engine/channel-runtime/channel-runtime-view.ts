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
import type { ChannelDefinition, ChannelSource, ChannelStep, RestAuthDefinition } from '../config-schemas/channel.schema.ts';
import { parseDuration } from '../config-schemas/units.ts';
import type { SourceIngestSettings } from '../adapter-sdk/source-definition.ts';
import { sourceDefinition } from './adapter-registry.ts';
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

/** A destination of any supported type (one for now). */
export type DestinationRuntime = RestDestinationRuntime;

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
    return {
      name: d.name,
      type: d.type,
      url: d.url,
      method: d.method ?? 'POST',
      headers: { ...(d.headers ?? {}) },
      ...(d.transform !== undefined ? { transform: d.transform } : {}),
      ...(d.contract !== undefined ? { contract: d.contract } : {}),
      auth: d.auth ?? { type: 'none' },
      timeoutMs: parseDuration(d.timeout ?? '10s'),
      retry,
      ...(d.rateLimit !== undefined ? { rateLimit: d.rateLimit } : {}),
      ...(d.batch ? { batch: { maxItems: d.batch.maxItems, maxWaitMs: parseDuration(d.batch.maxWait) } } : {}),
    };
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
