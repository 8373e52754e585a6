#!/usr/bin/env node
/**
 * The `agentpool` command line: parses arguments with commander and hands each command to its
 * module in `commands/`. Errors print `error: <message>` and exit 1; usage errors (unknown
 * command or option, missing argument, bad flag value) exit 2.
 *
 *   node src/cli/main.ts serve [--port 8787] [--host 127.0.0.1] [--data-dir ./data] …
 *   node src/cli/main.ts apply -f examples/agents.yaml
 */
import { Command, CommanderError } from 'commander';
import { isAgentPoolError } from '../core/errors.ts';
import { type ApplyFlags, applyCommand } from './commands/apply.ts';
import { CONFIG_ENV, CONFIG_FILE_KEYS, SERVER_CONFIG_DEFAULTS, type ServerFlags } from './config.ts';
import { type CliIo, processIo } from './io.ts';

const CONFIG_HELP = `
Configuration, highest precedence first:
  1. flags
  2. environment variables: AGENTPOOL_PORT, AGENTPOOL_HOST, AGENTPOOL_DATA_DIR, AGENTPOOL_STORE,
     AGENTPOOL_AGENTS_FILE, AGENTPOOL_SHUTDOWN_TIMEOUT_MS
  3. the config file (--config or ${CONFIG_ENV}), YAML or JSON with the keys
     ${CONFIG_FILE_KEYS.join(', ')};
     relative paths in it are taken from its directory
  4. the defaults
Every value is checked at start; an error names the flag, variable or key.`;

const SERVE_HELP = `${CONFIG_HELP}

Without --agents-file (or its variable or key), the bundled examples/agents.yaml is applied.
SIGTERM or SIGINT drains: the server stops accepting, runs in flight get up to
--shutdown-timeout-ms to finish, the rest are interrupted, and the store is closed.

Example:
  $ agentpool serve --port 8787 --data-dir ./data`;

const APPLY_HELP = `
Each agent is created, gets a new version when its definition changed, or is left unchanged;
one line per agent says which:  created    default/support  v1
The file is { agents: [ … ] } or a bare list; each entry is an agent definition plus an optional
"project" (default "default"). A bad entry applies nothing and names the entry.
Only the agent store is opened, so this is safe next to a running server, but that server keeps
serving an agent's live instance until it is deactivated (idle, evicted); PUT /v1/agents/{name}
on the server applies a change at once.

Example:
  $ agentpool apply -f examples/agents.yaml --data-dir ./data`;

/** Builds the `agentpool` program; `io` receives the commands' output. */
export function buildProgram(io: CliIo = processIo()): Command {
  const program = new Command('agentpool')
    .description('A runtime that hosts LLM agents the way an actor runtime hosts actors.')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');

  program
    .command('serve')
    .description('start the HTTP API on the configured store, with the agents file applied')
    .option('--port <port>', `TCP port (default ${SERVER_CONFIG_DEFAULTS.port})`)
    .option('--host <host>', `interface to listen on (default ${SERVER_CONFIG_DEFAULTS.host})`)
    .option('--data-dir <dir>', `directory of the SQLite file (default ${SERVER_CONFIG_DEFAULTS.dataDir})`)
    .option('--store <kind>', 'where agents, threads and runs live: sqlite or memory (default sqlite)')
    .option('--config <file>', 'YAML or JSON config file')
    .option(
      '--agents-file <file>',
      'YAML or JSON agents file applied at start (default examples/agents.yaml)',
    )
    .option(
      '--shutdown-timeout-ms <ms>',
      `how long shutdown waits for runs in flight (default ${SERVER_CONFIG_DEFAULTS.shutdownTimeoutMs})`,
    )
    .addHelpText('after', SERVE_HELP)
    .action(async (flags: ServerFlags) => {
      // Imported here so `apply` and `--help` do not load the HTTP server.
      const { serveCommand } = await import('./commands/serve.ts');
      process.exitCode = await serveCommand(flags, io);
    });

  program
    .command('apply')
    .description('apply an agents file to the store (create, update or leave each agent), no server needed')
    .requiredOption('-f, --file <file>', 'YAML or JSON agents file')
    .option('--data-dir <dir>', `directory of the SQLite file (default ${SERVER_CONFIG_DEFAULTS.dataDir})`)
    .option('--store <kind>', 'sqlite or memory (default sqlite)')
    .option('--config <file>', 'YAML or JSON config file (its dataDir and store are used)')
    .addHelpText('after', `${APPLY_HELP}\n${CONFIG_HELP}`)
    .action(async (flags: ApplyFlags) => {
      await applyCommand(flags, io);
    });

  return program;
}

/** Runs the program on `argv` (as `process.argv`); resolves with the exit code. */
export async function main(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  try {
    await buildProgram(io).parseAsync([...argv]);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2; // commander printed it
    const message = err instanceof Error ? err.message : String(err);
    io.err(`error: ${message}`);
    // A bad flag value is a usage error too.
    return isAgentPoolError(err, 'VALIDATION_FAILED') && err.details.source === 'flag' ? 2 : 1;
  }
}

if (import.meta.main) {
  process.exit(await main(process.argv));
}
