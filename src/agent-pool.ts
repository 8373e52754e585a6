/**
 * The composition root and the public library API: `createAgentPool()` wires the stores, the
 * event bus, the registry, the model and tool catalogs, the instance pool and the run manager,
 * recovers runs a crash left unfinished, and schedules the ttl sweeps. Everything hangs on the
 * returned object, so two pools can live in one process.
 */
import { join } from 'node:path';
import type { GovernanceLedger } from './coordination/governance-ledger.ts';
import type { RateLimiter } from './coordination/rate-limiter.ts';
import { clusterView, startClusterDuties } from './cluster-duties.ts';
import {
  type ClusterOptions,
  type ClusterView,
  type Coordination,
  openCoordination,
} from './coordination/cluster.ts';
import { resolveClusterOptions } from './coordination/cluster-options.ts';
import { type Clock, systemClock, type TimerHandle } from './core/clock.ts';
import { type Logger, silentLogger } from './core/logger.ts';
import { validationError } from './core/errors.ts';
import { enumOption, intOption } from './core/options.ts';
import { type EventBus, LocalEventBus } from './events/bus.ts';
import { logActivationFailure, logHealthEvents, loggingRunObserver, logModelEvents } from './log-events.ts';
import type { FlagDefinition } from './governance/flags.ts';
import { type FlagChangedEvent, RuntimeFlags } from './governance/runtime-flags.ts';
import { Governance } from './governance/governance.ts';
import type { GovernanceOptions } from './governance/limits.ts';
import { LiveFigures } from './live-figures.ts';
import type { LiveFiguresOptions } from './live-figures-options.ts';
import { type MetricsOptions, PoolMetrics } from './metrics.ts';
import { ModelCatalog, type ModelCatalogOptions } from './models/catalog.ts';
import { PriceTable, type PriceTableOptions } from './models/pricing.ts';
import type { ModelResilienceOptions } from './models/resilience-options.ts';
import { type ModelEvent, ModelGuards } from './models/resilient-model.ts';
import type { HealthEvent } from './pool/health-events.ts';
import { HealthMonitor } from './pool/health.ts';
import type { TimedOutRun } from './pool/load-gate.ts';
import { Autoscaler } from './pool/autoscaler.ts';
import { WorkingSetCheckpointer } from './pool/checkpoint.ts';
import type { InstancePoolOptions } from './pool/pool-options.ts';
import type { ScalingEvent } from './pool/scaling-events.ts';
import { registerScalingMetrics } from './pool/scaling-metrics.ts';
import { TierClassifier } from './pool/tiers.ts';
import { type InstanceEvent, InstancePool } from './pool/pool.ts';
import { Recovery, type RecoveryEvent } from './pool/recovery.ts';
import { registerRecoveryMetrics } from './recovery-metrics.ts';
import { type PreloadEvent, Preloader } from './pool/preload.ts';
import { registerPreloadMetrics } from './pool/preload-metrics.ts';
import { type AgentEvent, AgentRegistry, type AgentRegistryOptions } from './registry/registry.ts';
import { referenceCheck } from './reference-check.ts';
import { ThreadHistoryCache } from './run/history-cache.ts';
import { Runner } from './run/runner.ts';
import { Rollouts } from './run/rollouts.ts';
import type { RunEvent } from './run/stream.ts';
import { RunManager } from './run/runs.ts';
import { type RunOptions, resolveRunOptions } from './run/run-options.ts';
import { Retention, type RetentionSweptEvent } from './run/retention.ts';
import type { RetentionOptions } from './run/retention-options.ts';
import { registerRetentionMetrics } from './retention-metrics.ts';
import { Threads } from './run/threads.ts';
import { MemoryAgentStore } from './store/memory.ts';
import { MemoryRunStore } from './store/memory-runs.ts';
import type { AgentStore, RunStore } from './store/ports.ts';
import { openSqliteStores, resolveSqlitePoolOptions, type SqlitePoolOptions } from './store/sqlite-stores.ts';
import { MemoryProjectStore } from './store/memory-projects.ts';
import { MemoryWorkingSetStore } from './store/memory-working-sets.ts';
import { PostgresWorkingSetStore } from './store/postgres/working-set-store.ts';
import type { WorkingSetStore } from './store/working-set-ports.ts';
import type { FlagStore } from './store/flag-ports.ts';
import { MemoryFlagStore } from './store/memory-flags.ts';
import { PostgresFlagStore } from './store/postgres/flag-store.ts';
import type { ProjectStore } from './store/project-ports.ts';
import { openPostgresStores } from './store/postgres/open.ts';
import {
  type PostgresPoolOptions,
  postgresPoolOptions,
  redactDatabaseUrl,
  resolvePostgresOptions,
} from './store/postgres/options.ts';
import { Projects } from './auth/projects.ts';
import { DEFAULT_PROJECT } from './registry/definition.ts';
import { ToolCatalog, type ToolCatalogOptions } from './tools/catalog.ts';
import { resolveHookRefs } from './tools/hook-modules.ts';
import { checkRunHooks, type HookEvent, type HookLayer, HookSet, type RunHooks } from './tools/hooks.ts';
import { projectTools, reloadTools, type ToolReload, type ToolWithFigures } from './tool-admin.ts';
import { registerToolMetrics } from './tool-metrics.ts';
import { type McpServerChangedEvent, McpServers } from './tools/mcp/mcp-servers.ts';
import { type McpEvent, McpSessions } from './tools/mcp/sessions.ts';
import type { McpServerStore } from './store/mcp-server-ports.ts';
import { MemoryMcpServerStore } from './store/memory-mcp-servers.ts';
import { PostgresMcpServerStore } from './store/postgres/mcp-server-store.ts';

