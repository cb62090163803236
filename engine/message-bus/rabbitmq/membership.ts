// SPDX-License-Identifier: Apache-2.0
/**
 * Membership: the rules that spread partitions over the engine instances (docs/design/0005-bus.md,
 * "Spreading partitions"). Pure: no broker, no timer; time comes from the injected clock, and what
 * changed is returned for the caller to act on (announce, reconcile partitions, tell listeners).
 * The caller feeds it the announcements the instances publish on the members exchange, calls
 * {@link Membership.tick} every `intervalMs`, and runs the timer {@link Membership.tookOver} asks for.
 *
 * Single-active-consumer alone would give every partition to whichever instance subscribed first.
 * Instances announce themselves (and the partitions they are subscribed to); each partition has a
 * "home" instance among those consuming its queue. An instance subscribes to its home partitions at
 * once and to the others later, as standby. One that finds itself active on another's home
 * partition hands it over, but only once the home instance has announced, after this one became
 * active, a consumer waiting on it: a crashed home is never given its partitions back.
 */
import { partitionOf } from '../rabbitmq-topology.ts';

/** What an instance publishes on the members exchange. */
export interface Announcement {
  id: string;
  /** Said when stopping: the others take its home partitions as soon as its channels close. */
  bye?: boolean;
  /** Logical queue → partitions the instance has a consumer registered on. */
  queues: Record<string, number[]>;
}

/** What a membership event changed, for the caller to act on. */
export interface MembershipChange {
  /** The number of live instances (this one included), when it changed (onMembersChanged). */
  members?: number;
  /**
   * When forgotten members were last heard (this instance's clock), one per member that went
   * silent without saying goodbye — only on the one survivor that tells (onMemberLost).
   */
  lost: number[];
  /** Who consumes which queue changed: the partitions' homes may have moved (reconcile them all). */
  reassigned: boolean;
}

/** What receiving an announcement changed. */
export interface AnnouncementReceived extends MembershipChange {
  /** The announcer. */
  from: string;
  /** It said goodbye. */
  bye: boolean;
  /** A newcomer: it should learn about this instance now rather than at its next tick (announce). */
  newcomer: boolean;
}

/** What taking over another instance's home partition means. */
export interface TakeOver {
  /** The partition's home instance, whose consumer went. */
  home: string;
  /**
   * When set, call {@link Membership.suspectDue} after this many milliseconds: the home is forgotten
   * then unless heard from meanwhile. Unset: it is suspected already.
   */
  suspectForMs?: number;
}

/** Options of {@link Membership}. */
export interface MembershipOptions {
  /** This instance's member id. */
  self: string;
  /** Interval of the announcements; the expiries are multiples of it. */
  intervalMs: number;
  /** False: no spreading; every partition is this instance's home. */
  rebalance: boolean;
  /** The clock (epoch ms). */
  now: () => number;
}

interface Member {
  lastSeen: number;
  /** Logical queue → partitions this member has a consumer registered on. */
  queues: Map<string, Set<number>>;
}

/** The members an instance knows and the homes of partitions; see the module comment. */
export class Membership {
  private readonly members = new Map<string, Member>();
  /** Members whose consumer lost a partition to this instance: forgotten unless heard from soon. */
  private readonly suspects = new Set<string>();
  /** The member count last reported (1: this instance alone). */
  private reported = 1;

  constructor(private readonly options: MembershipOptions) {}

  /** The number of live instances last reported (this one included). */
  get count(): number {
    return this.reported;
  }

  /** This instance takes part from now on (the bus started). */
  join(): void {
    this.members.set(this.options.self, { lastSeen: this.options.now(), queues: new Map() });
  }

  /** What this instance announces, consuming `queues` (logical queue → partitions subscribed). */
  announcement(queues: Record<string, number[]>, bye = false): Announcement {
    return { id: this.options.self, queues: bye ? {} : queues, ...(bye ? { bye: true } : {}) };
  }

  /**
   * An announcement received on the members exchange (raw, as published). Undefined for one that
   * is not an announcement, or this instance's own.
   */
  receive(content: Buffer | string): AnnouncementReceived | undefined {
    let a: Announcement;
    try {
      a = JSON.parse(typeof content === 'string' ? content : content.toString('utf8')) as Announcement;
    } catch {
      return undefined;
    }
    if (a === null || typeof a !== 'object' || typeof a.id !== 'string' || a.id === this.options.self) return undefined;
    const before = this.assignmentSignature();
    const bye = a.bye === true;
    let newcomer = false;
    if (bye) this.members.delete(a.id);
    else {
      newcomer = !this.members.has(a.id);
      const queues = new Map<string, Set<number>>();
      for (const [queue, parts] of Object.entries(a.queues ?? {})) {
        if (Array.isArray(parts)) queues.set(queue, new Set(parts.filter((p): p is number => typeof p === 'number')));
      }
      this.members.set(a.id, { lastSeen: this.options.now(), queues });
    }
    return { from: a.id, bye, newcomer, lost: [], ...this.report(), reassigned: this.assignmentSignature() !== before };
  }

