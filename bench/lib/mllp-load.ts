// SPDX-License-Identifier: Apache-2.0
/**
 * The load generator: C MLLP connections, each behaving like one EHR feed — it sends a message and
 * waits for its ACK before the next (window 1, what Mirth-era senders do), or keeps up to W
 * outstanding when asked (`--window`, MLLP pipelining). All of one patient's messages go over the
 * same connection, so the per-patient order the engine must keep is the order they were sent in.
 *
 * Times are CLOCK_MONOTONIC milliseconds (process.hrtime), the clock the sink process uses too.
 */
import { MllpClient } from '../../adapters/outbound/mllp-sender/mllp-client.ts';
import type { BenchMessage } from './adt-messages.ts';

export const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

export interface LoadTarget {
  host: string;
  port: number;
}

export interface LoadResult {
  /** Per message (index into the messages given): when its frame was written, NaN if never. */
  sentAt: Float64Array;
  /** When its ACK arrived, NaN if none. */
  ackAt: Float64Array;
  /** Messages answered AA/CA with MSA-2 = their own MSH-10. */
  acked: number;
  /** Answered, but not with a positive ACK for this message (AE/AR/CE/CR, wrong MSA-2). */
  nacked: number;
  /** No ACK: a timeout or a lost connection. */
  failed: number;
  /** Messages never sent because the deadline passed. */
  unsent: number;
  /** First error text seen (transport errors only; never message content). */
  firstError?: string;
}

export interface LoadOptions {
  targets: readonly LoadTarget[];
  connections: number;
  window: number;
  messages: readonly BenchMessage[];
  /** No new send starts after this (CLOCK_MONOTONIC ms). */
  deadlineAt: number;
  /** Longest wait for one ACK. @defaultValue 30000 */
  ackTimeoutMs?: number;
  /** Called after every ACK (e.g. for a progress line). */
  onAck?: (index: number) => void;
}

const MSA = /(?:^|\r)MSA\|([A-Z]{2})\|([^|\r]*)/;

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const { messages, connections, targets } = options;
  const n = messages.length;
  const sentAt = new Float64Array(n).fill(NaN);
  const ackAt = new Float64Array(n).fill(NaN);
  const result: LoadResult = { sentAt, ackAt, acked: 0, nacked: 0, failed: 0, unsent: 0 };

  const queues: number[][] = Array.from({ length: connections }, () => []);
  messages.forEach((m, i) => (queues[m.patient % connections] as number[]).push(i));

  const clients = queues.map((_, c) => {
    const target = targets[c % targets.length] as LoadTarget;
    return new MllpClient({ host: target.host, port: target.port, timeoutMs: options.ackTimeoutMs ?? 30_000 });
  });
  // Connect first, so connection set-up is not inside the measured span.
  await Promise.all(clients.map((c) => c.connect()));

  const sendOne = async (client: MllpClient, i: number): Promise<void> => {
    const m = messages[i] as BenchMessage;
    sentAt[i] = nowMs();
    try {
      const ack = await client.send(m.text);
      ackAt[i] = nowMs();
      const msa = MSA.exec(ack);
      if (msa && (msa[1] === 'AA' || msa[1] === 'CA') && msa[2] === m.controlId) result.acked++;
      else result.nacked++;
      options.onAck?.(i);
    } catch (err) {
      result.failed++;
      result.firstError ??= (err as Error).message;
    }
  };

  const connection = async (c: number): Promise<void> => {
    const client = clients[c] as MllpClient;
    const queue = queues[c] as number[];
    let next = 0;
    const inFlight = new Set<Promise<void>>();
    while (next < queue.length) {
      if (nowMs() >= options.deadlineAt) {
        result.unsent += queue.length - next;
        break;
      }
      const p = sendOne(client, queue[next++] as number).finally(() => inFlight.delete(p));
      inFlight.add(p);
      if (inFlight.size >= options.window) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  };

  try {
    await Promise.all(queues.map((_, c) => connection(c)));
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
  return result;
}
