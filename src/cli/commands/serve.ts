/**
 * `agentpool serve`: creates the pool from the resolved configuration, applies the agents file,
 * prewarms hot agents, serves the HTTP API and says where to go next. On SIGTERM or SIGINT it
 * drains: marks itself not ready, stops accepting connections, lets runs in flight finish up to
 * `shutdownTimeoutMs`, then closes the pool (interrupting the rest and closing the store).
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { type AgentPool, createAgentPool } from '../../agent-pool.ts';
import { DEFAULT_PROJECT } from '../../registry/definition.ts';
import { buildServer } from '../../server/app.ts';
import { type AppliedAgent, applyAgentsFile, DEFAULT_AGENTS_FILE } from '../agents-file.ts';
import { loadServerConfig, type ServerConfig, type ServerFlags } from '../config.ts';
import type { CliIo } from '../io.ts';
import { formatApplied } from './apply.ts';

/** How long closed-but-busy connections may linger after the pool closed. */
const CONNECTION_GRACE_MS = 1000;

/** A started server: `stopped` resolves with the exit code once a signal has drained it. */
interface RunningServer {
  config: ServerConfig;
  url: string;
  stopped: Promise<number>;
}

/**
 * Runs `agentpool serve` until SIGTERM or SIGINT; resolves with the exit code after draining.
 * A second signal while draining exits at once (runs left in flight are interrupted on restart).
 */
export async function serveCommand(flags: ServerFlags, io: CliIo): Promise<number> {
  const running = await startServer(flags, io);
  return running.stopped;
}

async function startServer(flags: ServerFlags, io: CliIo): Promise<RunningServer> {
  const config = loadServerConfig(flags, io.env);
  const pool = await createAgentPool({
    store: config.store,
    dataDir: config.dataDir,
    ...(config.governance !== undefined && { governance: config.governance }),
    ...(config.prices !== undefined && { prices: { prices: config.prices } }),
    ...(config.resilience !== undefined && { resilience: config.resilience }),
  });
  let server: FastifyInstance | undefined;
  try {
    if (pool.recoveredRuns > 0) {
      io.out(`recovered: ${pool.recoveredRuns} run(s) left unfinished by the last stop marked interrupted`);
    }
    await applyStartAgents(pool, config, io);
    const hot = await pool.prewarmHot();
    if (hot > 0) io.out(`prewarmed ${hot} hot agent(s)`);
    server = await buildServer(pool, {
      ...(config.adminKey !== undefined && { adminKey: config.adminKey }),
      ...(config.metricsToken !== undefined && { metricsToken: config.metricsToken }),
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
  printNextSteps(io, config, url, await exampleAgent(pool), authenticated);
  return { config, url, stopped: onSignal(server, pool, config, io) };
}

/** Applies the configured agents file, or the bundled examples when none is configured. */
async function applyStartAgents(pool: AgentPool, config: ServerConfig, io: CliIo): Promise<AppliedAgent[]> {
  const path = config.agentsFile ?? (existsSync(DEFAULT_AGENTS_FILE) ? DEFAULT_AGENTS_FILE : undefined);
  if (path === undefined) return [];
  io.out(`applying ${path}`);
  return applyAgentsFile(pool, path, { onApplied: (applied) => io.out(`  ${formatApplied(applied)}`) });
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
  config: ServerConfig,
  url: string,
  agent: string | undefined,
  authenticated: boolean,
): void {
  const where =
    config.store === 'sqlite' ? `sqlite in ${resolve(config.dataDir)}` : 'memory (nothing is kept)';
  const curlUrl = url.replace(/^http:\/\//, '');
  io.out('');
  io.out(`agentpool is listening on ${url}   (store: ${where})`);
  io.out(`  API docs:  ${url}/docs`);
  if (agent === undefined) {
    io.out('  no agents yet: add some with `agentpool apply -f agents.yaml` or PUT /v1/agents/{name}');
  } else {
    io.out(`  try a run:`);
    io.out(
      `    curl -s ${curlUrl}/v1/agents/${agent}/runs -H 'content-type: application/json'${authenticated ? ` -H 'authorization: Bearer <key>'` : ''} -d '{"input":"what is 17*23"}'`,
    );
  }
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

/** Resolves with the exit code after the first SIGTERM/SIGINT has drained the server. */
function onSignal(
  server: FastifyInstance,
  pool: AgentPool,
  config: ServerConfig,
  io: CliIo,
): Promise<number> {
  return new Promise<number>((done) => {
    let draining = false;
    const handle = (signal: NodeJS.Signals) => {
      if (draining) {
        io.err(`${signal} again: exiting now; runs still in flight end as interrupted on the next start`);
        process.exit(1);
      }
      draining = true;
      drain(server, pool, config, io, signal).then(
        () => done(0),
        (err: unknown) => {
          io.err(`error: shutdown failed: ${err instanceof Error ? err.message : String(err)}`);
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
  signal: NodeJS.Signals,
): Promise<void> {
  const inFlight = pool.runs.activeCount;
  io.out(
    `${signal}: shutting down; ${inFlight} run(s) in flight, waiting up to ${config.shutdownTimeoutMs} ms`,
  );
  server.agentpool.drain(); // /readyz answers 503 from now on
  // Stops accepting connections now; resolves once the requests in flight have answered.
  const closed = server.close();
  try {
    const timeout = new AbortController();
    await Promise.race([
      pool.runs.idle(),
      sleep(config.shutdownTimeoutMs, undefined, { signal: timeout.signal }).catch(() => undefined),
    ]);
    timeout.abort(); // the runs ended first: the timer goes
    const left = pool.runs.activeCount;
    if (left > 0) io.out(`shutdown timeout: interrupting ${left} run(s)`);
  } finally {
    await pool.close();
  }
  // Interrupted runs answer their requests now; a stream that outlives that is cut.
  const lingering = await Promise.race([closed.then(() => false), sleep(CONNECTION_GRACE_MS, true)]);
  if (lingering) server.server.closeAllConnections();
  await closed;
  io.out('stopped');
}
