// SPDX-License-Identifier: Apache-2.0
/**
 * Ingest: the step between an inbound adapter and the destinations. It gives the message an id,
 * extracts its business keys, rejects what the channel does not accept, runs the channel's
 * pipeline, de-duplicates, and stores the message with its outcome in one write; the deliveries
 * go on the bus while that write commits (docs/design/0008). Only when the store has committed
 * (and the deliveries are on the bus, see the engine's publish gate) does it answer AA (commit
 * ACK, see docs/design/0001): a message the engine acknowledged is never lost.
 * Malformed or rejected messages are stored too, as ERROR with the reason, so nothing that arrived
 * is invisible.
 *
 * Why the pipeline runs here, before the write, and not as a stage of its own: it is pure (the
 * message, lookups, contracts in; an outcome out), so it needs neither per-key order nor a queue.
 * Run here, each message is written once instead of twice and crosses the bus once fewer: on
 * RabbitMQ + PostgreSQL that is a third of the broker's work per message and one transaction per
 * batch (docs/design/0007-pipeline-at-ingest.md).
 */
import { randomFillSync } from 'node:crypto';
import { monotonicFactory } from 'ulid';
import type { IngestError, IngestOutcome, InboundMessage } from '../adapter-sdk/index.ts';
import { validationAckError, type Hl7Message } from '../message-formats/hl7v2/index.ts';
import { messageFormat, type FormatMessage } from '../message-formats/index.ts';
import type { BusinessKeys, MessageStore, NewMessage, ProcessingOutcome, ReceiveResult, StoredError } from '../message-store/message-store.ts';
import type { Logger } from '../observability/logger.ts';
import { isOspreyError } from '../errors/error-codes.ts';

/**
 * The ULID's random part from a pool of CSPRNG bytes. ulid's own PRNG asks the OS for one byte per
 * character (16 calls per id); the benchmark profile showed it at ~1.5% of the engine's CPU. Same
 * source (crypto), same distribution (byte / 256 picks one of 32 characters uniformly).
 */
