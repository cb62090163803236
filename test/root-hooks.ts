// SPDX-License-Identifier: Apache-2.0
/**
 * Mocha root hooks (.mocharc.json `require`): a run that includes the production tests
 * (test/production/, the ones that stop and start services) proves it left the machine's
 * PostgreSQL and RabbitMQ alone: their pids are read before the first test and compared after the
 * last, and a change fails the run. A service whose pid cannot be read is skipped with the reason
 * printed. OSPREY_CHECK_MACHINE_SERVICES=1 checks any run; =0 checks none.
 */
import { changes, machineServices, unreadable, type MachineServices } from './helpers/machine-services.ts';

let before: MachineServices | undefined;

/** Whether this run should check: it loads a production test file, or the environment says so. */
function wanted(root: Mocha.Suite | undefined): boolean {
  const flag = process.env.OSPREY_CHECK_MACHINE_SERVICES;
  if (flag === '1' || flag === '0') return flag === '1';
  const files = (root?.suites ?? []).map((s) => s.file ?? '');
  return files.some((f) => /[\\/]test[\\/]production[\\/]/.test(f));
}

export const mochaHooks = {
  async beforeAll(this: Mocha.Context): Promise<void> {
    if (!wanted(this.test?.parent)) return;
    this.timeout(120_000);
    before = await machineServices();
    const missing = unreadable(before);
    const read = (['postgres', 'rabbitmq'] as const).filter((n) => 'pid' in before![n]).map((n) => `${n} pid ${(before![n] as { pid: number }).pid}`);
    console.log(`  [machine services] ${read.length > 0 ? `${read.join(', ')} recorded; compared after the run` : 'nothing to compare'}${missing.length > 0 ? `; skipped: ${missing.join('; ')}` : ''}`);
  },
  async afterAll(this: Mocha.Context): Promise<void> {
    if (!before) return;
    this.timeout(120_000);
    const after = await machineServices();
    const changed = changes(before, after);
    if (changed.length > 0) throw new Error(`the machine's services were restarted during the run (a test must restart only services it started itself): ${changed.join('; ')}`);
    console.log('  [machine services] unchanged by this run');
  },
};