  /**
   * Every interval: this instance is alive, and a member silent for 3 intervals is gone (the caller
   * announces this instance, then acts on the change).
   */
  tick(): MembershipChange {
    const now = this.options.now();
    const self = this.members.get(this.options.self);
    if (self) self.lastSeen = now;
    const before = this.assignmentSignature();
    const expiry = now - 3 * this.options.intervalMs;
    const lost: number[] = [];
    for (const [id, member] of this.members) {
      if (id !== this.options.self && member.lastSeen < expiry) this.forgetSilent(id, member, lost);
    }
    return { lost, ...this.report(), reassigned: this.assignmentSignature() !== before };
  }

  /**
   * A subscription of this instance became active (first delivery) at `since`. On another member's
   * home partition, that member's consumer is gone: a crash, a lost connection, or its partition
   * channel alone. Unless it announces itself again within 2 intervals (it reconnected), it is
   * forgotten then ({@link suspectDue}), rather than after the 3 silent intervals of the periodic
   * expiry. Undefined when the partition is this instance's or its home is unknown.
   */
  tookOver(queue: string, partition: number, since: number): TakeOver | undefined {
    const home = this.homeOf(queue, partition);
    if (home === this.options.self || !this.members.has(home)) return undefined;
    if (this.suspects.has(home)) return { home };
    this.suspects.add(home);
    return { home, suspectForMs: 2 * this.options.intervalMs };
  }

  /**
   * The wait {@link tookOver} asked for is over: `home` is forgotten unless it was heard from after
   * `since`. `forgotten` says whether it was.
   */
  suspectDue(home: string, since: number): MembershipChange & { forgotten: boolean } {
    this.suspects.delete(home);
    const member = this.members.get(home);
    if (!member || member.lastSeen > since) return { lost: [], reassigned: false, forgotten: false };
    const before = this.assignmentSignature();
    const lost: number[] = [];
    this.forgetSilent(home, member, lost);
    return { lost, ...this.report(), reassigned: this.assignmentSignature() !== before, forgotten: true };
  }

  /** Forgets the pending suspicions (the bus stops; their timers are cleared). */
  clearSuspects(): void {
    this.suspects.clear();
  }

  /** The home instance of a partition: among members consuming its queue (this one included), by rank. */
  homeOf(queue: string, partition: number): string {
    const { self } = this.options;
    if (!this.options.rebalance) return self;
    const candidates = [...this.members.entries()]
      .filter(([id, m]) => id === self || m.queues.has(queue))
      .map(([id]) => id)
      .sort();
    // Offset by the queue's hash so that instances do not all own partition 0 of every queue.
    const index = (partition + partitionOf(queue, 1 << 16)) % candidates.length;
    return candidates[index] ?? self;
  }

  /** True when {@link homeOf} is this instance. */
  isHome(queue: string, partition: number): boolean {
    return this.homeOf(queue, partition) === this.options.self;
  }

  /**
   * True when the partition's home is another instance that is alive and waits in line on it: its
   * latest announcement lists a consumer on the partition, and came after `since` (when this
   * instance became active on it, or subscribed, before any delivery) and within the last 2
   * intervals. An announcement from before is no proof: the broker made this subscription active
   * because the home's consumer went, and a crashed home still listed as a member (until it
   * expires) must not get the partition back — nobody would consume it.
   */
  homeIsWaiting(queue: string, partition: number, since: number): boolean {
    const home = this.homeOf(queue, partition);
    if (home === this.options.self) return false;
    const member = this.members.get(home);
    if (!member) return false;
    if (member.lastSeen <= since || member.lastSeen < this.options.now() - 2 * this.options.intervalMs) return false;
    return member.queues.get(queue)?.has(partition) ?? false;
  }

  /**
   * Forgets a member that went silent without saying goodbye: it died, or lost the broker while
   * this instance kept it. One survivor, the one with the smallest id, reports it (each survivor
   * decides alone, from the same membership).
   */
  private forgetSilent(id: string, member: Member, lost: number[]): void {
    this.members.delete(id);
    if ([...this.members.keys()].every((other) => other >= this.options.self)) lost.push(member.lastSeen);
  }

  /** The number of live instances, when it changed since last reported. */
  private report(): { members?: number } {
    const count = Math.max(1, this.members.size);
    if (count === this.reported) return {};
    this.reported = count;
    return { members: count };
  }

  /** Who consumes which queue: when it changes, partitions' homes may change. */
  private assignmentSignature(): string {
    return [...this.members.entries()]
      .map(([id, m]) => `${id}:${[...m.queues.keys()].sort().join(',')}`)
      .sort()
      .join('|');
  }
}
