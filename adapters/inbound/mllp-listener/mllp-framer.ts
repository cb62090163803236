// SPDX-License-Identifier: Apache-2.0
/**
 * The listener's MLLP framer. The implementation is in `engine/message-formats/hl7v2/mllp-framer.ts`
 * because the MLLP client (an outbound adapter) needs the same framer and adapters may not import
 * each other (adapters/README.md).
 */
export { MllpFramer, mllpFrame, MLLP_VT, MLLP_FS, MLLP_CR } from '../../../engine/message-formats/hl7v2/mllp-framer.ts';
export type { MllpFrameEvent, MllpFramerOptions } from '../../../engine/message-formats/hl7v2/mllp-framer.ts';
