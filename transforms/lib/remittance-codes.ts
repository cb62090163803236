// SPDX-License-Identifier: Apache-2.0
/**
 * 835 code sets the remittance transforms read, as data. Pure.
 */

/** CLP02 claim status codes in words. */
export const CLAIM_STATUS: Readonly<Record<string, string>> = {
  '1': 'processed-as-primary',
  '2': 'processed-as-secondary',
  '3': 'processed-as-tertiary',
  '4': 'denied',
  '19': 'processed-as-primary-forwarded',
  '20': 'processed-as-secondary-forwarded',
  '21': 'processed-as-tertiary-forwarded',
  '22': 'reversal',
  '23': 'not-our-claim-forwarded',
  '25': 'predetermination',
};

/**
 * Claim adjustment reason codes (CARC) that deny a service rather than price it: missing or invalid
 * information (16), duplicate (18), coverage not in effect (26, 27), timely filing (29), patient not
 * a member (31), not medically necessary (50), non-covered (96), not covered by this payer (109),
 * benefit maximum reached (119), authorisation absent (197), not covered by the benefit plan (204),
 * and the coding inconsistencies (4, 5, 6, 11). A claim paid 0 that carries one of these under a
 * group other than PR (the patient's share is not a denial) is `claim.denied`. Contractual
 * write-downs (CO-45) and the patient's deductible (PR-1) are not denials: a claim paid 0 because
 * the whole allowed amount went to the deductible is a payment of 0, `payment.posted`.
 */
export const DENIAL_REASON_CODES: ReadonlySet<string> = new Set(['4', '5', '6', '11', '16', '18', '26', '27', '29', '31', '50', '96', '109', '119', '197', '204']);

/** BPR04 payment method codes. */
export const PAYMENT_METHODS: ReadonlySet<string> = new Set(['ACH', 'BOP', 'CHK', 'FWT', 'NON']);
