// SPDX-License-Identifier: Apache-2.0
/**
 * Character sets: bytes → text by MSH-18 (HL7 table 0211), decided only after framing. MSH-18 is
 * found in the raw bytes with an ASCII-compatible scan (every 0211 set except UTF-16/32 keeps
 * ASCII bytes for the header), then the whole message is decoded with iconv-lite.
 */
import iconv from 'iconv-lite';
import type { StoredError } from '../../message-store/message-store.ts';

/** HL7 table 0211 names (and common aliases) → iconv-lite encoding names. Keys are upper-case with spaces, `-`, `_` and `/` removed. */
const TABLE_0211: Readonly<Record<string, string>> = {
  ASCII: 'us-ascii',
  ISOIR6: 'us-ascii',
  UNICODE: 'utf-8', // v2.3 "UNICODE" names the repertoire, not the encoding; in MLLP practice it is UTF-8
  UNICODEUTF8: 'utf-8',
  ISOIR192: 'utf-8',
  UTF8: 'utf-8',
  UNICODEUTF16: 'utf-16le',
  UNICODEUTF32: 'utf-32le',
  ISOIR100: 'iso-8859-1',
  ISOIR101: 'iso-8859-2',
  ISOIR109: 'iso-8859-3',
  ISOIR110: 'iso-8859-4',
  ISOIR144: 'iso-8859-5',
  ISOIR127: 'iso-8859-6',
  ISOIR126: 'iso-8859-7',
  ISOIR138: 'iso-8859-8',
  ISOIR148: 'iso-8859-9',
  ISOIR13: 'shift_jis', // JIS X 0201 katakana: a subset of Shift_JIS
  ISOIR87: 'euc-jp', // JIS X 0208
  ISOIR159: 'euc-jp', // JIS X 0212
  ISOIR58: 'gb2312',
  ISOIR149: 'euc-kr',
  GB18030: 'gb18030',
  GB180302000: 'gb18030',
  KSX1001: 'euc-kr',
  BIG5: 'big5',
  CNS116431992: 'big5', // nearest iconv-lite set; CNS 11643 planes 1–2 ⊂ Big5 in practice
  WINDOWS1252: 'windows-1252',
  CP1252: 'windows-1252',
  LATIN1: 'iso-8859-1',
};
for (const n of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16]) {
  (TABLE_0211 as Record<string, string>)[`8859${n}`] = `iso-8859-${n}`;
  (TABLE_0211 as Record<string, string>)[`ISO8859${n}`] = `iso-8859-${n}`;
}

/**
 * The iconv-lite encoding for an HL7 table 0211 name (`8859/1`, `UNICODE UTF-8`, `ISO IR100`,
 * `GB 18030`, `KS X 1001`, `BIG-5` …) or for any name iconv-lite itself knows (`windows-1252`).
 * Undefined when unknown.
 */
export function hl7CharsetToEncoding(name: string): string | undefined {
  const trimmed = name.trim();
  if (trimmed === '') return undefined;
  const key = trimmed.toUpperCase().replace(/[\s\-_/]+/g, '');
  const mapped = TABLE_0211[key];
  if (mapped !== undefined) return mapped;
  return iconv.encodingExists(trimmed) ? trimmed.toLowerCase() : undefined;
}

/** Result of {@link decodeHl7}. */
export interface DecodedHl7 {
  /** The text (a BOM removed), ready for `Hl7Message.parse`. Always set, even with an error, so the message can be stored and shown. */
  text: string;
  /** The iconv-lite encoding actually used. */
  encoding: string;
  /** OSPREY_ERR_HL7_CHARSET when MSH-18 is unknown or the bytes are not valid in the charset used. */
  error?: StoredError;
}

const MAX_SCAN = 64 * 1024;

/**
 * Finds MSH-18 (first repetition) in raw bytes: the first line that starts with `MSH`, within the
 * first 64 KiB (a batch file's FHS/BHS may come first). Undefined when there is no MSH or no MSH-18.
 */
