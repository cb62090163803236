// SPDX-License-Identifier: Apache-2.0
/**
 * How an outbound adapter becomes a channel's destination type: one {@link DestinationDefinition}
 * per type, exported from the adapter's folder and registered with one line in
 * `engine/channel-runtime/adapter-registry.ts`. The channel adds what every destination has (name,
 * transform, contract, retry, rate limit); the definition declares only the adapter's own settings.
 * (`rest`, the first destination, predates the registry and keeps its schema in the channel schema.)
 */
import type { TObject } from '@sinclair/typebox';
import type { OutboundResult } from './index.ts';

/** Sends one body with an idempotency key and classifies the outcome for the retry policy. */
export interface DeliverySender {
  send(body: unknown, idempotencyKey: string): Promise<OutboundResult>;
  close(): Promise<void> | void;
}

export interface DestinationDefinition<Settings = never, Config = unknown> {
  /** The `type` of a channel file's destination (kebab-case, e.g. `sftp-batch-writer`). */
  readonly type: string;
  /** One line for the schema's docs. */
  readonly description: string;
  /** The adapter's own settings (the channel adds `name`, `type`, `transform`, `contract`, `retry`, `rateLimit`). */
  readonly settings: TObject;
  /** The runtime config of validated settings; `abs` makes a local path absolute against the project root. */
  toConfig(settings: Settings, context: { abs(path: string): string }): Config;
  create(config: Config): DeliverySender;
}
