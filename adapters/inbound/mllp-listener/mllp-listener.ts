// SPDX-License-Identifier: Apache-2.0
/**
 * The MLLP listener: TCP (or TLS / mutual TLS) connections carrying HL7 v2 in MLLP frames. Each
 * frame is decoded (MSH-18, else the channel charset), parsed, handed to the engine, and answered
 * with the ACK built from the engine's outcome. On one connection the ACKs go back in the order the
 * messages arrived even though the engine handles them concurrently (pipelining senders match ACKs
 * by position as often as by MSA-2).
 *
 * Nothing a peer does can crash the process: every socket has an 'error' listener, a handler that
 * throws becomes an AE, writes to a closed peer are skipped. Logs carry connection events, byte
 * counts and error codes, never message text (PHI).
 *
 * Memory is bounded (docs/design/0001, "Bounds"): frames handed to the engine and not yet answered
 * count against the listener's `maxBytesInFlight` across all its connections, and against 128
 * frames per connection; past either, the listener stops reading (the sender waits, nothing is
 * dropped). ACKs a sender does not read stop reading from it too, and past `maxUnreadAckBytes` or
 * `idleTimeout` it is disconnected. Bytes outside frames become at most one stored ERROR message per
 * connection.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { AdapterLogger, InboundAdapter, InboundHandler, InboundMessage, IngestOutcome, StoredError } from '../../../engine/adapter-sdk/index.ts';
import { OspreyError, isOspreyError } from '../../../engine/errors/error-codes.ts';
import { Hl7Message, MllpFramer, buildAck, buildBatchAck, decodeHl7, encodeHl7, hl7CharsetToEncoding, mllpFrame, splitBatch } from '../../../engine/message-formats/hl7v2/index.ts';
import { isBatchFrame, messageByteRanges } from './mllp-batch.ts';
import { MLLP_DEFAULTS, type MllpListenerConfig } from './mllp-listener.config.ts';

/** A winston-compatible logger (a winston `Logger` or child fits). */
export type MllpLogger = AdapterLogger;

const silent: MllpLogger = { info() {}, warn() {}, error() {}, debug() {} };

/**
 * Where the listener sets its per-connection frame deadline (a frame not completed within
 * idleTimeout): the process's timers, unref'd, unless a test injects its own (time is then the
 * test's to advance). The connection's idle timeout is the socket's own (`socket.setTimeout`).
 */
