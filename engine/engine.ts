// SPDX-License-Identifier: Apache-2.0
/**
 * The composition root: configuration → store → bus → channels → management API. Channels are
 * independent: one whose file is broken, whose transform fails to load or whose port is taken is
 * reported as FAILED and the others run. At start, unfinished work is recovered from the store
 * (QUEUED deliveries back to their destination, RECEIVED messages back to their pipeline), oldest
 * first and before the channel's source accepts new messages, so a kill -9 loses nothing that was
 * acknowledged and per-key order holds across the restart.
 */
import { resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createMllpListener } from '../adapters/inbound/mllp-listener/index.ts';
import { RestClient } from '../adapters/outbound/rest/index.ts';
import { RateLimiterRegistry } from './delivery/rate-limiter.ts';
import { Ingest } from './ingest/ingest.ts';
import { queueNames, type MessageBus, type WorkItem } from './message-bus/message-bus.ts';
import { createBus, createStore } from './engine-components.ts';
import { publishInOrder } from './message-bus/publish-in-order.ts';
import { isOspreyError, OspreyError } from './errors/error-codes.ts';
import { channelEnvironment, isLoopback, sandboxExposureProblem } from './engine-config/http-exposure.ts';
import { pendingWorkPages, type MessageStore, type ReplayPlan } from './message-store/message-store.ts';
import { createLogger, type Logger } from './observability/logger.ts';
import { buildManagementApi, type ChannelView } from './management-api/server.ts';
import { SandboxReceiver } from './management-api/sandbox-receiver.ts';
import { ChannelInstance, ChannelStatus } from './channel-runtime/channel-instance.ts';
import type { ChannelRuntime, LintIssue } from './channel-runtime/channel-loader.ts';
import { DestinationWorker } from './channel-runtime/destination-worker.ts';
import { PendingWrites } from './channel-runtime/pending-writes.ts';
import { loadProject, type LoadedProject } from './channel-runtime/load-project.ts';
import { resolveRetryPolicy } from './delivery/retry-policy.ts';
import type { EngineConfig } from './engine-config/load-engine-config.ts';

export interface EngineOptions {
  config: EngineConfig;
  /** Root that channel, transform and lookup paths are relative to. */
  projectRoot?: string;
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
}

/** How long an MLLP ACK may wait for the bus to confirm the message's work item. */
const INGEST_PUBLISH_WAIT_MS = 2_000;
/** How often the outbox recovery tries again while the bus is unavailable. */
const OUTBOX_RETRY_MS = 2_000;
/**
 * After a broker outage, work changed from this long before the connection was lost is published
 * again: what was stored around and during the outage, by this instance or one that died (a
 * publish waits ≤ INGEST_PUBLISH_WAIT_MS for its confirm; the rest is room for clocks that differ
 * between machines). Older work reached the bus before the outage; publishing the whole backlog
 * again (a long ERP outage can leave a large one) would only add duplicates, on every instance.
 * The same margin before an instance that went silent was last heard: it stops announcing itself
 * when it loses the broker, and its unpublished work is from then on.
 */
const REPUBLISH_MARGIN_MS = 60_000;
/** Recovery publishes awaiting their confirms at once (see message-bus/publish-in-order.ts). */
const RECOVERY_PUBLISH_WINDOW = 500;
/** Passes of one recovery round before it waits OUTBOX_RETRY_MS (new work keeps arriving). */
const OUTBOX_MAX_PASSES = 20;

interface FailedChannel {
  name: string;
  file: string;
  error: string;
}

export class Engine {
  readonly logger: Logger;
  readonly store: MessageStore;
  readonly bus: MessageBus;
  readonly sandbox?: SandboxReceiver;
  private readonly projectRoot: string;
  private readonly channels = new Map<string, ChannelInstance>();
  private readonly specs = new Map<string, ChannelRuntime>();
  private failed: FailedChannel[] = [];
  private loadIssues: LintIssue[] = [];
  private api?: FastifyInstance;
  private started = false;
  /** Set when a publish failed: stored messages wait in the store until the bus takes them again. */
  private outboxBacklog = false;
  /** Work not published because of the backlog (or a failed publish) since the recovery pass began. */
  private deferredDuringBacklog = 0;
  private outboxTimer?: NodeJS.Timeout;
  /** The current backlog's scope: work changed since then (after a reconnect); unset: all of it. */
  private outboxSince?: number;
  private readonly pendingWrites = new PendingWrites();