export function findMsh18(raw: Buffer): string | undefined {
  const limit = Math.min(raw.length, MAX_SCAN);
  let p = raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf ? 3 : 0;
  while (p < limit) {
    if (raw[p] === 0x4d && raw[p + 1] === 0x53 && raw[p + 2] === 0x48) break; // "MSH"
    while (p < limit && raw[p] !== 0x0d && raw[p] !== 0x0a) p++;
    while (p < limit && (raw[p] === 0x0d || raw[p] === 0x0a)) p++;
  }
  if (p + 8 > limit) return undefined;
  const fs = raw[p + 3];
  const rep = raw[p + 5];
  let field = 2; // p+4 starts MSH-2 (HL7 counts the separator at p+3 itself as MSH-1)
  let i = p + 4;
  for (; i < raw.length && field < 18; i++) {
    const b = raw[i];
    if (b === 0x0d || b === 0x0a) return undefined;
    if (b === fs) field++;
  }
  if (field < 18) return undefined;
  let end = i;
  while (end < raw.length && raw[end] !== fs && raw[end] !== rep && raw[end] !== 0x0d && raw[end] !== 0x0a) end++;
  const value = raw.subarray(i, end).toString('latin1').trim();
  return value === '' ? undefined : value;
}

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true });

function hasHighBytes(raw: Buffer): boolean {
  for (let i = 0; i < raw.length; i++) if ((raw[i] as number) > 0x7f) return true;
  return false;
}

function printableName(name: string): string {
  return JSON.stringify(name.replace(/[^\x20-\x7e]/g, '?').slice(0, 40));
}

/**
 * Decodes the bytes of one framed message (or a batch file). The charset is, in order: a UTF-8 or
 * UTF-16 byte-order mark (the bytes prove it), MSH-18, then `fallbackCharset` (the channel's
 * `charset`). Two tolerances, both because senders commonly mislabel:
 * - MSH-18 `ASCII` with 8-bit bytes is decoded with the fallback (no error);
 * - an unknown MSH-18 is decoded with the fallback, and reported as OSPREY_ERR_HL7_CHARSET so the
 *   message is stored as errored and NAKed rather than silently guessed.
 * Bytes that are not valid UTF-8 when UTF-8 is used are also OSPREY_ERR_HL7_CHARSET (the text then
 * carries U+FFFD where they were; the raw bytes are stored untouched anyway).
 */
export function decodeHl7(raw: Buffer, fallbackCharset: string): DecodedHl7 {
  const fallback = hl7CharsetToEncoding(fallbackCharset) ?? 'utf-8';
  if (raw[0] === 0xff && raw[1] === 0xfe) return { text: iconv.decode(raw, 'utf-16le'), encoding: 'utf-16le' };
  if (raw[0] === 0xfe && raw[1] === 0xff) return { text: iconv.decode(raw, 'utf-16be'), encoding: 'utf-16be' };
  const bom = raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf;
  let encoding: string;
  let error: StoredError | undefined;
  const declared = findMsh18(raw);
  if (bom) encoding = 'utf-8';
  else if (declared === undefined) encoding = fallback;
  else {
    const mapped = hl7CharsetToEncoding(declared);
    if (mapped === undefined) {
      encoding = fallback;
      error = { code: 'OSPREY_ERR_HL7_CHARSET', detail: `MSH-18 names an unknown character set ${printableName(declared)}; decoded with the fallback ${fallback}.` };
    } else if (mapped === 'us-ascii') {
      encoding = hasHighBytes(raw) ? fallback : 'us-ascii';
    } else encoding = mapped;
  }
  if (encoding === 'utf-8') {
    const body = bom ? raw.subarray(3) : raw;
    try {
      return { text: fatalUtf8.decode(body), encoding, ...(error ? { error } : {}) };
    } catch {
      const source = declared !== undefined && !bom ? 'MSH-18' : bom ? 'the byte-order mark' : 'the channel charset (MSH-18 is empty)';
      return {
        text: body.toString('utf8'),
        encoding,
        error: error ?? { code: 'OSPREY_ERR_HL7_CHARSET', detail: `The bytes are not valid UTF-8, the character set named by ${source}.` },
      };
    }
  }
  return { text: iconv.decode(raw, encoding), encoding, ...(error ? { error } : {}) };
}

/** Encodes text (an ACK) in the encoding its message was decoded with, so both ends agree. */
export function encodeHl7(text: string, encoding: string): Buffer {
  if (encoding === 'utf-8' || encoding === 'us-ascii') return Buffer.from(text, 'utf8');
  return iconv.encode(text, encoding);
}
