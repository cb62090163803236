// SPDX-License-Identifier: Apache-2.0
/**
 * One running channel: its inbound adapter feeds ingest, which runs the pipeline and stores each
 * message with its outcome; one destination worker per destination sends the deliveries. The
 * pipeline worker runs what ingest did not: replays, and messages recovered or rescheduled from
 * the store. The stages talk only through the store and the bus, so a crash between any two steps
 * is recovered from the store.
 */
import type { InboundAdapter } from '../adapter-sdk/index.ts';
import type { Ingest, IngestChannel, NewWork } from '../ingest/ingest.ts';
import { parseStored, type FormatMessage } from '../message-formats/index.ts';
import { queueNames, type MessageBus, type WorkItem } from '../message-bus/message-bus.ts';
import type { MessageStore, ProcessingOutcome, ReceiveResult, StoredDelivery } from '../message-store/message-store.ts';
import { deliveryIdOf } from '../message-store/unit-of-work.ts';
import type { Logger } from '../observability/logger.ts';
import { isOspreyError } from '../errors/error-codes.ts';
import { runPipeline, type PipelineChannel, type PipelineResources } from './pipeline.ts';
import type { DestinationWorker } from './destination-worker.ts';
import { AHEAD_REPUBLISH_AFTER_MS, type PendingWrites } from './pending-writes.ts';

export const ChannelStatus = { STARTING: 'STARTING', RUNNING: 'RUNNING', STOPPED: 'STOPPED', FAILED: 'FAILED' } as const;
export type ChannelStatus = (typeof ChannelStatus)[keyof typeof ChannelStatus];

