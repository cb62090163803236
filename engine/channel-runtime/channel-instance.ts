// SPDX-License-Identifier: Apache-2.0
/**
 * One running channel: its inbound adapter feeds ingest, which runs the pipeline and stores each
 * message with its outcome; one destination worker per destination sends the deliveries. The
 * pipeline worker runs what ingest did not: replays, and messages recovered or rescheduled from
 * the store. The stages talk only through the store and the bus, so a crash between any two steps
 * is recovered from the store.
 */
import type { InboundAdapter } from '../adapter-sdk/index.ts';
import type { Ingest, IngestChannel, StoredForScheduling } from '../ingest/ingest.ts';
import { decodeHl7, Hl7Message } from '../message-formats/hl7v2/index.ts';
import { queueNames, type MessageBus, type WorkItem } from '../message-bus/message-bus.ts';
import type { MessageStore, ProcessingOutcome, StoredDelivery } from '../message-store/message-store.ts';
import type { Logger } from '../observability/logger.ts';
import { isOspreyError } from '../errors/error-codes.ts';
import { runPipeline, type PipelineChannel, type PipelineResources } from './pipeline.ts';
import type { DestinationWorker } from './destination-worker.ts';
import type { HandoffCache } from './handoff-cache.ts';

export const ChannelStatus = { STARTING: 'STARTING', RUNNING: 'RUNNING', STOPPED: 'STOPPED', FAILED: 'FAILED' } as const;
export type ChannelStatus = (typeof ChannelStatus)[keyof typeof ChannelStatus];

export interface ChannelParts {
  pipeline: PipelineChannel;
  ingest: Omit<IngestChannel, 'process' | 'onStored'>;
  source?: InboundAdapter;
  destinations: Map<string, DestinationWorker>;
  resources: PipelineResources;
}

export class ChannelInstance {
  status: ChannelStatus = ChannelStatus.STARTING;
  error?: string;
  readonly #ingest: IngestChannel;

  constructor(
    readonly name: string,
    private readonly parts: ChannelParts,
    private readonly deps: {
      store: MessageStore;
      bus: MessageBus;
      ingest: Ingest;
      logger: Logger;
      /**
       * Publishes stored work; when the bus is unavailable the engine leaves the work in the store
       * and publishes it later, in store order (so this never throws).
       */
      publish: (queue: string, item: WorkItem) => Promise<void>;
      /** In-process hand-over of stored deliveries to their destination worker (local bus only). */
      handoff?: HandoffCache;
    },
  ) {
    this.#ingest = { ...parts.ingest, process: (m) => this.#runPipeline(m), onStored: (stored) => this.#schedule(stored) };
  }

  get sourceAddress(): { host: string; port: number } | undefined {
    return this.parts.source?.address();
  }

