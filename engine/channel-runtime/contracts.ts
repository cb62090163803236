// SPDX-License-Identifier: Apache-2.0
/**
 * Destination contracts: versioned schemas (`BillingReadiness@1`) of what a destination receives.
 * The registry module (default `transforms/contracts/index.ts`) exports `contracts`, a record of
 * TypeBox/JSON schemas keyed `Name@major`. Each payload is checked before it is queued, so a
 * transform bug is an ERROR on the message, never a malformed request to the ERP.
 */
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { OspreyError } from '../errors/error-codes.ts';

export class ContractRegistry {
  private readonly ajv = new Ajv({ allErrors: true, strict: false });
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(private readonly schemas: Readonly<Record<string, object>>) {
    (addFormats as unknown as (ajv: Ajv) => void)(this.ajv);
  }

  static async load(projectRoot: string, modulePath: string): Promise<ContractRegistry> {
    const mod = (await import(pathToFileURL(resolve(projectRoot, modulePath)).href)) as { contracts?: Record<string, object> };
    if (!mod.contracts) throw new OspreyError('OSPREY_ERR_CHANNEL_CONTRACT', `${modulePath} does not export "contracts"`);
    return new ContractRegistry(mod.contracts);
  }

  names(): Set<string> {
    return new Set(Object.keys(this.schemas));
  }

  /** Problems with a payload (JSON paths and rules, never values, since values may be PHI); empty when valid. */
  check(contract: string, payload: unknown): string[] {
    let validate = this.compiled.get(contract);
    if (!validate) {
      const schema = this.schemas[contract];
      if (!schema) return [`unknown contract ${contract}`];
      validate = this.ajv.compile(schema);
      this.compiled.set(contract, validate);
    }
    if (validate(payload)) return [];
    return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`);
  }
}
