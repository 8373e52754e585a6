#!/usr/bin/env node
/**
 * The `agentpool` command line: parses arguments with commander and hands each command to its
 * module in `commands/`. Errors print `error: <message>` (and `hint: …` when there is something
 * to try) and exit 1; usage errors (unknown command or option, missing argument, bad flag value)
 * exit 2.
 *
 *   agentpool serve [--port 8787] [--host 127.0.0.1] [--data-dir ./data] …
 *   agentpool apply -f examples/agents.yaml
 *   agentpool agents ls | agents get <name> | agents rm <name>
 *   agentpool run <agent> "message" [--thread ID | --new-thread]
 *   agentpool threads create|get|messages|rm, runs get|cancel|follow
 *   agentpool projects ls|create|get|rm|limits, keys ls|create|revoke, usage (admin)
 *   agentpool stats | top [--once] [--interval 2]
 */
import { Command, CommanderError, Option } from 'commander';
import { isAgentPoolError } from '../core/errors.ts';
import {
  type AgentsGetFlags,
  type AgentsLsFlags,
  agentsGetCommand,
  agentsLsCommand,
  agentsRmCommand,
} from './commands/agents.ts';
import { type ApplyFlags, applyCommand } from './commands/apply.ts';
import { registerFlagsCommand } from './commands/flags.ts';
import { registerKeysCommand } from './commands/keys.ts';
import { registerProjectsCommand } from './commands/projects.ts';
import { MULTITASK_STRATEGIES } from '../coordination/thread-gate.ts';
import { type RunFlags, type RunIo, runCommand } from './commands/run.ts';
import { registerRunsCommand } from './commands/runs.ts';
import { type StatsFlags, statsCommand } from './commands/stats.ts';
import { type TopFlags, topCommand } from './commands/top.ts';
import { registerThreadsCommand } from './commands/threads.ts';
import { registerUsageCommand } from './commands/usage.ts';
import type { ServeFlags } from './commands/serve.ts';
import {
  CONFIG_ENV,
  CONFIG_FILE_KEYS,
  formatPath,
  SERVE_DEFAULTS as SERVER_CONFIG_DEFAULTS,
  SETTINGS_WITH_ENV,
} from './settings.ts';
import { ApiError, type ClientFlags } from './http-client.ts';
import { processIo } from './io.ts';
import { CLIENT_HELP, clientOptions, keyValues, positiveInt } from './options.ts';
import { packageVersion } from './version.ts';

const ENV_HELP = SETTINGS_WITH_ENV.map(
  (setting) => `  ${(setting.env as string).padEnd(38)} ${formatPath(setting.path)}`,
).join('\n');

const CONFIG_HELP = `
Configuration, highest precedence first, key by key:
  1. flags
  2. environment variables (below)
  3. the config file (--config or ${CONFIG_ENV}), YAML or JSON with the keys
     ${CONFIG_FILE_KEYS.join(', ')};
     pool, runs, retention, tools, models, resilience, prices, governance, flags, metrics,
     liveFigures, agents, sqlite, postgres, cluster, http and cors are objects; relative paths in the file are taken from its directory
  4. the defaults
Every value is checked at start; an error names the flag, variable or key. docs/configuration.md
lists every key, variable and default; \`agentpool serve --print-config\` shows the values in force.

Environment variables (each sets the key beside it):
${ENV_HELP}`;

