// SPDX-License-Identifier: Apache-2.0
/**
 * HL7 v2 as a message format: parse, business keys, de-duplication identity (MSH-3|MSH-4 + MSH-10)
 * and rendering for the API (engine/message-formats/message-format.ts).
 */
import type { FormatKeys, MessageFormat } from '../message-format.ts';
import { decodeHl7 } from './hl7-charset.ts';
import { Hl7Message } from './hl7-message.ts';

/** Keys every HL7 channel is searched by; the visit is PV1-19 (ADT) or the appointment (SIU SCH-2, else SCH-1). */
export function hl7Keys(hl7: Hl7Message): FormatKeys {
  return {
    controlId: hl7.get('MSH-10') ?? undefined,
    sender: `${hl7.get('MSH-3') ?? ''}|${hl7.get('MSH-4') ?? ''}`,
    messageType: hl7.messageType || undefined,
    patientId: hl7.get('PID-3.1') ?? undefined,
    visitId: hl7.get('PV1-19.1') ?? hl7.get('SCH-2.1') ?? hl7.get('SCH-1.1') ?? undefined,
    facility: hl7.get('PV1-3.4') ?? hl7.get('MSH-4.1') ?? undefined,
  };
}

export const hl7v2Format: MessageFormat<Hl7Message> = {
  name: 'hl7v2',
  parse: (text) => Hl7Message.parse(text),
  decode: (raw, encoding) => decodeHl7(raw, encoding).text,
  keys: hl7Keys,
  // Segments are CR-separated on the wire; one per line reads in a terminal and a browser.
  render: (raw, encoding) => decodeHl7(raw, encoding).text.replace(/\r\n?/g, '\n'),
};
