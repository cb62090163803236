// SPDX-License-Identifier: Apache-2.0
/**
 * Errors the buses raise to publishers and consumers. All but the topology error are transient:
 * the item is still in the store, and the caller (or the engine's recovery at start) publishes it
 * again.
 * The codes are registered in `engine/errors/error-codes.ts`; this module names the bus's subset.
 */
import { OspreyError } from '../errors/error-codes.ts';

export const BusErrorCode = {
  /** No broker confirm (or no connection) within publishTimeoutMs. */
  OSPREY_ERR_BUS_PUBLISH_TIMEOUT: 'OSPREY_ERR_BUS_PUBLISH_TIMEOUT',
  /** The broker nacked the publish, or returned it as unroutable (its queue is missing). */
  OSPREY_ERR_BUS_PUBLISH_REJECTED: 'OSPREY_ERR_BUS_PUBLISH_REJECTED',
  /** The bus was stopped before the item could be published. */
  OSPREY_ERR_BUS_STOPPED: 'OSPREY_ERR_BUS_STOPPED',
  /** The broker refused the topology (a queue exists with other arguments: partitions, delivery limit). */
  OSPREY_ERR_BUS_TOPOLOGY: 'OSPREY_ERR_BUS_TOPOLOGY',
} as const;
export type BusErrorCode = (typeof BusErrorCode)[keyof typeof BusErrorCode];

/** An error with a stable bus code; its message carries queue names and ids, never content. */
export class BusError extends OspreyError {
  declare readonly code: BusErrorCode;

  constructor(code: BusErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'BusError';
  }
}

/** The text of anything thrown, for a log line (an error's message: ids and broker replies, never content). */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
