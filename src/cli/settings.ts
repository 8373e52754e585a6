/**
 * Every operator setting of `agentpool serve`, in one table: its key in the config file, its
 * environment variable and flag when it has them, and what it means. The configuration
 * (`config.ts`) reads flags and variables through it and refuses config-file keys it does not list;
 * `--print-config` lists its rows; `serve --help` lists its variables; `docs/configuration.md` is
 * checked against it by a test. Defaults are not written here: each comes from the option family
 * that owns the setting (`resolveInstancePoolOptions()` and the others), so they cannot drift.
 *
 * Keys are paths of segments; a segment in angle brackets (`<name>`, `<provider/model-id>`) stands
 * for any key of a map the operator names (a provider, a model, a flag).
 */

/** How a flag's or variable's text becomes a value. */
export type SettingText = 'string' | 'int' | 'list';

/** One setting. */
export interface Setting {
  /** Its place in the config file: `['pool', 'maxActive']`. */
  readonly path: readonly string[];
  /** One line: what it does. */
  readonly meaning: string;
  /** The environment variable that sets it (over the config file). */
  readonly env?: string;
  /** The flag of `agentpool serve` that sets it (over the variable). */
  readonly flag?: string;
  /** How the variable's text is read: `int`, `list` (comma-separated) or `string`. @default 'string' */
  readonly text?: SettingText;
  /** A path: relative ones in the config file are taken from the file's directory. */
  readonly isPath?: boolean;
  /** Shown as set or unset, never its value. `values`: an object whose values are hidden, not its keys. */
  readonly secret?: true | 'values';
  /**
   * The variable is read by the option family itself (the model catalog reads `OPENAI_API_KEY`):
   * when it is set, the config file's value is dropped so the variable wins, as for any setting.
   */
  readonly readByFamily?: boolean;
  /** The default in words, where it is not one fixed value (`the working directory`). */
  readonly defaultText?: string;
}

const s = (key: string, meaning: string, more: Omit<Setting, 'path' | 'meaning'> = {}): Setting => ({
  path: key.split('.'),
  meaning,
  ...more,
});

/** A setting under a map: `models.providers.<name>.baseURL` with `<name>` as one segment. */
const m = (
  path: readonly string[],
  meaning: string,
  more: Omit<Setting, 'path' | 'meaning'> = {},
): Setting => ({
  path,
  meaning,
  ...more,
});

const PROVIDER = '<name>';
const MODEL = '<provider/model-id>';