  constructor(private readonly options: EngineOptions) {
    this.logger = options.logger ?? createLogger(options.config.logging);
    this.projectRoot = resolve(options.projectRoot ?? process.cwd());
    this.store = createStore(options.config.store, this.projectRoot);
    this.bus = createBus(options.config.bus, this.logger);
    if (options.config.sandbox?.enabled) this.sandbox = new SandboxReceiver();
    // In-memory hand-over between stages is safe only when every stage runs in this process.
  }

  /** Issues found in channel files at start (each one excluded only its own channel). */
  get channelIssues(): readonly LintIssue[] {
    return this.loadIssues;
  }

  channel(name: string): ChannelInstance | undefined {
    return this.channels.get(name);
  }

  get httpAddress(): { host: string; port: number } | undefined {
    const address = this.api?.server.address();
    return address && typeof address === 'object' ? { host: address.address, port: address.port } : undefined;
  }

  async start(): Promise<void> {
    const { config } = this.options;
    // Checked when the file is loaded too; here for configurations built in code.
    const exposure = sandboxExposureProblem(config);
    if (exposure) throw new OspreyError('OSPREY_ERR_CONFIG_INVALID', exposure);
    await this.store.open();
    await this.bus.start();
    // After a broker outage, every instance publishes what the store holds unfinished, not only
    // the one that deferred work: an instance that stored (and ACKed) messages while the broker
    // was away and then died would otherwise leave them until some instance starts. Duplicates of
    // work already on the bus are skipped by the stages (docs/design/0006 §3).
    this.bus.onReconnected?.((lostAt) =>
      this.startOutboxRecovery('bus connected again', {
        announce: 'bus connected again: publishing the unfinished work stored around the outage (this instance’s and any other’s)',
        changedSince: lostAt - REPUBLISH_MARGIN_MS,
      }),
    );
    // An instance that lost the broker alone (the others kept it) and then died leaves the work it
    // stored and ACKed meanwhile in the store, with no reconnect anywhere to publish it: one
    // survivor publishes what is unfinished from shortly before it was last heard.
    this.bus.onMemberLost?.((lastHeardAt) =>
      this.startOutboxRecovery('an engine instance went silent', {
        announce: 'an engine instance went silent: publishing the unfinished work stored since shortly before it was last heard',
        changedSince: lastHeardAt - REPUBLISH_MARGIN_MS,
      }),
    );
    // Work the bus gave up on is marked in the store, where operators see it and can replay it;
    // otherwise it would stay QUEUED (or RECEIVED) with nothing left to handle it.
    this.bus.onDeadLettered?.((queue, item, reason) => this.recordDeadLettered(queue, item, reason));
    // The API (and the sandbox receiver the sample channels deliver to) comes up first.
    this.api = buildManagementApi({
      store: this.store,
      channels: () => this.channelViews(),
      replay: (id) => this.replay(id),
      ready: () => this.started,
      bus: this.bus.connected === undefined ? undefined : () => ({ connected: this.bus.connected === true, node: this.bus.node }),
      sandbox: this.sandbox,
      logger: this.logger,
      apiTokens: config.http.apiToken?.split(','),
    });
    await this.api.listen({ host: config.http.host, port: config.http.port });
    if (!config.http.apiToken && !isLoopback(config.http.host)) {
      this.logger.warn('the management API serves message content without authentication on a non-loopback address; set http.apiToken', { host: config.http.host });
    }

    // After listen: `${OSPREY_SANDBOX_URL}` is the sandbox at the port actually in use.
    const env = channelEnvironment(config, this.options.env ?? process.env, this.httpAddress);
    const project = await loadProject({ config, projectRoot: this.projectRoot, env });
    const { issues } = project;
    this.loadIssues = issues;
    for (const issue of issues.filter((i) => i.severity === 'error')) {
      this.logger.error('channel file problem; the channel is not started', { file: issue.file, line: issue.line, code: issue.code, problem: issue.message });
    }

    const rateLimiters = new RateLimiterRegistry(config.rateLimits ?? {});
    // A rate limit is the receiving system's, for the whole environment: with N instances each
    // sends at 1/N of it (docs/design/0004, "Rate limits").
    this.bus.onMembersChanged?.((instances) => {
      rateLimiters.share(instances);
      this.logger.info('rate limits shared among the engine instances', { instances, limits: rateLimiters.names() });
    });
    const ingest = new Ingest(this.store, this.logger);
    for (const spec of project.channels) {
      this.specs.set(spec.name, spec);
      try {
        this.channels.set(spec.name, this.buildChannel(spec, { project, rateLimiters, ingest }));
      } catch (err) {
        this.channelFailed(spec, err);
      }
    }
    // The unfinished work goes on the bus BEFORE any source accepts anything: a message that
    // arrives after a restart must queue behind the recovered work of its key (per-key order).
    // Recovering after the sources started let a sender that reconnects at once overtake it
    // whenever recovery awaits I/O (PostgreSQL store, RabbitMQ bus, a long backlog after an ERP
    // outage). The bus holds items until the consumers start.
    const recovered = await this.recoverPending();
    if (recovered.messages + recovered.deliveries > 0) this.logger.info('recovered unfinished work from the store', recovered);
    for (const [name, instance] of this.channels) {
      try {
        await instance.start();
        this.logger.info('channel started', { channel: name, port: instance.sourceAddress?.port });
      } catch (err) {
        this.channelFailed(this.specs.get(name)!, err);
      }
    }
    this.started = true;
  }

