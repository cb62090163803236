// SPDX-License-Identifier: Apache-2.0
/**
 * The transform API: the only part of the engine a transform may import.
 *
 * A transform is a pure function (no I/O, no clock, no randomness) of its input and a context.
 * It returns one output, a list (fan-out), or `ctx.filter(reason)`. A business rule that stops the
 * message (an unmapped department, an unknown provider) is raised with `ctx.exception(...)`: the
 * message goes to the BUSINESS_EXCEPTION state, visible by category, and is replayed once the
 * lookup is fixed. Any other throw is a bug in the transform (OSPREY_ERR_TRANSFORM_FAILED).
 */
import { createHash } from 'node:crypto';

/** Read access to an HL7 v2 message with the notation analysts know: `PID-5.1`, `PID-3[2].1`, `OBX[3]-5`. */
export interface Hl7Reader {
  /**
   * The value at a path, escapes decoded. `null` for the HL7 null `""`; `undefined` when the
   * segment, field or component is absent or empty. A path to a composite field returns the
   * field's text with its delimiters (escapes left as sent), so nothing is lost.
   */
  get(path: string): string | null | undefined;
  /** Every value at a path: all repetitions of a field, or the field in every occurrence of a segment. */
  getAll(path: string): Array<string | null>;
  /** Number of occurrences of a segment id. */
  count(segmentId: string): number;
  /** Segment ids in order, e.g. `['MSH','EVN','PID','PV1']`. */
  segmentIds(): string[];
}

/**
 * Read access to a message of any format, with its format's path notation: an X12 segment's element
 * (`CLP-1`, `CAS[2]-3`, `SVC-1.2`), a CSV record's column (`charge_id`), an HL7 v2 field (`PID-5.1`).
 */
export interface MessageReader {
  /** `hl7v2`, `x12`, `csv-record` … */
  readonly format: string;
  /** The value at a path; `undefined` when absent, `null` for an explicit null. */
  get(path: string): string | null | undefined;
  /** Every value at a path (repetitions, or every occurrence of a segment). */
  getAll(path: string): Array<string | null>;
  /** The message as stored, as text. */
  toString(): string;
}

/** Returned by `ctx.filter()`: the message is FILTERED for this step, not an error. */
export interface Filtered {
  readonly filtered: true;
  readonly reason: string;
}

export function isFiltered(value: unknown): value is Filtered {
  return typeof value === 'object' && value !== null && (value as Filtered).filtered === true;
}

/** Tags that let operators slice business exceptions (by facility, by department). */
export interface ExceptionTags {
  facility?: string;
  department?: string;
  [tag: string]: string | undefined;
}

/** A business rule stopped the message. Not a crash: categorised, visible, replayable. */
export class BusinessException extends Error {
  readonly category: string;
  readonly tags: ExceptionTags;

  constructor(category: string, detail: string, tags: ExceptionTags = {}) {
    super(detail);
    this.name = 'BusinessException';
    this.category = category;
    this.tags = tags;
  }
}

/** A lookup table row: a single mapped value, or a record of columns. */
export type LookupValue = string | Readonly<Record<string, string>>;

export interface TransformContext {
  readonly channel: string;
  /** The engine's id of the message (stable across retries and replays). */
  readonly messageId: string;
  /** When the engine received the message (ISO 8601). Use this, never the clock. */
  readonly receivedAt: string;
  /** Results of the channel's `enrich` steps, by their `as` name. */
  readonly enrichment: Readonly<Record<string, LookupValue | undefined>>;
  /** A row of a lookup table under `config/lookups/`, or undefined when unmapped. */
  lookup(table: string, key: string): LookupValue | undefined;
  /** Raise a business exception (throws). */
  exception(category: string, detail: string, tags?: ExceptionTags): never;
  /** Mark the message as filtered for this transform. */
  filter(reason: string): Filtered;
  /** A stable id derived from its parts: same input, same id, so retries and replays are safe. */
  deterministicId(...parts: Array<string | null | undefined>): string;
}

export type TransformResult<Out> = Out | Out[] | Filtered;

export interface Transform<In, Out> {
  /** `<format>/<from>-to-<to>`, e.g. `hl7v2/adt-to-encounter-event`. */
  readonly name: string;
  /** Semver; channels may pin the major. */
  readonly version: string;
  /**
   * What the transform reads: a message of the channel source's format (an HL7 v2 message, an X12
   * 835 claim payment, a CSV record), or the canonical event of an earlier step. `osprey validate`
   * checks it against the channel's source.
   */
  readonly input: 'hl7v2' | 'x12' | 'csv-record' | 'event';
  map(input: In, ctx: TransformContext): TransformResult<Out>;
}

/** Identity helper that gives a transform its types. */
export function defineTransform<In, Out>(transform: Transform<In, Out>): Transform<In, Out> {
  return transform;
}

export function isTransform(value: unknown): value is Transform<unknown, unknown> {
  const t = value as Transform<unknown, unknown> | undefined;
  return typeof t === 'object' && t !== null && typeof t.map === 'function' && typeof t.name === 'string';
}

/** Deterministic UUID-shaped id (SHA-256 of the parts, formatted like a v5 UUID). */
export function deterministicId(...parts: Array<string | null | undefined>): string {
  const hex = createHash('sha256').update(parts.map((p) => p ?? '').join('\u001f')).digest('hex');
  const variant = ((parseInt(hex.slice(16, 18), 16) & 0x3f) | 0x80).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(18, 20)}-${hex.slice(20, 32)}`;
}

/** Builds a context for a transform; used by the engine and by unit tests alike. */
export function createTransformContext(init: {
  channel: string;
  messageId: string;
  receivedAt: string;
  enrichment?: Record<string, LookupValue | undefined>;
  lookup?: (table: string, key: string) => LookupValue | undefined;
}): TransformContext {
  return {
    channel: init.channel,
    messageId: init.messageId,
    receivedAt: init.receivedAt,
    enrichment: init.enrichment ?? {},
    lookup: init.lookup ?? (() => undefined),
    exception(category, detail, tags) {
      throw new BusinessException(category, detail, tags);
    },
    filter: (reason) => ({ filtered: true, reason }),
    deterministicId,
  };
}
