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
import { RestClient } from '../adapters/outbound/rest/index.ts';
import { RateLimiterRegistry } from './delivery/rate-limiter.ts';
import { Ingest } from './ingest/ingest.ts';
import { queueNames, type MessageBus, type WorkItem } from './message-bus/message-bus.ts';
import { createBus, createStore } from './engine-components.ts';
import { isOspreyError, OspreyError } from './errors/error-codes.ts';
import { channelEnvironment, isLoopback, sandboxExposureProblem } from './engine-config/http-exposure.ts';
import type { SourceServices } from './adapter-sdk/source-definition.ts';
import { FILE_LEDGER, SINGLE_ACTIVE } from './adapter-sdk/file-source-services.ts';
import type { MessageStore, ReplayPlan } from './message-store/message-store.ts';
import { OutboxRecovery } from './recovery/outbox-recovery.ts';
import { createLogger, type Logger } from './observability/logger.ts';
import { buildManagementApi, type ChannelView } from './management-api/server.ts';
import { SandboxReceiver } from './management-api/sandbox-receiver.ts';
import { ChannelInstance, ChannelStatus } from './channel-runtime/channel-instance.ts';
import type { ChannelRuntime, LintIssue } from './channel-runtime/channel-loader.ts';
import { DestinationWorker } from './channel-runtime/destination-worker.ts';
import { destinationDefinition, sourceDefinition } from './channel-runtime/adapter-registry.ts';
import { isRestDestination } from './channel-runtime/channel-runtime-view.ts';
import { PendingWrites } from './channel-runtime/pending-writes.ts';
import { loadProject, type LoadedProject } from './channel-runtime/load-project.ts';
import type { LookupTables } from './channel-runtime/lookup-tables.ts';
import { resolveRetryPolicy } from './delivery/retry-policy.ts';
import type { EngineConfig } from './engine-config/load-engine-config.ts';

export interface EngineOptions {
  config: EngineConfig;
  /** Root that channel, transform and lookup paths are relative to. */
  projectRoot?: string;
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
}

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
  /** Publishes stored work, and from the store what did not reach the bus (recovery/outbox-recovery.ts). */
  private readonly outbox: OutboxRecovery;
  private readonly pendingWrites = new PendingWrites();
  /** What sources may use of the engine beyond the handler (engine/adapter-sdk/source-definition.ts). */
  private readonly sourceServices: SourceServices;
  private project?: LoadedProject;

  constructor(private readonly options: EngineOptions) {
    this.logger = options.logger ?? createLogger(options.config.logging);
    this.projectRoot = resolve(options.projectRoot ?? process.cwd());
    this.store = createStore(options.config.store, this.projectRoot);
    // File sources keep their ledger in the store and take their channel's lease from it (usable once it is open).
    this.sourceServices = { [FILE_LEDGER]: this.store.files, [SINGLE_ACTIVE]: this.store.singleActive };
    this.bus = createBus(options.config.bus, this.logger);
    if (options.config.sandbox?.enabled) this.sandbox = new SandboxReceiver();
    this.outbox = new OutboxRecovery({ store: this.store, bus: this.bus, logger: this.logger, isRunning: (channel) => this.channels.has(channel) });
    // In-memory hand-over between stages is safe only when every stage runs in this process.
  }

  /** Issues found in channel files at start (each one excluded only its own channel). */
  get channelIssues(): readonly LintIssue[] {
    return this.loadIssues;
  }

  /** The lookup tables in use (after start). */
  get lookups(): LookupTables | undefined {
    return this.project?.lookups;
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
    this.outbox.watchBus();
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
    this.project = project;
    // Lookup files are checked for edits off the message path; a broken edit keeps the last good table.
    project.lookups.watch({ logger: this.logger });
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
    const recovered = await this.outbox.recoverAtStart();
    if (recovered.messages + recovered.deliveries > 0) this.logger.info('recovered unfinished work from the store', recovered);
    for (const [name, instance] of this.channels) {
      try {
        await instance.start();
        if (instance.disabledReason) this.logger.info('channel not run, as configured', { channel: name, reason: instance.disabledReason });
        else this.logger.info('channel started', { channel: name, port: instance.sourceAddress?.port });
      } catch (err) {
        this.channelFailed(this.specs.get(name)!, err);
      }
    }
    this.outbox.consumersStarted();
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
    this.outbox.stop();
    this.project?.lookups.close();
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

  /** Puts stored work on the bus, or leaves it to the outbox recovery (false); never throws. */
  private publishWork(queue: string, item: WorkItem): Promise<boolean> {
    return this.outbox.publish(queue, item);
  }

  private buildChannel(
    spec: ChannelRuntime,
    shared: { project: LoadedProject; rateLimiters: RateLimiterRegistry; ingest: Ingest },
  ): ChannelInstance {
    const destinations = new Map<string, DestinationWorker>();
    for (const d of spec.destinations) {
      const logger = this.logger.child({ channel: spec.name, destination: d.name });
      const worker = new DestinationWorker(
        { channel: spec.name, name: d.name, retry: resolveRetryPolicy(d.retry), rateLimiter: d.rateLimit ? shared.rateLimiters.get(d.rateLimit) : undefined, batch: isRestDestination(d) ? d.batch : undefined },
        isRestDestination(d)
          ? // The client classifies with the same status lists as the retry policy, so a `treatAsSuccess` 409 is a success.
            new RestClient({ url: d.url, method: d.method, headers: d.headers, auth: d.auth, timeoutMs: d.timeoutMs, retryOn: d.retry.retryOn, treatAsSuccess: d.retry.treatAsSuccess })
          : destinationDefinition(d.type).create(d.config),
        this.store,
        logger,
        this.pendingWrites,
      );
      destinations.set(d.name, worker);
    }
    const source = sourceDefinition(spec.source.type);
    const disabled = source.disabledReason?.(spec.source.config);
    return new ChannelInstance(
      spec.name,
      {
        pipeline: spec,
        ingest: { name: spec.name, accept: spec.source.accept, orderBy: spec.orderBy, dedupeWindowMs: spec.source.dedupeWindowMs, onValidationError: spec.source.ack.onValidationError },
        // A source left unconfigured on purpose is not built: the channel stays STOPPED with the reason.
        source: disabled ? undefined : source.create(spec.source.config, { channel: spec.name, logger: this.logger.child({ channel: spec.name }), services: this.sourceServices }),
        ...(disabled ? { disabledReason: disabled } : {}),
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
      const source = sourceDefinition(spec.source.type);
      const warnings = this.project?.lookupWarnings(spec.name) ?? [];
      views.push({
        name: spec.name,
        version: spec.version,
        file: spec.file,
        status: failure ? ChannelStatus.FAILED : (instance?.status ?? ChannelStatus.STOPPED),
        error: failure?.error,
        ...(instance?.disabledReason ? { reason: instance.disabledReason } : {}),
        ...(warnings.length > 0 ? { warnings } : {}),
        source: { type: spec.source.type, format: spec.source.format, ...source.describe(spec.source.config, instance?.source) },
        summary: source.summary?.(spec.source.config, instance?.source),
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
