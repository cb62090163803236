// SPDX-License-Identifier: Apache-2.0
/**
 * A real (winston) logger that keeps every entry in memory, children included, so a test can
 * assert on what was logged and how often.
 */
import { Writable } from 'node:stream';
import winston from 'winston';
import type { Logger } from '../../engine/observability/logger.ts';

export interface LogEntry {
  level: string;
  message: string;
  [meta: string]: unknown;
}

export function recordingLogger(): { logger: Logger; entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const stream = new Writable({
    objectMode: true,
    write(info: LogEntry, _encoding, done) {
      entries.push({ ...info });
      done();
    },
  });
  const logger = winston.createLogger({ level: 'debug', transports: [new winston.transports.Stream({ stream })] });
  return { logger, entries };
}