export interface ChannelParts {
  pipeline: PipelineChannel;
  ingest: Omit<IngestChannel, 'process' | 'publishNew' | 'finishOriginal'>;
  source?: InboundAdapter;
  /** Why the source is deliberately not run (left unconfigured): the channel stays STOPPED. */
  disabledReason?: string;
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
       * and publishes it later, in store order (so this never throws). False: left to the store.
       */
      publish: (queue: string, item: WorkItem) => Promise<boolean>;
      /** Deliveries being written or just written, for this process's workers. */
      pendingWrites: PendingWrites;
    },
  ) {
    this.#ingest = {
      ...parts.ingest,
      process: (m) => this.#runPipeline(m),
      publishNew: (work, stored) => this.#publishNew(work, stored),
      // Done here, not through the pipeline queue: the sender's next message of the key is processed
      // at ingest as soon as the resend has its ACK, and must not overtake the original.
      finishOriginal: (original) => this.process({ id: original.id, key: original.orderKey }),
    };
  }

  get sourceAddress(): { host: string; port: number } | undefined {
    return this.parts.source?.address();
  }

  /** The running source adapter (absent when the channel's source is deliberately not run). */
  get source(): InboundAdapter | undefined {
    return this.parts.source;
  }

  /** Why the channel is deliberately not run, when it is not. */
  get disabledReason(): string | undefined {
    return this.parts.disabledReason;
  }

  async start(): Promise<void> {
    const { bus } = this.deps;
    if (this.parts.disabledReason) {
      // Not an error: recovered work of the channel still waits in the store for the day it runs.
      this.status = ChannelStatus.STOPPED;
      return;
    }
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
      const parsed = parseStored(message.format, message.raw, message.encoding);
      outcome = this.#runPipeline({ id: message.id, receivedAt: message.receivedAt, message: parsed, facility: message.keys.facility });
    } catch (err) {
      // A parse that passed ingest failing now: stored, visible, replayable.
      outcome = { state: 'ERROR', error: { code: isOspreyError(err) ? err.code : 'OSPREY_ERR_TRANSFORM_FAILED', detail: (err as Error).message } };
    }
    const deliveries = await store.recordProcessing(message.id, outcome);
    if (redelivered) {
      if (deliveries.length > 0) this.deps.logger.info('processed message redelivered: its queued deliveries are published again', { channel: this.name, messageId: message.id, deliveries: deliveries.length });
      await this.#publishDeliveries(deliveries, { fresh: false });
    } else await this.#schedule(message.id, outcome, deliveries);
  };

  /** Runs the channel's pipeline; never throws (unreadable lookups, a transform bug … are an ERROR outcome). */
  #runPipeline(m: { id: string; receivedAt: number; message: FormatMessage; facility?: string }): ProcessingOutcome {
    try {
      return runPipeline(this.parts.pipeline, this.parts.resources, { messageId: m.id, receivedAt: m.receivedAt, message: m.message, facility: m.facility });
    } catch (err) {
      return { state: 'ERROR', error: { code: isOspreyError(err) ? err.code : 'OSPREY_ERR_TRANSFORM_FAILED', detail: (err as Error).message } };
    }
  }

  /**
   * A new message's deliveries go on the bus while ingest writes it (docs/design/0008): its ACK
   * waits for the commit and the broker's confirms side by side instead of one after the other.
   * Until the write is over, this process's workers hold the items (pending-writes.ts) and other
   * instances' workers wait for the rows. Afterwards, what did not reach the bus is published again
   * (or left to the outbox recovery), and so is everything when the write took so long that a
   * worker elsewhere may have stopped waiting. Never rejects.
   */
  async #publishNew(work: NewWork, stored: Promise<ReceiveResult>): Promise<void> {
    const { outcome } = work;
    const items = (outcome.state === 'QUEUED' ? outcome.deliveries : []).map((d) => ({
      queue: queueNames.delivery(this.name, d.destination),
      item: { id: deliveryIdOf(work.id, d.destination, d.outputIndex), key: work.orderKey },
    }));
    const end = this.deps.pendingWrites.begin(items.map((x) => x.item.id));
    const startedAt = Date.now();
    const ahead = items.map((x) => this.deps.publish(x.queue, { ...x.item, ahead: true }));
    let deliveries: StoredDelivery[] | undefined;
    try {
      const result = await stored;
      if (!result.duplicateOf) deliveries = result.deliveries ?? [];
    } catch {
      // Not stored: ingest answers AE and the sender resends; the workers find no row.
    }
    const late = Date.now() - startedAt > AHEAD_REPUBLISH_AFTER_MS;
    if (deliveries) this.#report(work.id, outcome);
    end(deliveries);
    const confirmed = await Promise.all(ahead);
    const onBus = new Set(items.filter((_, i) => confirmed[i]).map((x) => x.item.id));
    await this.#publishDeliveries((deliveries ?? []).filter((d) => late || !onBus.has(d.id)), { fresh: false });
  }

  /** After the pipeline worker stored a message's outcome: reports it and publishes its deliveries. */
  async #schedule(id: string, outcome: ProcessingOutcome, deliveries: readonly StoredDelivery[]): Promise<void> {
    this.#report(id, outcome);
    await this.#publishDeliveries(deliveries, { fresh: true });
  }

  #report(messageId: string, outcome: ProcessingOutcome): void {
    const meta = { channel: this.name, messageId };
    if (outcome.state === 'ERROR') this.deps.logger.warn('message errored in the pipeline', { ...meta, code: outcome.error.code });
    else if (outcome.state === 'BUSINESS_EXCEPTION') this.deps.logger.warn('business exception', { ...meta, category: outcome.exception.category });
  }

  /**
   * Puts deliveries on their destinations' queues: all sent at once (in order), then awaited.
   * Only `fresh` ones (just created) are handed over to this process's workers: one published
   * again may be on the bus already, and its first item would take the copy, leaving a stale one
   * for the next.
   */
  async #publishDeliveries(deliveries: readonly StoredDelivery[], { fresh }: { fresh: boolean }): Promise<void> {
    if (fresh) this.deps.pendingWrites.written(deliveries);
    const published: Array<Promise<unknown>> = [];
    for (const delivery of deliveries) {
      published.push(this.deps.publish(queueNames.delivery(this.name, delivery.destination), { id: delivery.id, key: delivery.orderKey }));
    }
    await Promise.all(published);
  }
}