const pool = Buffer.alloc(4096);
let poolAt = pool.length;
function pooledRandom(): number {
  if (poolAt === pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  return (pool[poolAt++] as number) / 256;
}

const newId = monotonicFactory(pooledRandom);

export interface IngestChannel {
  name: string;
  /** Accepted message types (`ADT^A01`); empty or absent accepts all. */
  accept?: readonly string[];
  /** HL7 path of the ordering key. */
  orderBy?: string;
  dedupeWindowMs: number;
  /**
   * The original-mode answer to a message that fails the pipeline's `validate` step. `AE` (absent
   * too): refused like a malformed message (stored as ERROR, answered AE naming where, CA in
   * enhanced mode). `AA`: stored as ERROR by the pipeline and acknowledged.
   */
  onValidationError?: 'AE' | 'AA';
  /** The channel's pipeline, run on an accepted message before it is stored. Never throws: a failure is an ERROR outcome. */
  process(message: { id: string; receivedAt: number; message: FormatMessage; facility?: string }): ProcessingOutcome;
  /**
   * Called for an accepted message as soon as its write has started, in key order: puts the
   * deliveries its outcome queues on the bus while `stored` commits, without letting any of them be
   * sent before its row is durable, and resolves once the write is over and they are published (or
   * left to the outbox recovery). Never rejects; ingest handles `stored`'s failure.
   */
  publishNew(work: NewWork, stored: Promise<ReceiveResult>): Promise<void>;
  /**
   * For the original of a resend: finishes its work if it is RECEIVED or QUEUED (processes it, or
   * publishes its deliveries again), and does nothing if it is final. May reject (a store error),
   * which the resend's ACK survives.
   */
  finishOriginal(original: { id: string; orderKey: string }): Promise<void>;
}

/** An accepted message whose write has started. */
export interface NewWork {
  id: string;
  orderKey: string;
  outcome: ProcessingOutcome;
}

/**
 * After a write fails, new messages are published only once stored, for this long: work published
 * ahead of a write that fails points at nothing, and another instance's worker holds the key while
 * it waits for each such row (docs/design/0008). While PostgreSQL is away, senders resend again and
 * again, and a patient's deliveries stalled for 98 s after a 6 s restart.
 */
const STORE_TROUBLE_MS = 30_000;

export class Ingest {
  /** The last publish of each key (channel + order key) still running: see {@link inKeyOrder}. */
  private readonly publishing = new Map<string, Promise<void>>();
  /** Until when a failed write keeps new messages from being published ahead of their write. */
  private storeTroubleUntil = 0;

  constructor(
    private readonly store: MessageStore,
    private readonly logger: Logger,
  ) {}

  async receive(channel: IngestChannel, inbound: InboundMessage): Promise<IngestOutcome> {
    const id = newId();
    const parsed = inbound.message;
    const keys: BusinessKeys = parsed ? ownKeys(messageFormat(inbound.format).keys(parsed)) : {};
    let rejection: { ackCode: 'AE' | 'AR'; error: IngestError; commitAck?: 'CA' } | undefined;
    if (inbound.refused) {
      rejection = { ackCode: 'AR', error: inbound.refused };
    } else if (!parsed || inbound.parseError) {
      rejection = { ackCode: 'AE', error: inbound.parseError ?? { code: 'OSPREY_ERR_INGEST_UNREADABLE', detail: `the ${inbound.format} message could not be parsed` } };
    } else if (channel.accept && channel.accept.length > 0 && !channel.accept.includes(keys.messageType ?? '')) {
      rejection = {
        ackCode: 'AR',
        error: { code: 'OSPREY_ERR_HL7_UNSUPPORTED_TYPE', detail: `message type ${keys.messageType ?? '(none)'} is not accepted by channel ${channel.name}` },
      };
    }
    const orderKey = (parsed && channel.orderBy ? ownString(orderKeyOf(parsed, channel.orderBy)) : undefined) || keys.controlId || id;
    const receivedAt = Date.now();
    // A resend is processed here too and its outcome dropped by the store: telling a duplicate
    // needs the store's answer, and resends are rare.
    let outcome = rejection || !parsed ? undefined : channel.process({ id, receivedAt, message: parsed, facility: keys.facility });
    if (parsed?.format === 'hl7v2' && outcome?.state === 'ERROR' && outcome.error.code === 'OSPREY_ERR_PIPELINE_VALIDATION' && channel.onValidationError !== 'AA') {
      // Refused like a malformed message: the sender learns where (ERR-2), and as a rejection it is
      // never the dedupe original of a corrected resend that reuses its MSH-10.
      rejection = { ackCode: 'AE', error: validationAckError(parsed as Hl7Message) ?? outcome.error, commitAck: 'CA' };
      outcome = undefined;
    }
    const record: NewMessage = {
      id,
      channel: channel.name,
      receivedAt,
      raw: inbound.raw,
      encoding: inbound.encoding,
      format: inbound.format,
      ...(inbound.lineage ? { lineage: inbound.lineage } : {}),
      keys,
      orderKey,
      state: rejection ? 'ERROR' : 'RECEIVED',
      error: rejection?.error,
      // A rejected message is stored but never counts as the original of a later good one.
      dedupeWindowMs: rejection ? 0 : channel.dedupeWindowMs,
      source: inbound.remote,
      outcome,
    };

    const stored = this.store.receive(record);
    // Handled below, but perhaps only once the key's previous message is done: a failure before
    // then must not count as unhandled (Node ends the process on an unhandled rejection).
    stored.catch(() => undefined);
    if (rejection || !outcome) {
      try {
        await stored;
      } catch (err) {
        return this.storeFailed(channel, err);
      }
      this.logger.warn('message stored as ERROR', { channel: channel.name, messageId: id, code: rejection?.error.code });
      return { ackCode: rejection?.ackCode ?? 'AE', messageId: id, error: rejection?.error, ...(rejection?.commitAck ? { commitAck: rejection.commitAck } : {}) };
    }
    return this.inKeyOrder(`${channel.name}\u0000${orderKey}`, async () => {
      if (Date.now() < this.storeTroubleUntil) {
        try {
          await stored;
        } catch (err) {
          return this.storeFailed(channel, err);
        }
      }
      const published = channel.publishNew({ id, orderKey, outcome }, stored);
      let result: ReceiveResult;
      try {
        result = await stored;
      } catch (err) {
        await published;
        return this.storeFailed(channel, err);
      }
      await published;
      const { duplicateOf } = result;
      if (!duplicateOf) return { ackCode: 'AA', messageId: id };
      this.logger.info('duplicate acknowledged again, not processed', { channel: channel.name, messageId: duplicateOf });
      await this.rescheduleIfUnfinished(channel, duplicateOf, orderKey);
      return { ackCode: 'AA', messageId: duplicateOf, duplicate: true };
    });
  }

  private storeFailed(channel: IngestChannel, err: unknown): IngestOutcome {
    this.storeTroubleUntil = Date.now() + STORE_TROUBLE_MS;
    this.logger.error('store failed; sender gets AE and should resend', {
      channel: channel.name,
      code: isOspreyError(err) ? err.code : 'OSPREY_ERR_STORE_UNAVAILABLE',
      error: (err as Error).message,
    });
    return { ackCode: 'AE', error: { code: 'OSPREY_ERR_STORE_UNAVAILABLE', detail: 'the message could not be stored; resend it' } };
  }

  /**
   * Runs `work` after the previous work of the same key has finished: a key's deliveries reach the
   * bus in the order its messages arrived, which is the order the store commits them. Without it,
   * the extra reads and writes of a resend's original (rescheduleIfUnfinished) let a later message
   * of the key, pipelined on the same connection, reach the bus first (seen in the kill -9 test: an
   * old key's delivery applied after a newer one's). `work` never rejects.
   */
  private async inKeyOrder<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.publishing.get(key);
    const mine = previous ? previous.then(work) : work();
    const done = mine.then(
      () => undefined,
      () => undefined,
    );
    this.publishing.set(key, done);
    try {
      return await mine;
    } finally {
      if (this.publishing.get(key) === done) this.publishing.delete(key);
    }
  }

  /**
   * A resend whose original is still RECEIVED or QUEUED: the original's work may never have reached
   * the bus. With several engine instances, one can store a message and die (kill -9) before its
   * publish is confirmed and before the sender has its ACK; the sender resends to another
   * instance, which finds the original — and without this, acknowledges it and leaves its work in
   * the store until some engine instance starts (start-up recovery publishes it). The channel
   * finishes the original before this resend is ACKed (it processes a RECEIVED message, and
   * publishes a QUEUED one's unsent deliveries again), so the sender's next message cannot overtake
   * it. That costs at most duplicate work items, which the stages skip once the work is done. Best
   * effort: the ACK stands.
   */
  private async rescheduleIfUnfinished(channel: IngestChannel, id: string, orderKey: string): Promise<void> {
    try {
      // A resend has its original's content, so its order key; the channel reads the original's
      // state and does nothing for one that is finished.
      await channel.finishOriginal({ id, orderKey });
    } catch (err) {
      this.logger.warn('duplicate: original not re-scheduled; recovery will pick it up', { channel: channel.name, messageId: id, error: (err as Error).message });
    }
  }
}

/**
 * A copy of `value` that shares no memory with the message text it was read from. V8 keeps a
 * substring of 13 characters or more as a slice of its parent, so a key held by the bus (a work
 * item's key) or the store kept the whole record alive: a backlog of 100,000 835 claim payments held
 * 100,000 record texts (the SFTP benchmark's RSS passed 900 MB).
 */
function ownString(value: string | undefined): string | undefined {
  return value === undefined || value.length < 13 ? value : Buffer.from(value, 'utf8').toString('utf8');
}

function ownKeys(keys: BusinessKeys): BusinessKeys {
  const own: BusinessKeys = {};
  for (const [name, value] of Object.entries(keys) as Array<[keyof BusinessKeys, string | undefined]>) if (value !== undefined) own[name] = ownString(value);
  return own;
}

function orderKeyOf(message: FormatMessage, path: string): string | undefined {
  try {
    return message.get(path) ?? undefined;
  } catch {
    return undefined;
  }
}
