/**
 * What the MCP tests share: a pool's MCP half (sessions, declarations on the memory store, a tool
 * catalog resolving `mcp:` through them) without the rest of the pool, and a tool context.
 */
import { Registry } from 'prom-client';
import { type Clock, systemClock } from '../../../src/core/clock.ts';
import { silentLogger } from '../../../src/core/logger.ts';
import { LocalEventBus } from '../../../src/events/bus.ts';
import { MemoryMcpServerStore } from '../../../src/store/memory-mcp-servers.ts';
import { ToolCatalog } from '../../../src/tools/catalog.ts';
import { McpServers } from '../../../src/tools/mcp/mcp-servers.ts';
import { type McpOptions, resolveMcpOptions } from '../../../src/tools/mcp/mcp-options.ts';
import { type McpEvent, McpSessions } from '../../../src/tools/mcp/sessions.ts';
import type { Tool, ToolContext, ToolResult } from '../../../src/tools/tool.ts';

/** A tool context of project `project`. */
export function toolContext(
  project: string,
  signal: AbortSignal = new AbortController().signal,
): ToolContext {
  return { signal, project, agent: 'a', runId: 'run_1', threadId: null, idempotencyKey: 'run_1:1:0' };
}

/** MCP sessions, declarations and a catalog over them. */
export function mcpRig(options: McpOptions = {}, clock: Clock = systemClock) {
  const bus = new LocalEventBus<McpEvent>();
  const events: McpEvent[] = [];
  bus.on('*', (e) => events.push(e));
  const registry = new Registry();
  const sessions = new McpSessions({
    options: resolveMcpOptions(options),
    clock,
    bus,
    log: silentLogger(),
    registry,
  });
  const mcp = new McpServers({ store: new MemoryMcpServerStore(), sessions, clock });
  const catalog = new ToolCatalog({ clock });
  catalog.useMcp(mcp);
  return {
    bus,
    events,
    registry,
    mcp,
    catalog,
    /** Calls the tool the model knows as `name` among `tools`. */
    call(
      tools: readonly Tool[],
      name: string,
      input: unknown,
      project = 'acme',
      signal?: AbortSignal,
    ): Promise<ToolResult> {
      const tool = tools.find((t) => t.name === name);
      if (tool === undefined) throw new Error(`no tool ${name} in ${tools.map((t) => t.name).join(', ')}`);
      return catalog.run(tool, input, toolContext(project, signal));
    },
    close: () => mcp.close(),
  };
}

/** Resolves once `check()` holds, polling (for what arrives asynchronously: notifications). */
export async function until(check: () => boolean, what: string, limitMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
