// SPDX-License-Identifier: Apache-2.0
/**
 * How an inbound adapter becomes a channel's `source`: one {@link SourceDefinition} per source type,
 * exported from the adapter's folder and registered with one line in
 * `engine/channel-runtime/adapter-registry.ts`. The channel schema's `source` union, the runtime
 * view, the engine and the API all read the registry, so a new source touches only its own folder,
 * its schema and that line.
 *
 * A source need not be a socket: a poller turning one file into many records hands each record to
 * the same handler. What a record's acknowledgement means is the source's: an MLLP listener
 * answers an ACK frame; a file poller commits a checkpoint.
 */
import type { TObject } from '@sinclair/typebox';
import type { MessageFormatName } from '../message-formats/message-format.ts';
import type { StoredError } from '../message-store/message-store.ts';
import type { InboundAdapter } from './index.ts';

/** A winston-compatible logger (a winston `Logger` or child fits). */
export interface AdapterLogger {
  info(message: string, meta?: Record<string, unknown>): unknown;
  warn(message: string, meta?: Record<string, unknown>): unknown;
  error(message: string, meta?: Record<string, unknown>): unknown;
  debug(message: string, meta?: Record<string, unknown>): unknown;
}

/** How ingest treats a source's messages (the same for every source type). */
export interface SourceIngestSettings {
  /** What the source's messages are. */
  format: MessageFormatName;
  /** Message types the channel takes (`ADT^A01`, `835`); empty takes all. */
  accept: string[];
  /** Duplicate window in ms; 0 turns de-duplication off. */
  dedupeWindowMs: number;
  /** The answer to a message that fails the `validate` step (HL7 ACK sources). */
  onValidationError: 'AE' | 'AA';
  /** Character set of the source's bytes when they do not say (HL7: MSH-18 empty). */
  charset: string;
}

/** What the engine gives a source beyond the handler: its channel's name and engine services. */
export interface SourceDeps {
  channel: string;
  logger: AdapterLogger;
  /** Engine services a source may use (a file ledger, a cluster-wide lock), by name. */
  services: SourceServices;
}

/**
 * Engine services for sources that need more than a handler. Declared here so adapters see only the
 * SDK; implemented by the engine over its store.
 */
export interface SourceServices {
  [service: string]: unknown;
}

/** One record of a sample file, as the source would hand it to ingest. */
export interface SampleRecord {
  /** The record's stored text (what its format's `parse` reads). */
  text: string;
  /** A record the source refuses on its own (a CSV row failing its schema): stored as ERROR with this. */
  error?: StoredError;
}

/** A sample file read the way a file source reads its files: refused whole, or its records in order. */
export type SampleFile = { ok: true; records: SampleRecord[] } | { ok: false; error: StoredError };

export interface SourceDefinition<Settings = never, Config = unknown> {
  /** The `type` of the channel file's `source` (kebab-case, e.g. `mllp-listener`). */
  readonly type: string;
  /**
   * True when the source binds its `port` on this machine (a listener): two such channels on one
   * port are refused by `osprey validate`. A client's `port` (an SFTP server's 22) is not checked.
   */
  readonly listens?: boolean;
  /** The whole `source` block as a channel file writes it, `type` literal included (closed object). */
  readonly schema: TObject;
  /** The adapter's runtime config from validated settings: units resolved, defaults filled, paths absolute. */
  toConfig(settings: Settings, context: { abs(path: string): string }): Config;
  /** How ingest treats the source's messages. */
  ingest(settings: Settings): SourceIngestSettings;
  /**
   * Why the channel is deliberately not run with this config (a connection setting left empty, as
   * the quickstart does for an SFTP server it does not have): the channel shows STOPPED with this
   * reason and readiness does not count it as a failure. Undefined: run it.
   */
  disabledReason?(config: Config): string | undefined;
  create(config: Config, deps: SourceDeps): InboundAdapter;
  /** What the API shows of the source besides its type (bound address, remote directory …). */
  describe(config: Config, adapter?: InboundAdapter): Record<string, string | number | undefined>;
  /**
   * For sources that read whole files (a batch poller): read a local sample file as the source
   * would, checked whole first, then split into records. `osprey test` uses it so that a channel
   * test's input is a file as dropped, not one record. Absent: a sample is one message.
   */
  readSample?(file: string, config: Config): Promise<SampleFile>;
  /** The first line `osprey start` prints after the channel's state (`MLLP :6661`). */
  summary?(config: Config, adapter?: InboundAdapter): string | undefined;
}