/** The stores of a pool; `projects` defaults to memory for adapters given without one. */
export interface Stores {
  agents: AgentStore;
  runs: RunStore;
  projects?: ProjectStore;
  /** Each node's working-set checkpoint (pool/checkpoint.ts); defaults to memory for adapters given without one. */
  workingSets?: WorkingSetStore;
  /** Each project's declared MCP servers (tools/mcp); defaults to memory for adapters given without one. */
  mcpServers?: McpServerStore;
  /** Feature flags set at runtime and their audit trail; defaults to memory for adapters given without one. */
  flags?: FlagStore;
}

/** Every event an agent pool emits. */
export type AgentPoolEvent =
  | AgentEvent
  | InstanceEvent
  | ModelEvent
  | RecoveryEvent
  | PreloadEvent
  | HealthEvent
  | ScalingEvent
  | HookEvent
  | McpEvent
  | FlagChangedEvent
  | RetentionSweptEvent;

/** Options of {@link createAgentPool}. */
export interface AgentPoolOptions {
  /**
   * Where definitions, threads and runs live: the embedded SQLite file, process memory, a
   * PostgreSQL database (`databaseUrl`; what several nodes share), or your own adapters.
   * @default 'sqlite'
   */
  store?: 'sqlite' | 'memory' | 'postgres' | Stores;
  /** Directory of the SQLite file (`agentpool.db`). @default './data' */
  dataDir?: string;
  /**
   * The PostgreSQL database of `store: 'postgres'` (required with it, refused without it):
   * `postgres://user:password@host:5432/database`.
   */
  databaseUrl?: string;
  /** With `store: 'postgres'`: its schema, connection-pool bounds and timeouts. @default {} */
  postgres?: PostgresPoolOptions;
  /**
   * How the SQLite store opens its file (store `sqlite`): `lockingMode: 'exclusive'` for a server
   * that owns it (docs/operations.md, "The SQLite file"). @default { lockingMode: 'normal' }
   */
  sqlite?: SqlitePoolOptions;
  /**
   * The Redis the nodes of a cluster share (`redis://host:6379`, a database number may follow:
   * `redis://host:6379/5`). Only with `store: 'postgres'`: quotas, budgets and provider rate
   * limits, thread leases, run events, background runs and heartbeats go through it (cluster.md).
   * Without it a node runs alone. @default none
   */
  redisUrl?: string;
  /** Prefix of every Redis key and channel, so two clusters can share one Redis. @default 'agentpool:' */
  redisPrefix?: string;
  /** This node: its id and address, and the tuning of what it shares with the cluster. @default {} */
  cluster?: ClusterOptions;
  /** Bounds and ageing of live instances. */
  pool?: InstancePoolOptions;
  /** Model providers (base URLs, keys; environment variables fill the gaps). */
  models?: ModelCatalogOptions;
  /**
   * Around every model call, per `provider/model-id`: breaker, retries, timeout, bulkhead and
   * provider rate limits.
   */
  resilience?: ModelResilienceOptions;
  /** Prices per million tokens, added to or replacing the built-in table. */
  prices?: PriceTableOptions;
  /** Tool resolution: module base directory, module reloading, fetch allowlist, tools registered in code. */
  tools?: ToolCatalogOptions;
  /**
   * Functions called at points of every run (before and after each model call and tool call, when
   * the run finished); they observe, are not awaited, and a failing one is reported, never fatal
   * (docs/models-and-tools.md, "Hooks"). An agent's own `hooks` run after these. @default none
   */
  hooks?: RunHooks;
  /** Agent definitions: how often agents' `lastUsedAt` is written. */
  agents?: AgentRegistryOptions;
  /** Default quotas and budgets of projects, and how budgets are reserved. */
  governance?: GovernanceOptions;
  /**
   * State shared by the pools of a cluster: the governance ledger (runs in flight, per-minute
   * counts, budget windows) and the provider rate limiter, e.g. `RedisGovernanceLedger` and
   * `RedisRateLimiter` on one Redis. The pool closes them when it closes (not their connection).
   * @default this process only
   */
  coordination?: {
    ledger?: GovernanceLedger;
    rateLimiter?: RateLimiter;
  };
  /**
   * Named feature flags, evaluated per project and request with `pool.flags.isEnabled()`. They
   * are defaults: written to the flag store at start unless changed there at runtime
   * (`pool.flags.set()`, `PUT /v1/flags/{name}`), which every node follows. @default {}
   */
  flags?: Record<string, FlagDefinition>;
  /** How many agents get Prometheus series of their own, and how many keep figures for the stats API. */
  metrics?: MetricsOptions;
  /** Bounds of runs, thread history and the replay buffers of run events (`run/run-options.ts`). */
  runs?: RunOptions;
  /** The window of live figures the dashboard and `agentpool top` show (`live-figures.ts`). @default {} */
  liveFigures?: LiveFiguresOptions;
  /** How often ephemeral agents and threads past their ttl are deleted; 0 never. @default 60000 */
  ttlSweepIntervalMs?: number;
  /**
   * How long runs, their messages and threads are kept (`days`, default 30; a project's
   * `limits.retention.days` wins; 0 keeps them), and how the background sweep deletes what is
   * older (`batchSize`, `intervalMs`). @default {}
   */
  retention?: RetentionOptions;
  /** Time source. @default the system clock */
  clock?: Clock;
  /** The event bus. @default an in-process bus */
  bus?: EventBus<AgentPoolEvent>;
  /**
   * Where the pool writes failed runs, breaker changes, fallbacks, failed activations, recovered
   * runs and sweep failures (pino; child loggers per `component`). The server built over the pool
   * logs through it too unless given its own. @default a silent logger
   */
  logger?: Logger;
}

