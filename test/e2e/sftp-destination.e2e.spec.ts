// SPDX-License-Identifier: Apache-2.0
/**
 * The SFTP destination (`sftp-batch-writer`) in a running engine, against a real OpenSSH server the
 * test starts: each delivery becomes one file, written under a temporary name and renamed into place
 * with its marker; while the server is down the delivery is retried like a REST one (same file name
 * on every attempt) and lands once the server is back, exactly once.
 */
import { expect } from 'chai';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAck, sendOne } from '../helpers/mllp-raw-client.ts';
import { skipOrFail } from '../helpers/production-services.ts';
import { adt, channelsDir, TEST_TRANSFORM } from '../helpers/test-channel.ts';
import { removeTempDirs, TestEngine } from '../helpers/test-engine.ts';
import { startThrowawaySshd, stopThrowawaySshds, throwawaySshdUnavailable, type ThrowawaySshd } from '../helpers/throwaway-sshd.ts';
import { waitFor } from '../helpers/wait-for.ts';

const CHANNEL = 'adt-to-sftp';

function channelYaml(sshd: ThrowawaySshd, directory: string): string {
  return `apiVersion: osprey/v1
kind: Channel
metadata:
  name: ${CHANNEL}
  version: 1.0.0
  owner: e2e-tests
spec:
  source:
    type: mllp-listener
    host: 127.0.0.1
    port: 0
    accept: [ADT^A01]
  orderBy: PID-3.1
  steps:
    - transform: ${TEST_TRANSFORM}
  destinations:
    - name: erp-journal
      type: sftp-batch-writer
      host: 127.0.0.1
      port: ${sshd.port}
      user: ${sshd.user}
      keyFile: \${JOURNAL_KEY_FILE}
      hostKey: ${sshd.hostKeyFingerprint}
      directory: ${directory}
      fileName: 'journal-{messageId}.json'
      marker: .done
      retry:
        maxAttempts: 100
        backoff: { type: fixed, initial: 100ms, max: 100ms, jitter: 0 }
`;
}

describe('SFTP destination (sftp-batch-writer) in the engine', function () {
  this.timeout(60_000);
  let sshd: ThrowawaySshd;
  let osprey: TestEngine;
  let outbox: string;

  before(async function () {
    const missing = throwawaySshdUnavailable();
    if (missing) skipOrFail(this, missing);
    sshd = await startThrowawaySshd();
    outbox = join(sshd.root, 'journals');
    osprey = await TestEngine.start({ channelsDir: channelsDir({ [`${CHANNEL}.channel.yaml`]: channelYaml(sshd, outbox) }), env: { JOURNAL_KEY_FILE: sshd.keyFile } });
  });

  after(async () => {
    await osprey?.stop();
    await stopThrowawaySshds();
    removeTempDirs();
  });

  const finals = () => (existsSync(outbox) ? readdirSync(outbox).filter((n) => n.endsWith('.json')) : []);

  it('writes one file per delivery, renamed into place, with its marker', async () => {
    const ack = parseAck(await sendOne(osprey.port(CHANNEL), adt({ controlId: 'SFTP-OUT-1', patientId: 'P-SFTP-1' })));
    expect(ack.code).to.equal('AA');
    const [id] = (await osprey.byControlId('SFTP-OUT-1', CHANNEL)).map((m) => m.id as string);
    await osprey.waitForState(id!, 'SENT');
    const name = `journal-${id}.json`;
    expect(finals()).to.include(name);
    expect(existsSync(join(outbox, `${name}.done`)), 'marker').to.equal(true);
    expect(readdirSync(outbox).filter((n) => n.endsWith('.tmp')), 'no temporary file left').to.deep.equal([]);
    const payload = JSON.parse(readFileSync(join(outbox, name), 'utf8')) as Record<string, unknown>;
    expect(JSON.stringify(payload)).to.include('P-SFTP-1');
  });

  it('retries while the server is down and writes the file once it is back, under the same name', async () => {
    await sshd.stopServer();
    const ack = parseAck(await sendOne(osprey.port(CHANNEL), adt({ controlId: 'SFTP-OUT-2', patientId: 'P-SFTP-2' })));
    expect(ack.code, 'the message is stored and ACKed while the destination is down').to.equal('AA');
    const [id] = (await osprey.byControlId('SFTP-OUT-2', CHANNEL)).map((m) => m.id as string);
    // At least one failed attempt is recorded before the server comes back.
    await waitFor(async () => ((await osprey.message(id!)).deliveries?.[0]?.attemptCount ?? 0) >= 2, { timeoutMs: 20_000 });
    const message = await osprey.message(id!);
    expect(message.deliveries[0].state).to.equal('QUEUED');
    expect(message.deliveries[0].lastError.code).to.match(/^OSPREY_ERR_SFTP_(UNREACHABLE|CONNECTION_LOST)$/);
    await sshd.startServer();
    await osprey.waitForState(id!, 'SENT', { timeoutMs: 20_000 });
    expect(finals().filter((n) => n === `journal-${id}.json`)).to.have.length(1);
  });
});