/** Every setting, in the order `--print-config` and the docs list them. */
export const SETTINGS: readonly Setting[] = [
  // agentpool serve
  s('port', 'TCP port to listen on (1..65535)', { env: 'AGENTPOOL_PORT', flag: '--port', text: 'int' }),
  s('host', 'interface to listen on; 0.0.0.0 exposes the server beyond this machine', {
    env: 'AGENTPOOL_HOST',
    flag: '--host',
  }),
  s('dataDir', 'directory of the SQLite file (agentpool.db)', {
    env: 'AGENTPOOL_DATA_DIR',
    flag: '--data-dir',
    isPath: true,
  }),
  s('store', 'where agents, threads and runs live: sqlite, memory or postgres (what a cluster shares)', {
    env: 'AGENTPOOL_STORE',
    flag: '--store',
  }),
  s('databaseUrl', 'PostgreSQL of store postgres: postgres://user:password@host:5432/database', {
    env: 'AGENTPOOL_DATABASE_URL',
    flag: '--database-url',
    secret: true,
    defaultText: 'none (required with store postgres)',
  }),
  s('redisUrl', 'Redis shared by the nodes of a cluster (store postgres): redis://host:6379[/db]', {
    env: 'AGENTPOOL_REDIS_URL',
    flag: '--redis-url',
    secret: true,
    defaultText: 'none: a single node',
  }),
  s('redisPrefix', 'prefix of every Redis key and channel, so two clusters can share one Redis', {
    env: 'AGENTPOOL_REDIS_PREFIX',
    flag: '--redis-prefix',
    defaultText: '"agentpool:"',
  }),
  s('nodeId', "this node's id in the cluster (letters, digits, - and _)", {
    env: 'AGENTPOOL_NODE_ID',
    flag: '--node-id',
    defaultText: 'node_ and random hex, new at each start',
  }),
  s('nodeAddress', 'the URL other nodes and operators reach this node at, listed by GET /v1/cluster', {
    env: 'AGENTPOOL_NODE_ADDRESS',
    defaultText: 'http://<host>:<port> (the machine name when host is 0.0.0.0)',
  }),
  s('agentsFile', 'YAML or JSON agents file applied at every start', {
    env: 'AGENTPOOL_AGENTS_FILE',
    flag: '--agents-file',
    isPath: true,
    defaultText: 'none: the bundled examples, into an empty store only',
  }),
  s('shutdownTimeoutMs', 'how long shutdown waits for runs in flight before interrupting them (ms)', {
    env: 'AGENTPOOL_SHUTDOWN_TIMEOUT_MS',
    flag: '--shutdown-timeout-ms',
    text: 'int',
  }),
  s('logLevel', 'least severe log level written: fatal, error, warn, info, debug, trace, silent', {
    env: 'AGENTPOOL_LOG_LEVEL',
    flag: '--log-level',
  }),
  s('adminKey', 'admin key (≥ 16 characters): manages projects and keys, turns authentication on', {
    env: 'AGENTPOOL_ADMIN_KEY',
    secret: true,
    defaultText: 'none: development mode until a key exists',
  }),
  s('metricsToken', 'token (≥ 16 characters) that reads /metrics and nothing else', {
    env: 'AGENTPOOL_METRICS_TOKEN',
    secret: true,
    defaultText: 'none',
  }),
  // the HTTP server
  s('bodyLimit', 'largest request body accepted, in bytes (413 beyond)', {
    env: 'AGENTPOOL_BODY_LIMIT',
    text: 'int',
  }),
  s('cors.origins', 'browser origins allowed to call the API ("*": any); the variable is comma-separated', {
    env: 'AGENTPOOL_CORS_ORIGINS',
    text: 'list',
    defaultText: 'none: CORS off',
  }),
  s('http.requestTimeoutMs', 'longest time to receive one whole request, headers and body (ms; 408 beyond)'),
  s('http.headersTimeoutMs', "longest time to receive a request's headers (ms); at most requestTimeoutMs"),
  s('http.keepAliveTimeoutMs', 'how long an idle keep-alive connection stays open (ms)'),
  s('http.maxConnections', 'open connections at most (0: no limit)'),
  s(
    'http.maxConnectionsPerIp',
    'open connections per client address at most (0: no limit); raise it behind a proxy',
    {
      env: 'AGENTPOOL_MAX_CONNECTIONS_PER_IP',
      text: 'int',
    },
  ),
  s('http.maxJsonDepth', 'how deep a JSON body may nest'),
  // the pool of instances
  s('pool.maxActive', 'live instances at most (resident, one-shot and activating)', {
    env: 'AGENTPOOL_MAX_ACTIVE',
    text: 'int',
  }),
  s('pool.maxBytes', 'estimated bytes of resident instances at most', {
    env: 'AGENTPOOL_MAX_BYTES',
    text: 'int',
  }),
  s('pool.policy', 'eviction policy: tinylfu or lru', { env: 'AGENTPOOL_POOL_POLICY' }),
  s('pool.acquireTimeoutMs', 'how long an acquire waits for room when every instance is busy (ms)', {
    env: 'AGENTPOOL_ACQUIRE_TIMEOUT_MS',
    text: 'int',
  }),
  s('pool.maxWaiting', 'acquirers waiting at once; beyond, POOL_SATURATED'),
  s('pool.maxIdleMs', 'a ready instance unused this long is deactivated (ms; 0: never)', {
    env: 'AGENTPOOL_MAX_IDLE_MS',
    text: 'int',
  }),
  s('pool.idleSweepIntervalMs', 'how often idle instances are looked for (ms)', {
    defaultText: 'maxIdleMs / 4, within 1000 … 60000',
  }),
  // failure recovery (docs/operations.md, "Failure recovery")
  s('pool.recovery.enabled', 'count agents’ own failures and take recovery steps'),
  s(
    'pool.recovery.maxFailuresPerHour',
    'failures within the window that take the first step (restart); each further one the next',
  ),
  s('pool.recovery.windowMs', 'the sliding window failures are counted over (ms)'),
  s(
    'pool.recovery.cooldownMs',
    'how long a degraded agent refuses its runs before it is tried again (ms; 0: until a reset)',
  ),
  s('pool.recovery.historySize', "steps kept in each agent's record of recovery"),
  s('pool.recovery.maxTrackedAgents', 'agents whose failures and record are kept at most'),
  s('pool.recovery.sweepIntervalMs', 'how often cooldowns are ended and old failures dropped (ms)'),
  s('pool.preload.enabled', 'preloading idle capacity and prefetching followers at all'),
  s(
    'pool.preload.threshold',
    'an inactive agent is preloaded only with a priority score (0..1) at least this high',
  ),
  s('pool.preload.intervalMs', 'how often idle capacity is filled by score (ms; 0: never)'),
  s('pool.preload.candidates', 'most-used agents read from the store as candidates per fill'),
  s('pool.preload.maxPerInterval', 'agents preloaded at most per fill'),
  s('pool.preload.reserve', 'places left free for requests: a fill uses maxActive − live − reserve'),
  s('pool.preload.recencyHalfLifeMs', 'half-life of the recency term of the score (ms)'),
  s('pool.preload.prefetch', 'learn which agent follows which on a thread and prefetch it'),
  s(
    'pool.preload.followWindowMs',
    "B follows A when its run on the thread starts within this long after A's ended (ms)",
  ),
  s('pool.preload.minFollows', 'follows of A by B (after decay) before B is prefetched'),
  s('pool.preload.minConfidence', "B's share of what followed A before B is prefetched (0..1)"),
  s('pool.preload.decayIntervalMs', 'how often every follow count is halved (ms)'),
  s('pool.preload.maxTrackedAgents', 'agents whose followers are tracked at most'),
  s('pool.preload.maxFollowers', 'followers tracked per agent at most'),
  s('pool.preload.maxThreads', 'threads whose last agent is remembered at most'),
  s(
    'pool.preload.retryAfterMs',
    'after a prefetch of an agent was skipped or failed, none is tried for it for this long (ms)',
  ),
  // the health monitor (docs/operations.md, "Health monitor")
  s(
    'pool.health.enabled',
    'run the health monitor: timeouts, stuck instances, process checks, load shedding',
  ),
  s('pool.health.intervalMs', 'how often the health check runs (ms); timeouts are enforced this finely'),
  s(
    'pool.health.activationTimeoutMs',
    'an activation working longer fails with ACTIVATION_TIMEOUT (ms; 0: never)',
  ),
  s(
    'pool.health.stuckAfterMs',
    'a busy instance whose leases have not moved this long is reported stuck (ms; 0: never)',
  ),
  s(
    'pool.health.memoryLimitBytes',
    "memory the process may use: RSS is measured against it, the heap against it or V8's limit",
    {
      env: 'AGENTPOOL_MEMORY_LIMIT_BYTES',
      text: 'int',
      defaultText: "the container's memory limit, else the machine's memory",
    },
  ),
  s(
    'pool.health.eventLoopDelayMs.degraded',
    'p99 event-loop delay (ms) at which the node is degraded (0: off)',
  ),
  s(
    'pool.health.eventLoopDelayMs.overloaded',
    'p99 event-loop delay (ms) at which new runs are refused (0: off)',
  ),
  s(
    'pool.health.eventLoopUtilization.degraded',
    'event-loop utilisation (0..1) at which the node is degraded (0: off)',
  ),
  s(
    'pool.health.eventLoopUtilization.overloaded',
    'event-loop utilisation (0..1) at which new runs are refused (0: off)',
  ),
  s(
    'pool.health.heapRatio.degraded',
    'heap used / heap limit at which the node is degraded and the cache shrinks (0: off)',
  ),
  s('pool.health.heapRatio.overloaded', 'heap used / heap limit at which new runs are refused (0: off)'),
  s(
    'pool.health.rssRatio.degraded',
    'RSS / memoryLimitBytes at which the node is degraded and the cache shrinks (0: off)',
  ),
  s('pool.health.rssRatio.overloaded', 'RSS / memoryLimitBytes at which new runs are refused (0: off)'),
  s('pool.health.cpuRatio.degraded', 'CPU used / (time × cores) at which the node is degraded (0: off)'),
  s('pool.health.cpuRatio.overloaded', 'CPU used / (time × cores) at which new runs are refused (0: off)'),
  s(
    'pool.health.shrinkFraction',
    'share of idle, unpinned, not-hot instances evicted per check under memory pressure',
  ),
  s('pool.health.retryAfterSeconds', 'Retry-After of an OVERLOADED refusal (s)', {
    defaultText: 'intervalMs / 1000, rounded up',
  }),
  s('pool.checkpoint.enabled', 'save the working set to the store and prewarm it at start'),
  s('pool.checkpoint.intervalMs', 'how often the working set is saved (ms; and at shutdown)'),
  s(
    'pool.checkpoint.warmupCount',
    'agents of the last checkpoint prewarmed at start, most valuable first (0: none)',
  ),
  s('pool.checkpoint.warmupTimeoutMs', 'longest the prewarm holds /readyz back (ms); it goes on after'),
  s('pool.checkpoint.warmupConcurrency', 'activations at once while prewarming'),
  s('pool.autoscaling.enabled', 'let the autoscaler move the capacity with load and memory'),
  s('pool.autoscaling.minActive', 'capacity at least', { defaultText: 'ceil(pool.maxActive / 4)' }),
  s('pool.autoscaling.maxActive', 'capacity at most', { defaultText: '4 × pool.maxActive' }),
  s('pool.autoscaling.scaleUpThreshold', 'grow when busy / capacity reaches this'),
  s(
    'pool.autoscaling.scaleDownThreshold',
    'shrink when busy / capacity is at most this (nobody waiting, no evictions)',
  ),
  s(
    'pool.autoscaling.cooldownMs',
    'after a change, how long before shrinking (and after a shrink, before growing) (ms)',
  ),
  s('pool.autoscaling.intervalMs', 'how often load and memory are read (ms)'),
  s('pool.autoscaling.stepRatio', 'share of the capacity one decision adds or removes'),
  s('pool.autoscaling.memoryLimitBytes', 'heap the pool may grow into (0: 80% of the V8 heap limit)'),
  s('pool.autoscaling.slowActivationMs', 'evictions while activations take this long (ms) ask for more room'),
  s('pool.tiers.classify', 'classify auto agents hot, warm or cold from their traffic'),
  s('pool.tiers.intervalMs', 'how often auto agents are re-classified (ms)'),
  s('pool.tiers.maxHot', 'auto agents made hot (pinned, prewarmed) at most'),
  s('pool.tiers.hotMinScore', 'score from which an auto agent becomes hot (hot until below half of it)'),
  s('pool.tiers.coldMaxScore', 'score below which an auto agent becomes cold (cold until twice it)'),
  s('pool.tiers.decay', 'share of a score kept from one interval to the next'),
  s('pool.tiers.maxTracked', 'auto agents whose scores are tracked at most'),
  s('pool.tiers.limits.hot.maxInstances', 'live hot instances at most (0: no limit); beyond, TIER_SATURATED'),
  s(
    'pool.tiers.limits.hot.maxConcurrentRuns',
    'runs at once on hot instances at most (0: no limit); beyond, TIER_SATURATED',
  ),
  s(
    'pool.tiers.limits.warm.maxInstances',
    'live warm instances at most (0: no limit); beyond, TIER_SATURATED',
  ),
  s(
    'pool.tiers.limits.warm.maxConcurrentRuns',
    'runs at once on warm instances at most (0: no limit); beyond, TIER_SATURATED',
  ),
  s(
    'pool.tiers.limits.cold.maxInstances',
    'live cold instances at most (0: no limit); beyond, TIER_SATURATED',
  ),
  s(
    'pool.tiers.limits.cold.maxConcurrentRuns',
    'runs at once on cold instances at most (0: no limit); beyond, TIER_SATURATED',
  ),
  // runs and threads
  s('runs.historyLimit', 'thread messages sent to the model at most'),
  s('runs.maxQueuePerThread', 'runs waiting on one thread at most (enqueue, interrupt)'),
  s('runs.recentStreams', 'finished runs whose events stay replayable in memory'),
  s('runs.recentStreamsBytes', 'approximate bytes of the events those finished runs hold in all'),
  s('runs.replayEvents', 'events of one run kept for replay (Last-Event-ID)'),
  s('runs.replayBytes', "approximate bytes of one run's events kept for replay"),
  s('runs.cachedThreads', 'threads whose recent messages stay cached in memory'),
  s('ttlSweepIntervalMs', 'how often ephemeral agents and threads past their ttl are deleted (ms; 0: never)'),
  // retention
  s(
    'retention.days',
    "runs and threads idle longer than this many days are deleted (0: kept); a project's limits.retention.days wins",
    { env: 'AGENTPOOL_RETENTION_DAYS', text: 'int' },
  ),
  s('retention.batchSize', 'threads examined (and stateless runs deleted) per batch of the retention sweep'),
  s('retention.intervalMs', 'how often the retention sweep starts (ms; 0: never)'),
  // tools
  s('tools.baseDir', 'directory module: tool paths are resolved against', {
    env: 'AGENTPOOL_TOOLS_BASE_DIR',
    isPath: true,
    defaultText: 'the working directory',
  }),
  s('tools.allowOutsideBaseDir', 'whether module: paths may resolve outside baseDir'),
  s('tools.maxModules', 'tool modules kept loaded'),
  s(
    'tools.reload',
    'whether a tool or hook module whose file changed is imported again at its next activation',
  ),
  s('tools.maxModuleVersions', 'distinct contents of one module file imported over the process life'),
  s('tools.maxReloads', 'imports of changed module files over the process life'),
  s('tools.defaultTimeoutMs', 'timeout of one tool call (ms)'),
  s(
    'tools.builtins.fetchAllowlist',
    'hosts fetch_url may reach (api.example.com, *.example.com); the variable is comma-separated',
    {
      env: 'AGENTPOOL_FETCH_ALLOWLIST',
      text: 'list',
    },
  ),
  s('tools.builtins.fetchTimeoutMs', 'how long one fetch_url call may take (ms)'),
  s('tools.builtins.fetchMaxBytes', 'response bytes fetch_url keeps'),
  s('tools.builtins.fetchMaxRedirects', 'redirects fetch_url follows, each checked against the allowlist'),
  s('tools.mcp.idleTimeoutMs', 'an MCP session unused this long is closed (ms)'),
  s('tools.mcp.listTtlMs', "age of an MCP server's cached tool list before a background refresh (ms)"),
  s('tools.mcp.callTimeoutMs', "timeout of one MCP tool call unless the server's declaration gives one (ms)"),
  s('tools.mcp.connectTimeoutMs', 'timeout of opening an MCP session and of listing its tools (ms)'),
  s('tools.mcp.breakerThreshold', "consecutive failures that open an MCP server's breaker"),
  s(
    'tools.mcp.backoffInitialMs',
    'first wait before a server whose breaker opened is tried again (ms; doubles, jittered)',
  ),
  s('tools.mcp.backoffMaxMs', 'longest such wait (ms)'),
  s('tools.mcp.maxSessions', 'MCP sessions (server and identity) kept at most'),
  s('tools.mcp.allowStdio', 'who may declare stdio MCP servers: admin, all (project keys too) or none'),
  s(
    'tools.mcp.projectEnvPrefix',
    'prefix of the environment variables a project key may reference in a declaration',
  ),
  // model providers
  s('models.maxCachedModels', 'resolved models kept (least recently resolved dropped)'),
  m(['models', 'providers', 'openai', 'apiKey'], 'OpenAI API key', {
    env: 'OPENAI_API_KEY',
    secret: true,
    defaultText: 'none',
    readByFamily: true,
  }),
  m(['models', 'providers', 'openai', 'apiKeyEnv'], 'the variable the OpenAI key is read from, instead'),
  m(['models', 'providers', 'openai', 'baseURL'], 'OpenAI API base URL', {
    env: 'OPENAI_BASE_URL',
    readByFamily: true,
  }),
  m(['models', 'providers', 'anthropic', 'apiKey'], 'Anthropic API key', {
    env: 'ANTHROPIC_API_KEY',
    secret: true,
    defaultText: 'none',
    readByFamily: true,
  }),
  m(
    ['models', 'providers', 'anthropic', 'apiKeyEnv'],
    'the variable the Anthropic key is read from, instead',
  ),
  m(['models', 'providers', 'anthropic', 'baseURL'], 'Anthropic API base URL', {
    env: 'ANTHROPIC_BASE_URL',
    readByFamily: true,
  }),
  m(
    ['models', 'providers', 'openai-compatible', 'baseURL'],
    'base URL of the openai-compatible/… server (…/v1)',
    {
      env: 'AGENTPOOL_OPENAI_COMPATIBLE_BASE_URL',
      readByFamily: true,
      defaultText: 'none: not configured',
    },
  ),
  m(['models', 'providers', 'openai-compatible', 'apiKey'], 'its API key (local servers often need none)', {
    env: 'AGENTPOOL_OPENAI_COMPATIBLE_API_KEY',
    secret: true,
    defaultText: 'none',
    readByFamily: true,
  }),
  m(['models', 'providers', 'openai-compatible', 'apiKeyEnv'], 'the variable its key is read from, instead'),
  m(['models', 'providers', 'openai-compatible', 'name'], 'provider name its models report'),
  m(['models', 'providers', 'openai-compatible', 'headers'], 'extra headers sent with every request', {
    secret: 'values',
  }),
  m(
    ['models', 'providers', 'openai-compatible', 'structuredOutputs'],
    'send json_schema response formats as json_schema (false: json_object)',
  ),
  m(['models', 'providers', PROVIDER, 'kind'], 'one more server, used as <name>/<model-id>: what it speaks', {
    defaultText: '"openai-compatible"',
  }),
  m(['models', 'providers', PROVIDER, 'baseURL'], 'its base URL (…/v1); required', {
    defaultText: 'required',
  }),
  m(['models', 'providers', PROVIDER, 'apiKey'], 'its API key', { secret: true, defaultText: 'none' }),
  m(
    ['models', 'providers', PROVIDER, 'apiKeyEnv'],
    'the variable its key is read from (keeps it out of the file)',
    {
      defaultText: 'none',
    },
  ),
  m(['models', 'providers', PROVIDER, 'headers'], 'extra headers sent with every request', {
    secret: 'values',
    defaultText: '{}',
  }),
  m(
    ['models', 'providers', PROVIDER, 'structuredOutputs'],
    'send json_schema response formats as json_schema (false: json_object)',
    {
      defaultText: 'true',
    },
  ),
  // resilience around model calls
  s('resilience.timeoutMs', 'per attempt, until the first streamed part arrives (ms)', {
    env: 'AGENTPOOL_MODEL_TIMEOUT_MS',
    text: 'int',
  }),
  s('resilience.retry.maxAttempts', 'attempts in all, the first included (1: no retries)'),
  s('resilience.retry.initialDelayMs', 'backoff before the first retry (ms), doubling with jitter'),
  s('resilience.retry.maxDelayMs', 'longest backoff between attempts (ms)'),
  s('resilience.retry.maxRetryAfterMs', 'a longer Retry-After is not waited for (ms)'),
  s('resilience.breaker.strategy', 'consecutive or sampled'),
  s('resilience.breaker.threshold', 'consecutive failures that open the breaker'),
  s('resilience.breaker.failureRatio', 'sampled: share of failed calls (0..1) that opens it'),
  s('resilience.breaker.minimumCalls', 'sampled: calls in the window before the ratio counts'),
  s('resilience.breaker.windowMs', 'sampled: the window calls are counted over (ms)'),
  s('resilience.breaker.halfOpenAfterMs', 'how long it stays open before one trial call (ms)'),
  s('resilience.bulkhead.maxConcurrent', 'calls to one model in flight at once'),
  s('resilience.bulkhead.maxQueue', 'calls waiting for a slot, all projects'),
  s('resilience.bulkhead.maxQueuePerProject', 'calls of one project waiting for a slot', {
    defaultText: 'maxQueue',
  }),
  s('resilience.rateLimit.requestsPerMinute', 'requests per minute to one provider model', {
    defaultText: 'unlimited',
  }),
  s('resilience.rateLimit.tokensPerMinute', 'tokens per minute to one provider model', {
    defaultText: 'unlimited',
  }),
  m(['resilience', 'models', MODEL], 'overrides of the fields above for one model, field by field', {
    defaultText: 'none',
  }),
  // prices
  m(
    ['prices', MODEL],
    'USD per million tokens { inputPerMillion, outputPerMillion }; provider/* prices a whole provider',
    {
      defaultText: 'the built-in table',
    },
  ),
  // governance
  s('governance.defaults.quotas.maxAgents', 'agents per project', { defaultText: 'unlimited' }),
  s('governance.defaults.quotas.maxConcurrentRuns', 'runs in flight per project', {
    defaultText: 'unlimited',
  }),
  s('governance.defaults.quotas.runsPerMinute', 'runs started per minute per project', {
    defaultText: 'unlimited',
  }),
  s('governance.defaults.quotas.tokensPerMinute', 'model tokens per minute per project', {
    defaultText: 'unlimited',
  }),
  s('governance.defaults.budgets.dailyUsd', 'USD per project per UTC day', { defaultText: 'unlimited' }),
  s('governance.defaults.budgets.monthlyUsd', 'USD per project per UTC month', { defaultText: 'unlimited' }),
  s('governance.defaults.budgets.perRunUsd', 'USD per run', { defaultText: 'unlimited' }),
  s(
    'governance.defaults.tiers.default',
    "tier of every project's auto agents (hot, warm or cold) instead of classifying them",
    {
      defaultText: 'none (classified)',
    },
  ),
  s(
    'governance.defaultMaxTokens',
    'output tokens a budgeted call may produce when its agent sets no maxTokens',
  ),
  s('governance.limitsCacheMs', "how long a project's limits are cached (ms)"),
  // flags, metrics, definitions
  m(['flags', '<name>'], 'a feature flag: { strategy, … } (docs/governance.md)', { defaultText: 'none' }),
  s(
    'metrics.maxAgentSeries',
    'agents with Prometheus series of their own; the rest are summed in agent="(other)"',
  ),
  s('metrics.maxTrackedAgents', 'agents whose figures the stats API keeps'),
  s('liveFigures.bucketMs', 'width of one bucket of the live figures (dashboard, agentpool top) (ms)'),
  s('liveFigures.buckets', 'buckets of live figures kept: the window is bucketMs × buckets'),
  s('liveFigures.maxProjects', 'projects with live run figures of their own per bucket'),
  s('liveFigures.slowestRuns', 'slowest runs the live view lists'),
  s('liveFigures.recentRuns', "runs kept per agent for the dashboard's drill-down"),
  s('liveFigures.recentAgents', 'agents whose recent runs are kept'),
  s('agents.lastUsedFlushIntervalMs', "how often agents' lastUsedAt is written (ms)"),
  s('agents.maxPendingUses', 'agents whose last use is held in memory before a write'),
  // The SQLite file
  s(
    'sqlite.lockingMode',
    'exclusive: this server alone opens its SQLite file (faster commits; other processes, e.g. agentpool apply, are refused while it serves)',
  ),
  // PostgreSQL and the cluster
  s('postgres.schema', "the PostgreSQL schema of agentpool's tables, created if missing"),
  s('postgres.maxConnections', "connections of the node's pool (the change feed's listener takes one more)"),
  s('postgres.connectTimeoutMs', 'how long opening a connection may take before STORE_UNAVAILABLE (ms)'),
  s(
    'postgres.acquireTimeoutMs',
    'how long a statement waits for a free connection before STORE_UNAVAILABLE (ms)',
  ),
  s('postgres.statementTimeoutMs', 'the server cancels a longer statement (ms)'),
  s('postgres.idleTimeoutMs', 'an idle connection is closed after this long (ms)'),
  s('postgres.changeHistory', 'definition writes a deletion stays in the change feed'),
  s(
    'cluster.redisCommandTimeoutMs',
    'a Redis command failing later answers 503 COORDINATION_UNAVAILABLE (ms)',
  ),
  s('cluster.backgroundConcurrency', 'background runs this node executes at once'),
  s('cluster.changePollMs', 'how often the node reads the change feed of definitions (ms)'),
  s(
    'cluster.ledger.holdTtlMs',
    "how long a run's quota place and budget reservations outlive their node's last renewal (ms)",
  ),
  s('cluster.ledger.renewIntervalMs', "how often a node renews its runs' holds (ms)"),
  s('cluster.threadLeases.leaseTtlMs', "how long a thread lease outlives its node's last renewal (ms)"),
  s('cluster.threadLeases.renewIntervalMs', 'how often a node renews its thread leases (ms)'),
  s('cluster.threadLeases.pollMs', 'how often a run waiting for a thread looks again (ms)'),
  s('cluster.threadLeases.maxQueue', 'runs waiting on one thread at most, cluster-wide', {
    defaultText: 'runs.maxQueuePerThread',
  }),
  s('cluster.eventLog.maxEvents', 'events of a run kept in Redis for streams that resume on another node'),
  s('cluster.eventLog.maxAgeMs', "how long a run's events stay in Redis after its last one (ms)"),
  s('cluster.eventLog.pollMs', 'how often a follower on another node looks for new events (ms)'),
  s('cluster.eventLog.maxPending', 'events held in memory while Redis cannot be reached'),
  s('cluster.membership.heartbeatMs', 'how often a node heartbeats (ms)'),
  s('cluster.membership.deadAfterMs', 'a node silent this long is taken for dead and swept (ms)'),
  s('cluster.membership.sweepIntervalMs', 'how often nodes look for dead ones (ms)'),
  s(
    'cluster.queue.lockDurationMs',
    "a background job's lock; a dead node's jobs are taken again after it (ms)",
  ),
  s('cluster.queue.stalledIntervalMs', 'how often nodes look for jobs whose lock expired (ms)'),
  s('cluster.queue.maxStalledCount', 'takeovers of one job before it is given up'),
];