export interface MllpListenerTimers {
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

const processTimers: MllpListenerTimers = {
  setTimer: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** What a test may replace; production passes nothing. */
export interface MllpListenerSeams {
  /** @defaultValue the process's timers */
  timers?: MllpListenerTimers;
}

/** Frames in flight on one connection before the listener stops reading from it (backpressure). */
const MAX_IN_FLIGHT = 128;
/** Bytes of unframed junk kept (and stored as one ERROR message) per connection. */
const JUNK_HEAD_BYTES = 4096;

/** True when the bytes hold something other than whitespace and NULs (a stray LF after FS CR is not junk worth storing). */
function isJunk(data: Buffer): boolean {
  for (let i = 0; i < data.length; i++) {
    const b = data[i] as number;
    if (b !== 0x0d && b !== 0x0a && b !== 0x20 && b !== 0x09 && b !== 0x00) return true;
  }
  return false;
}

function normaliseAddress(address: string | undefined): string {
  if (address === undefined) return '';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** True when an ACK built by `buildAck` says accepted (MSA-1 AA or CA): what errors-only batch ACKs leave out. */
function isPositiveAck(ack: string): boolean {
  const msa = ack.split('\r')[1] ?? '';
  const code = msa.split(ack[3] ?? '|')[1];
  return code === 'AA' || code === 'CA';
}

interface Slot {
  ack?: Buffer;
  done: boolean;
}

/**
 * Creates the listener. Throws OSPREY_ERR_CONFIG_INVALID at once for a charset nobody knows, so a
 * typo is found at deploy time and not on the first message.
 */
export function createMllpListener(config: MllpListenerConfig, logger: MllpLogger = silent, seams: MllpListenerSeams = {}): InboundAdapter {
  const timers = seams.timers ?? processTimers;
  const host = config.host ?? MLLP_DEFAULTS.host;
  const charset = config.charset ?? MLLP_DEFAULTS.charset;
  const maxMessageSize = config.maxMessageSize ?? MLLP_DEFAULTS.maxMessageSize;
  const idleTimeoutMs = config.idleTimeoutMs ?? MLLP_DEFAULTS.idleTimeoutMs;
  const maxConnections = config.maxConnections ?? MLLP_DEFAULTS.maxConnections;
  const maxBytesInFlight = config.maxBytesInFlight ?? MLLP_DEFAULTS.maxBytesInFlight;
  const maxUnreadAckBytes = config.maxUnreadAckBytes ?? MLLP_DEFAULTS.maxUnreadAckBytes;
  const batchAck = config.batchAck ?? MLLP_DEFAULTS.batchAck;
  const allowFrom = config.allowFrom === undefined ? undefined : new Set(config.allowFrom.map(normaliseAddress));
  if (hl7CharsetToEncoding(charset) === undefined) {
    throw new OspreyError('OSPREY_ERR_CONFIG_INVALID', `MLLP listener charset ${JSON.stringify(charset)} is not a known character set.`);
  }

  let server: net.Server | undefined;
  let starting: Promise<void> | undefined;
  let stopping: Promise<void> | undefined;
  /** Open connections: a way to close each once its ACKs in flight are written, and to re-decide whether it reads. */
  const connections = new Map<net.Socket, { drain(): void; updateReading(): void }>();
  let nextConnectionId = 1;
  /** Bytes of frames handed to the engine and not answered yet, all connections together. */
  let bytesInFlight = 0;
  /** Set when bytesInFlight reached maxBytesInFlight; cleared below half of it (hysteresis: no pause/resume per frame). */
  let overBudget = false;

  const budgetTaken = (bytes: number): void => {
    bytesInFlight += bytes;
    if (!overBudget && bytesInFlight >= maxBytesInFlight) {
      overBudget = true;
      logger.warn('mllp listener stops reading: maxBytesInFlight reached', { bytesInFlight, maxBytesInFlight, connections: connections.size });
      for (const c of connections.values()) c.updateReading();
    }
  };
  const budgetReturned = (bytes: number): void => {
    bytesInFlight -= bytes;
    if (overBudget && bytesInFlight < maxBytesInFlight / 2) {
      overBudget = false;
      logger.info('mllp listener reads again: frames in flight below half of maxBytesInFlight', { bytesInFlight, maxBytesInFlight });
      for (const c of connections.values()) c.updateReading();
    }
  };

  function serve(socket: net.Socket, handler: InboundHandler): void {
    const id = nextConnectionId++;
    const remote = `${normaliseAddress(socket.remoteAddress)}:${socket.remotePort ?? 0}`;
    const log = { connection: id, remote };
    const framer = new MllpFramer({ maxFrameSize: maxMessageSize });
    const slots: Slot[] = [];
    let frameTimer: unknown;
    let paused = false;
    /** MAX_IN_FLIGHT frames await the engine (cleared below half of it). */
    let slotsFull = false;
    /** The socket's write buffer is full: the sender is not reading its ACKs. */
    let writeBlocked = false;
    /** Bytes outside frames on this connection; only the first junk is stored. */
    let junkBytes = 0;
    let junkStored = false;

    const updateReading = (): void => {
      const pause = slotsFull || overBudget || writeBlocked;
      if (pause && !paused) {
        paused = true;
        socket.pause();
      } else if (!pause && paused && !socket.destroyed) {
        paused = false;
        socket.resume();
      }
    };
    connections.set(socket, {
      drain: () => {
        if (slots.length === 0) socket.end();
      },
      updateReading,
    });
    // A connection opened while the listener is over budget waits like the others.
    updateReading();
    socket.setNoDelay(true);
    socket.setTimeout(idleTimeoutMs);
    logger.info('mllp connection opened', { ...log, tls: socket instanceof tls.TLSSocket });

    const close = (reason: string, code?: string): void => {
      if (!socket.destroyed) {
        logger.info('mllp connection closing', { ...log, reason, ...(code ? { code } : {}) });
        socket.destroy();
      }
    };

    const flush = (): void => {
      while (slots.length > 0 && (slots[0] as Slot).done) {
        const slot = slots.shift() as Slot;
        // A peer that left before its ACK: nothing to write to, and nothing to crash.
        if (slot.ack !== undefined && !socket.destroyed && socket.writable && !socket.write(slot.ack) && !writeBlocked) {
          writeBlocked = true;
          logger.debug('mllp ACKs back up: nothing more is read from the sender until it reads them', { ...log, unreadAckBytes: socket.writableLength });
        }
      }
      if (socket.destroyed) return;
      if (writeBlocked && socket.writableLength > maxUnreadAckBytes) {
        ackUnread('more than maxUnreadAckBytes of ACKs unread');
        return;
      }
      if (slotsFull && slots.length < MAX_IN_FLIGHT / 2) slotsFull = false;
      updateReading();
      if (stopping !== undefined && slots.length === 0) socket.end();
    };

    const ackUnread = (reason: string): void => {
      logger.warn('mllp sender does not read its ACKs; disconnecting', {
        ...log,
        code: 'OSPREY_ERR_MLLP_ACKS_UNREAD',
        unreadAckBytes: socket.writableLength,
        maxUnreadAckBytes,
        idleTimeoutMs,
      });
      close(reason, 'OSPREY_ERR_MLLP_ACKS_UNREAD');
    };

    /** `bytes`: what the work holds against maxBytesInFlight until it is done. */
    const enqueue = (bytes: number, work: () => Promise<Buffer | undefined>): void => {
      const slot: Slot = { done: false };
      slots.push(slot);
      budgetTaken(bytes);
      if (slots.length >= MAX_IN_FLIGHT && !slotsFull) {
        slotsFull = true;
        updateReading();
      }
      work()
        .then((ack) => {
          if (ack !== undefined) slot.ack = mllpFrame(ack);
        })
        .catch((err: unknown) => {
          // Only a bug in this file can land here (handler errors are caught below).
          logger.error('mllp ack could not be built', { ...log, code: isOspreyError(err) ? err.code : 'OSPREY_ERR_MLLP_HANDLER_FAILED' });
        })
        .finally(() => {
          slot.done = true;
          budgetReturned(bytes);
          flush();
        });
    };

    /** Calls the engine; a handler that throws becomes an AE. Calls `handler` before its first await, so calls made in a row reach the engine in that order. */
    const callHandler = async (message: InboundMessage): Promise<IngestOutcome> => {
      try {
        return await handler(message);
      } catch (err) {
        logger.error('mllp handler failed; answering AE', { ...log, code: 'OSPREY_ERR_MLLP_HANDLER_FAILED', cause: isOspreyError(err) ? err.code : (err as Error)?.name });
        return { ackCode: 'AE', error: { code: 'OSPREY_ERR_MLLP_HANDLER_FAILED', detail: 'The engine could not handle the message; resend it.' } };
      }
    };

    /**
     * Decodes and parses one message's bytes and hands it to the engine; resolves with the ACK text
     * (not yet encoded) and the encoding to send it in. `refused`: the frame's head only, of a frame
     * the listener refuses whatever it holds. The handler is called synchronously (see callHandler).
     */
    const handleMessage = async (payload: Buffer, refused?: StoredError): Promise<{ ack: string; encoding: string; outcome: IngestOutcome }> => {
      const decoded = decodeHl7(payload, charset);
      let hl7: Hl7Message | undefined;
      let parseError: StoredError | undefined;
      try {
        hl7 = Hl7Message.parse(decoded.text);
        parseError = decoded.error;
        if (hl7.leniencies.length > 0) {
          // Accepted as the sender meant it (raw bytes kept as received); worth telling its owner.
          logger.warn('mllp message header tolerated: MSH-2 has its escape character doubled, read as ^~\\&', { ...log, leniencies: hl7.leniencies });
        }
      } catch (err) {
        parseError = isOspreyError(err) ? { code: err.code, detail: err.message } : { code: 'OSPREY_ERR_HL7_EMPTY', detail: 'The message could not be read.' };
      }
      const message: InboundMessage = {
        raw: payload,
        text: decoded.text,
        encoding: decoded.encoding,
        format: 'hl7v2',
        remote,
        ...(hl7 !== undefined ? { message: hl7 } : {}),
        ...(parseError !== undefined ? { parseError } : {}),
        ...(refused !== undefined ? { refused } : {}),
      };
      const outcome = await callHandler(message);
      if (outcome.ackCode !== 'AA') {
        logger.warn('mllp message not accepted', { ...log, ack: outcome.ackCode, code: outcome.error?.code, bytes: payload.length });
      } else {
        logger.debug('mllp message accepted', { ...log, bytes: payload.length, messageId: outcome.messageId, duplicate: outcome.duplicate });
      }
      const ack = buildAck(hl7, {
        code: outcome.ackCode,
        ...(outcome.commitAck !== undefined ? { enhancedCode: outcome.commitAck } : {}),
        ...(outcome.error !== undefined && outcome.ackCode !== 'AA' ? { error: outcome.error } : {}),
        ...(hl7 === undefined ? { rawText: decoded.text } : {}),
      });
      return { ack, encoding: decoded.encoding, outcome };
    };

    /** `refused`: the frame's head only, of a frame the listener refuses whatever it holds. */
    const handleFrame = async (payload: Buffer, refused?: StoredError): Promise<Buffer> => {
      if (refused === undefined && isBatchFrame(payload)) return handleBatch(payload);
      const { ack, encoding } = await handleMessage(payload, refused);
      return encodeHl7(ack, encoding);
    };

    /**
     * An HL7 batch in one frame (docs/design/0015-hl7-batches-over-mllp.md): checked as a whole
     * first (BTS/FTS counts, lines outside messages); a batch that fails is stored once, as ERROR
     * with the reason, and every message of it answered AR: none was accepted. Otherwise each
     * message goes to the engine exactly like a single frame (stored, de-duplicated, processed),
     * handed over in batch order in one synchronous loop — the order pipelined frames on one
     * connection get, which ingest keeps per key — and the sender gets one batch ACK.
     */
    const handleBatch = async (payload: Buffer): Promise<Buffer> => {
      const decoded = decodeHl7(payload, charset);
      const file = splitBatch(decoded.text);
      const lineCount = decoded.text.split(/\r\n|\r|\n/).length;
      if (file.messages.length === 0 && file.issues.length === 0) {
        file.issues.push({ code: 'OSPREY_ERR_HL7_BATCH_COUNT', detail: 'The batch holds no message.' });
      }
      if (file.issues.length > 0) {
        const detail = file.issues.map((i) => i.detail).join(' ');
        const code = (file.issues[0] as (typeof file.issues)[number]).code;
        logger.warn('mllp batch refused as a whole; stored as ERROR', { ...log, code, messages: file.messages.length, batches: file.batches.length, bytes: payload.length });
        const { outcome } = await handleMessage(payload, { code, detail: `HL7 batch refused as a whole, none of its messages accepted: ${detail}` });
        // AE (resend) when even the refusal could not be stored; AR (do not resend as is) otherwise.
        const error = outcome.error ?? { code, detail };
        const nak = (text: string): string => {
          let original: Hl7Message | undefined;
          try {
            original = Hl7Message.parse(text);
          } catch {
            // A message that does not parse is answered from its salvaged header.
          }
          return buildAck(original, { code: outcome.ackCode === 'AA' ? 'AR' : outcome.ackCode, error, ...(original === undefined ? { rawText: text } : {}) });
        };
        const batches = file.batches.map((b) => ({ ...(b.header !== undefined ? { header: b.header } : {}), acks: b.messages.map(nak), comment: detail }));
        if (batches.length === 0) batches.push({ acks: [], comment: detail });
        // A batch of zero negative ACKs reads as "all accepted" (HL7 v2.5 §2.10.3.3): never send one for a refusal.
        if (file.messages.length === 0) (batches[0] as { acks: string[] }).acks.push(nak(''));
        const text = buildBatchAck({ ...(file.fileHeader !== undefined ? { fileHeader: file.fileHeader } : {}), batches, comment: detail });
        return encodeHl7(text, decoded.encoding);
      }
      const ranges = messageByteRanges(payload, file.messageLines, lineCount);
      // Started in batch order, all before the first answer is awaited (see callHandler).
      const pending = file.messages.map((text, i) => {
        const r = ranges?.[i];
        return handleMessage(r !== undefined ? Buffer.from(payload.subarray(r.start, r.end)) : encodeHl7(text, decoded.encoding));
      });
      const results = await Promise.all(pending);
      let at = 0;
      let notAccepted = 0;
      const batches = file.batches.map((b) => {
        const mine = results.slice(at, at + b.messages.length);
        at += b.messages.length;
        const acks = mine.filter((r) => batchAck === 'all' || !isPositiveAck(r.ack)).map((r) => r.ack);
        notAccepted += mine.filter((r) => r.outcome.ackCode !== 'AA').length;
        return { ...(b.header !== undefined ? { header: b.header } : {}), acks };
      });
      logger.info('mllp batch answered', { ...log, messages: file.messages.length, batches: file.batches.length, notAccepted, batchAck });
      const text = buildBatchAck({ ...(file.fileHeader !== undefined ? { fileHeader: file.fileHeader } : {}), batches });
      return encodeHl7(text, decoded.encoding);
    };

    const armFrameTimer = (): void => {
      if (framer.inFrame && frameTimer === undefined) {
        // A sender that trickles a frame byte by byte never trips the socket's idle timeout.
        frameTimer = timers.setTimer(() => close('frame not completed within idleTimeout', 'OSPREY_ERR_MLLP_IDLE_TIMEOUT'), idleTimeoutMs);
      } else if (!framer.inFrame && frameTimer !== undefined) {
        timers.clearTimer(frameTimer);
        frameTimer = undefined;
      }
    };

    socket.on('data', (chunk: Buffer) => {
      for (const ev of framer.push(chunk)) {
        switch (ev.type) {
          case 'frame': {
            const payload = ev.payload;
            enqueue(payload.length, () => handleFrame(payload));
            // A new frame restarts the frame deadline.
            if (frameTimer !== undefined) {
              timers.clearTimer(frameTimer);
              frameTimer = undefined;
            }
            break;
          }
          case 'oversize': {
            // Stored (its head: enough to find it by control id and patient) and answered AR: the
            // limit bounds memory, and an operator must still see that the message came.
            logger.warn('mllp frame too large; storing its head as ERROR and answering AR', { ...log, code: 'OSPREY_ERR_MLLP_FRAME_TOO_LARGE', limit: ev.limit });
            const head = ev.head;
            const detail = `The message is larger than this listener's maxMessageSize of ${ev.limit} bytes; the first ${head.length} bytes of it are kept.`;
            enqueue(head.length, () => handleFrame(head, { code: 'OSPREY_ERR_MLLP_FRAME_TOO_LARGE', detail }));
            break;
          }
          case 'garbage': {
            // One log line and at most one stored ERROR per connection, not one per read: a sender
            // that speaks raw TCP instead of MLLP would otherwise flood both.
            if (junkBytes === 0) logger.warn('mllp bytes outside a frame discarded (counted until the connection closes)', { ...log, code: 'OSPREY_ERR_MLLP_GARBAGE', bytes: ev.bytes });
            junkBytes += ev.bytes;
            if (!junkStored && isJunk(ev.data)) {
              junkStored = true;
              const head = Buffer.from(ev.data.subarray(0, JUNK_HEAD_BYTES));
              const detail = `Bytes outside an MLLP frame (no VT start block): a sender not using MLLP framing? The first ${head.length} bytes are kept; the rest of this connection's unframed bytes are counted, not stored.`;
              // Stored for an operator to see; not answered: the peer is not speaking MLLP.
              enqueue(head.length, () => handleFrame(head, { code: 'OSPREY_ERR_MLLP_GARBAGE', detail }).then(() => undefined));
            }
            break;
          }
          case 'truncated':
            logger.warn('mllp partial frame discarded: a new frame started before it ended', { ...log, code: 'OSPREY_ERR_MLLP_GARBAGE', bytes: ev.bytes });
            break;
          default:
            ev satisfies never;
        }
      }
      armFrameTimer();
      // Says when a frame spans reads (a slow or trickling sender); tests wait on it too.
      if (framer.inFrame) logger.debug('mllp partial frame held until the rest arrives', { ...log, partialFrameBytes: framer.bufferedBytes });
    });

    socket.on('drain', () => {
      writeBlocked = false;
      updateReading();
    });
    socket.on('timeout', () => {
      // ACKs unread for idleTimeout: the sender is stuck or gone without a FIN.
      if (writeBlocked) {
        ackUnread('ACKs unread for idleTimeout');
        return;
      }
      // Waiting on the engine is not idleness: the sender is waiting for our ACK.
      if (slots.length > 0) {
        logger.debug('mllp connection idle while the engine prepares its ACKs; kept open', { ...log, pendingAcks: slots.length });
        return;
      }
      close(framer.inFrame ? 'stalled mid-frame' : 'idle', 'OSPREY_ERR_MLLP_IDLE_TIMEOUT');
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      logger.info('mllp connection error', { ...log, error: err.code ?? err.name });
    });
    socket.on('close', () => {
      connections.delete(socket);
      if (frameTimer !== undefined) timers.clearTimer(frameTimer);
      logger.info('mllp connection closed', { ...log, pendingAcks: slots.length, partialFrameBytes: framer.bufferedBytes, ...(junkBytes > 0 ? { unframedBytes: junkBytes } : {}) });
    });
  }

  function onConnection(socket: net.Socket): boolean {
    // Attach first: a reset during the checks below must not become an unhandled 'error'.
    socket.on('error', () => {});
    const address = normaliseAddress(socket.remoteAddress);
    if (allowFrom !== undefined && !allowFrom.has(address)) {
      logger.warn('mllp connection refused: sender not in allowFrom', { remote: address, code: 'OSPREY_ERR_MLLP_SENDER_NOT_ALLOWED' });
      socket.destroy();
      return false;
    }
    return true;
  }

  return {
    start(handler: InboundHandler): Promise<void> {
      if (starting !== undefined) return starting;
      starting = new Promise<void>((resolve, reject) => {
        let srv: net.Server;
        if (config.tls !== undefined) {
          let options: tls.TlsOptions;
          try {
            options = {
              cert: readFileSync(config.tls.cert),
              key: readFileSync(config.tls.key),
              ...(config.tls.ca !== undefined ? { ca: readFileSync(config.tls.ca) } : {}),
              requestCert: config.tls.requestCert ?? false,
              rejectUnauthorized: config.tls.requestCert ?? false,
            };
          } catch (err) {
            starting = undefined;
            reject(new OspreyError('OSPREY_ERR_CONFIG_INVALID', `MLLP listener TLS files cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}).`, { cause: err }));
            return;
          }
          const tlsServer = tls.createServer(options, (socket) => serve(socket, handler));
          tlsServer.on('tlsClientError', (err: NodeJS.ErrnoException, socket) => {
            logger.warn('mllp TLS handshake failed', { remote: normaliseAddress(socket.remoteAddress), error: err.code ?? err.name });
            socket.destroy();
          });
          srv = tlsServer;
          srv.on('connection', (socket: net.Socket) => {
            onConnection(socket);
          });
        } else {
          srv = net.createServer((socket) => {
            if (onConnection(socket)) serve(socket, handler);
          });
        }
        srv.maxConnections = maxConnections;
        srv.on('drop', (data?: { remoteAddress?: string }) => {
          logger.warn('mllp connection refused: maxConnections reached', { remote: normaliseAddress(data?.remoteAddress), code: 'OSPREY_ERR_MLLP_TOO_MANY_CONNECTIONS', maxConnections });
        });
        srv.on('error', (err: NodeJS.ErrnoException) => {
          if (!srv.listening) {
            starting = undefined;
            server = undefined;
            reject(err);
          } else logger.error('mllp server error', { error: err.code ?? err.name });
        });
        srv.listen({ host, port: config.port }, () => {
          server = srv;
          stopping = undefined;
          const a = srv.address() as net.AddressInfo;
          logger.info('mllp listener started', { host: a.address, port: a.port, tls: config.tls !== undefined });
          resolve();
        });
      });
      return starting;
    },

    stop(): Promise<void> {
      if (stopping !== undefined) return stopping;
      const srv = server;
      if (srv === undefined) return Promise.resolve();
      stopping = new Promise<void>((resolve) => {
        srv.close(() => {
          logger.info('mllp listener stopped', {});
          server = undefined;
          starting = undefined;
          resolve();
        });
        for (const [socket, connection] of connections) {
          // Let ACKs in flight go out (flush() ends the socket once its queue is empty), but not for long.
          connection.drain();
          setTimeout(() => socket.destroy(), 2000).unref();
        }
      });
      return stopping;
    },

    address(): { host: string; port: number } | undefined {
      const a = server?.address();
      return a !== null && typeof a === 'object' ? { host: a.address, port: a.port } : undefined;
    },
  };
}
