// SPDX-License-Identifier: Apache-2.0
/**
 * Ingest: the step between an inbound adapter and the pipeline. It gives the message an id,
 * extracts its business keys, rejects what the channel does not accept, de-duplicates, and stores
 * it. Only when the store has committed does it answer AA (commit ACK, see docs/design/0001):
 * a message the engine acknowledged is never lost. Malformed or rejected messages are stored too,
 * as ERROR with the reason, so nothing that arrived is invisible.
 */
import { randomFillSync } from 'node:crypto';
import { monotonicFactory } from 'ulid';
import type { IngestOutcome, InboundMessage } from '../adapter-sdk/index.ts';
import type { Hl7Message } from '../message-formats/hl7v2/index.ts';
import type { BusinessKeys, MessageStore, NewMessage, StoredError } from '../message-store/message-store.ts';
import type { Logger } from '../observability/logger.ts';
import { isOspreyError } from '../errors/error-codes.ts';
import type { HandoffCache } from '../channel-runtime/handoff-cache.ts';

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
}

/** Called once a RECEIVED message is durable; it schedules the pipeline (publishes to the bus). */
export type OnStored = (message: { id: string; channel: string; orderKey: string }) => Promise<void>;

export function extractKeys(hl7: Hl7Message): BusinessKeys {
  const keys: BusinessKeys = {
    controlId: hl7.get('MSH-10') ?? undefined,
    sender: `${hl7.get('MSH-3') ?? ''}|${hl7.get('MSH-4') ?? ''}`,
    messageType: hl7.messageType || undefined,
    patientId: hl7.get('PID-3.1') ?? undefined,
    visitId: hl7.get('PV1-19.1') ?? hl7.get('SCH-2.1') ?? hl7.get('SCH-1.1') ?? undefined,
    facility: hl7.get('PV1-3.4') ?? hl7.get('MSH-4.1') ?? undefined,
  };
  return keys;
}

export class Ingest {
  constructor(
    private readonly store: MessageStore,
    private readonly onStored: OnStored,
    private readonly logger: Logger,
    /** When set, the stored message is handed to the pipeline in memory (local bus only). */
    private readonly handoff?: HandoffCache,
  ) {}

  async receive(channel: IngestChannel, inbound: InboundMessage): Promise<IngestOutcome> {
    const id = newId();
    const hl7 = inbound.hl7;
    const keys: BusinessKeys = hl7 ? extractKeys(hl7) : {};
    let rejection: { ackCode: 'AE' | 'AR'; error: StoredError } | undefined;
    if (!hl7 || inbound.parseError) {
      rejection = { ackCode: 'AE', error: inbound.parseError ?? { code: 'OSPREY_ERR_HL7_NO_MSH', detail: 'message could not be parsed' } };
    } else if (channel.accept && channel.accept.length > 0 && !channel.accept.includes(keys.messageType ?? '')) {
      rejection = {
        ackCode: 'AR',
        error: { code: 'OSPREY_ERR_HL7_UNSUPPORTED_TYPE', detail: `message type ${keys.messageType ?? '(none)'} is not accepted by channel ${channel.name}` },
      };
    }
    const orderKey = (hl7 && channel.orderBy ? orderKeyOf(hl7, channel.orderBy) : undefined) || keys.controlId || id;
    const record: NewMessage = {
      id,
      channel: channel.name,
      receivedAt: Date.now(),
      raw: inbound.raw,
      encoding: inbound.encoding,
      keys,
      orderKey,
      state: rejection ? 'ERROR' : 'RECEIVED',
      error: rejection?.error,
      // A rejected message is stored but never counts as the original of a later good one.
      dedupeWindowMs: rejection ? 0 : channel.dedupeWindowMs,
      source: inbound.remote,
    };

    let stored;
    try {
      stored = await this.store.receive(record);
    } catch (err) {
      this.logger.error('store failed; sender gets AE and should resend', {
        channel: channel.name,
        code: isOspreyError(err) ? err.code : 'OSPREY_ERR_STORE_UNAVAILABLE',
        error: (err as Error).message,
      });
      return { ackCode: 'AE', error: { code: 'OSPREY_ERR_STORE_UNAVAILABLE', detail: 'the message could not be stored; resend it' } };
    }

    if (stored.duplicateOf) {
      this.logger.info('duplicate acknowledged again, not processed', { channel: channel.name, messageId: stored.duplicateOf });
      await this.rescheduleIfUnprocessed(channel.name, stored.duplicateOf);
      return { ackCode: 'AA', messageId: stored.duplicateOf, duplicate: true };
    }
    if (rejection) {
      this.logger.warn('message stored as ERROR', { channel: channel.name, messageId: id, code: rejection.error.code });
      return { ackCode: rejection.ackCode, messageId: id, error: rejection.error };
    }
    this.handoff?.messages.set(id, {
      id,
      channel: channel.name,
      receivedAt: record.receivedAt,
      raw: record.raw,
      encoding: record.encoding,
      keys,
      orderKey,
      state: 'RECEIVED',
      hl7,
    });
    try {
      await this.onStored({ id, channel: channel.name, orderKey });
    } catch (err) {
      // Stored is what the ACK promises; the recovery sweep republishes RECEIVED messages.
      this.logger.warn('message stored but not yet scheduled; recovery will pick it up', { channel: channel.name, messageId: id, error: (err as Error).message });
    }
    return { ackCode: 'AA', messageId: id };
  }

  /**
   * A resend whose original is still RECEIVED: the original may never have been scheduled. With
   * several engine instances, one can store a message and die (kill -9) before its publish is
   * confirmed and before the sender has its ACK; the sender resends to another instance, which
   * finds the original — and without this, acknowledges it and leaves it RECEIVED until some
   * engine instance starts (start-up recovery is what republishes RECEIVED messages). Scheduling it
   * again costs at most a duplicate work item, which the pipeline skips once the message is
   * processed. Best effort: the ACK stands.
   */
  private async rescheduleIfUnprocessed(channel: string, id: string): Promise<void> {
    try {
      const original = await this.store.loadForProcessing(id);
      if (original?.state === 'RECEIVED') await this.onStored({ id, channel: original.channel, orderKey: original.orderKey });
    } catch (err) {
      this.logger.warn('duplicate: original not re-scheduled; recovery will pick it up', { channel, messageId: id, error: (err as Error).message });
    }
  }
}

function orderKeyOf(hl7: Hl7Message, path: string): string | undefined {
  try {
    return hl7.get(path) ?? undefined;
  } catch {
    return undefined;
  }
}
