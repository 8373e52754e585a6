/**
 * `agentpool apply -f <file>`: applies an agents file to the store directly, without a server,
 * and prints what happened to each MCP server and agent. Only the agent and MCP server stores are
 * opened: building a whole pool
 * would mark the runs of a server running on the same data directory as interrupted. References
 * are checked as `agentpool serve` checks them: model providers known to a catalog configured from
 * the same config file and environment (named providers included), tool modules resolved against
 * the same base directory (`tools.baseDir`, else the working directory). A server running on
 * the same data directory serves the new versions from its next run (it follows the store's
 * change feed).
 */
import { join } from 'node:path';
import { systemClock } from '../../core/clock.ts';
import { LocalEventBus } from '../../events/bus.ts';
import { type AgentEvent, AgentRegistry } from '../../registry/registry.ts';
import { MemoryAgentStore } from '../../store/memory.ts';
import type { AgentStore } from '../../store/ports.ts';
import { SqliteAgentStore } from '../../store/sqlite.ts';
import { openPostgresStores } from '../../store/postgres/open.ts';
import { validationError } from '../../core/errors.ts';
import { ModelCatalog } from '../../models/catalog.ts';
import { referenceCheck } from '../../reference-check.ts';
import { ToolCatalog } from '../../tools/catalog.ts';
import { type AppliedAgent, applyAgentsFile } from '../agents-file.ts';
import { formatAppliedServer } from '../mcp-servers-file.ts';
import { silentLogger } from '../../core/logger.ts';
import type { McpServerStore } from '../../store/mcp-server-ports.ts';
import { MemoryMcpServerStore } from '../../store/memory-mcp-servers.ts';
import { PostgresMcpServerStore } from '../../store/postgres/mcp-server-store.ts';
import { SqliteMcpServerStore } from '../../store/sqlite-mcp-servers.ts';
import { McpServers } from '../../tools/mcp/mcp-servers.ts';
import { type McpEvent, McpSessions } from '../../tools/mcp/sessions.ts';
import { loadServerConfig, type ServerFlags } from '../config.ts';
import type { CliIo } from '../io.ts';

/** Flags of `agentpool apply`. */
export interface ApplyFlags extends Pick<ServerFlags, 'dataDir' | 'store' | 'databaseUrl' | 'config'> {
  file: string;
}

/** One line of `apply` output: `created    default/support  v1`. */
export function formatApplied(applied: AppliedAgent): string {
  return `${applied.result.padEnd(9)}  ${applied.project}/${applied.name}  v${applied.version}`;
}

/** Runs `agentpool apply`; the agents applied before a failure are printed before it is thrown. */
export async function applyCommand(flags: ApplyFlags, io: CliIo): Promise<void> {
  const config = loadServerConfig(
    {
      ...(flags.dataDir !== undefined && { dataDir: flags.dataDir }),
      ...(flags.store !== undefined && { store: flags.store }),
      ...(flags.databaseUrl !== undefined && { databaseUrl: flags.databaseUrl }),
      ...(flags.config !== undefined && { config: flags.config }),
    },
    io.env,
  );
  // Built before the store is opened: a bad provider setting in the environment fails first.
  const tools = new ToolCatalog(config.tools);
  const checkReferences = referenceCheck(new ModelCatalog({ ...config.models, env: io.env }), tools);
  let store: AgentStore;
  let mcpStore: McpServerStore;
  if (config.store === 'memory') {
    io.err('warning: --store memory keeps nothing: the agents are gone when this command exits');
    store = new MemoryAgentStore();
    mcpStore = new MemoryMcpServerStore();
  } else if (config.store === 'postgres') {
    if (config.databaseUrl === undefined) {
      throw validationError(
        'databaseUrl',
        'is required with --store postgres (--database-url or AGENTPOOL_DATABASE_URL)',
      );
    }
    // The nodes of a running cluster hear of the changes through the database's change feed.
    const opened = await openPostgresStores({ databaseUrl: config.databaseUrl });
    await Promise.all([opened.runs.close(), opened.projects.close()]);
    store = opened.agents;
    mcpStore = new PostgresMcpServerStore(opened.database);
  } else {
    store = new SqliteAgentStore({ path: join(config.dataDir, 'agentpool.db') });
    mcpStore = new SqliteMcpServerStore({ path: join(config.dataDir, 'agentpool.db') });
  }
  // Declarations only: no session is opened here.
  const mcp = new McpServers({
    store: mcpStore,
    clock: systemClock,
    sessions: new McpSessions({
      options: tools.options.mcp,
      clock: systemClock,
      bus: new LocalEventBus<McpEvent>(),
      log: silentLogger(),
    }),
  });
  try {
    const agents = new AgentRegistry({
      store,
      bus: new LocalEventBus<AgentEvent>(),
      clock: systemClock,
      checkReferences,
    });
    await applyAgentsFile({ agents, mcp }, flags.file, {
      onApplied: (applied) => io.out(formatApplied(applied)),
      onServerApplied: (applied) => io.out(formatAppliedServer(applied)),
    });
  } finally {
    await mcp.close();
    await Promise.all([store.close(), mcpStore.close()]);
  }
}
