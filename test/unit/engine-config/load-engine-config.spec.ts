// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EngineConfigError, loadEngineConfig, parseEngineConfig, resolveEngineConfigFile } from '../../../engine/engine-config/load-engine-config.ts';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

function configError(fn: () => unknown): EngineConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof EngineConfigError) return err;
    throw err;
  }
  throw new Error('expected an EngineConfigError');
}

describe('engine-config/load-engine-config', () => {
  describe('the committed configurations', () => {
    it('config/default.yaml is the embedded mode with its defaults', () => {
      const config = loadEngineConfig({ file: 'config/default.yaml', env: {}, cwd: repoRoot });
      expect(config.store).to.deep.equal({ type: 'sqlite', path: './data/osprey.db', synchronous: 'full' });
      expect(config.bus).to.deep.equal({ type: 'local' });
      expect(config.http).to.deep.equal({ host: '127.0.0.1', port: 8080 });
      expect(config.channels.dir).to.equal('channels');
      expect(config.lookups.dir).to.equal('config/lookups');
      expect(config.contracts.module).to.equal('transforms/contracts/index.ts');
      expect(config.rateLimits).to.deep.equal({ 'erp-api': { perSecond: 200, burst: 200 }, 'rcm-api': { perSecond: 200, burst: 200 } });
      expect(config.sandbox.enabled).to.equal(true);
      expect(config.logging).to.deep.equal({ level: 'info', format: 'json' });
    });

    it('config/default.yaml takes OSPREY_DATA_DIR and OSPREY_HTTP_PORT', () => {
      const config = loadEngineConfig({ file: 'config/default.yaml', env: { OSPREY_DATA_DIR: '/var/lib/osprey', OSPREY_HTTP_PORT: '9090' }, cwd: repoRoot });
      expect(config.store).to.deep.include({ path: '/var/lib/osprey/osprey.db' });
      expect(config.http.port).to.equal(9090);
    });

    it('config/production.yaml is PostgreSQL + RabbitMQ from the environment, without the sandbox', () => {
      const env = { OSPREY_DATABASE_URL: 'postgres://osprey:pw@db/osprey', OSPREY_RABBITMQ_URL: 'amqp://osprey:pw@mq', OSPREY_API_TOKEN: 'k'.repeat(32) };
      const config = loadEngineConfig({ file: 'config/production.yaml', env, cwd: repoRoot });
      expect(config.http.apiToken, 'the API asks for a token').to.equal(env.OSPREY_API_TOKEN);
      expect(config.store).to.deep.equal({ type: 'postgres', url: env.OSPREY_DATABASE_URL, schema: 'osprey', poolSize: 20 });
      expect(config.bus).to.deep.equal({ type: 'rabbitmq', url: env.OSPREY_RABBITMQ_URL, prefix: 'osprey', partitions: 16, prefetch: 50, deliveryLimit: 20 });
      expect(config.sandbox.enabled).to.equal(false);
      const tryOut = { ...env, OSPREY_SANDBOX: 'true' };
      expect(configError(() => loadEngineConfig({ file: 'config/production.yaml', env: tryOut, cwd: repoRoot })).message, 'its sandbox on 0.0.0.0').to.contain('sandbox.allowRemote');
      expect(loadEngineConfig({ file: 'config/production.yaml', env: { ...tryOut, OSPREY_HTTP_HOST: '127.0.0.1' }, cwd: repoRoot }).sandbox.enabled).to.equal(true);
    });

    it('config/production.yaml without its variables names each one, and never echoes values', () => {
      const err = configError(() => loadEngineConfig({ file: 'config/production.yaml', env: {}, cwd: repoRoot }));
      expect(err.code).to.equal('OSPREY_ERR_CONFIG_ENV');
      expect(err.issues.map((i) => [i.code, i.field, i.line])).to.deep.equal([
        ['OSPREY_ERR_CONFIG_ENV', 'store.url', 9],
        ['OSPREY_ERR_CONFIG_ENV', 'bus.url', 14],
        ['OSPREY_ERR_CONFIG_ENV', 'http.apiToken', 21],
      ]);
      expect(err.message).to.contain('OSPREY_DATABASE_URL').and.contain('OSPREY_RABBITMQ_URL').and.contain('OSPREY_API_TOKEN');
    });

    it('refuses an API token that is short or holds a space or comma inside one token, without echoing it', () => {
      const env = { OSPREY_DATABASE_URL: 'postgres://osprey:pw@db/osprey', OSPREY_RABBITMQ_URL: 'amqp://osprey:pw@mq' };
      for (const token of ['short-secret-1', `${'k'.repeat(30)} x`, `${'k'.repeat(30)},short`]) {
        const err = configError(() => loadEngineConfig({ file: 'config/production.yaml', env: { ...env, OSPREY_API_TOKEN: token }, cwd: repoRoot }));
        expect(err.issues.map((i) => i.field)).to.deep.equal(['http.apiToken']);
        expect(err.message).to.not.contain(token);
      }
      const two = `${'a'.repeat(24)},${'b'.repeat(24)}`;
      expect(loadEngineConfig({ file: 'config/production.yaml', env: { ...env, OSPREY_API_TOKEN: two }, cwd: repoRoot }).http.apiToken).to.equal(two);
    });
    it('takes one RabbitMQ URL per cluster node, comma-separated, and refuses a list with a non-AMQP URL without echoing it', () => {
      const env = { OSPREY_DATABASE_URL: 'postgres://osprey:pw@db/osprey', OSPREY_API_TOKEN: 'k'.repeat(32) };
      const nodes = 'amqp://osprey:pw@mq1:5672/osprey,amqp://osprey:pw@mq2:5672/osprey, amqps://osprey:pw@mq3/osprey';
      const config = loadEngineConfig({ file: 'config/production.yaml', env: { ...env, OSPREY_RABBITMQ_URL: nodes }, cwd: repoRoot });
      expect(config.bus).to.deep.include({ type: 'rabbitmq', url: nodes });
      for (const bad of ['amqp://osprey:pw@mq1,mq2', 'amqp://osprey:pw@mq1,,amqp://osprey:pw@mq2', 'amqp://osprey:pw@mq1,http://osprey:pw@mq2']) {
        const err = configError(() => loadEngineConfig({ file: 'config/production.yaml', env: { ...env, OSPREY_RABBITMQ_URL: bad }, cwd: repoRoot }));
        expect(err.issues.map((i) => i.field), bad).to.deep.equal(['bus.url']);
        expect(err.message).to.not.contain('pw@');
      }
    });
  });

  describe('which file', () => {
    it('--config wins over OSPREY_CONFIG, which wins over config/default.yaml', () => {
      expect(resolveEngineConfigFile({ file: 'a.yaml', env: { OSPREY_CONFIG: 'b.yaml' }, cwd: '/p' })).to.equal('/p/a.yaml');
      expect(resolveEngineConfigFile({ env: { OSPREY_CONFIG: 'b.yaml' }, cwd: '/p' })).to.equal('/p/b.yaml');
      expect(resolveEngineConfigFile({ env: {}, cwd: '/p' })).to.equal('/p/config/default.yaml');
    });

    it('a missing file is a coded error', () => {
      const dir = mkdtempSync(join(tmpdir(), 'osprey-config-'));
      try {
        const err = configError(() => loadEngineConfig({ env: { OSPREY_CONFIG: 'nope.yaml' }, cwd: dir }));
        expect(err.code).to.equal('OSPREY_ERR_CONFIG_INVALID');
        expect(err.issues[0]?.message).to.contain('does not exist');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('reads a file given by absolute path', () => {
      const dir = mkdtempSync(join(tmpdir(), 'osprey-config-'));
      try {
        writeFileSync(join(dir, 'engine.yaml'), 'http: { port: 0 }\n');
        expect(loadEngineConfig({ file: join(dir, 'engine.yaml'), env: {} }).http.port).to.equal(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('validation', () => {
    it('an empty file is every default', () => {
      const config = parseEngineConfig('empty.yaml', '', {});
      expect(config.store).to.deep.equal({ type: 'sqlite', path: './data/osprey.db', synchronous: 'full' });
      expect(config.rateLimits).to.deep.equal({});
      expect(config.sandbox.enabled).to.equal(false);
    });

    it('reports every problem with its position, code and a "did you mean" when close', () => {
      const text = [
        'store:', //                              1
        '  type: postgress', //                   2
        '  url: x', //                            3
        'bus: { type: rabbitmq, url: "http://mq" }', // 4
        'htpp:', //                               5
        '  port: 80', //                          6
        'rateLimits:', //                         7
        '  ERP: { perSecond: 0, burst: 1 }', //   8
        '  erp-api: { perSecond: 0, burst: 1 }', // 9
        'logging: { level: verbose }', //         10
      ].join('\n');
      const err = configError(() => parseEngineConfig('engine.yaml', text, {}));
      expect(err.code).to.equal('OSPREY_ERR_CONFIG_INVALID');
      expect(err.issues.map((i) => `${i.line}:${i.column} ${i.field}`)).to.deep.equal([
        '2:9 store.type',
        '4:29 bus.url',
        '5:1 htpp',
        '8:3 rateLimits.ERP',
        '9:25 rateLimits.erp-api.perSecond',
        '10:19 logging.level',
      ]);
      const byField = new Map(err.issues.map((i) => [i.field, i]));
      expect(byField.get('store.type')?.message).to.equal('unknown store type "postgress" — did you mean "postgres"?');
      expect(byField.get('htpp')?.message).to.equal('unknown field "htpp" — did you mean "http"?');
      expect(byField.get('logging.level')?.message).to.contain('must be one of error, warn, info, debug');
      expect(byField.get('rateLimits.erp-api.perSecond')?.message).to.equal('rateLimits.erp-api.perSecond must be > 0 (got 0)');
    });

    it('a YAML syntax error is positioned', () => {
      const err = configError(() => parseEngineConfig('engine.yaml', 'http:\n  port: [8080\n', {}));
      expect(err.issues[0]).to.deep.include({ code: 'OSPREY_ERR_CONFIG_INVALID' });
      expect(err.issues[0]?.message).to.match(/^YAML syntax/);
    });

    it('refuses the sandbox beyond loopback unless sandbox.allowRemote says so', () => {
      const text = 'http: { host: "${HOST}" }\nsandbox:\n  enabled: true\n';
      for (const host of ['0.0.0.0', '::', '10.1.2.3']) {
        const err = configError(() => parseEngineConfig('engine.yaml', text, { HOST: host }));
        expect(err.issues.map((i) => `${i.line}:${i.column} ${i.field} ${i.code}`), host).to.deep.equal(['3:12 sandbox.enabled OSPREY_ERR_CONFIG_INVALID']);
        expect(err.message).to.contain(`http.host is ${host}`).and.contain('sandbox.allowRemote');
      }
      for (const host of ['127.0.0.1', '127.0.0.2', '::1', 'localhost']) expect(parseEngineConfig('engine.yaml', text, { HOST: host }).sandbox.enabled, host).to.equal(true);
      expect(parseEngineConfig('engine.yaml', `${text}  allowRemote: true\n`, { HOST: '0.0.0.0' }).sandbox).to.deep.equal({ enabled: true, allowRemote: true });
      expect(parseEngineConfig('engine.yaml', 'http: { host: 0.0.0.0 }\n', {}).sandbox.enabled, 'no sandbox: any host').to.equal(false);
    });

    it('does not echo a value that came from the environment', () => {
      const err = configError(() => parseEngineConfig('engine.yaml', 'bus: { type: rabbitmq, url: "${MQ}" }\n', { MQ: 'http://user:s3cret@mq' }));
      expect(err.message).to.not.contain('s3cret');
      expect(err.issues[0]?.message).to.contain('comes from the environment');
    });
  });
});
