// SPDX-License-Identifier: Apache-2.0
/**
 * The operations log: structured JSON (winston) with `{channel, destination, messageId}` metadata.
 * It never carries message content: the message trace lives in the store, where access is audited.
 * As a second line of defence, the redaction format drops keys that usually hold content or secrets.
 */
import winston from 'winston';

export type Logger = winston.Logger;

/** Keys whose values are never written to the log, whatever a caller passes. */
const REDACTED_KEYS = new Set(['raw', 'text', 'payload', 'body', 'hl7', 'message', 'authorization', 'token', 'password', 'clientSecret']);

const redact = winston.format((info) => {
  for (const key of Object.keys(info)) {
    // `message` is the log line itself; the others are metadata that might carry content.
    if (key !== 'message' && REDACTED_KEYS.has(key)) info[key] = '[redacted]';
  }
  return info;
});

export interface LoggerOptions {
  level?: string;
  format?: 'json' | 'pretty';
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const format =
    options.format === 'pretty'
      ? winston.format.combine(redact(), winston.format.timestamp(), winston.format.colorize(), winston.format.simple())
      : winston.format.combine(redact(), winston.format.timestamp(), winston.format.json());
  return winston.createLogger({
    level: options.level ?? process.env.OSPREY_LOG_LEVEL ?? 'info',
    format,
    transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn'] })],
  });
}

/** A logger that drops everything (tests, library use). */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}
