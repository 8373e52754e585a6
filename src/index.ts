/**
 * The public API of agentpool. Everything a library user needs is exported here by name.
 */
export { type AgentPool, type AgentPoolEvent, type AgentPoolOptions, createAgentPool } from './agent-pool.ts';
export { referenceCheck } from './reference-check.ts';
export { type Clock, ManualClock, systemClock, type TimerHandle } from './core/clock.ts';
export { AgentPoolError, ERROR_CODES, type ErrorCode, isAgentPoolError } from './core/errors.ts';
export {
  createLogger,
  LOG_LEVELS,
  type Logger,
  type LoggerOptions,
  type LogLevel,
  silentLogger,
} from './core/logger.ts';
export type { HistogramSnapshot } from './core/metrics.ts';
export type { LiveBucket, LiveFigures, LiveWindow, SlowRun } from './live-figures.ts';
export type { LiveFiguresOptions } from './live-figures-options.ts';
export type { RecentRun, RecentRuns } from './recent-runs.ts';
export { type BusEvent, type EventBus, LocalEventBus } from './events/bus.ts';
export {
  type AgentInstance,
  canTransition,
  INSTANCE_STATES,
  type InstanceState,
  type InstanceStatus,
  TRANSITIONS,
} from './pool/instance.ts';
export type { Lease } from './pool/lease.ts';
export type { EvictionPolicy, PolicyName } from './pool/policies/policy.ts';
export {
  type AcquireOptions,
  type InstanceEvent,
  type InstanceInfo,
  InstancePool,
  type PoolStats,
} from './pool/pool.ts';
export { type InstancePoolOptions, resolveInstancePoolOptions } from './pool/pool-options.ts';
export type { PreloadCounts, PreloadOutcome, PreloadSource } from './pool/pool.ts';
export { type PreloadEvent, Preloader, type PreloadStats } from './pool/preload.ts';
export { type PreloadOptions, resolvePreloadOptions } from './pool/preload-options.ts';
export { priorityScore, type PriorityScore } from './pool/priority-score.ts';
export type { AgentRunTotals, AgentUsageRecord, ListUsageQuery, UsageSort } from './store/ports.ts';
export {
  type AgentRecoveryInfo,
  RECOVERY_STRATEGIES,
  Recovery,
  type RecoveryEvent,
  type RecoveryStats,
  type RecoveryStep,
  type RecoveryStepName,
  type RecoveryStrategy,
  recoveryLadder,
} from './pool/recovery.ts';
export {
  type RecoveryOptions,
  type ResolvedRecoveryOptions,
  resolveRecoveryOptions,
} from './pool/recovery-options.ts';
export { COUNTED_RUN_CODES, IGNORED_ACTIVATION_CODES } from './pool/recovery-failures.ts';
export {
  type HealthCheck,
  HealthMonitor,
  type HealthReport,
  type HealthTotals,
  levelOf,
} from './pool/health.ts';
export type { HealthCheckSummary, HealthEvent, HealthStatus } from './pool/health-events.ts';
export {
  type HealthOptions,
  type HealthThresholds,
  type ResolvedHealthOptions,
  type ResolvedHealthThresholds,
  resolveHealthOptions,
} from './pool/health-options.ts';
export type { LoadGate, TimedOutRun } from './pool/load-gate.ts';
export { type HealthReadings, type ProcessReading, processReadings } from './pool/process-readings.ts';
export {
  type AgentSpec,
  type AgentSpecInput,
  type AgentSpecPatch,
  DEFAULT_MODEL,
  DEFAULT_PROJECT,
  parseAgentSpec,
  TIERS,
  type Tier,
} from './registry/definition.ts';
export {
  type Agent,
  type AgentEvent,
  AgentRegistry,
  type AgentRegistryOptions,
  type AgentUsageOptions,
  type AgentVersion,
  type ApplyResult,
  type ListAgentsOptions,
  type ReferenceCheck,
} from './registry/registry.ts';
export { MemoryAgentStore } from './store/memory.ts';
export type {
  AgentChange,
  AgentChangeFeed,
  AgentChangePage,
  AgentRecord,
  AgentStore,
  AgentUse,
  AgentVersionRecord,
  IndexedSpec,
  Page,
} from './store/ports.ts';
export { SqliteAgentStore } from './store/sqlite.ts';
export {
  ModelCatalog,
  type ModelCatalogOptions,
  type ModelProvidersConfig,
  type NamedProviderConfig,
} from './models/catalog.ts';
export { DemoLanguageModel } from './models/demo-model.ts';
export { type Cost, type ModelPrice, PriceTable, type PriceTableOptions } from './models/pricing.ts';
export type { InstanceResources } from './pool/instance.ts';
export { MULTITASK_STRATEGIES, type MultitaskStrategy } from './coordination/thread-gate.ts';
export type { RunHandle, StartRunOptions } from './run/runs.ts';
export { type ResolvedRunOptions, type RunOptions, resolveRunOptions } from './run/run-options.ts';
export {
  Retention,
  type RetentionStats,
  type RetentionSweep,
  type RetentionSweptEvent,
} from './run/retention.ts';
export {
  type ResolvedRetentionOptions,
  type RetentionOptions,
  resolveRetentionOptions,
} from './run/retention-options.ts';
export type { RetainedThreads, RetentionDeleted } from './store/ports.ts';
export { type CallSettings, type ResponseFormat, resolveCallSettings } from './run/call-settings.ts';
export type { ClientTool, ClientToolResult, Turn } from './run/conversation.ts';
export { RunManager } from './run/runs.ts';
export type { RunEvent } from './run/stream.ts';
export { type CreateThreadOptions, Threads } from './run/threads.ts';
export { MemoryRunStore } from './store/memory-runs.ts';
export type {
  MessageRecord,
  MessageRole,
  RunRecord,
  RunStatus,
  RunStore,
  ThreadRecord,
} from './store/ports.ts';
export { SqliteRunStore } from './store/sqlite-runs.ts';
export {
  SqliteDatabase,
  type SqliteDatabaseOptions,
  type SqliteLockingMode,
} from './store/sqlite-connection.ts';
export {
  SQLITE_CHECKPOINT_CHANNEL,
  type SqliteCheckpointMessage,
  type SqliteCheckpointOptions,
} from './store/sqlite-checkpointer.ts';
export {
  openSqliteStores,
  type SqlitePoolOptions,
  type SqliteStores,
  type SqliteStoresOptions,
} from './store/sqlite-stores.ts';
export { type BuiltinToolOptions, BUILTIN_TOOL_NAMES } from './tools/builtins.ts';
export { ToolCatalog, type ToolCatalogOptions, type ToolOrigin } from './tools/catalog.ts';
export {
  DIAGNOSTICS_CHANNELS,
  HOOK_NAMES,
  type HookEvent,
  type HookEvents,
  type HookName,
  type ModelCallEndEvent,
  type ModelCallStartEvent,
  type RunFinishedEvent,
  type RunHooks,
  type ToolCallEndEvent,
  type ToolCallStartEvent,
} from './tools/hooks.ts';
export type { ModuleChange, ModuleVersionStats } from './tools/module-tools.ts';
export type { ToolFigureRow, ToolCounts } from './tools/tool-figures.ts';
export type { ToolListing } from './tools/tool-listing.ts';
export type { ToolReload, ToolWithFigures } from './tool-admin.ts';
export {
  defineTool,
  runTool,
  type Tool,
  type ToolContext,
  type ToolResult,
  type ToolSpec,
} from './tools/tool.ts';
export {
  type BreakerState,
  type ModelCallContext,
  type ModelEvent,
  type ModelGuardStats,
  ModelGuards,
  type ModelStream,
  type ModelStreamReader,
  type PartSink,
  type ModelTarget,
  type UsageExceededCap,
} from './models/resilient-model.ts';
export {
  type BreakerOptions,
  type BulkheadOptions,
  type ModelPolicyOptions,
  type ModelResilienceOptions,
  type RateLimitOptions,
  resolveModelResilienceOptions,
  type RetryOptions,
} from './models/resilience-options.ts';
export { Governance, type ProjectUsage, RunAdmission } from './governance/governance.ts';
export {
  type BudgetLimits,
  type GovernanceOptions,
  parseProjectLimits,
  type ProjectLimits,
  type QuotaLimits,
} from './governance/limits.ts';
export { LocalGovernanceLedger } from './governance/local-ledger.ts';
export type {
  AdmissionQuotas,
  GovernanceLedger,
  HeldWindows,
  LedgerSample,
  ProjectWindows,
  QuotaUse,
  RunHold,
  SpendSource,
  WindowState,
} from './coordination/governance-ledger.ts';
export {
  RedisGovernanceLedger,
  type RedisGovernanceLedgerDeps,
  type RedisGovernanceLedgerOptions,
  resolveRedisGovernanceLedgerOptions,
} from './coordination/redis/governance-ledger.ts';
export type { ModelRateLimit, RateLimiter, RateLimits, RateRefusal } from './coordination/rate-limiter.ts';
export { LocalRateLimiter } from './coordination/local-rate-limiter.ts';
export { RedisRateLimiter, type RedisRateLimiterDeps } from './coordination/redis/rate-limiter.ts';
export {
  connectRedis,
  type RedisConnectionOptions,
  resolveRedisConnection,
} from './coordination/redis/connection.ts';
export type { ClusterView, DependencyState, NodeMode } from './coordination/cluster.ts';
export { type ClusterOptions, resolveClusterOptions } from './coordination/cluster-options.ts';
export type { NodeInfo } from './coordination/membership.ts';
export type { BackgroundJob, BackgroundRequest, RunQueue } from './coordination/run-queue.ts';
export type { RunEventLog } from './coordination/run-event-log.ts';
export type { ThreadLeases } from './coordination/thread-leases.ts';
export { type DutyLock, LocalDutyLock } from './coordination/duty-lock.ts';
export {
  evaluateFlag,
  FeatureFlags,
  FLAG_STRATEGIES,
  type FlagDefinition,
  type FlagInfo,
  type FlagStrategy,
  parseFlagStrategy,
} from './governance/flags.ts';
export {
  type FlagChangedEvent,
  type FlagWriteOptions,
  MAX_FLAGS,
  type RuntimeFlagInfo,
  RuntimeFlags,
} from './governance/runtime-flags.ts';
export type { FlagChange, FlagStore, FlagWrite, StoredFlag } from './store/flag-ports.ts';
export { MemoryFlagStore } from './store/memory-flags.ts';
export { SqliteFlagStore } from './store/sqlite-flags.ts';
export { PostgresFlagStore } from './store/postgres/flag-store.ts';
export { type Rollout, routeVersion } from './registry/registry.ts';
export { type RolloutStatus, Rollouts } from './run/rollouts.ts';
export type { AgentRollout, VersionStats } from './store/ports.ts';
export {
  type DeletedProject,
  type ProjectContents,
  type ProjectDataDeps,
  Projects,
} from './auth/projects.ts';
export type { ProjectRecord, ProjectStore } from './store/project-ports.ts';
export { INPUT_LIMITS, parseMetadata } from './core/input-limits.ts';
export { roundUsd } from './core/money.ts';
export { PAGE_MAX_BYTES } from './store/paging.ts';
export { DEFAULT_REPLAY_BYTES, DEFAULT_REPLAY_EVENTS } from './run/stream.ts';
export type { InterruptOptions, ProjectThreadsDeleted, ProjectWalk } from './store/ports.ts';
export type { MemoryRunStoreOptions } from './store/memory-runs.ts';
export type { Stores } from './agent-pool.ts';
export { PostgresAgentStore } from './store/postgres/agent-store.ts';
export { PostgresRunStore } from './store/postgres/run-store.ts';
export { PostgresProjectStore } from './store/postgres/project-store.ts';
export {
  POSTGRES_QUERY_CHANNEL,
  PostgresDatabase,
  type PostgresQueryMessage,
} from './store/postgres/database.ts';
export { POSTGRES_SCHEMA_VERSION } from './store/postgres/migrations.ts';
export { openPostgresStores, type PostgresStores } from './store/postgres/open.ts';
export {
  type PostgresPoolOptions,
  type PostgresStoreOptions,
  redactDatabaseUrl,
  resolvePostgresOptions,
} from './store/postgres/options.ts';
export {
  type MetricsOptions,
  PoolMetrics,
  resolveMetricsOptions,
  type ResolvedMetricsOptions,
} from './metrics.ts';
export { AgentActivity, type AgentRunFigures, type RunCounts } from './agent-activity.ts';
export type { ProjectPoolStats } from './pool/pool.ts';
// The pool's self-management: working-set checkpoint, autoscaling, tiers (docs/operations.md).
export {
  type CheckpointStats,
  type CheckpointStatus,
  type WarmupReport,
  WorkingSetCheckpointer,
} from './pool/checkpoint.ts';
export { type CheckpointOptions, resolveCheckpointOptions } from './pool/checkpoint-options.ts';
export { Autoscaler, type AutoscalerStats, type ScalingDecision } from './pool/autoscaler.ts';
export { type AutoscalingOptions, resolveAutoscalingOptions } from './pool/autoscaler-options.ts';
export { type TierChange, TierClassifier, type TierStats } from './pool/tiers.ts';
export {
  resolveTierOptions,
  SERVING_TIERS,
  type ServingTier,
  type TierLimits,
  type TierOptions,
} from './pool/tier-options.ts';
export type {
  CheckpointSavedEvent,
  ScaledEvent,
  ScalingEvent,
  TierChangedEvent,
  WarmedEvent,
} from './pool/scaling-events.ts';
export type {
  StoredSketch,
  WorkingSetCheckpoint,
  WorkingSetEntry,
  WorkingSetStore,
} from './store/working-set-ports.ts';
export { MemoryWorkingSetStore } from './store/memory-working-sets.ts';
export { SqliteWorkingSetStore } from './store/sqlite-working-sets.ts';
export { PostgresWorkingSetStore } from './store/postgres/working-set-store.ts';
export { McpServers, type McpToolProvider, MAX_MCP_SERVERS_PER_PROJECT } from './tools/mcp/mcp-servers.ts';
export type { DeclarationWriter } from './tools/mcp/declarations.ts';
export { type McpOptions, type McpStdioPolicy, resolveMcpOptions } from './tools/mcp/mcp-options.ts';
export type { McpEvent, McpServerStats, McpStats } from './tools/mcp/sessions.ts';
export type {
  McpHttpServer,
  McpSecretRef,
  McpServerDeclaration,
  McpServerPut,
  McpServerRecord,
  McpServerStore,
  McpStdioServer,
  McpValue,
} from './store/mcp-server-ports.ts';
export { MemoryMcpServerStore } from './store/memory-mcp-servers.ts';
export { SqliteMcpServerStore } from './store/sqlite-mcp-servers.ts';
export { PostgresMcpServerStore } from './store/postgres/mcp-server-store.ts';
