// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { join } from 'node:path';
import { loadChannels, type LoadChannelsOptions } from '../../../engine/channel-runtime/channel-loader.ts';
import type { LintIssue } from '../../../engine/channel-runtime/channel-linter.ts';
import type { RestDestinationRuntime } from '../../../engine/channel-runtime/channel-runtime-view.ts';
import { createFixtureProject, validChannel, validEnv, type FixtureProject } from './fixture-project.ts';

describe('channel-runtime/channel-loader', () => {
  let project: FixtureProject;
  let options: LoadChannelsOptions;

  beforeEach(() => {
    project = createFixtureProject();
    options = {
      dir: project.channelsDir,
      env: validEnv,
      projectRoot: project.root,
      lookupsDir: project.lookupsDir,
      contracts: new Set(['BillingReadiness@1', 'LaborPlan@2']),
      rateLimits: new Set(['erp-api', 'rcm-api']),
    };
  });
  afterEach(() => project.remove());

  const only = (issues: LintIssue[], code: string) => issues.filter((i) => i.code === code);

  describe('a valid channel', () => {
    it('loads with defaults filled in and a runtime view in ms and bytes', async () => {
      const file = project.write('channels/adt-to-rcm.channel.yaml', validChannel());
      const { channels, issues } = await loadChannels(options);

      expect(issues).to.deep.equal([]);
      expect(channels).to.have.length(1);
      const [channel] = channels;
      expect(channel?.file).to.equal(file);

      const def = channel!.definition;
      expect(def.spec.source.port).to.equal(6661); // ${ADT_PORT:-6661}, typed as YAML would
      expect(def.spec.source.host).to.equal('0.0.0.0');
      expect(def.spec.source.idleTimeout).to.equal('90s');
      expect((def.spec.destinations[1] as { method?: string } | undefined)?.method).to.equal('POST');

      const rt = channel!.runtime;
      expect(rt.name).to.equal('adt-to-rcm');
      expect(rt.owner).to.equal('integration-team');
      expect(rt.source.config).to.deep.equal({
        host: '0.0.0.0',
        port: 6661,
        charset: 'UTF-8',
        maxMessageSize: 512 * 1024,
        idleTimeoutMs: 90_000,
        maxConnections: 100,
        maxBytesInFlight: 64 * 1024 * 1024,
        maxUnreadAckBytes: 1024 * 1024,
        batchAck: 'all',
        allowFrom: ['127.0.0.1'],
        tls: { cert: join(project.root, 'certs/server.pem'), key: join(project.root, 'certs/server.key'), requestCert: false },
      });
      expect(rt.source.accept).to.deep.equal(['ADT^A01', 'ADT^A03']);
      expect(rt.source.dedupeWindowMs).to.equal(24 * 3_600_000);
      expect(rt.source.ack).to.deep.equal({ mode: 'after-store', onValidationError: 'AE' });
      expect(rt.orderBy).to.equal('PID-3.1');
      expect(rt.steps[2]).to.deep.equal({ enrich: { lookup: 'departments', from: 'PV1-3.1', as: 'department', required: true } });

      const [rcm, erp] = rt.destinations as RestDestinationRuntime[];
      expect(rcm).to.deep.include({
        name: 'rcm',
        url: 'http://127.0.0.1:8080/sandbox/rcm/billing',
        method: 'POST',
        contract: 'BillingReadiness@1',
        timeoutMs: 15_000,
        rateLimit: 'rcm-api',
      });
      expect(rcm?.auth).to.deep.equal({
        type: 'oauth2-client-credentials',
        tokenUrl: 'https://idp.example.org/token',
        clientId: 'osprey',
        clientSecret: 'not-a-real-secret',
        clientAuthMethod: 'client_secret_basic',
      });
      expect(rcm?.retry).to.deep.equal({
        maxAttempts: 5,
        backoff: { type: 'fixed', initialMs: 2000, maxMs: 300_000, jitter: 0.2 },
        retryOn: [408, 429, 500, 502, 503, 504],
        treatAsSuccess: [],
        maxElapsedMs: 3_600_000,
      });
      expect(rcm?.batch).to.deep.equal({ maxItems: 20, maxWaitMs: 2000 });
      expect(erp).to.deep.include({ name: 'erp', auth: { type: 'none' }, timeoutMs: 10_000, headers: {} });
      expect(erp?.retry.maxAttempts).to.equal(10);
      expect(erp).to.not.have.property('batch');

      expect(rt.transforms.get('transforms/adt-to-event.ts')?.name).to.equal('hl7v2/adt-to-event');
    });

    it('uses the environment over a default', async () => {
      project.write('channels/adt-to-rcm.channel.yaml', validChannel());
      const { channels } = await loadChannels({ ...options, env: { ...validEnv, ADT_PORT: '7001', RCM_URL: 'https://rcm.example.org' } });
      expect((channels[0]?.runtime.source.config as { port: number }).port).to.equal(7001);
      expect((channels[0]?.runtime.destinations[0] as RestDestinationRuntime | undefined)?.url).to.equal('https://rcm.example.org/billing');
    });

    it('ignores channel test files and warns about other YAML files', async () => {
      project.write('channels/adt-to-rcm.channel.yaml', validChannel());
      project.write('channels/adt-to-rcm.channel.test.yaml', 'channel: adt-to-rcm\ntests: []\n');
      project.write('channels/README.md', '# channels\n');
      project.write('channels/siu.yaml', validChannel('siu', '6662'));
      const { channels, issues } = await loadChannels(options);
      expect(channels.map((c) => c.runtime.name)).to.deep.equal(['adt-to-rcm']);
      expect(issues).to.have.length(1);
      expect(issues[0]).to.deep.include({ severity: 'warning', code: 'OSPREY_ERR_CHANNEL_NAME', file: join(project.channelsDir, 'siu.yaml'), hint: 'rename to siu.channel.yaml' });
    });

    it('warns (without excluding the channel) when the owner is missing', async () => {
      project.write('channels/adt-to-rcm.channel.yaml', validChannel().replace('  owner: integration-team\n', ''));
      const { channels, issues } = await loadChannels(options);
      expect(channels).to.have.length(1);
      expect(issues).to.have.length(1);
      expect(issues[0]).to.deep.include({ severity: 'warning', code: 'OSPREY_ERR_CHANNEL_SCHEMA', field: 'metadata.owner', line: 4 });
    });
  });

  describe('a file with several problems', () => {
    const broken = `apiVersion: osprey/v1
kind: Channel
metadata:
  name: adt-billing
  version: 1.0
  owner: integration-team
spec:
  source:
    type: mllp-listner
    port: 6661
    accept: [ADT^A01]
  steps:
    - validate: hl7
    - tranform: transforms/adt-to-event.ts
    - enrich: { lookup: departmnts, from: PV1-3.1, as: department }
    - transform: transforms/missing.ts
  destinations:
    - name: rcm
      type: rest
      url: \${RCM_URL}/billing
      timout: 10s
      contract: BillingReadiness@3
      auth:
        type: bearer
        token: abc123
      retry:
        backoff: { type: exponential, initial: 500 }
      rateLimit: rcm-apii
    - name: rcm
      type: rest
      url: http://127.0.0.1/x
      transform: transforms/not-a-transform.ts
      auth: { type: oauth2, tokenUrl: http://idp }
`;

    it('reports every problem at once, with its line, column and code', async () => {
      project.write('channels/adt-to-rcm.channel.yaml', broken);
      const { channels, issues } = await loadChannels(options);
      expect(channels).to.deep.equal([]);

      const summary = issues.map((i) => `${i.line}:${i.column} ${i.code} ${i.field}`);
      expect(summary).to.deep.equal([
        '4:9 OSPREY_ERR_CHANNEL_NAME metadata.name',
        '5:12 OSPREY_ERR_CHANNEL_SCHEMA metadata.version',
        '9:11 OSPREY_ERR_CHANNEL_SCHEMA spec.source.type',
        '14:7 OSPREY_ERR_CHANNEL_SCHEMA spec.steps[1].tranform',
        '15:25 OSPREY_ERR_CHANNEL_LOOKUP spec.steps[2].enrich.lookup',
        '16:18 OSPREY_ERR_CHANNEL_TRANSFORM spec.steps[3].transform',
        '20:12 OSPREY_ERR_CHANNEL_ENV spec.destinations[0].url',
        '21:7 OSPREY_ERR_CHANNEL_SCHEMA spec.destinations[0].timout',
        '22:17 OSPREY_ERR_CHANNEL_CONTRACT spec.destinations[0].contract',
        '25:16 OSPREY_ERR_CHANNEL_LITERAL_SECRET spec.destinations[0].auth.token',
        '27:48 OSPREY_ERR_CHANNEL_SCHEMA spec.destinations[0].retry.backoff.initial',
        '28:18 OSPREY_ERR_CHANNEL_RATE_LIMIT spec.destinations[0].rateLimit',
        '29:13 OSPREY_ERR_CHANNEL_DESTINATION_NAME spec.destinations[1].name',
        '32:18 OSPREY_ERR_CHANNEL_TRANSFORM spec.destinations[1].transform',
        '33:21 OSPREY_ERR_CHANNEL_SCHEMA spec.destinations[1].auth.type',
      ]);
      for (const issue of issues) {
        expect(issue.severity, issue.field).to.equal('error');
        expect(issue.file).to.equal(join(project.channelsDir, 'adt-to-rcm.channel.yaml'));
        expect(issue.message, issue.field).to.be.a('string').and.not.equal('');
        expect(issue.hint, issue.field).to.be.a('string').and.not.equal('');
      }
    });

    it('says "did you mean" only for close names', async () => {
      project.write('channels/adt-to-rcm.channel.yaml', broken);
      const { issues } = await loadChannels(options);
      const byField = new Map(issues.map((i) => [i.field, i]));
      expect(byField.get('spec.source.type')?.message).to.equal('unknown source type "mllp-listner" — did you mean "mllp-listener"?');
      expect(byField.get('spec.source.type')?.hint).to.equal('type: mllp-listener');
      expect(byField.get('spec.steps[1].tranform')?.message).to.contain('did you mean "transform"?');
      expect(byField.get('spec.destinations[0].timout')?.message).to.contain('did you mean "timeout"?');
      expect(byField.get('spec.steps[2].enrich.lookup')?.message).to.contain('did you mean "departments"?');
      expect(byField.get('spec.destinations[0].rateLimit')?.hint).to.equal('rateLimit: rcm-api');
      // `oauth2` is far from `oauth2-client-credentials`: list the types instead of guessing.
      const auth = byField.get('spec.destinations[1].auth.type');
      expect(auth?.message).to.not.contain('did you mean');
      expect(auth?.message).to.contain('known: none, bearer, api-key, basic, oauth2-client-credentials');
      // A missing transform with no close file gets no suggestion either.
      expect(byField.get('spec.steps[3].transform')?.message).to.equal('transform transforms/missing.ts does not exist');
    });

    it('explains the rest in words an integration engineer can act on', async () => {
      project.write('channels/adt-to-rcm.channel.yaml', broken);
      const { issues } = await loadChannels(options);
      const byField = new Map(issues.map((i) => [i.field, i]));
      expect(byField.get('metadata.name')?.message).to.equal('metadata.name "adt-billing" does not match the file name adt-to-rcm.channel.yaml');
      expect(byField.get('spec.destinations[0].url')?.message).to.contain('environment variable RCM_URL is not set');
      expect(byField.get('spec.destinations[0].retry.backoff.initial')?.message).to.contain('must be a duration');
      expect(byField.get('spec.destinations[0].retry.backoff.initial')?.hint).to.equal('initial: 500ms');
      expect(byField.get('spec.destinations[0].contract')?.message).to.contain('BillingReadiness has 1 as major version');
      expect(byField.get('spec.destinations[0].auth.token')?.hint).to.equal('token: ${AUTH_TOKEN}');
      expect(byField.get('spec.destinations[1].transform')?.message).to.contain('does not default-export a transform');
      // The literal token is never echoed back.
      for (const issue of issues) expect(issue.message).to.not.contain('abc123');
    });
  });

  describe('secrets', () => {
    it('rejects literals and defaults in secret fields, accepts ${VAR}', async () => {
      const text = validChannel()
        .replace('clientSecret: ${RCM_CLIENT_SECRET}', 'clientSecret: ${RCM_CLIENT_SECRET:-dev-secret}')
        .replace('key: ${ADT_TLS_KEY}', 'key: /etc/osprey/server.key')
        .replace('      url: http://127.0.0.1:8080/sandbox/erp\n', '      url: http://127.0.0.1:8080/sandbox/erp\n      headers: { Authorization: Basic dXNlcjpwYXNz }\n      auth: { type: basic, username: u, password: "12345" }\n');
      project.write('channels/adt-to-rcm.channel.yaml', text);
      const { channels, issues } = await loadChannels(options);
      expect(channels).to.deep.equal([]);
      const secrets = only(issues, 'OSPREY_ERR_CHANNEL_LITERAL_SECRET');
      expect(secrets.map((i) => i.field)).to.deep.equal([
        'spec.source.tls.key',
        'spec.destinations[0].auth.clientSecret',
        'spec.destinations[1].headers.Authorization',
        'spec.destinations[1].auth.password',
      ]);
      expect(secrets[1]?.message).to.contain('a default is a literal secret');
      expect(issues).to.have.length(4);
    });
  });

  describe('environment', () => {
    it('reports each unset variable with its name and position, and excludes the channel', async () => {
      project.write('channels/adt-to-rcm.channel.yaml', validChannel());
      const env = { ...validEnv };
      delete env.RCM_CLIENT_SECRET;
      delete env.ADT_TLS_KEY;
      const { channels, issues } = await loadChannels({ ...options, env });
      expect(channels).to.deep.equal([]);
      expect(issues.map((i) => [i.code, i.line, i.column, i.field])).to.deep.equal([
        ['OSPREY_ERR_CHANNEL_ENV', 17, 12, 'spec.source.tls.key'],
        ['OSPREY_ERR_CHANNEL_ENV', 33, 23, 'spec.destinations[0].auth.clientSecret'],
      ]);
      expect(issues[1]?.message).to.contain('RCM_CLIENT_SECRET');
      expect(issues[1]?.hint).to.contain('${RCM_CLIENT_SECRET:-');
    });
  });

  describe('several files', () => {
    it('loads the good channels when another file is not even YAML', async () => {
      project.write('channels/adt-to-rcm.channel.yaml', validChannel());
      project.write('channels/broken.channel.yaml', 'apiVersion: osprey/v1\nkind: Channel\nmetadata:\n  name: broken\n   version: [1.0.0\n');
      const { channels, issues } = await loadChannels(options);
      expect(channels.map((c) => c.runtime.name)).to.deep.equal(['adt-to-rcm']);
      expect(issues.length).to.be.greaterThan(0);
      for (const issue of issues) {
        expect(issue.code).to.equal('OSPREY_ERR_CHANNEL_YAML');
        expect(issue.file).to.equal(join(project.channelsDir, 'broken.channel.yaml'));
        expect(issue.message).to.match(/^YAML syntax: /);
      }
      expect(issues[0]).to.deep.include({ line: 4, column: 9 });
    });

    it('reports a duplicate port on the later file and keeps the first channel', async () => {
      project.write('channels/adt-to-rcm.channel.yaml', validChannel('adt-to-rcm', '6661'));
      project.write('channels/siu-to-erp.channel.yaml', validChannel('siu-to-erp', '${SIU_PORT:-6661}'));
      project.write('channels/orders.channel.yaml', validChannel('orders', '6663'));
      const { channels, issues } = await loadChannels(options);
      expect(channels.map((c) => c.runtime.name)).to.deep.equal(['adt-to-rcm', 'orders']);
      expect(issues).to.have.length(1);
      expect(issues[0]).to.deep.include({
        code: 'OSPREY_ERR_CHANNEL_DUPLICATE',
        file: join(project.channelsDir, 'siu-to-erp.channel.yaml'),
        line: 10,
        column: 11,
        field: 'spec.source.port',
        message: 'port 6661 is already used by channel adt-to-rcm (adt-to-rcm.channel.yaml:10)',
      });
    });

    it('does not treat port 0 (any free port) as a duplicate', async () => {
      project.write('channels/a.channel.yaml', validChannel('a', '0'));
      project.write('channels/b.channel.yaml', validChannel('b', '0'));
      const { channels, issues } = await loadChannels(options);
      expect(issues).to.deep.equal([]);
      expect(channels).to.have.length(2);
    });

    it('reports a duplicate channel name', async () => {
      project.write('channels/adt-to-rcm.channel.yaml', validChannel('adt-to-rcm', '6661'));
      project.write('channels/copy.channel.yaml', validChannel('adt-to-rcm', '6662'));
      const { channels, issues } = await loadChannels(options);
      expect(channels.map((c) => c.file)).to.deep.equal([join(project.channelsDir, 'adt-to-rcm.channel.yaml')]);
      expect(only(issues, 'OSPREY_ERR_CHANNEL_DUPLICATE')).to.have.length(1);
      expect(only(issues, 'OSPREY_ERR_CHANNEL_DUPLICATE')[0]?.message).to.equal('channel name "adt-to-rcm" is already used by adt-to-rcm.channel.yaml:4');
      expect(only(issues, 'OSPREY_ERR_CHANNEL_NAME')).to.have.length(1); // copy.channel.yaml ≠ adt-to-rcm
    });
  });

  describe('references the caller does not know', () => {
    it('skips contract and rate limit checks when no set is given', async () => {
      project.write('channels/adt-to-rcm.channel.yaml', validChannel().replace('BillingReadiness@1', 'Unknown@9').replace('rateLimit: rcm-api', 'rateLimit: nowhere'));
      const { contracts: _c, rateLimits: _r, ...rest } = options;
      const { channels, issues } = await loadChannels(rest);
      expect(issues).to.deep.equal([]);
      expect(channels).to.have.length(1);
    });
  });

  it('points at the key of an empty value, and refuses two documents in one file', async () => {
    project.write('channels/a.channel.yaml', 'apiVersion: osprey/v1\nkind: Channel\nmetadata:\n  name: a\n  version: 1.0.0\n  owner: o\nspec:\n  source:\n  destinations: []\n');
    project.write('channels/b.channel.yaml', 'apiVersion: osprey/v1\n---\nkind: Channel\n');
    const { issues } = await loadChannels(options);
    expect(issues.map((i) => `${i.file.endsWith('a.channel.yaml') ? 'a' : 'b'}:${i.line}:${i.column} ${i.message}`)).to.deep.equal([
      'a:8:3 spec.source must be a map with \"type: <mllp-listener | sftp-batch-poller>\"',
      'a:9:17 spec.destinations needs at least 1 entry',
      'b:2:1 YAML syntax: the file holds more than one YAML document (a --- separator)',
    ]);
  });

  it('reports a missing channels folder as one issue', async () => {
    const { channels, issues } = await loadChannels({ ...options, dir: join(project.root, 'nope') });
    expect(channels).to.deep.equal([]);
    expect(issues).to.have.length(1);
    expect(issues[0]?.code).to.equal('OSPREY_ERR_CONFIG_INVALID');
  });
});
