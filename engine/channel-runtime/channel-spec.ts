// SPDX-License-Identifier: Apache-2.0
/**
 * The runtime's view of a channel: what the engine needs to run it, with durations in ms and sizes
 * in bytes. The channel loader validates the YAML and produces this view; the runtime never reads
 * YAML itself.
 */
import type { MllpListenerConfig } from '../../adapters/inbound/mllp-listener/index.ts';
import type { RestClientConfig } from '../../adapters/outbound/rest/index.ts';
import type { RetryPolicy } from '../delivery/retry-policy.ts';
import type { PipelineDestination, PipelineStep } from './pipeline.ts';

export interface DestinationSpec extends PipelineDestination {
  type: 'rest';
  rest: RestClientConfig;
  retry: RetryPolicy;
  rateLimit?: string;
  batch?: { maxItems: number; maxWaitMs: number };
}

export interface ChannelSpec {
  name: string;
  version: string;
  file: string;
  source: { type: 'mllp-listener'; listener: MllpListenerConfig; accept?: string[]; dedupeWindowMs: number };
  orderBy?: string;
  steps: PipelineStep[];
  destinations: DestinationSpec[];
}
