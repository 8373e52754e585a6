/**
 * `agentpool serve`: creates the pool from the resolved configuration with the server's logger
 * (JSON lines on stdout, pretty on a terminal), applies the agents file (or the bundled examples
 * into an empty store), prewarms hot agents, serves the HTTP API and says where to go next.
 *
 * On SIGTERM or SIGINT it drains: it keeps listening, `/readyz` answers 503 and new runs are
 * refused with 503 `SHUTTING_DOWN` (so load balancers and clients go elsewhere) while every other
 * request is served; once the runs in flight are done, or `shutdownTimeoutMs` passed and the rest
 * were interrupted, it stops listening, lets the last answers go out and closes the pool.
 *
 * The banner stays human text for the person at the terminal; lifecycle lines (agents applied,
 * listening, draining, stopped) also go through the logger for machines.
 */
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { type AgentPool, createAgentPool } from '../../agent-pool.ts';
import { createLogger, type Logger } from '../../core/logger.ts';
import { DEFAULT_PROJECT, TIERS } from '../../registry/definition.ts';
import { buildServer } from '../../server/app.ts';
import { type AppliedAgent, applyAgentsFile, DEFAULT_AGENTS_FILE } from '../agents-file.ts';
import { formatAppliedServer } from '../mcp-servers-file.ts';
import { loadExplainedServerConfig, type ServerConfig, type ServerFlags } from '../config.ts';
import { effectiveSettingsJson, formatEffectiveSettings } from '../effective-config.ts';
import type { CliIo } from '../io.ts';
import type { ProviderSummary } from '../../models/catalog.ts';
import { formatApplied } from './apply.ts';
import { redactDatabaseUrl } from '../../store/postgres/options.ts';

/** How long requests may still be answered after the listener closed, before connections are cut. */
const CONNECTION_GRACE_MS = 1000;

/** A started server: `stopped` resolves with the exit code once a signal has drained it. */
interface RunningServer {
  config: ServerConfig;
  url: string;
  stopped: Promise<number>;
}

/** Flags of `agentpool serve`: the configuration's, and what to do with it. */
export interface ServeFlags extends ServerFlags {
  /** Print the effective configuration and exit, without opening the store or listening. */
  printConfig?: boolean;
  /** With `printConfig`: as JSON. */
  json?: boolean;
}

/**
 * Runs `agentpool serve` until SIGTERM or SIGINT; resolves with the exit code after draining.
 * A second signal while draining exits at once (runs left in flight are interrupted on restart).
 * With `--print-config`, prints the configuration in force and resolves with 0 at once.
 */
export async function serveCommand(flags: ServeFlags, io: CliIo): Promise<number> {
  if (flags.printConfig === true) {
    const explained = loadExplainedServerConfig(flags, io.env);
    if (flags.json === true) io.out(effectiveSettingsJson(explained, io.env));
    else for (const line of formatEffectiveSettings(explained, io.env)) io.out(line);
    return 0;
  }
  const running = await startServer(flags, io);
  return running.stopped;
}