/** A running agent pool. */
export interface AgentPool {
  /** Agent definitions and versions. */
  readonly agents: AgentRegistry;
  /** Live instances: acquire, release, prewarm, pause, stats. */
  readonly instances: InstancePool;
  /** Failure recovery: each agent's failures and steps, its degraded mark, reset. */
  readonly recovery: Recovery;
  /** Preloading from usage: idle capacity filled by priority score, followers prefetched (`pool.preload`). */
  readonly preloader: Preloader;
  /** The health monitor: the node's status and checks, timeouts, load shedding (`pool.health`). */
  readonly health: HealthMonitor;
  /** Conversations. */
  readonly threads: Threads;
  /** Start, follow and cancel runs. */
  readonly runs: RunManager;
  /** Canary rollouts of agent versions: per-version outcomes, promote, abort. */
  readonly rollouts: Rollouts;
  readonly models: ModelCatalog;
  /** The resilience guard of each model: breaker state, retries, fallbacks, throttling. */
  readonly guards: ModelGuards;
  readonly tools: ToolCatalog;
  /** Each project's MCP servers: declare, list, delete; their shared sessions and per-server figures. */
  readonly mcp: McpServers;
  readonly prices: PriceTable;
  /** Prometheus metrics of this pool (`metrics.scrape()` for the exposition text). */
  readonly metrics: PoolMetrics;
  /** The last minutes in 10-second buckets: runs, latency, cost, slowest runs, cache and activations. */
  readonly live: LiveFigures;
  /** Subscribe to `agent.*`, `instance.*`, `breaker.*` and `model.fallback` events. */
  readonly events: EventBus<AgentPoolEvent>;
  readonly stores: Required<Stores>;
  /** Projects (tenants) and their API keys. */
  readonly projects: Projects;
  /** Quotas and budgets: admission of runs and agents, usage per project. */
  readonly governance: Governance;
  /** The retention sweep: `sweep()` now, `stats()`, its options. */
  readonly retention: Retention;
  /** Feature flags: `isEnabled` from memory; `set`, `delete`, `history` persisted, audited and followed by every node. */
  readonly flags: RuntimeFlags;
  readonly clock: Clock;
  /** The logger of `options.logger` (silent by default). */
  readonly logger: Logger;
  /** This node: its mode (alone or in a cluster), id, the cluster's nodes, its dependencies. */
  readonly cluster: ClusterView;
  /** Runs a crash left unfinished, marked `interrupted` when this pool started. */
  readonly recoveredRuns: number;
  /**
   * The working-set checkpoint: `status` is `warming` while the last checkpoint's agents are
   * prewarmed at start (`/readyz` answers 503 meanwhile), `start()` resolves when done.
   */
  readonly checkpoint: WorkingSetCheckpointer;
  /** Moves the pool's capacity with load and memory (`pool.autoscaling`; off by default). */
  readonly autoscaler: Autoscaler;
  /** Classifies `auto` agents into hot, warm and cold from traffic; per-tier figures (`pool.tiers`). */
  readonly tiers: TierClassifier;
  /** Resolves when every store answers a read; rejects with the store's error otherwise. */
  ping(): Promise<void>;
  /**
   * Checks the cached tool and hook modules (or the one at `path`) now, loads those whose file
   * changed and retires the live instances using them, so their next activation has the new version.
   */
  reloadTools(options?: { path?: string }): Promise<ToolReload>;
  /** What a project can use: builtin, registered and its agents' module tools, with its figures. */
  listTools(project: string): Promise<{ project: string; data: ToolWithFigures[]; truncated: boolean }>;
  /** Activates every hot-tier agent of every project; returns how many were prewarmed. */
  prewarmHot(): Promise<number>;
  /** Interrupts runs in flight, stops timers, terminates instances and closes the stores (yours too). */
  close(): Promise<void>;
}

