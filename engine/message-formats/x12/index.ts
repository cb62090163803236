// SPDX-License-Identifier: Apache-2.0
/**
 * Osprey's X12 layer: delimiters from ISA, a lossless segment model read with `CLP-1` / `CAS[2]-3`
 * / `SVC-1.2` paths, the `x12` message format (keys and dedupe identity of an 835 claim payment),
 * a streamed envelope validator and a streamed 835 splitter (docs/design/0012-x12-splitter.md).
 * Depends only on `engine/errors`, the message-format contract and iconv-lite.
 */
export { readIsa, isX12Padding } from './x12-delimiters.ts';
export type { X12Delimiters, IsaRead } from './x12-delimiters.ts';
export { parseX12Path } from './x12-path.ts';
export type { X12Path } from './x12-path.ts';
export { X12Message } from './x12-message.ts';
export { x12Format, x12Qualified } from './x12-format.ts';
export { X12SegmentScanner } from './x12-segment-scanner.ts';
export type { X12ScannedSegment, X12ScanEnd, X12ScanLimits } from './x12-segment-scanner.ts';
export { validateX12Envelope, scanX12Envelope, X12EnvelopeIssueCode } from './x12-envelope.ts';
export type { X12EnvelopeIssue, X12EnvelopeSummary, X12EnvelopeOptions } from './x12-envelope.ts';
export { split835 } from './x12-835-splitter.ts';
export type { X12ClaimRecord, Split835Options } from './x12-835-splitter.ts';