async function startServer(flags: ServerFlags, io: CliIo): Promise<RunningServer> {
  const { config } = loadExplainedServerConfig(flags, io.env);
  const logger = createLogger({
    level: config.logLevel,
    pretty: process.stdout.isTTY === true,
    colors: (io.env['NO_COLOR'] ?? '') === '',
  });
  const log = logger.child({ component: 'serve' });
  const pool = await createAgentPool({
    store: config.store,
    dataDir: config.dataDir,
    ...(config.databaseUrl !== undefined && { databaseUrl: config.databaseUrl }),
    ...(config.redisUrl !== undefined && { redisUrl: config.redisUrl }),
    ...(config.redisPrefix !== undefined && { redisPrefix: config.redisPrefix }),
    ...(config.postgres !== undefined && { postgres: config.postgres }),
    ...(config.sqlite !== undefined && { sqlite: config.sqlite }),
    cluster: {
      ...config.cluster,
      ...(config.nodeId !== undefined && { nodeId: config.nodeId }),
      address: config.nodeAddress ?? nodeAddress(config),
    },
    logger,
    // Provider variables are read from the same environment the configuration was.
    models: { ...config.models, env: io.env },
    ...(config.pool !== undefined && { pool: config.pool }),
    ...(config.runs !== undefined && { runs: config.runs }),
    ...(config.retention !== undefined && { retention: config.retention }),
    ...(config.tools !== undefined && { tools: config.tools }),
    ...(config.governance !== undefined && { governance: config.governance }),
    ...(config.prices !== undefined && { prices: { prices: config.prices } }),
    ...(config.resilience !== undefined && { resilience: config.resilience }),
    ...(config.flags !== undefined && { flags: config.flags }),
    ...(config.metrics !== undefined && { metrics: config.metrics }),
    ...(config.liveFigures !== undefined && { liveFigures: config.liveFigures }),
    ...(config.agents !== undefined && { agents: config.agents }),
    ...(config.ttlSweepIntervalMs !== undefined && { ttlSweepIntervalMs: config.ttlSweepIntervalMs }),
  });
  let server: FastifyInstance | undefined;
  try {
    if (pool.recoveredRuns > 0) {
      io.out(`recovered: ${pool.recoveredRuns} run(s) left unfinished by the last stop marked interrupted`);
    }
    await applyStartAgents(pool, config, io, log);
    const hot = await pool.prewarmHot();
    if (hot > 0) {
      io.out(`prewarmed ${hot} hot agent(s)`);
      log.info({ agents: hot }, 'prewarmed hot agents');
    }
    server = await buildServer(pool, {
      ...(config.adminKey !== undefined && { adminKey: config.adminKey }),
      ...(config.cors !== undefined && { cors: config.cors }),
      ...(config.metricsToken !== undefined && { metricsToken: config.metricsToken }),
      ...(config.bodyLimit !== undefined && { bodyLimit: config.bodyLimit }),
      ...(config.http !== undefined && { http: config.http }),
    });
    await server.listen({ port: config.port, host: config.host });
  } catch (err) {
    try {
      await server?.close();
    } finally {
      await pool.close();
    }
    throw err;
  }
  const url = baseUrl(config);
  const authenticated = config.adminKey !== undefined || (await pool.projects.hasKeys());
  const providers = pool.models.describeProviders();
  for (const p of providers) {
    if (keyMissing(p)) {
      log.warn(
        { provider: p.name, env: p.keyEnv },
        'the variable a model provider reads its key from is not set: its models fail until it is',
      );
    }
  }
  log.info(
    {
      url,
      mode: pool.cluster.mode,
      node: pool.cluster.nodeId,
      store: config.store,
      ...(config.store === 'sqlite' && { dataDir: resolve(config.dataDir) }),
      authenticated,
      cors: config.cors?.origins ?? null,
      providers: providers.map((p) => p.name),
    },
    'agentpool is listening',
  );
  printNextSteps(io, pool, config, url, await exampleAgent(pool), authenticated, providers);
  return { config, url, stopped: onSignal(server, pool, config, io, log) };
}

/**
 * Applies the configured agents file at every start (it is the declared state). Without one, the
 * bundled examples go only into a store that holds no agent at all, in any project: applying
 * them at every start would undo what was changed through the API.
 */
async function applyStartAgents(
  pool: AgentPool,
  config: ServerConfig,
  io: CliIo,
  log: Logger,
): Promise<AppliedAgent[]> {
  let path = config.agentsFile;
  if (path === undefined) {
    if (!existsSync(DEFAULT_AGENTS_FILE)) return [];
    if (await holdsAnyAgent(pool)) {
      io.out('the store already holds agents: the bundled examples are not applied');
      log.info(
        { file: DEFAULT_AGENTS_FILE },
        'the store already holds agents: the bundled examples are not applied',
      );
      return [];
    }
    path = DEFAULT_AGENTS_FILE;
    io.out(`the store is empty: applying the bundled examples ${path}`);
  } else {
    io.out(`applying ${path}`);
  }
  const applied = await applyAgentsFile(pool, path, {
    onApplied: (agent) => io.out(`  ${formatApplied(agent)}`),
    onServerApplied: (server) => io.out(`  ${formatAppliedServer(server)}`),
  });
  const count = (result: string) => applied.filter((a) => a.result === result).length;
  log.info(
    { file: path, created: count('created'), updated: count('updated'), unchanged: count('unchanged') },
    'agents file applied',
  );
  return applied;
}