/** How often ephemeral agents and threads past their ttl are deleted, by default (ms). */
export const DEFAULT_TTL_SWEEP_INTERVAL_MS = 60_000;

/** Creates an agent pool. */
export async function createAgentPool(options: AgentPoolOptions = {}): Promise<AgentPool> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? silentLogger();
  const ttlSweepIntervalMs = intOption(
    'ttlSweepIntervalMs',
    options.ttlSweepIntervalMs,
    DEFAULT_TTL_SWEEP_INTERVAL_MS,
    0,
  );
  const runOptions = resolveRunOptions(options.runs);
  const models = new ModelCatalog(options.models);
  const prices = new PriceTable(options.prices);
  const poolHooks = checkRunHooks('hooks', options.hooks);
  const toolLog = logger.child({ component: 'tools' });
  const tools = new ToolCatalog(options.tools, {
    onReloadRefused: (refused) =>
      toolLog.warn(
        refused,
        `tool module ${refused.path} changed but was not imported again: tools.${refused.limit} (${refused.max}) reached; it keeps its loaded version until the process restarts`,
      ),
  });
  const { nodeId } = resolveClusterOptions(options.cluster);
  checkRedisStore(options);
  const stores = await openStores(options, logger, nodeId);
  let instances: InstancePool | undefined;
  let recovering: Recovery | undefined;
  let preloading: Preloader | undefined;
  let healthMonitor: HealthMonitor | undefined;
  let mcpServers: McpServers | undefined;
  let runtimeFlags: RuntimeFlags | undefined;
  let retaining: Retention | undefined;
  let stopLoggingEvents: (() => void) | undefined;
  let coordination: Coordination<RunEvent> | undefined;
  const stopCluster: (() => void)[] = [];
  try {
    coordination = await openCoordination<RunEvent>({
      redisUrl: options.redisUrl,
      redisPrefix: options.redisPrefix,
      cluster: { ...options.cluster, nodeId },
      maxQueuePerThread: runOptions.maxQueuePerThread,
      clock,
      logger,
    });
    const shared = coordination;
    const ledger = options.coordination?.ledger ?? shared.ledger;
    const rateLimiter = options.coordination?.rateLimiter ?? shared.rateLimiter;
    // A listener's exception goes to the logger when there is one; without one, to stderr as
    // before (the bus's default), rather than into the silent default logger.
    const bus =
      options.bus ??
      new LocalEventBus<AgentPoolEvent>(
        options.logger === undefined
          ? {}
          : {
              onListenerError: (err, event) =>
                logger
                  .child({ component: 'events' })
                  .error({ err, event: event.type }, 'an event listener threw'),
            },
      );
    const stopLoggingModels = logModelEvents(bus, logger.child({ component: 'models' }));
    const stopLoggingHealth = logHealthEvents(bus, logger.child({ component: 'health' }));
    stopLoggingEvents = () => {
      stopLoggingModels();
      stopLoggingHealth();
    };
    const poolLog = logger.child({ component: 'pool' });
    // A failing hook: a log line, an event and a count; the run it observed goes on.
    const hookFailed = (
      hook: HookEvent['hook'],
      origin: string,
      err: unknown,
      run: { project: string; agent: string; runId: string },
    ) => {
      const message = err instanceof Error ? err.message : String(err);
      toolLog.warn(
        { err, hook, origin, project: run.project, agent: run.agent, runId: run.runId },
        `hook ${hook} failed`,
      );
      toolMetrics.hookFailed(hook); // read when a hook fails, long after toolMetrics is set
      bus.emit({
        type: 'hook.failed',
        hook,
        origin,
        project: run.project,
        agent: run.agent,
        runId: run.runId,
        error: { message },
        at: clock.now(),
      });
    };
    const poolLayer: HookLayer[] =
      Object.keys(poolHooks).length === 0 ? [] : [{ origin: 'pool', hooks: poolHooks }];
    const sharedHooks = new HookSet(poolLayer, hookFailed);
    const flags = new RuntimeFlags(
      {
        store: stores.flags,
        clock,
        bus,
        relay: shared.relay,
        log: logger.child({ component: 'flags' }),
        pollMs: shared.changePollMs,
      },
      options.flags ?? {},
    );
    runtimeFlags = flags;
    await flags.start();
    const agents = new AgentRegistry(
      {
        store: stores.agents,
        bus,
        clock,
        // Read when an agent is created, long after governance is set.
        admitAgent: <T>(project: string, create: () => Promise<T>): Promise<T> =>
          governance.admitAgent(project, create),
        checkReferences: referenceCheck(models, tools),
      },
      options.agents,
    );
    // Where the store's change feed stands now: later changes by other processes are announced.
    await agents.checkForChanges();
    const pool = new InstancePool(
      {
        registry: agents,
        bus,
        clock,
        resolveResources: async (agent) => {
          try {
            // mcp: references follow their server's cached list: each run reads the tools as they are.
            const liveTools = await tools.resolveLive(agent.spec.tools, agent.project);
            return {
              models: [agent.spec.model, ...(agent.spec.fallbacks ?? [])].map((ref) => ({
                ref,
                model: models.resolve(ref),
              })),
              get tools() {
                return liveTools.current;
              },
              // Resolved once per instance: its runs call these without looking anything up.
              hooks:
                agent.spec.hooks === undefined
                  ? sharedHooks
                  : new HookSet(
                      [...poolLayer, await resolveHookRefs(tools.modules, agent.spec.hooks)],
                      hookFailed,
                    ),
            };
          } catch (err) {
            logActivationFailure(poolLog, agent, err);
            throw err;
          }
        },
        // Read once the pool is built (recovery is built over it).
        onActivationFailed: (agent, err) => recovery.activationFailed(agent, err),
        migratedTier: (agentId) => recovery.migratedTier(agentId),
      },
      options.pool,
    );
    instances = pool;
    const relay = shared.relay;
    const recovery: Recovery = new Recovery(
      {
        clock,
        bus,
        pool,
        readAgent: (project, agentId) => agents.get(project, agentId),
        forgetResolved: (agent) => tools.forgetResolved(agent.spec.tools),
        // The degraded mark and its reset reach every node; each node heals its own instances.
        ...(relay !== undefined && { share: (event: RecoveryEvent) => relay.publish(event) }),
        nodeId,
        logger: poolLog.child({ subsystem: 'recovery' }),
      },
      pool.options.recovery,
    );
    recovering = recovery;
    if (relay !== undefined) {
      stopCluster.push(
        relay.onEvent((event) => {
          if (event.type === 'instance.recovery') recovery.applyShared(event as RecoveryEvent);
        }),
      );
    }
    const health: HealthMonitor = new HealthMonitor(
      {
        pool,
        bus,
        clock,
        // Read at each check, long after runManager is set.
        expireRuns: (): TimedOutRun[] => runManager.expireOverdue(),
        onError: (err) => logger.child({ component: 'health' }).error({ err }, 'health check failed'),
        ...(options.pool?.health?.readings !== undefined && { readings: options.pool.health.readings }),
      },
      pool.options.health,
    );
    healthMonitor = health;
    // A node alone keeps its checkpoint under "local"; a cluster node under its configured id. A
    // cluster node with a generated id would never find its checkpoint again: it keeps none.
    const checkpointNode = options.cluster?.nodeId ?? (options.redisUrl === undefined ? 'local' : null);
    const checkpoint = new WorkingSetCheckpointer(
      {
        pool,
        store: stores.workingSets,
        bus,
        clock,
        log: logger.child({ component: 'checkpoint' }),
        node: checkpointNode,
        restore: (entries) => tiers.restore(entries),
      },
      options.pool?.checkpoint,
    );
    const tiers = new TierClassifier({
      pool,
      bus,
      clock,
      log: logger.child({ component: 'tiers' }),
      // Read at activation, long after governance is set; cached there for limitsCacheMs, so an
      // activation mostly waits for nothing here.
      projectTier: (project) => {
        const cached = governance.cachedLimits(project);
        if (cached !== undefined) return cached.tiers?.default;
        return governance.limits(project).then((limits) => limits.tiers?.default);
      },
    });
    pool.setTierAssigner(tiers);
    const autoscaler = new Autoscaler(
      { pool, bus, clock, log: logger.child({ component: 'autoscaler' }) },
      options.pool?.autoscaling,
    );
    if (checkpointNode === null && checkpoint.options.enabled) {
      poolLog.info(
        "no working-set checkpoint: set cluster.nodeId to keep this node's working set across restarts",
      );
    }
    const metrics: PoolMetrics = new PoolMetrics(
      {
        poolStats: () => pool.stats(),
        health: () => health.report(),
        runsInFlight: (): { queued: number; running: number } => runManager.inFlight(), // read at scrape time
        governance: () => governance.samples(),
        models: () => guards.stats(),
      },
      options.metrics,
    );
    registerRecoveryMetrics(metrics.registry, () => recovery.stats());
    const live = new LiveFigures({ clock, readPool: () => pool.stats() }, options.liveFigures);
    const toolMetrics = registerToolMetrics(metrics.registry, tools);
    const mcp = new McpServers({
      store: stores.mcpServers,
      clock,
      sessions: new McpSessions({
        options: tools.options.mcp,
        clock,
        bus,
        log: logger.child({ component: 'mcp' }),
        registry: metrics.registry,
      }),
      // A changed declaration reaches the other nodes' live tools too.
      ...(relay !== undefined && { share: (event: McpServerChangedEvent) => relay.publish(event) }),
      nodeId,
    });
    if (relay !== undefined) {
      stopCluster.push(
        relay.onEvent((event) => {
          if (event.type !== 'mcp.server_changed') return;
          const changed = event as McpServerChangedEvent;
          mcp.changedElsewhere(changed).catch((err: unknown) => {
            const { project, server } = changed;
            logger
              .child({ component: 'mcp' })
              .warn({ err, project, server }, 'applying an MCP server change failed');
          });
        }),
      );
    }
    mcpServers = mcp;
    tools.useMcp(mcp);
    const preloader = new Preloader(
      {
        pool,
        store: stores.agents,
        usage: agents.usage,
        bus,
        clock,
        log: logger.child({ component: 'preload' }),
      },
      pool.options.preload,
    );
    preloading = preloader;
    registerPreloadMetrics(metrics.registry, () => preloader.stats());
    registerScalingMetrics(metrics.registry, { checkpoint, autoscaler, tiers });
    const leases = shared.threadLeases;
    const history = new ThreadHistoryCache({
      maxThreads: runOptions.cachedThreads,
      maxMessages: runOptions.historyLimit,
    });
    const projects = new Projects({
      store: stores.projects,
      clock,
      onLimitsChanged: (project) => governance.invalidate(project),
      data: {
        agents: stores.agents,
        runs: stores.runs,
        // Read when a project is deleted, long after runManager is set.
        stop: async (project): Promise<void> => {
          await runManager.endProject(project, 'the project is being deleted');
          pool.retireProject(project);
        },
        // Retires again: an instance activated while the data was going must not outlive it.
        forget: async (project) => {
          pool.retireProject(project);
          pool.forgetProject(project);
          preloader.forgetProject(project);
          history.forgetProject(project);
          metrics.forgetProject(project);
          tools.figures.forgetProject(project);
          governance.forget(project);
          await mcp.forgetProject(project); // its declarations, and its sessions here
        },
      },
    });
    const governance = new Governance(
      {
        projects: stores.projects,
        runs: stores.runs,
        prices,
        clock,
        countAgents: (project) => agents.count(project),
        observer: metrics,
        ...(ledger !== undefined && { ledger }),
      },
      options.governance,
    );
    const threads = new Threads({ store: stores.runs, clock, leases, history });
    const retention = new Retention(
      {
        runs: stores.runs,
        projects: stores.projects,
        leases,
        history,
        // Read at a sweep, long after runManager is set.
        forgetRuns: (project, before) => runManager.forgetFinishedBefore(project, before),
        duties: shared.duties,
        clock,
        bus,
        log: logger.child({ component: 'retention' }),
      },
      options.retention,
    );
    retaining = retention;
    registerRetentionMetrics(metrics.registry, () => retention.stats());
    const guards = new ModelGuards(options.resilience, {
      clock,
      bus,
      observer: metrics,
      ...(rateLimiter !== undefined && { rateLimiter }),
    });
    const runner = new Runner({
      guards,
      prices,
      clock,
      toolTimeoutMs: tools.options.defaultTimeoutMs,
      observer: metrics,
      hooks: sharedHooks,
      tools,
    });
    const runManager = new RunManager(
      {
        registry: agents,
        pool,
        store: stores.runs,
        runner,
        leases,
        threads,
        ...(shared.eventLog !== undefined && { eventLog: shared.eventLog }),
        ...(shared.queue !== undefined && { queue: shared.queue }),
        ...(shared.relay !== undefined && { relay: shared.relay }),
        clock,
        observer: loggingRunObserver(
          {
            modelCall: (model, seconds, ok) => metrics.modelCall(model, seconds, ok),
            threadBusy: () => metrics.threadBusy(),
            // Persisted usage, who-follows-whom and failure recovery: a Map lookup and a few additions each.
            runFinished: (run) => {
              metrics.runFinished(run);
              live.runFinished(run);
              agents.usage.record(run);
              preloader.runFinished(run);
              recovery.runFinished(run);
            },
          },
          logger.child({ component: 'runs' }),
        ),
        gate: (agent) => recovery.assertServes(agent),
        history,
        governance,
        resolveTools: (refs, project) => tools.resolve(refs, project), // sizes a cold start's tool definitions for its budget
        load: health,
      },
      runOptions,
    );
    // A cluster node ends only its own runs left by a crash (a node restarted with the same id);
    // those of nodes that died are swept by the live ones. A node alone ends them all.
    const recoveredRuns = await stores.runs.interruptUnfinished(
      clock.now(),
      shared.mode === 'cluster' ? { node: nodeId, except: (await shared.queue?.pendingRunIds()) ?? [] } : {},
    );
    if (recoveredRuns > 0) {
      logger
        .child({ component: 'runs' })
        .warn({ recoveredRuns }, 'runs left unfinished by the last stop (a crash?) were marked interrupted');
    }
    // The default project is a record like any other: listed, with limits and usage.
    await projects.ensure(DEFAULT_PROJECT);

    let closed = false;
    /** The sweep in progress, so close() waits for it before closing the stores it uses. */
    let sweep: Promise<void> | undefined;
    let ttlTimer: TimerHandle | undefined;
    const scheduleTtlSweep = () => {
      if (ttlSweepIntervalMs === 0 || closed) return;
      ttlTimer = clock.setTimeout(() => {
        scheduleTtlSweep();
        if (sweep !== undefined) return; // the previous sweep is still running
        sweep = Promise.all([agents.sweepExpired((id) => pool.isActive(id)), threads.sweepExpired()])
          .then(() => undefined)
          .catch((err: unknown) => poolLog.error({ err }, 'ttl sweep failed'))
          .finally(() => {
            sweep = undefined;
          });
      }, ttlSweepIntervalMs);
    };
    scheduleTtlSweep();
    retention.start();
    preloader.start();
    stopCluster.push(
      ...startClusterDuties({
        coordination: shared,
        agents,
        runs: runManager,
        runStore: stores.runs,
        pool,
        bus,
        clock,
        log: logger.child({ component: 'cluster', node: nodeId }),
        address: options.cluster?.address ?? null,
        watchChanges: stores.agents.changeFeed !== undefined && options.store === 'postgres',
      }),
    );
    // In the background: the node listens meanwhile, and /readyz says `warming` until it is done.
    void checkpoint.start();
    autoscaler.start();
    tiers.start();
    live.start();
    const ping = async (): Promise<void> => {
      await Promise.all([
        stores.agents.getById('agt_ping'),
        stores.runs.getThread('thr_ping'),
        stores.projects.getProject('ping'),
      ]);
    };

    return {
      agents,
      instances: pool,
      recovery,
      preloader,
      health,
      threads,
      runs: runManager,
      rollouts: new Rollouts({ registry: agents, store: stores.runs, clock }),
      projects,
      governance,
      retention,
      flags,
      metrics,
      live,
      models,
      guards,
      tools,
      mcp,
      prices,
      events: bus,
      stores,
      clock,
      logger,
      recoveredRuns,
      checkpoint,
      autoscaler,
      tiers,
      cluster: clusterView(shared, storeName(options), ping),
      ping,
      reloadTools: (reload) => reloadTools({ tools, pool }, reload?.path),
      listTools: (project) => projectTools({ tools, agents, mcp }, project),
      async prewarmHot() {
        let count = 0;
        let cursor: string | undefined;
        do {
          const page = await agents.listByTier('hot', {
            limit: 500,
            ...(cursor !== undefined && { cursor }),
          });
          for (const agent of page.data) {
            await pool.prewarm(agent.project, agent.id);
            count++;
          }
          cursor = page.nextCursor ?? undefined;
        } while (cursor !== undefined);
        return count;
      },
      async close() {
        if (closed) return;
        closed = true;
        try {
          ttlTimer?.cancel();
          health.close();
          live.close();
          await flags.close();
          await retention.close(); // its batch under way ends before the stores close
          for (const stop of stopCluster) stop();
          // No more background runs here; those running stop at their last committed step and
          // another node resumes them once their jobs' locks expire.
          await shared.queue?.close(true);
          await runManager.close('the pool is closing');
          await mcp.close(); // after the runs: their MCP calls ended with them
          autoscaler.close();
          tiers.close();
          await checkpoint.close(); // while the instances are still resident
          recovery.close();
          preloader.close();
          pool.close();
          await sweep;
          await agents.close(); // writes the last uses the pool handed over as it closed
        } finally {
          stopLoggingEvents?.();
          try {
            // After the runs ended: what they gave back reaches a shared ledger before it stops.
            await closeCoordination(options);
            await shared.close();
          } finally {
            await closeStores(stores);
          }
        }
      },
    };
  } catch (err) {
    recovering?.close(); // its sweep timer
    preloading?.close(); // its fill and decay timers
    instances?.close(); // it subscribed to the bus and scheduled its idle sweep
    healthMonitor?.close(); // its timer and the event-loop sampler
    await mcpServers?.close(); // its idle sweep
    await runtimeFlags?.close(); // its poll timer and relay subscription
    await retaining?.close(); // its timer
    stopLoggingEvents?.();
    for (const stop of stopCluster) stop();
    await closeCoordination(options).catch(() => undefined); // the error that matters is err
    await coordination?.close().catch(() => undefined);
    await closeStores(stores);
    throw err;
  }
}

