// SPDX-License-Identifier: Apache-2.0
/**
 * One running channel: its inbound adapter feeds ingest; its pipeline worker turns stored messages
 * into deliveries; one destination worker per destination sends them. The stages talk only through
 * the store and the bus, so a crash between any two steps is recovered from the store.
 */
import type { InboundAdapter } from '../adapter-sdk/index.ts';
import type { Ingest, IngestChannel } from '../ingest/ingest.ts';
import { decodeHl7, Hl7Message } from '../message-formats/hl7v2/index.ts';
import { queueNames, type MessageBus, type WorkItem } from '../message-bus/message-bus.ts';
import type { MessageStore, ProcessingOutcome } from '../message-store/message-store.ts';
import type { Logger } from '../observability/logger.ts';
import { isOspreyError } from '../errors/error-codes.ts';
import { runPipeline, type PipelineChannel, type PipelineResources } from './pipeline.ts';
import type { DestinationWorker } from './destination-worker.ts';
import type { HandoffCache, StoredMessageForProcessing } from './handoff-cache.ts';

export const ChannelStatus = { STARTING: 'STARTING', RUNNING: 'RUNNING', STOPPED: 'STOPPED', FAILED: 'FAILED' } as const;
export type ChannelStatus = (typeof ChannelStatus)[keyof typeof ChannelStatus];

export interface ChannelParts {
  pipeline: PipelineChannel;
  ingest: IngestChannel;
  source?: InboundAdapter;
  destinations: Map<string, DestinationWorker>;
  resources: PipelineResources;
}

export class ChannelInstance {
  status: ChannelStatus = ChannelStatus.STARTING;
  error?: string;

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
      /** In-process hand-over of stored messages and deliveries between stages (local bus only). */
      handoff?: HandoffCache;
    },
  ) {}

  get sourceAddress(): { host: string; port: number } | undefined {
    return this.parts.source?.address();
  }

  async start(): Promise<void> {
    const { bus } = this.deps;
    // The source first: a port that cannot be bound fails the channel before it consumes anything.
    // Messages that arrive before the consumers below are buffered by the bus (the store has them).
    await this.parts.source?.start((message) => this.deps.ingest.receive(this.parts.ingest, message));
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

  /** The pipeline worker: one stored message in, its outcome and deliveries stored, deliveries published. */
  readonly process = async (item: WorkItem): Promise<void> => {
    const { store, logger } = this.deps;
    // The local bus starts this handler in the same tick as ingest's publish: yield first, so the
    // sender's ACK is written before this message's pipeline work (measured: the pipeline's CPU
    // otherwise sits inside every ACK's latency).
    await new Promise<void>((resolve) => setImmediate(resolve));
    const message: StoredMessageForProcessing | undefined = this.deps.handoff?.messages.take(item.id) ?? (await store.loadForProcessing(item.id));
    // Final already (FILTERED, SENT …): a redelivered or duplicate item; nothing to do.
    // QUEUED already: processed, but the instance that did it may have died (kill -9) after storing
    // its deliveries and before publishing them. Its work item comes back here, in key order, and
    // no other instance would ever publish those deliveries (start-up recovery runs only where an
    // engine starts). So it goes on: recordProcessing leaves a processed message unchanged and
    // returns its still-QUEUED deliveries, which are published again (duplicates are harmless: the
    // destination worker skips a delivery that is final).
    if (!message || (message.state !== 'RECEIVED' && message.state !== 'QUEUED')) return;
    const redelivered = message.state === 'QUEUED';

    let outcome: ProcessingOutcome;
    try {
      const hl7 = message.hl7 ?? Hl7Message.parse(decodeHl7(message.raw, message.encoding).text);
      outcome = runPipeline(this.parts.pipeline, this.parts.resources, {
        messageId: message.id,
        receivedAt: message.receivedAt,
        hl7,
        facility: message.keys.facility,
      });
    } catch (err) {
      // Lookup files unreadable, a parse that passed ingest failing now …: stored, visible, replayable.
      outcome = {
        state: 'ERROR',
        error: { code: isOspreyError(err) ? err.code : 'OSPREY_ERR_TRANSFORM_FAILED', detail: (err as Error).message },
      };
    }
    const deliveries = await store.recordProcessing(message.id, outcome);
    const meta = { channel: this.name, messageId: message.id };
    if (redelivered) {
      if (deliveries.length > 0) logger.info('processed message redelivered: its queued deliveries are published again', { ...meta, deliveries: deliveries.length });
    } else if (outcome.state === 'ERROR') logger.warn('message errored in the pipeline', { ...meta, code: outcome.error.code });
    else if (outcome.state === 'BUSINESS_EXCEPTION') logger.warn('business exception', { ...meta, category: outcome.exception.category });
    for (const delivery of deliveries) {
      this.deps.handoff?.deliveries.set(delivery.id, delivery);
      await this.deps.publish(queueNames.delivery(this.name, delivery.destination), { id: delivery.id, key: delivery.orderKey });
    }
  };
}
