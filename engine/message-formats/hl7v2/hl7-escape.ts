// SPDX-License-Identifier: Apache-2.0
/**
 * HL7 v2 escape sequences (v2.5 §2.7). Decoding happens only when a value is read, never when a
 * message is parsed, so the stored text is never rewritten (the `hl7v2` package re-escapes `\.br\`
 * into `\E\.br\E\` on serialisation: docs/design/0001-hl7-v2-model.md).
 */
import type { Hl7Delimiters } from './hl7-message.ts';

const HEX_RUN = /^X(?:[0-9A-Fa-f]{2})+$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes `\F\ \S\ \T\ \R\ \E\`, `\Xhh…\` and (when a truncation character applies) `\P\`.
 * Formatting escapes (`\.br\`, `\H\`, `\N\`, `\.sp\` …), character-set escapes (`\C…\`, `\M…\`),
 * locally defined `\Z…\` and anything unknown or unterminated are left exactly as sent: they are
 * instructions to a display, not data, and dropping them would lose information.
 *
 * `\Xhh…\` bytes are read as UTF-8 when they form valid UTF-8, else as ISO-8859-1 (one char per
 * byte): the message text has already been decoded from its wire charset, so the bytes of a hex
 * escape are the only ones whose charset is still open.
 *
 * @param truncation the character `\P\` stands for, or undefined to leave `\P\` as sent.
 */
export function decodeHl7Escapes(value: string, d: Hl7Delimiters, truncation: string | undefined): string {
  const e = d.escape;
  if (e === undefined) return value;
  let start = value.indexOf(e);
  if (start < 0) return value;
  let out = '';
  let from = 0;
  while (start >= 0) {
    const end = value.indexOf(e, start + 1);
    if (end < 0) break; // unterminated: the rest is literal
    const seq = value.slice(start + 1, end);
    let replacement: string | undefined;
    switch (seq) {
      case 'F':
        replacement = d.field;
        break;
      case 'S':
        replacement = d.component;
        break;
      case 'T':
        replacement = d.subcomponent;
        break;
      case 'R':
        replacement = d.repetition;
        break;
      case 'E':
        replacement = e;
        break;
      case 'P':
        replacement = truncation;
        break;
      default:
        if (HEX_RUN.test(seq)) replacement = decodeHex(seq.slice(1));
    }
    if (replacement === undefined) {
      // Leave the whole sequence as sent and continue after it.
      out += value.slice(from, end + 1);
    } else {
      out += value.slice(from, start) + replacement;
    }
    from = end + 1;
    start = value.indexOf(e, from);
  }
  return out + value.slice(from);
}

function decodeHex(hex: string): string {
  const bytes = Buffer.from(hex, 'hex');
  try {
    return utf8.decode(bytes);
  } catch {
    return bytes.toString('latin1');
  }
}

/**
 * Escapes text so it can be written into a field: every delimiter becomes its escape sequence and
 * CR/LF become `\X0D\`/`\X0A\` (a raw CR would end the segment). Without an escape character
 * (MSH-2 of 2 characters cannot happen; of 3 it can) the delimiters are replaced by spaces, which
 * is the only safe choice left.
 */
export function encodeHl7Escapes(text: string, d: Hl7Delimiters): string {
  const e = d.escape;
  let out = '';
  for (const ch of text) {
    if (ch === '\r') out += e === undefined ? ' ' : `${e}X0D${e}`;
    else if (ch === '\n') out += e === undefined ? ' ' : `${e}X0A${e}`;
    else if (e === undefined) out += ch === d.field || ch === d.component || ch === d.repetition || ch === d.subcomponent ? ' ' : ch;
    else if (ch === e) out += `${e}E${e}`;
    else if (ch === d.field) out += `${e}F${e}`;
    else if (ch === d.component) out += `${e}S${e}`;
    else if (ch === d.repetition) out += `${e}R${e}`;
    else if (ch === d.subcomponent) out += `${e}T${e}`;
    else if (ch === d.truncation) out += `${e}P${e}`;
    else out += ch;
  }
  return out;
}