const SERVE_HELP = `${CONFIG_HELP}

Agents: --agents-file (or its variable or key) is applied at every start. Without one, the bundled
examples/agents.yaml is applied only when the store holds no agent at all, so agents changed
through the API keep their changes across restarts.
Authentication: set AGENTPOOL_ADMIN_KEY (or adminKey in the config file; never a flag) or issue any
project key, and every API request needs "Authorization: Bearer <key>"; without either the server
runs open in single-project development mode. /metrics then needs the admin key or the token in
AGENTPOOL_METRICS_TOKEN (or metricsToken in the config file), which opens nothing else.
Logs: JSON lines on stdout (human-readable when stdout is a terminal): one access line per request,
one per failed run, breaker change, fallback and recovered crash. --log-level sets the least
severe level written (fatal, error, warn, info, debug, trace, silent; default info).
CORS: off unless origins are set (AGENTPOOL_CORS_ORIGINS, or cors: { origins: [...] } in the
config file); "*" allows any origin.
SIGTERM or SIGINT drains: the server keeps serving, /readyz answers 503 and new runs get 503
SHUTTING_DOWN; runs in flight get up to --shutdown-timeout-ms to finish, the rest are interrupted,
then the server stops listening and the store is closed. A second signal exits at once.

Models: demo always; openai, anthropic and openai-compatible from their variables or models.providers
in the config file; more OpenAI-compatible servers (vLLM, Ollama, LM Studio, LiteLLM) as
models.providers.<name> { baseURL, apiKeyEnv }, used as <name>/<model-id>. The start banner names
the providers configured, never a key.

Examples:
  $ agentpool serve --port 8787 --data-dir ./data
  $ agentpool serve --config agentpool.yaml --print-config`;

const APPLY_HELP = `
Each agent is created, gets a new version when its definition changed, or is left unchanged;
one line per agent says which:  created    default/support  v1
The file is { agents: [ … ] } or a bare list; each entry is an agent definition plus an optional
"project" (default "default"). Bad entries apply nothing: every one is listed with its field (an
unknown tool or model provider too, checked as \`agentpool serve\` checks them from the same
environment and --config: module paths resolve against tools.baseDir (else the working directory),
providers include the named ones of models.providers; a missing API key is not an error),
and a file that is not valid YAML or JSON shows the offending line.
An "mcpServers" list declares the MCP servers agents reference as mcp:<server>, applied first,
one line each:  created    acme/mcp:github  (name, optional project, then the declaration:
transport http with url and headers, or stdio with command, args and env; secrets as
{ env: VAR }). The file is trusted as the admin key is.
Only the agent and MCP server stores are opened, so this is safe next to a running server on
the same data directory, which serves the new versions from its next run.

Example:
  $ agentpool apply -f examples/agents.yaml --data-dir ./data`;

const AGENTS_LS_HELP = `${CLIENT_HELP}

Examples:
  $ agentpool agents ls
  $ agentpool agents ls --label team=support --limit 20
  $ agentpool agents ls --json`;

const RUN_HELP = `
Text streams to stdout as the model writes it; tool calls (→) and results (←) and a closing
summary line go to stderr, so stdout can be piped. A run on a thread sees the thread's earlier
messages; without --thread or --new-thread the run is stateless. While another run holds the
thread, the server refuses (THREAD_BUSY) unless --multitask says to enqueue or interrupt. Ctrl-C
disconnects, and the server cancels the run. A failed run prints  error: <CODE>: <message>  and
exits 1.
${CLIENT_HELP}

Examples:
  $ agentpool run support "what is 17*23"
  $ agentpool run support "remember: my name is Ada" --new-thread
  $ agentpool run support "what is my name?" --thread thr_…`;

const STATS_HELP = `
Prints the pool's live instances against its bound, instances by state and tier, cache hits and
misses, activations with their p50/p99 latency, and deactivations by cause.
${CLIENT_HELP}`;

const TOP_HELP = `
Refreshes like top (every --interval seconds, default 2) with the dashboard's live figures
(GET /v1/pool/live): live instances by state and tier, cache hits and hit ratio, activations,
evictions, health and its checks; runs in flight, in the last minute, by outcome, p50/p99 latency
and cost over the last 15 minutes, with a one-line chart per 10 seconds; the slowest runs; spend
today and this month against each project's budgets, the top agents by cost, each model's
breaker and fallbacks; the cluster's nodes when there are several. q or Ctrl-C quits.
The admin key sees the whole pool (or one project with --project), a project key its project.
${CLIENT_HELP}

Examples:
  $ agentpool top
  $ agentpool top --once          # one frame, for scripts
  $ agentpool top --json          # the live view's JSON, once`;

/** The real process, plus raw stdout for streamed text and whether stderr takes colours. */
function defaultIo(): RunIo {
  return {
    ...processIo(),
    write: (text) => process.stdout.write(text),
    colors: process.stderr.isTTY && (process.env.NO_COLOR ?? '') === '',
  };
}

