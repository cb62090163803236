// SPDX-License-Identifier: Apache-2.0
/**
 * Ingest against a real SQLite store (a temp file): the pipeline's outcome is stored with the
 * message, the channel gets the work while the write commits, and each key's work is published in
 * the order its messages arrived, also when a resend's original needs finishing first.
 */
import { join } from 'node:path';
import { expect } from 'chai';
import { Ingest, type IngestChannel } from '../../../engine/ingest/ingest.ts';
import { Hl7Message, validationAckError } from '../../../engine/message-formats/hl7v2/index.ts';
import { SqliteStore } from '../../../engine/message-store/sqlite-store.ts';
import { silentLogger } from '../../../engine/observability/logger.ts';
import { adt } from '../../helpers/test-channel.ts';
import { makeTempDir, removeTempDir } from '../../helpers/test-engine.ts';
import { within } from '../../helpers/wait-for.ts';

function inbound(text: string) {
  return { raw: Buffer.from(text, 'utf8'), text, encoding: 'UTF-8', remote: '127.0.0.1:1', format: 'hl7v2' as const, message: Hl7Message.parse(text) };
}

describe('ingest', () => {
  let store: SqliteStore;
  /** This suite's temp dirs: each test removes its own once its store is closed, never another suite's. */
  const dirs: string[] = [];
  async function openStore(): Promise<SqliteStore> {
    const dir = makeTempDir('ingest');
    dirs.push(dir);
    const opened = new SqliteStore({ path: join(dir, 'store.db') });
    await opened.open();
    return opened;
  }

  beforeEach(async () => {
    store = await openStore();
  });

  afterEach(async () => {
    await store.close();
    for (const dir of dirs.splice(0)) removeTempDir(dir);
  });

  interface Seen {
    id: string;
    /** Whether the write had ended when the channel was handed the work. */
    storedAtHandover: boolean;
    deliveries: string[];
  }

  /**
   * A channel whose every message queues one delivery. `onNew` hears of each new message once its
   * write is over (resends excluded); `onOriginal` of each resend's original.
   */
  function channel(onNew: (s: Seen) => Promise<void> | void, onOriginal: (id: string) => Promise<void> | void = () => undefined): IngestChannel {
    return {
      name: 'adt',
      orderBy: 'PID-3.1',
      dedupeWindowMs: 60_000,
      process: (m) => ({ state: 'QUEUED', canonical: { id: m.id }, deliveries: [{ destination: 'erp', outputIndex: 0, payload: { id: m.id } }] }),
      publishNew: async (work, stored) => {
        let ended = false;
        void stored.then(
          () => (ended = true),
          () => (ended = true),
        );
        const storedAtHandover = ended;
        const result = await stored.catch(() => undefined); // never rejects, as the contract says
        if (result && !result.duplicateOf) await onNew({ id: work.id, storedAtHandover, deliveries: (result.deliveries ?? []).map((d) => d.id) });
      },
      finishOriginal: async (original) => onOriginal(original.id),
    };
  }

  it('hands the deliveries over while the write commits, and answers AA once it has', async () => {
    const seen: Seen[] = [];
    const ingest = new Ingest(store, silentLogger());
    const outcome = await ingest.receive(channel((s) => void seen.push(s)), inbound(adt({ controlId: 'C1', patientId: 'P1' })));
    expect(outcome.ackCode).to.equal('AA');
    expect(seen).to.deep.equal([{ id: outcome.messageId, storedAtHandover: false, deliveries: [`${outcome.messageId}:erp:0`] }]);
    expect((await store.getMessage(outcome.messageId!))!.state).to.equal('QUEUED');
  });

  it("publishes a key's work in arrival order: a resend's unfinished original before the key's next message", async () => {
    const order: string[] = [];
    // The next message's write, seen by a store that passes every write on.
    let nextWritten!: (write: Promise<unknown>) => void;
    const nextWrite = new Promise<unknown>((resolve) => (nextWritten = resolve));
    const spied = Object.create(store) as SqliteStore;
    spied.receive = (m) => {
      const write = store.receive(m);
      if (m.keys.controlId === 'C2') nextWritten(write);
      return write;
    };
    const ingest = new Ingest(spied, silentLogger());
    const ch = channel(
      (s) => void order.push(`new ${s.id}`),
      async (id) => {
        // Finishing an original reads and writes the store: it ends here only once the next
        // message's write is over and a turn has passed, so a next message not held behind it
        // would be published first.
        await nextWrite.catch(() => undefined);
        await new Promise((r) => setImmediate(r));
        order.push(`original ${id}`);
      },
    );
    // The original, stored QUEUED (its instance died before its deliveries reached the bus).
    const first = inbound(adt({ controlId: 'C1', patientId: 'P1' }));
    const original = await ingest.receive(channel(() => undefined), first);
    // The sender resends it and, pipelining, the patient's next message right behind it.
    const [resend, next] = await Promise.all([ingest.receive(ch, first), ingest.receive(ch, inbound(adt({ controlId: 'C2', patientId: 'P1' })))]);
    expect(resend).to.deep.include({ ackCode: 'AA', messageId: original.messageId, duplicate: true });
    expect(order).to.deep.equal([`original ${original.messageId}`, `new ${next.messageId}`]);
  });

  it('does not hold back other keys behind a slow one', async () => {
    const order: string[] = [];
    let otherKeyPublished!: () => void;
    const otherKey = new Promise<void>((resolve) => (otherKeyPublished = resolve));
    const ingest = new Ingest(store, silentLogger());
    const ch = channel(
      () => {
        order.push('other key');
        otherKeyPublished();
      },
      async () => {
        // The slow original ends only once the other key is published: held behind it, the other
        // key would never come, and the bound (far beyond one SQLite write) ends the wait.
        const came = await within(otherKey, 10_000, 'the other key').then(
          () => true,
          () => false,
        );
        order.push(came ? 'original' : 'original (the other key held back behind it)');
      },
    );
    const first = inbound(adt({ controlId: 'C1', patientId: 'P1' }));
    await ingest.receive(channel(() => undefined), first);
    await Promise.all([ingest.receive(ch, first), ingest.receive(ch, inbound(adt({ controlId: 'C2', patientId: 'P2' })))]);
    expect(order).to.deep.equal(['other key', 'original']);
  });

  it('answers AE when the write fails, after the channel has heard the write is over', async () => {
    const ingest = new Ingest(store, silentLogger());
    let heard = false;
    const ch: IngestChannel = {
      ...channel(() => undefined),
      publishNew: async (_work, stored) => {
        await stored.catch(() => undefined);
        heard = true;
      },
    };
    await store.close();
    const outcome = await ingest.receive(ch, inbound(adt({ controlId: 'C1', patientId: 'P1' })));
    expect(outcome).to.deep.include({ ackCode: 'AE' });
    expect(heard).to.equal(true);
    store = await openStore();
  });

  it('answers AE, with no unhandled rejection, when a write fails while the key still waits for its previous message', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      let calls = 0;
      const flaky = Object.create(store) as SqliteStore;
      // The second write fails at once, while the first message's work still holds the key.
      flaky.receive = (m) => (++calls === 2 ? Promise.reject(new Error('connection terminated')) : store.receive(m));
      const ch: IngestChannel = {
        ...channel(() => undefined),
        publishNew: async (_work, stored) => {
          await stored.catch(() => undefined);
          await new Promise((r) => setTimeout(r, 100)); // waiting for the broker's confirms
        },
      };
      const ingest = new Ingest(flaky, silentLogger());
      const [first, second] = await Promise.all([
        ingest.receive(ch, inbound(adt({ controlId: 'C1', patientId: 'P1' }))),
        ingest.receive(ch, inbound(adt({ controlId: 'C2', patientId: 'P1' }))),
      ]);
      await new Promise((r) => setImmediate(r));
      expect([first.ackCode, second.ackCode]).to.deep.equal(['AA', 'AE']);
      expect(unhandled, 'a rejection nobody handled (it ends the process outside the tests)').to.deep.equal([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('after a failed write, hands new messages over only once they are stored (no work published ahead of a failing store)', async () => {
    let failNext = true;
    const settled = new WeakSet<Promise<unknown>>();
    const flaky = Object.create(store) as SqliteStore;
    flaky.receive = (m) => {
      const p = failNext ? Promise.reject(new Error('connection terminated')) : store.receive(m);
      failNext = false;
      p.then(
        () => settled.add(p),
        () => settled.add(p),
      );
      return p;
    };
    const handedOver: boolean[] = [];
    const ch: IngestChannel = {
      ...channel(() => undefined),
      publishNew: async (_work, stored) => {
        handedOver.push(settled.has(stored));
        await stored.catch(() => undefined);
      },
    };
    const ingest = new Ingest(flaky, silentLogger());
    expect((await ingest.receive(ch, inbound(adt({ controlId: 'C1', patientId: 'P1' })))).ackCode).to.equal('AE');
    expect((await ingest.receive(ch, inbound(adt({ controlId: 'C1', patientId: 'P1' })))).ackCode).to.equal('AA');
    expect(handedOver, 'was the write over when the channel got the work').to.deep.equal([false, true]);
  });

  describe('a message that fails the channel validation', () => {
    /** A channel whose pipeline is the `validate: hl7` step, then one delivery. */
    function validating(onValidationError?: 'AE' | 'AA'): IngestChannel {
      return {
        ...channel(() => undefined),
        ...(onValidationError ? { onValidationError } : {}),
        process: (m) => {
          const invalid = validationAckError(m.message as Hl7Message);
          if (invalid) return { state: 'ERROR', error: { code: invalid.code, detail: invalid.detail } };
          return { state: 'QUEUED', canonical: {}, deliveries: [{ destination: 'erp', outputIndex: 0, payload: {} }] };
        },
      };
    }
    const withoutEvnPv1 = (controlId: string): string => adt({ controlId, patientId: 'P-V' }).split('\r').filter((l) => !/^(EVN|PV1)/.test(l)).join('\r');

    it('is answered AE naming the segment (CA for an enhanced-mode commit ACK) and stored as ERROR', async () => {
      const ingest = new Ingest(store, silentLogger());
      const outcome = await ingest.receive(validating(), inbound(withoutEvnPv1('V-1')));
      expect(outcome).to.deep.include({ ackCode: 'AE', commitAck: 'CA' });
      expect(outcome.error).to.deep.include({ code: 'OSPREY_ERR_PIPELINE_VALIDATION', hl7ErrorCode: '100', location: { segment: 'EVN' } });
      const stored = await store.getMessage(outcome.messageId!);
      expect(stored!.state).to.equal('ERROR');
      expect(stored!.error).to.deep.equal({ code: 'OSPREY_ERR_PIPELINE_VALIDATION', detail: outcome.error!.detail });
    });

    it('is not the dedupe original of the corrected message resent with the same MSH-10', async () => {
      const ingest = new Ingest(store, silentLogger());
      const bad = await ingest.receive(validating(), inbound(withoutEvnPv1('V-2')));
      expect(bad.ackCode).to.equal('AE');
      const fixed = await ingest.receive(validating(), inbound(adt({ controlId: 'V-2', patientId: 'P-V' })));
      expect(fixed).to.deep.include({ ackCode: 'AA' });
      expect(fixed.duplicate).to.equal(undefined);
      expect(fixed.messageId).to.not.equal(bad.messageId);
      expect((await store.getMessage(fixed.messageId!))!.state).to.equal('QUEUED');
    });

    it('with onValidationError AA: acknowledged AA and stored as ERROR by the pipeline, as before', async () => {
      const ingest = new Ingest(store, silentLogger());
      const outcome = await ingest.receive(validating('AA'), inbound(withoutEvnPv1('V-3')));
      expect(outcome.ackCode).to.equal('AA');
      expect(outcome.commitAck).to.equal(undefined);
      expect((await store.getMessage(outcome.messageId!))!.state).to.equal('ERROR');
    });
  });
});