/** A placeholder segment (`<name>`) matches any key. */
export function isPlaceholder(segment: string): boolean {
  return segment.startsWith('<') && segment.endsWith('>');
}

/** The keys a config file may hold at its top level, in table order. */
export const CONFIG_FILE_KEYS: readonly string[] = [
  ...new Set(SETTINGS.map((setting) => setting.path[0] as string)),
];

/** Settings whose key matches `path` from its start (fixed segments before placeholders). */
function matching(path: readonly string[]): Setting[] {
  let candidates = [...SETTINGS];
  path.forEach((segment, i) => {
    const longer = candidates.filter((c) => c.path.length > i);
    const fixed = longer.filter((c) => c.path[i] === segment);
    candidates = fixed.length > 0 ? fixed : longer.filter((c) => isPlaceholder(c.path[i] as string));
  });
  return candidates;
}

/** What the config file may hold at `path`: a setting (a value), a group of settings (an object), or nothing. */
export type SettingNode =
  { kind: 'setting'; setting: Setting } | { kind: 'group'; keys: readonly string[] } | { kind: 'unknown' };

/** Looks `path` up in the table. */
export function settingAt(path: readonly string[]): SettingNode {
  const found = matching(path);
  const exact = found.find((setting) => setting.path.length === path.length);
  if (exact !== undefined) return { kind: 'setting', setting: exact };
  if (found.length === 0) return { kind: 'unknown' };
  return { kind: 'group', keys: [...new Set(found.map((setting) => setting.path[path.length] as string))] };
}