  /**
   * Records a dead-lettered work item in the store: a delivery becomes DEAD_LETTERED, a message
   * still waiting for its pipeline ERROR, each with OSPREY_ERR_BUS_DEAD_LETTERED; both replayable.
   * Work that is final already, or gone (a replay replaced it), is left as it is.
   */
  private async recordDeadLettered(queue: string, item: WorkItem, reason: string): Promise<void> {
    const error = {
      code: 'OSPREY_ERR_BUS_DEAD_LETTERED' as const,
      detail: `the bus gave up on this work item (${reason}): its handler kept failing, or the broker's consumer_timeout kept closing its channel; replay it once the cause is fixed`,
    };
    try {
      if (queueNames.isDelivery(queue)) await this.store.abandonDelivery(item.id, error);
      else await this.store.recordProcessing(item.id, { state: 'ERROR', error });
    } catch (err) {
      if (isOspreyError(err) && err.code === 'OSPREY_ERR_STORE_NOT_FOUND') return;
      throw err;
    }
    this.logger.warn('work item dead-lettered by the bus; recorded in the store, replayable', { code: error.code, queue, id: item.id, reason });
  }

  /** A channel that could not be built or started: shown FAILED; the other channels go on. */
  private channelFailed(spec: ChannelRuntime, err: unknown): void {
    const error = (err as Error).message;
    this.failed.push({ name: spec.name, file: spec.file, error });
    this.channels.get(spec.name)?.stop().catch(() => undefined);
    this.channels.delete(spec.name);
    this.logger.error('channel failed to start; other channels continue', { channel: spec.name, error });
  }

  async stop(): Promise<void> {
    clearTimeout(this.outboxTimer);
    this.outboxTimer = undefined;
    for (const channel of this.channels.values()) await channel.stop().catch(() => undefined);
    await this.bus.stop();
    await this.api?.close();
    await this.store.close();
  }