  async start(): Promise<void> {
    const { bus } = this.deps;
    // The source first: a port that cannot be bound fails the channel before it consumes anything.
    // Messages that arrive before the consumers below are buffered by the bus (the store has them).
    await this.parts.source?.start((message) => this.deps.ingest.receive(this.#ingest, message));
    await bus.consume(queueNames.pipeline(this.name), this.process);
    for (const [name, worker] of this.parts.destinations) {
      await bus.consume(queueNames.delivery(this.name, name), worker.handle);
    }
    this.status = ChannelStatus.RUNNING;
  }

  async stop(): Promise<void> {
    await this.parts.source?.stop();
    for (const worker of this.parts.destinations.values()) await worker.stop();
    this.status = ChannelStatus.STOPPED;
  }

  /**
   * The pipeline worker: a stored message that ingest did not process (a replay, a recovered or
   * rescheduled one) in; its outcome and deliveries stored, the deliveries published.
   */
  readonly process = async (item: WorkItem): Promise<void> => {
    const { store } = this.deps;
    // The local bus starts this handler in the same tick as the publish (a replay's API answer,
    // an ACK): yield first, so that answer is written before this message's pipeline work.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const message = await store.loadForProcessing(item.id);
    // Final already (FILTERED, SENT …): a redelivered or duplicate item; nothing to do.
    // QUEUED already: processed, but the instance that did it may have died (kill -9) after storing
    // its deliveries and before publishing them; its work item comes back here when a resend finds
    // it (ingest) or when the bus redelivers a replay's item. So it goes on: recordProcessing
    // leaves a processed message unchanged and returns its still-QUEUED deliveries, which are
    // published again (duplicates are harmless: the destination worker skips a final delivery).
    if (!message || (message.state !== 'RECEIVED' && message.state !== 'QUEUED')) return;
    const redelivered = message.state === 'QUEUED';
    let outcome: ProcessingOutcome;
    try {
      const hl7 = Hl7Message.parse(decodeHl7(message.raw, message.encoding).text);
      outcome = this.#runPipeline({ id: message.id, receivedAt: message.receivedAt, hl7, facility: message.keys.facility });
    } catch (err) {
      // A parse that passed ingest failing now: stored, visible, replayable.
      outcome = { state: 'ERROR', error: { code: isOspreyError(err) ? err.code : 'OSPREY_ERR_TRANSFORM_FAILED', detail: (err as Error).message } };
    }
    const deliveries = await store.recordProcessing(message.id, outcome);
    if (redelivered) {
      if (deliveries.length > 0) this.deps.logger.info('processed message redelivered: its queued deliveries are published again', { channel: this.name, messageId: message.id, deliveries: deliveries.length });
      await this.#publishDeliveries(deliveries, { fresh: false });
    } else await this.#schedule({ id: message.id, channel: this.name, orderKey: message.orderKey, outcome, deliveries });
  };

  /** Runs the channel's pipeline; never throws (unreadable lookups, a transform bug … are an ERROR outcome). */
  #runPipeline(m: { id: string; receivedAt: number; hl7: Hl7Message; facility?: string }): ProcessingOutcome {
    try {
      return runPipeline(this.parts.pipeline, this.parts.resources, { messageId: m.id, receivedAt: m.receivedAt, hl7: m.hl7, facility: m.facility });
    } catch (err) {
      return { state: 'ERROR', error: { code: isOspreyError(err) ? err.code : 'OSPREY_ERR_TRANSFORM_FAILED', detail: (err as Error).message } };
    }
  }

  /**
   * After a message is stored: reports its outcome and publishes its deliveries. For an original a
   * resend found unfinished, it does the pipeline worker's job here, before the resend's ACK, not
   * through the pipeline queue: the sender's next message of the key is processed at ingest as
   * soon as it has that ACK, and must not overtake the original (per-key order).
   */
  async #schedule(stored: StoredForScheduling): Promise<void> {
    if (!stored.deliveries) {
      await this.process({ id: stored.id, key: stored.orderKey });
      return;
    }
    const meta = { channel: this.name, messageId: stored.id };
    if (stored.outcome?.state === 'ERROR') this.deps.logger.warn('message errored in the pipeline', { ...meta, code: stored.outcome.error.code });
    else if (stored.outcome?.state === 'BUSINESS_EXCEPTION') this.deps.logger.warn('business exception', { ...meta, category: stored.outcome.exception.category });
    await this.#publishDeliveries(stored.deliveries, { fresh: true });
  }

  /**
   * Puts deliveries on their destinations' queues: all sent at once (in order), then awaited.
   * Only `fresh` ones (just created) go through the handoff cache: one published again may be on
   * the bus already, and its first item would take the entry, leaving a stale one for the next.
   */
  async #publishDeliveries(deliveries: readonly StoredDelivery[], { fresh }: { fresh: boolean }): Promise<void> {
    const published: Array<Promise<void>> = [];
    for (const delivery of deliveries) {
      if (fresh) this.deps.handoff?.deliveries.set(delivery.id, delivery);
      published.push(this.deps.publish(queueNames.delivery(this.name, delivery.destination), { id: delivery.id, key: delivery.orderKey }));
    }
    await Promise.all(published);
  }
}