/** Where a command leaves its exit code when it is not 0 and not an error (`serve` after a failed drain). */
export interface ExitStatus {
  code: number;
}

/** Builds the `agentpool` program; `io` receives all its output, commander's help and errors included. */
export function buildProgram(io: RunIo = defaultIo(), exit: ExitStatus = { code: 0 }): Command {
  // Set before any subcommand is added: subcommands copy it when created.
  const write = (line: (text: string) => void) => (text: string) => line(text.replace(/\n$/, ''));
  const program = new Command('agentpool')
    .configureOutput({ writeOut: write(io.out), writeErr: write(io.err) })
    .description('A runtime that hosts LLM agents the way an actor runtime hosts actors.')
    .version(packageVersion(), '-V, --version', 'print the version of agentpool')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      `
Every command has its own --help. Client commands (agents, run, threads, runs, stats, top,
projects, keys, usage, flags) talk to a running server: --url or AGENTPOOL_URL, a key in AGENTPOOL_API_KEY.
Exit codes: 0 success, 1 an error (error: <CODE>: <message> on stderr), 2 a usage error.

Examples:
  $ agentpool serve
  $ agentpool run support "what is 17*23"
  $ agentpool runs follow run_01…`,
    );

  program
    .command('serve')
    .description('start the HTTP API on the configured store, with the agents file applied')
    .option('--port <port>', `TCP port (default ${SERVER_CONFIG_DEFAULTS.port})`)
    .option('--host <host>', `interface to listen on (default ${SERVER_CONFIG_DEFAULTS.host})`)
    .option('--data-dir <dir>', `directory of the SQLite file (default ${SERVER_CONFIG_DEFAULTS.dataDir})`)
    .option(
      '--store <kind>',
      'where agents, threads and runs live: sqlite, memory or postgres (default sqlite)',
    )
    .option('--database-url <url>', 'PostgreSQL of --store postgres (postgres://user@host:5432/database)')
    .option('--redis-url <url>', 'Redis shared by the nodes of a cluster (redis://host:6379[/db])')
    .option('--redis-prefix <prefix>', 'prefix of every Redis key and channel (default agentpool:)')
    .option('--node-id <id>', "this node's id in the cluster (default: node_ and random hex)")
    .option('--config <file>', 'YAML or JSON config file')
    .option(
      '--agents-file <file>',
      'YAML or JSON agents file applied at every start (default: the bundled examples, into an empty store only)',
    )
    .option(
      '--shutdown-timeout-ms <ms>',
      `how long shutdown waits for runs in flight (default ${SERVER_CONFIG_DEFAULTS.shutdownTimeoutMs})`,
    )
    .option(
      '--log-level <level>',
      `least severe log level written: fatal, error, warn, info, debug, trace or silent (default ${SERVER_CONFIG_DEFAULTS.logLevel})`,
    )
    .option(
      '--print-config',
      'print every setting in force and where its value came from (flag, variable, config file, default), then exit',
    )
    .option('--json', 'with --print-config: print it as JSON')
    .addHelpText('after', SERVE_HELP)
    .action(async (flags: ServeFlags, command: Command) => {
      if (flags.json === true && flags.printConfig !== true) {
        command.error('error: --json goes with --print-config', { exitCode: 2 });
      }
      // Imported here so `apply` and `--help` do not load the HTTP server.
      const { serveCommand } = await import('./commands/serve.ts');
      exit.code = await serveCommand(flags, io);
    });

  program
    .command('apply')
    .description('apply an agents file to the store (create, update or leave each agent), no server needed')
    .requiredOption('-f, --file <file>', 'YAML or JSON agents file')
    .option('--data-dir <dir>', `directory of the SQLite file (default ${SERVER_CONFIG_DEFAULTS.dataDir})`)
    .option('--store <kind>', 'sqlite, memory or postgres (default sqlite)')
    .option('--database-url <url>', 'PostgreSQL of --store postgres (postgres://user@host:5432/database)')
    .option(
      '--config <file>',
      'YAML or JSON config file (its dataDir, store, databaseUrl, models and tools are used, as serve uses them)',
    )
    .addHelpText('after', `${APPLY_HELP}\n${CONFIG_HELP}`)
    .action(async (flags: ApplyFlags) => {
      await applyCommand(flags, io);
    });

  const agents = program
    .command('agents')
    .description("list, show and delete a running server's agents")
    .addHelpText('after', CLIENT_HELP);

  clientOptions(agents.command('ls'))
    .description('list agents: NAME, VERSION (active), MODEL, TIER, TOOLS')
    .option(
      '--label <key=value>',
      'only agents with this label; repeat for several (all must match)',
      keyValues('--label'),
    )
    .option(
      '--limit <n>',
      'one page of at most n agents (default: every agent)',
      positiveInt('--limit', 1000),
    )
    .option('--json', 'print the JSON ({ data, nextCursor }) instead of a table')
    .addHelpText('after', AGENTS_LS_HELP)
    .action(async (flags: AgentsLsFlags) => {
      await agentsLsCommand(flags, io);
    });

  clientOptions(agents.command('get'))
    .description('show an agent with its active definition (YAML, or JSON with --json)')
    .argument('<name>', 'agent name or id')
    .option('--json', 'print the JSON instead')
    .addHelpText('after', `${CLIENT_HELP}\n\nExample:\n  $ agentpool agents get support`)
    .action(async (name: string, flags: AgentsGetFlags) => {
      await agentsGetCommand(name, flags, io);
    });

  clientOptions(agents.command('rm'))
    .description('delete an agent and all its versions')
    .argument('<name>', 'agent name or id')
    .addHelpText('after', `${CLIENT_HELP}\n\nExample:\n  $ agentpool agents rm researcher`)
    .action(async (name: string, flags: ClientFlags) => {
      await agentsRmCommand(name, flags, io);
    });

  clientOptions(program.command('run'))
    .description('run an agent on a message, streaming its answer to the terminal')
    .argument('<agent>', 'agent name or id')
    .argument('<message>', "the user's message")
    .option('--thread <id>', 'run on this thread, continuing its conversation')
    .addOption(
      new Option('--new-thread', 'create a thread first and print its id (continue with --thread)').conflicts(
        'thread',
      ),
    )
    .addOption(
      new Option(
        '--multitask <strategy>',
        'when the thread is busy: reject (409), enqueue, or interrupt it',
      ).choices(MULTITASK_STRATEGIES),
    )
    .addHelpText('after', RUN_HELP)
    .action(async (agent: string, message: string, flags: RunFlags) => {
      await runCommand(agent, message, flags, io);
    });

  registerThreadsCommand(program, io);
  registerRunsCommand(program, io);

  clientOptions(program.command('stats'))
    .description("show the pool's instances, cache hits, activations and evictions")
    .option('--json', 'print the JSON (PoolStats) instead')
    .addHelpText('after', STATS_HELP)
    .action(async (flags: StatsFlags) => {
      await statsCommand(flags, io);
    });

  clientOptions(program.command('top'))
    .description('a live view of the pool, runs, money and nodes in the terminal, refreshing like top')
    .option('--interval <seconds>', 'seconds between frames (default 2)', positiveInt('--interval', 3600))
    .option('--once', 'print one frame and exit')
    .option('--json', "print the live view's JSON once and exit")
    .addHelpText('after', TOP_HELP)
    .action(async (flags: TopFlags) => {
      await topCommand(flags, io);
    });

  registerProjectsCommand(program, io);
  registerKeysCommand(program, io);
  registerUsageCommand(program, io);
  registerFlagsCommand(program, io);

  return program;
}

/** Runs the program on `argv` (as `process.argv`); resolves with the exit code. */
export async function main(argv: readonly string[], io: RunIo = defaultIo()): Promise<number> {
  try {
    const exit: ExitStatus = { code: 0 };
    await buildProgram(io, exit).parseAsync([...argv]);
    return exit.code;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2; // commander printed it
    const message = err instanceof Error ? err.message : String(err);
    io.err(`error: ${message}`);
    if (err instanceof ApiError && err.hint !== undefined) io.err(`hint: ${err.hint}`);
    // A bad flag value is a usage error too.
    return isAgentPoolError(err, 'VALIDATION_FAILED') && err.details.source === 'flag' ? 2 : 1;
  }
}

if (import.meta.main) {
  process.exit(await main(process.argv));
}