  async replay(id: string): Promise<ReplayPlan | undefined> {
    const plan = await this.store.replay(id);
    // Through the same gate as new work: during a bus outage a replay waits in the store too.
    if (plan?.kind === 'pipeline') {
      await this.publishWork(queueNames.pipeline(plan.message.channel), { id: plan.message.id, key: plan.message.orderKey });
    } else if (plan?.kind === 'deliveries') {
      for (const d of plan.deliveries) await this.publishWork(queueNames.delivery(d.channel, d.destination), { id: d.id, key: d.orderKey });
    }
    return plan;
  }

  /**
   * Puts work that is already in the store (a message for its pipeline, a delivery for its
   * destination) on the bus. An ACK waits for this, so it never waits long: when the bus does not
   * confirm in time the work is durable anyway, and it is left to the outbox recovery. While such a
   * backlog exists nothing is published directly — a later message or delivery of a key would
   * otherwise overtake the earlier ones that wait in the store; the recovery publishes everything
   * pending in store order instead, and ends the backlog only after a pass during which nothing was
   * deferred. Resolves true when the item is on the bus, false when it is left to the recovery.
   */
  private async publishWork(queue: string, item: WorkItem): Promise<boolean> {
    if (this.outboxBacklog) {
      this.deferredDuringBacklog += 1;
      return false;
    }
    const publish = this.bus.publish(queue, item);
    // A bus that cannot disconnect (the local one) answers at once: no timer on the hot path.
    if (this.bus.connected === undefined) return publish.then(() => true);
    let timer: NodeJS.Timeout | undefined;
    const bounded = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('bus did not confirm in time')), INGEST_PUBLISH_WAIT_MS);
    });
    try {
      await Promise.race([publish, bounded]);
      return true;
    } catch (err) {
      // A publish that confirms later is a harmless duplicate: the stages skip finished work.
      publish.catch(() => undefined);
      this.deferredDuringBacklog += 1;
      this.startOutboxRecovery((err as Error).message);
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Enters (or widens) the backlog: `changedSince` limits the recovery to work changed since then
   * (a reconnect); without it, a publish of this instance failed and everything unfinished is due.
   */
  private startOutboxRecovery(reason: string, scope: { announce?: string; changedSince?: number } = {}): void {
    if (!this.outboxBacklog) {
      this.logger.warn(scope.announce ?? 'bus unavailable: messages are stored and acknowledged, and published from the store when it is back', { reason });
      this.outboxSince = scope.changedSince;
    } else if (scope.changedSince === undefined || this.outboxSince === undefined) this.outboxSince = undefined;
    else this.outboxSince = Math.min(this.outboxSince, scope.changedSince);
    this.outboxBacklog = true;
    this.scheduleOutboxPass();
  }

  private scheduleOutboxPass(): void {
    if (this.outboxTimer) return;
    this.outboxTimer = setTimeout(() => void this.recoverOutbox(), OUTBOX_RETRY_MS);
    this.outboxTimer.unref();
  }

  /**
   * Publishes every message and delivery the store has as unfinished (changed since `outboxSince`
   * when a reconnect set it), oldest first, pass after pass, until a whole pass (from before its
   * snapshot to its last publish) saw no work deferred:
   * only then is everything that waited in the store on the bus, in order, and the backlog ends.
   * Duplicates of work already on the bus are skipped by the stages' state checks.
   */
  private async recoverOutbox(): Promise<void> {
    this.outboxTimer = undefined;
    if (this.bus.connected === false) return this.scheduleOutboxPass();
    try {
      let published = 0;
      for (let pass = 0; pass < OUTBOX_MAX_PASSES; pass++) {
        this.deferredDuringBacklog = 0;
        const { messages, deliveries } = await this.recoverPending(this.outboxSince);
        published += messages + deliveries;
        if (this.deferredDuringBacklog === 0) {
          this.outboxBacklog = false;
          this.outboxSince = undefined;
          this.logger.info('bus available again: the stored backlog is published', { published, passes: pass + 1 });
          return;
        }
      }
      this.scheduleOutboxPass(); // work kept arriving during the recovery passes
    } catch (err) {
      this.logger.warn('outbox recovery pass failed; trying again', { error: (err as Error).message });
      this.scheduleOutboxPass();
    }
  }

  /**
   * Re-queues the running channels' unfinished work (changed since `changedSince`, when given),
   * page by page, in the order of {@link pendingWorkPages}: oldest first, deliveries before messages.
   * @returns how many of each were published.
   */
  private async recoverPending(changedSince?: number): Promise<{ messages: number; deliveries: number }> {
    const published = { messages: 0, deliveries: 0 };
    const publish = (queue: string, item: WorkItem) => this.bus.publish(queue, item);
    for await (const page of pendingWorkPages(this.store, changedSince === undefined ? {} : { changedSince })) {
      const deliveries = page.deliveries.filter((d) => this.channels.has(d.channel));
      const messages = page.messages.filter((m) => this.channels.has(m.channel));
      await publishInOrder(publish, deliveries.map((d) => [queueNames.delivery(d.channel, d.destination), { id: d.id, key: d.orderKey }]), RECOVERY_PUBLISH_WINDOW);
      await publishInOrder(publish, messages.map((m) => [queueNames.pipeline(m.channel), { id: m.id, key: m.orderKey }]), RECOVERY_PUBLISH_WINDOW);
      published.deliveries += deliveries.length;
      published.messages += messages.length;
    }
    return published;
  }

  private buildChannel(
    spec: ChannelRuntime,
    shared: { project: LoadedProject; rateLimiters: RateLimiterRegistry; ingest: Ingest },
  ): ChannelInstance {
    const destinations = new Map<string, DestinationWorker>();
    for (const d of spec.destinations) {
      const logger = this.logger.child({ channel: spec.name, destination: d.name });
      const worker = new DestinationWorker(
        { channel: spec.name, name: d.name, retry: resolveRetryPolicy(d.retry), rateLimiter: d.rateLimit ? shared.rateLimiters.get(d.rateLimit) : undefined, batch: d.batch },
        // The client classifies with the same status lists as the retry policy, so a `treatAsSuccess` 409 is a success.
        new RestClient({ url: d.url, method: d.method, headers: d.headers, auth: d.auth, timeoutMs: d.timeoutMs, retryOn: d.retry.retryOn, treatAsSuccess: d.retry.treatAsSuccess }),
        this.store,
        logger,
        this.pendingWrites,
      );
      destinations.set(d.name, worker);
    }
    return new ChannelInstance(
      spec.name,
      {
        pipeline: spec,
        ingest: { name: spec.name, accept: spec.source.accept, orderBy: spec.orderBy, dedupeWindowMs: spec.source.dedupeWindowMs },
        source: createMllpListener(spec.source.listener, this.logger.child({ channel: spec.name })),
        destinations,
        resources: shared.project.resourcesFor(spec),
      },
      {
        store: this.store,
        bus: this.bus,
        ingest: shared.ingest,
        logger: this.logger.child({ channel: spec.name }),
        publish: (queue, item) => this.publishWork(queue, item),
        pendingWrites: this.pendingWrites,
      },
    );
  }

  private channelViews(): ChannelView[] {
    const views: ChannelView[] = [];
    for (const spec of this.specs.values()) {
      const instance = this.channels.get(spec.name);
      const failure = this.failed.find((f) => f.name === spec.name);
      const address = instance?.sourceAddress;
      views.push({
        name: spec.name,
        version: spec.version,
        file: spec.file,
        status: failure ? ChannelStatus.FAILED : (instance?.status ?? ChannelStatus.STOPPED),
        error: failure?.error,
        source: { type: spec.source.type, host: address?.host ?? spec.source.listener.host, port: address?.port ?? spec.source.listener.port },
        accept: spec.source.accept,
        labels: spec.labels,
        destinations: spec.destinations.map((d) => d.name),
      });
    }
    for (const issue of this.loadIssues) {
      if (issue.severity === 'error' && !views.some((v) => v.file === issue.file)) {
        views.push({ name: issue.channel ?? issue.file, file: issue.file, status: ChannelStatus.FAILED, error: `${issue.code}: ${issue.message}`, destinations: [] });
      }
    }
    return views;
  }
}
