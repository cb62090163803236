// SPDX-License-Identifier: Apache-2.0
/**
 * `mllp-listener`: HL7 v2 over MLLP (TCP, TLS, mTLS) — framing, charset decoding, ACK/NAK.
 * Imports only the engine's adapter SDK, errors and `engine/message-formats/hl7v2`.
 */
export { createMllpListener } from './mllp-listener.ts';
export type { MllpLogger, MllpListenerSeams, MllpListenerTimers } from './mllp-listener.ts';
export { BatchAckMode, MllpListenerSettingsSchema, MllpListenerTlsSchema, MLLP_DEFAULTS, toMllpListenerConfig } from './mllp-listener.config.ts';
export type { MllpListenerConfig, MllpListenerSettings, ResolvedMllpListenerConfig } from './mllp-listener.config.ts';
export { isBatchFrame, messageByteRanges } from './mllp-batch.ts';
export type { ByteRange } from './mllp-batch.ts';
export { MllpFramer, mllpFrame, MLLP_VT, MLLP_FS, MLLP_CR } from './mllp-framer.ts';
export type { MllpFrameEvent, MllpFramerOptions } from './mllp-framer.ts';
export { mllpListenerSource, MllpListenerSourceSchema } from './mllp-listener.source.ts';
export type { MllpListenerSource } from './mllp-listener.source.ts';
