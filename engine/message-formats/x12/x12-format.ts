// SPDX-License-Identifier: Apache-2.0
/**
 * The `x12` message format: one stored record is one 835 claim payment as `split835` cuts it (its
 * ISA first, so it re-parses alone). Keys follow the remittance's own identities: the claim's
 * control number is CLP01, unique per payer and check/EFT trace (TRN02), so the de-duplication
 * identity sender + controlId is payer + TRN02 + CLP01 and a resent remittance posts nothing twice.
 */
import iconv from 'iconv-lite';
import type { FormatKeys, MessageFormat } from '../message-format.ts';
import { X12Message } from './x12-message.ts';

/** The value of `element` in the first `segmentId` whose first element is `qualifier` (N1*PR, NM1*QC). */
export function x12Qualified(message: X12Message, segmentId: string, qualifier: string, element: number): string | undefined {
  const n = message.count(segmentId);
  for (let i = 1; i <= n; i++) {
    if (message.get(`${segmentId}[${i}]-1`) === qualifier) return message.get(`${segmentId}[${i}]-${element}`);
  }
  return undefined;
}

/** Business keys of a claim-payment record (see {@link x12Format}). */
function keysOf(message: X12Message): FormatKeys {
  const keys: FormatKeys = { messageType: message.get('ST-1') ?? '835' };
  const controlId = message.get('CLP-1');
  // A reversal (CLP02 = 22) and the claim's corrected payment usually come in the same remittance,
  // under the same TRN02 and CLP01: the reversal gets an identity of its own, or the corrected
  // payment would be taken for its duplicate and never posted.
  if (controlId !== undefined) keys.controlId = message.get('CLP-2') === '22' ? `${controlId}#reversal` : controlId;
  const payer = x12Qualified(message, 'N1', 'PR', 4) ?? message.get('TRN-3');
  const trace = message.get('TRN-2');
  if (payer !== undefined || trace !== undefined) keys.sender = `${payer ?? ''}|${trace ?? ''}`;
  const patientId = x12Qualified(message, 'NM1', 'QC', 9);
  if (patientId !== undefined) keys.patientId = patientId;
  const visitId = message.get('CLP-7');
  if (visitId !== undefined) keys.visitId = visitId;
  const facility = x12Qualified(message, 'N1', 'PE', 4);
  if (facility !== undefined) keys.facility = facility;
  return keys;
}

/**
 * The X12 format module. `parse` reads one record's text (it must start with its ISA);
 * `keys`: controlId = CLP01 (`CLP01#reversal` for a reversal, CLP02 = 22), sender = `<payer id (N1*PR N104, else TRN03)>|<TRN02>`, messageType =
 * ST01 (`835`), patientId = NM1*QC NM109, visitId = CLP07 (the payer's claim control number),
 * facility = the payee's N1*PE N104; `render` puts one segment per line.
 */
export const x12Format: MessageFormat<X12Message> = {
  name: 'x12',
  parse(text: string): X12Message {
    return X12Message.parse(text);
  },
  keys(message: X12Message): FormatKeys {
    try {
      return keysOf(message);
    } catch {
      // The contract says keys never throws; a record too broken to key is keyed by nothing.
      return {};
    }
  },
  render(raw: Buffer, encoding: string): string {
    const text = iconv.encodingExists(encoding) ? iconv.decode(raw, encoding) : raw.toString('utf8');
    try {
      return X12Message.parse(text).render();
    } catch {
      // Unreadable records are shown as stored (they are ERROR messages; the API still shows them).
      return text;
    }
  },
};
