// SPDX-License-Identifier: Apache-2.0
/**
 * CSV charge row (a `csv-record` of a billing vendor's charge file, columns named by the channel's
 * `csv.rename`) → `ChargeEvent@1` `charge.posted`. Pure: no I/O, no clock, no randomness.
 *
 * Reads the columns charge_id, mrn, encounter_number, facility, service_date, cpt, units, amount,
 * description. The source has already checked each row against the channel's record schema
 * (required columns, date, integer, decimal): a row that fails is an ERROR message of its own and
 * never reaches this transform. What is left here is what the schema cannot say.
 *
 * Business exceptions: `incomplete-message` (a required column empty or a value unreadable — only
 * when a channel's record schema is looser than the sample's).
 */
import { defineTransform, type MessageReader, type TransformContext } from '../../../engine/transform-sdk/index.ts';
import { CHARGE_EVENT, ChargeEventType, type ChargeEvent } from '../../canonical-events/charge-event.ts';
import { ExceptionCategory } from '../../lib/business-rules.ts';
import { toAmount } from '../../lib/money.ts';

/** `MM/DD/YYYY` (the vendor's) or `YYYY-MM-DD` → `YYYY-MM-DD`; undefined otherwise. */
function isoDate(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const us = /^(\d{2})\/(\d{2})\/(\d{4})$/.exec(value);
  const iso = us ? `${us[3]}-${us[1]}-${us[2]}` : /^\d{4}-\d{2}-\d{2}$/.test(value) ? value : undefined;
  if (iso === undefined) return undefined;
  const d = new Date(`${iso}T00:00:00Z`);
  return Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== iso ? undefined : iso;
}

export default defineTransform<MessageReader, ChargeEvent>({
  name: 'csv/charge-row-to-charge-event',
  version: '1.0.0',
  input: 'csv-record',
  // Explicit parameter types: TypeScript narrows after `ctx.exception(...)` (returns never) only then.
  map(row: MessageReader, ctx: TransformContext) {
    const col = (name: string): string | undefined => {
      const v = row.get(name);
      return v === undefined || v === null || v.trim() === '' ? undefined : v.trim();
    };
    const facility = col('facility');
    const tags = facility === undefined ? {} : { facility };
    const need = (name: string): string => {
      const v = col(name);
      if (v === undefined) ctx.exception(ExceptionCategory.incompleteMessage, `column ${name} is empty`, tags);
      return v;
    };
    const chargeId = need('charge_id');
    const mrn = need('mrn');
    const visitNumber = need('encounter_number');
    const where = need('facility');
    const code = need('cpt').toUpperCase();
    const serviceDate = isoDate(need('service_date'));
    if (serviceDate === undefined) ctx.exception(ExceptionCategory.incompleteMessage, `charge ${chargeId}: service_date is not a date`, tags);
    const amount = toAmount(need('amount'));
    if (amount === undefined) ctx.exception(ExceptionCategory.incompleteMessage, `charge ${chargeId}: amount is not an amount to the cent`, tags);
    const unitsText = col('units') ?? '1';
    const units = /^\d+$/.test(unitsText) ? Number(unitsText) : 0;
    if (units < 1) ctx.exception(ExceptionCategory.incompleteMessage, `charge ${chargeId}: units is not a positive whole number`, tags);
    const description = col('description');

    return {
      schema: CHARGE_EVENT,
      // The vendor's charge id is unique per facility: a re-sent or corrected file posts the same id.
      id: ctx.deterministicId(CHARGE_EVENT, where, chargeId),
      type: ChargeEventType.chargePosted,
      chargeId,
      patient: { mrn },
      encounter: { visitNumber },
      facility: where,
      serviceDate,
      // HCPCS level II codes start with a letter (J1100); CPT codes (category I–III) with a digit.
      procedure: { system: /^[A-Z]/.test(code) ? 'HCPCS' : 'CPT', code },
      units,
      amount,
      ...(description === undefined ? {} : { description }),
    };
  },
});
