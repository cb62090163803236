// SPDX-License-Identifier: Apache-2.0
/** The one list of credential headers, used by the REST client, the store and the channel linter. */
import { expect } from 'chai';
import { isSecretHeader } from '../../../engine/adapter-sdk/index.ts';

describe('adapter SDK: isSecretHeader', () => {
  it('names the standard and common vendor credential headers, in any case', () => {
    for (const name of ['Authorization', 'proxy-authorization', 'Cookie', 'Set-Cookie', 'X-API-Key', 'api-key', 'ApiKey', 'X-Auth-Token', 'X-Tenant-Secret', 'X-Session-Token', 'X-Password']) {
      expect(isSecretHeader(name), name).to.equal(true);
    }
  });

  it('leaves ordinary headers and the Idempotency-Key shown', () => {
    for (const name of ['Content-Type', 'Idempotency-Key', 'X-Source', 'Accept', 'X-Request-Id']) expect(isSecretHeader(name), name).to.equal(false);
  });
});
