// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { findEnvReferences, interpolateDocument, interpolateString } from '../../../engine/engine-config/interpolate.ts';
import { parseYamlSource } from '../../../engine/engine-config/yaml-source.ts';

describe('engine-config/interpolate', () => {
  describe('interpolateString', () => {
    it('replaces ${VAR} from the environment', () => {
      const r = interpolateString('${HOST}:${PORT}', { HOST: 'erp.example.org', PORT: '443' });
      expect(r.value).to.equal('erp.example.org:443');
      expect(r.missing).to.deep.equal([]);
    });

    it('uses the default when the variable is unset or empty, like the shell', () => {
      expect(interpolateString('${URL:-http://127.0.0.1:8080/x}/y', {}).value).to.equal('http://127.0.0.1:8080/x/y');
      expect(interpolateString('${URL:-fallback}', { URL: '' }).value).to.equal('fallback');
      expect(interpolateString('${URL:-}', {}).value).to.equal('');
      expect(interpolateString('${URL:-fallback}', { URL: 'set' }).value).to.equal('set');
    });

    it('interpolates references in a default, only when the default is used', () => {
      const text = '${RCM_URL:-${OSPREY_SANDBOX_URL}/rcm}/billing';
      expect(interpolateString(text, { OSPREY_SANDBOX_URL: 'http://127.0.0.1:18080/sandbox' }).value).to.equal('http://127.0.0.1:18080/sandbox/rcm/billing');
      const set = interpolateString(text, { RCM_URL: 'https://rcm.example.org' });
      expect(set.value).to.equal('https://rcm.example.org/billing');
      expect(set.missing, 'the inner variable is not needed').to.deep.equal([]);
      const unset = interpolateString(text, {});
      expect(unset.missing.map((m) => m.name)).to.deep.equal(['OSPREY_SANDBOX_URL']);
      expect(findEnvReferences(text).map((r) => [r.name, r.defaultValue])).to.deep.equal([['RCM_URL', '${OSPREY_SANDBOX_URL}/rcm']]);
    });

    it('reports an unset variable without a default, and keeps an empty one', () => {
      const r = interpolateString('a${MISSING}b', {});
      expect(r.missing.map((m) => m.name)).to.deep.equal(['MISSING']);
      expect(r.value).to.equal('ab');
      expect(interpolateString('${EMPTY}', { EMPTY: '' }).missing).to.deep.equal([]);
    });

    it('never lets a value add structure or further references', () => {
      expect(interpolateString('${A}', { A: 'x: ${B}\n- y' }).value).to.equal('x: ${B}\n- y');
    });

    it('writes a literal ${ for $${', () => {
      const r = interpolateString('cost $${NOT_A_VAR}', {});
      expect(r.value).to.equal('cost ${NOT_A_VAR}');
      expect(r.references).to.deep.equal([]);
    });

    it('flags malformed references with the form to write', () => {
      const refs = findEnvReferences('${env:ERP_URL} ${secret:erp-client-secret} ${PORT-6661} ${1X} ${OPEN');
      expect(refs.map((r) => r.suggestion)).to.deep.equal(['${ERP_URL}', '${ERP_CLIENT_SECRET}', '${PORT:-6661}', '${NAME} or ${NAME:-default}', '${OPEN}']);
      expect(refs.every((r) => r.malformed !== undefined)).to.equal(true);
    });
  });

  describe('interpolateDocument', () => {
    const yaml = [
      'port: ${PORT:-6661}', //                       1
      'quoted: "${PORT:-6661}"', //                   2
      'enabled: ${ENABLED:-true}', //                 3
      'url: ${BASE_URL}/billing', //                  4
      'list:', //                                     5
      '  - "x ${MISSING_TOO}"', //                    6
      'name: plain', //                               7
    ].join('\n');

    it('types plain scalars as YAML would and keeps quoted ones as strings', () => {
      const { source } = parseYamlSource('config.yaml', yaml);
      const { issues } = interpolateDocument(source, { BASE_URL: 'https://erp', MISSING_TOO: 'ok' });
      expect(issues).to.deep.equal([]);
      expect(source.doc.toJS()).to.deep.equal({ port: 6661, quoted: '6661', enabled: true, url: 'https://erp/billing', list: ['x ok'], name: 'plain' });
    });

    it('positions each unset variable at its ${ with the field and the code asked for', () => {
      const { source } = parseYamlSource('config.yaml', yaml);
      const { issues, originals } = interpolateDocument(source, {}, { code: 'OSPREY_ERR_CONFIG_ENV' });
      expect(issues.map((i) => [i.code, i.line, i.column, i.field])).to.deep.equal([
        ['OSPREY_ERR_CONFIG_ENV', 4, 6, 'url'],
        ['OSPREY_ERR_CONFIG_ENV', 6, 8, 'list[0]'],
      ]);
      expect(issues[0]?.message).to.equal('environment variable BASE_URL is not set (used in url) and has no default');
      expect(issues[0]?.hint).to.equal('export BASE_URL=… before starting, or give a default: ${BASE_URL:-<value>}');
      expect([...originals.values()]).to.include('${BASE_URL}/billing');
    });

    it('defaults to OSPREY_ERR_CHANNEL_ENV', () => {
      const { source } = parseYamlSource('x.channel.yaml', 'token: ${TOKEN}\n');
      expect(interpolateDocument(source, {}).issues[0]?.code).to.equal('OSPREY_ERR_CHANNEL_ENV');
    });
  });

  describe('YAML syntax errors around ${…}', () => {
    it('points at the flow map and says how to write it', () => {
      const { errors } = parseYamlSource('x.yaml', 'source:\n  tls: { cert: ${X}, key: ${Y} }\n');
      expect(errors).to.have.length(1); // one per line: the parser's follow-on errors are dropped
      expect(errors[0]).to.deep.include({ line: 2, hint: 'a block map (one key per line) or quote the value: key: "${VAR}"' });
    });
  });
});