/** A path as messages and `--print-config` show it: `pool.maxActive`, `resilience.models["openai/gpt-4o"]`. */
export function formatPath(path: readonly (string | number)[]): string {
  return path
    .map((segment, i) => {
      if (typeof segment === 'number') return `[${segment}]`;
      if (/^[A-Za-z_$<][\w$<>-]*$/.test(segment) || isPlaceholder(segment))
        return i === 0 ? segment : `.${segment}`;
      return `[${JSON.stringify(segment)}]`;
    })
    .join('');
}

/** Splits a field as option families name it (`prices["openai/x"].inputPerMillion`, `cors.origins[1]`). */
export function parsePath(field: string): (string | number)[] {
  const out: (string | number)[] = [];
  const re = /\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]|\.?([^.[\]]+)/g;
  for (const match of field.matchAll(re)) {
    if (match[1] !== undefined) out.push(Number(match[1]));
    else if (match[2] !== undefined) out.push(JSON.parse(`"${match[2]}"`) as string);
    else if (match[3] !== undefined) out.push(match[3]);
  }
  return out;
}

/** The settings a flag or an environment variable sets. */
export const SETTINGS_WITH_ENV: readonly Setting[] = SETTINGS.filter((setting) => setting.env !== undefined);

/** The environment variable naming the config file (the `--config` flag wins over it). */
export const CONFIG_ENV = 'AGENTPOOL_CONFIG';

/** The defaults of the settings of `agentpool serve` itself (the families own theirs). */
export const SERVE_DEFAULTS = Object.freeze({
  port: 8787,
  host: '127.0.0.1',
  dataDir: './data',
  store: 'sqlite' as 'sqlite' | 'memory' | 'postgres',
  shutdownTimeoutMs: 10_000,
  logLevel: 'info' as 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent',
});

/**
 * Whether `key` under `parent` is a key the table names itself (`openai` under
 * `models.providers`), rather than one a placeholder stands for (`vllm`).
 */
export function isFixedKey(parent: readonly string[], key: string): boolean {
  return SETTINGS.some(
    (setting) =>
      setting.path.length > parent.length &&
      setting.path[parent.length] === key &&
      parent.every((segment, i) => setting.path[i] === segment || isPlaceholder(setting.path[i] as string)),
  );
}
