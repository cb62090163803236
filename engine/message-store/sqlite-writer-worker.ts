// SPDX-License-Identifier: Apache-2.0
/**
 * The SQLite store's writer thread (a worker_threads Worker started by SqliteStore): it owns the
 * writing connection and flushes the batches the main thread's group committer sends it, one at a
 * time, answering each with one result per write. Protocol (structured-clone messages):
 *
 *   → { type: 'flush', id, ops }      ← { type: 'flushed', id, results } | { type: 'flushed', id, error }
 *   → { type: 'close' }               (closes the connection; the thread then ends)
 *   ← { type: 'ready' } | { type: 'failed', error }   once, after opening and migrating
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SqliteWriter, toWireError, toWireResults, type SqliteWriterOptions } from './sqlite-writer.ts';
import { readMigrations } from './store-rows.ts';
import type { PreparedOp } from './unit-of-work.ts';

export type WriterRequest = { type: 'flush'; id: number; ops: PreparedOp[] } | { type: 'close' };

const port = parentPort;
if (!port) throw new Error('sqlite-writer-worker.ts runs as a worker thread of SqliteStore');
const options = (workerData as { options: SqliteWriterOptions }).options;

let writer: SqliteWriter | undefined;
try {
  writer = new SqliteWriter(options, await readMigrations('sqlite'));
  port.postMessage({ type: 'ready' });
} catch (err) {
  port.postMessage({ type: 'failed', error: toWireError(err) });
  port.close();
}

port.on('message', (req: WriterRequest) => {
  if (req.type === 'close') {
    writer?.close();
    writer = undefined;
    port.close();
    return;
  }
  if (!writer) {
    port.postMessage({ type: 'flushed', id: req.id, error: { name: 'Error', message: 'the SQLite writer is closed' } });
    return;
  }
  for (const op of req.ops) {
    // Structured clone delivers a Uint8Array; the store binds Buffers (no copy: same memory).
    if (op.kind === 'receive') {
      const raw = op.message.raw as Uint8Array;
      op.message.raw = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    }
  }
  try {
    port.postMessage({ type: 'flushed', id: req.id, results: toWireResults(writer.flush(req.ops)) });
  } catch (err) {
    port.postMessage({ type: 'flushed', id: req.id, error: toWireError(err) });
  }
});