/** True when any project holds an agent (every agent has a tier, so one page per tier tells). */
async function holdsAnyAgent(pool: AgentPool): Promise<boolean> {
  for (const tier of TIERS) {
    if ((await pool.agents.listByTier(tier, { limit: 1 })).data.length > 0) return true;
  }
  return false;
}

function baseUrl(config: ServerConfig): string {
  const wildcard = config.host === '0.0.0.0' || config.host === '::';
  const host = wildcard ? 'localhost' : config.host.includes(':') ? `[${config.host}]` : config.host;
  return `http://${host}:${config.port}`;
}

/** The agent the curl example starts: `support` when it exists, else any agent of the project. */
async function exampleAgent(pool: AgentPool): Promise<string | undefined> {
  if ((await pool.agents.find(DEFAULT_PROJECT, 'support')) !== undefined) return 'support';
  return (await pool.agents.list(DEFAULT_PROJECT, { limit: 1 })).data[0]?.name;
}

function printNextSteps(
  io: CliIo,
  pool: AgentPool,
  config: ServerConfig,
  url: string,
  agent: string | undefined,
  authenticated: boolean,
  providers: readonly ProviderSummary[],
): void {
  const where =
    config.store === 'sqlite'
      ? `sqlite in ${resolve(config.dataDir)}`
      : config.store === 'postgres'
        ? `postgres ${redactDatabaseUrl(config.databaseUrl ?? '')}`
        : 'memory (nothing is kept)';
  const curlUrl = url.replace(/^http:\/\//, '');
  io.out('');
  io.out(`agentpool is listening on ${url}   (store: ${where})`);
  io.out(`  mode:      ${describeMode(pool, config)}`);
  io.out(`  API docs:  ${url}/docs`);
  io.out(`  models:    ${providers.map(describeProvider).join(', ')}`);
  if (config.cors !== undefined)
    io.out(`  CORS:      browsers may call from ${config.cors.origins.join(', ')}`);
  if (agent === undefined) {
    io.out('  no agents yet: add some with `agentpool apply -f agents.yaml` or PUT /v1/agents/{name}');
  } else {
    io.out(`  try a run:`);
    io.out(
      `    curl -s ${curlUrl}/v1/agents/${agent}/runs -H 'content-type: application/json'${authenticated ? ` -H 'authorization: Bearer <key>'` : ''} -d '{"input":"what is 17*23"}'`,
    );
  }
  io.out(`  logs:      ${config.logLevel} and above, on stdout (--log-level)`);
  io.out('  stop:      Ctrl-C (or SIGTERM) drains runs in flight, then exits');
  io.out('');
  if (authenticated) {
    io.out('  authentication is on: send Authorization: Bearer <key> (the admin key manages /v1/projects)');
    io.out('');
    return;
  }
  const exposed = config.host !== '127.0.0.1' && config.host !== 'localhost' && config.host !== '::1';
  io.err('!!! WARNING: NO AUTHENTICATION. Single-project development mode: every request acts in');
  io.err(
    `!!! project "${DEFAULT_PROJECT}", and anyone who can reach ${url} can create, change and run agents.`,
  );
  if (exposed) io.err(`!!! --host ${config.host} exposes this beyond the local machine.`);
  io.err('!!! Set AGENTPOOL_ADMIN_KEY (or adminKey in the config file) to require API keys.');
  io.err('');
}

/**
 * One provider for the banner: `openai (OPENAI_API_KEY)`, `vllm → http://gpu-1:8000/v1`. Where its
 * key comes from, never the key; a key named by a variable that is not set is called out.
 */
function describeProvider(p: ProviderSummary): string {
  const where =
    p.kind === 'openai' || p.kind === 'anthropic' || p.baseURL === undefined ? '' : ` → ${p.baseURL}`;
  let key = '';
  if (p.keySet === true) key = p.keyEnv === undefined ? ' (key in config file)' : ` (${p.keyEnv})`;
  else if (keyMissing(p)) key = ` (${p.keyEnv} is not set)`;
  return `${p.name}${where}${key}`;
}

/**
 * A provider told to read its key from a variable that is not set (`apiKeyEnv`). The built-in
 * openai-compatible provider's usual variable is optional: local servers often take no key.
 */
function keyMissing(p: ProviderSummary): boolean {
  return p.keySet === false && p.keyEnv !== undefined && p.name !== 'openai-compatible';
}

/** Resolves with the exit code after the first SIGTERM/SIGINT has drained the server. */
function onSignal(
  server: FastifyInstance,
  pool: AgentPool,
  config: ServerConfig,
  io: CliIo,
  log: Logger,
): Promise<number> {
  return new Promise<number>((done) => {
    let draining = false;
    const handle = (signal: NodeJS.Signals) => {
      if (draining) {
        io.err(`${signal} again: exiting now; runs still in flight end as interrupted on the next start`);
        log.warn({ signal }, 'second signal: exiting without draining');
        process.exit(1);
      }
      draining = true;
      drain(server, pool, config, io, log, signal).then(
        () => done(0),
        (err: unknown) => {
          io.err(`error: shutdown failed: ${err instanceof Error ? err.message : String(err)}`);
          log.error({ err }, 'shutdown failed');
          done(1);
        },
      );
    };
    process.on('SIGTERM', handle);
    process.on('SIGINT', handle);
  });
}

async function drain(
  server: FastifyInstance,
  pool: AgentPool,
  config: ServerConfig,
  io: CliIo,
  log: Logger,
  signal: NodeJS.Signals,
): Promise<void> {
  const inFlight = pool.runs.activeCount;
  const timeoutMs = config.shutdownTimeoutMs;
  io.out(
    `${signal}: draining; ${inFlight} run(s) in flight, waiting up to ${timeoutMs} ms ` +
      '(still serving: /readyz answers 503, new runs 503 SHUTTING_DOWN)',
  );
  log.info({ signal, runsInFlight: inFlight, timeoutMs }, 'draining');
  server.agentpool.drain();
  await pool.cluster.drainQueue(); // background runs waiting in a cluster's queue go to other nodes
  try {
    const timeout = new AbortController();
    await Promise.race([
      pool.runs.idle(),
      sleep(timeoutMs, undefined, { signal: timeout.signal }).catch(() => undefined),
    ]);
    timeout.abort(); // the runs ended first: the timer goes
    // Stops listening now; resolves once the requests in flight have answered.
    const closed = server.close();
    const left = pool.runs.activeCount;
    if (left > 0) {
      io.out(`shutdown timeout: interrupting ${left} run(s)`);
      log.warn({ runs: left, timeoutMs }, 'shutdown timeout: interrupting the runs still in flight');
      await pool.runs.close('the server is shutting down');
    }
    // Interrupted runs answer their requests now; a stream that outlives the grace is cut.
    const lingering = await Promise.race([closed.then(() => false), sleep(CONNECTION_GRACE_MS, true)]);
    if (lingering) server.server.closeAllConnections();
    await closed;
  } finally {
    await pool.close();
  }
  log.info('stopped');
  io.out('stopped');
}

/** The node's mode in words, for the banner: alone, alone on a shared database, or in a cluster. */
function describeMode(pool: AgentPool, config: ServerConfig): string {
  const { mode, nodeId, redis } = pool.cluster;
  if (mode === 'cluster') return `cluster node ${nodeId} (PostgreSQL + Redis ${redis ?? ''})`;
  if (config.store === 'postgres') {
    return `single node ${nodeId} on PostgreSQL (no Redis: a second node needs --redis-url)`;
  }
  return 'single node';
}

/** The address other nodes and operators reach this one at, for GET /v1/cluster. */
function nodeAddress(config: ServerConfig): string {
  const host = config.host === '0.0.0.0' || config.host === '::' ? hostname() : config.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${config.port}`;
}
