// SPDX-License-Identifier: Apache-2.0
/** A work item as the body of a RabbitMQ message: its id and key (and the `ahead` mark), as JSON. */
import type { WorkItem } from '../message-bus.ts';

/** The message body of a work item: only what {@link WorkItem} holds, never a payload. */
export function encodeWorkItem(item: WorkItem): Buffer {
  return Buffer.from(JSON.stringify(item.ahead ? { id: item.id, key: item.key, ahead: true } : { id: item.id, key: item.key }));
}

/** The work item of a message body; undefined when it is not one (the bus dead-letters it). */
export function parseWorkItem(content: Buffer): WorkItem | undefined {
  try {
    const value = JSON.parse(content.toString('utf8')) as { id?: unknown; key?: unknown; ahead?: unknown };
    if (typeof value.id === 'string' && typeof value.key === 'string') return value.ahead === true ? { id: value.id, key: value.key, ahead: true } : { id: value.id, key: value.key };
  } catch {
    // fall through
  }
  return undefined;
}
