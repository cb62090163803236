// SPDX-License-Identifier: Apache-2.0
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { ErrorCodes, OspreyError } from '../../../engine/errors/error-codes.ts';
import { renderErrorCodesDoc } from '../../../engine/errors/error-codes-doc.ts';

describe('error codes', () => {
  it('follow OSPREY_ERR_<AREA>_<PROBLEM>', () => {
    for (const code of Object.keys(ErrorCodes)) expect(code).to.match(/^OSPREY_ERR_[A-Z0-9]+_[A-Z0-9_]+$/);
  });

  it('are all listed in docs/reference/error-codes.md (regenerate with node --import tsx engine/errors/error-codes-doc.ts)', () => {
    const committed = readFileSync(new URL('../../../docs/reference/error-codes.md', import.meta.url), 'utf8');
    expect(committed).to.equal(renderErrorCodesDoc());
  });

  it('carry their class on the error', () => {
    expect(new OspreyError('OSPREY_ERR_DELIVERY_TIMEOUT', 'x').errorClass).to.equal('ambiguous');
    expect(new OspreyError('OSPREY_ERR_STORE_UNAVAILABLE', 'x').errorClass).to.equal('transient');
  });
});
