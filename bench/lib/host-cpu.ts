// SPDX-License-Identifier: Apache-2.0
/**
 * CPU time read from /proc: of one process, of every process with a given command name (the
 * PostgreSQL backends, RabbitMQ's Erlang VM), and of the whole machine. The bench uses the
 * differences over its measured run to say where the CPU per message goes; on a machine where
 * those processes are not visible (another container) their figure is null, never a guess.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** USER_HZ: /proc reports CPU times in these ticks; 100 on every Linux this runs on (getconf CLK_TCK). */
const CLOCK_TICKS = 100;

/** utime + stime of one process (all its threads), in ms; NaN when it is gone. */
export function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command may contain spaces: count fields after its closing parenthesis. utime and stime
    // are fields 14 and 15 of the file (11 and 12 after the command).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

/**
 * CPU ms of every process whose command name (`/proc/<pid>/comm`) is `name`, keyed by pid, so a
 * difference over a run counts only processes alive at both ends (PostgreSQL backends come and go
 * with connection pools; a pool is opened before the measured run starts).
 */
export function cpuMsByPid(name: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== name) continue;
    } catch {
      continue;
    }
    const ms = processCpuMs(Number(entry));
    if (Number.isFinite(ms)) out.set(Number(entry), ms);
  }
  return out;
}

/** CPU ms spent between two readings by processes present in both; null when none was seen. */
export function cpuMsBetween(before: Map<number, number>, after: Map<number, number>): number | null {
  let sum = 0;
  let seen = false;
  for (const [pid, ms] of after) {
    const was = before.get(pid);
    if (was === undefined) continue;
    sum += ms - was;
    seen = true;
  }
  return seen ? sum : null;
}

/** Busy CPU ms of the whole machine, all cores (user, nice, system, irq, softirq from /proc/stat). */
export function machineBusyMs(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0] = cpu;
  return ((user + nice + system + irq + softirq) * 1000) / CLOCK_TICKS;
}
