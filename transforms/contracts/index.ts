// SPDX-License-Identifier: Apache-2.0
/**
 * The contracts registry: every versioned payload schema a destination may name in a channel's
 * `contract:` field, keyed `Name@major`. The engine loads this module and validates each payload
 * with Ajv before delivery (a mismatch is the transform's bug, not the receiver's problem).
 *
 * Adding a major: add the new key next to the old one; never change an existing key's schema in a
 * way that rejects payloads it accepted before.
 */
import type { TSchema } from '@sinclair/typebox';
import { AppointmentEvent, APPOINTMENT_EVENT } from '../canonical-events/appointment-event.ts';
import { ChargeEvent, CHARGE_EVENT } from '../canonical-events/charge-event.ts';
import { EncounterEvent, ENCOUNTER_EVENT } from '../canonical-events/encounter-event.ts';
import { RemittanceEvent, REMITTANCE_EVENT } from '../canonical-events/remittance-event.ts';
import { BillingReadiness, BILLING_READINESS } from './billing-readiness.ts';
import { ErpAccrual, ERP_ACCRUAL } from './erp-accrual.ts';
import { ErpChargePosting, ERP_CHARGE_POSTING } from './erp-charge-posting.ts';
import { ErpPayment, ERP_PAYMENT } from './erp-payment.ts';
import { LaborPlanLine, LABOR_PLAN_LINE } from './labor-plan-line.ts';
import { RcmRemittance, RCM_REMITTANCE } from './rcm-remittance.ts';
import { StaffingDemand, STAFFING_DEMAND } from './staffing-demand.ts';

export const contracts: Record<string, TSchema> = {
  [ENCOUNTER_EVENT]: EncounterEvent,
  [APPOINTMENT_EVENT]: AppointmentEvent,
  [BILLING_READINESS]: BillingReadiness,
  [ERP_ACCRUAL]: ErpAccrual,
  [STAFFING_DEMAND]: StaffingDemand,
  [LABOR_PLAN_LINE]: LaborPlanLine,
  [REMITTANCE_EVENT]: RemittanceEvent,
  [CHARGE_EVENT]: ChargeEvent,
  [ERP_PAYMENT]: ErpPayment,
  [RCM_REMITTANCE]: RcmRemittance,
  [ERP_CHARGE_POSTING]: ErpChargePosting,
};

export default contracts;