/** Stops what `options.coordination` handed the pool (renewals, deliveries), both even if one fails. */
async function closeCoordination(options: AgentPoolOptions): Promise<void> {
  const { ledger, rateLimiter } = options.coordination ?? {};
  const results = await Promise.allSettled([ledger?.close(), rateLimiter?.close()]);
  for (const r of results) if (r.status === 'rejected') throw r.reason;
}

async function openStores(
  options: AgentPoolOptions,
  logger: Logger,
  nodeId: string,
): Promise<Required<Stores>> {
  const store = options.store ?? 'sqlite';
  if (typeof store === 'object') {
    return {
      ...store,
      projects: store.projects ?? new MemoryProjectStore(),
      workingSets: store.workingSets ?? new MemoryWorkingSetStore(),
      mcpServers: store.mcpServers ?? new MemoryMcpServerStore(),
      flags: store.flags ?? new MemoryFlagStore(),
    };
  }
  const kind = enumOption('store', store, ['sqlite', 'memory', 'postgres'] as const, 'sqlite');
  if (kind !== 'sqlite' && options.sqlite !== undefined) {
    throw validationError('sqlite', `is only used with store 'sqlite', not '${kind}'`);
  }
  if (kind === 'postgres') {
    if (options.databaseUrl === undefined) {
      throw validationError(
        'databaseUrl',
        "is required with store 'postgres' (postgres://user@host:5432/database)",
      );
    }
    const tuning = postgresPoolOptions(options.postgres);
    resolvePostgresOptions({ ...tuning, databaseUrl: options.databaseUrl }, 'postgres.'); // fields named as given
    const opened = await openPostgresStores({ ...tuning, databaseUrl: options.databaseUrl, nodeId });
    const { schema } = opened.database.options;
    logger.child({ component: 'store' }).info(
      {
        store: 'postgres',
        databaseUrl: redactDatabaseUrl(options.databaseUrl),
        schema,
        schemaVersion: opened.database.migration.to,
        migratedFrom: opened.database.migration.from,
      },
      'stores on PostgreSQL',
    );
    return {
      agents: opened.agents,
      runs: opened.runs,
      projects: opened.projects,
      workingSets: new PostgresWorkingSetStore(opened.database),
      mcpServers: new PostgresMcpServerStore(opened.database),
      flags: new PostgresFlagStore(opened.database),
    };
  }
  for (const field of ['databaseUrl', 'postgres'] as const) {
    if (options[field] !== undefined) {
      throw validationError(field, `is only used with store 'postgres', not '${kind}'`);
    }
  }
  if (kind === 'memory') {
    return {
      agents: new MemoryAgentStore(),
      runs: new MemoryRunStore(),
      projects: new MemoryProjectStore(),
      workingSets: new MemoryWorkingSetStore(),
      mcpServers: new MemoryMcpServerStore(),
      flags: new MemoryFlagStore(),
    };
  }
  // One connection for the three stores: what exclusive locking needs, and one file handle.
  const { lockingMode } = resolveSqlitePoolOptions(options.sqlite);
  const opened = openSqliteStores(join(options.dataDir ?? './data', 'agentpool.db'), {
    lockingMode,
    workingSets: true,
    mcpServers: true,
    flags: true,
  });
  return {
    ...opened,
    workingSets: opened.workingSets!,
    mcpServers: opened.mcpServers!,
    flags: opened.flags!,
  };
}

/** The store as readiness names it. */
function storeName(options: AgentPoolOptions): string {
  return typeof options.store === 'object' ? 'store' : (options.store ?? 'sqlite');
}

/** A cluster shares PostgreSQL: Redis next to SQLite or memory would promise what one file cannot. */
function checkRedisStore(options: AgentPoolOptions): void {
  if (options.redisUrl === undefined || typeof options.store === 'object' || options.store === 'postgres')
    return;
  throw validationError(
    'redisUrl',
    `is only used with store 'postgres', not '${options.store ?? 'sqlite'}': the nodes of a cluster share PostgreSQL and Redis`,
  );
}

/** Closes every store, each even when another fails; the first failure is rethrown. */
async function closeStores(stores: Required<Stores>): Promise<void> {
  const outcomes = await Promise.allSettled([
    stores.runs.close(),
    stores.projects.close(),
    stores.agents.close(),
    stores.workingSets.close(),
    stores.mcpServers.close(),
    stores.flags.close(),
  ]);
  const failed = outcomes.find((o) => o.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
}
