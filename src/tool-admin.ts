/**
 * The pool's tool operations over the catalog, the registry and the instance pool: reloading
 * changed tool and hook modules now (retiring the instances that use them, so their next
 * activation loads the new version), and listing what a project can use with its figures.
 */
import type { InstancePool } from './pool/pool.ts';
import type { AgentRegistry } from './registry/registry.ts';
import type { ToolCatalog } from './tools/catalog.ts';
import type { McpServers } from './tools/mcp/mcp-servers.ts';
import { hookModulePaths } from './tools/hook-modules.ts';
import type { ModuleChange, ModuleVersionStats } from './tools/module-tools.ts';
import type { ToolCounts } from './tools/tool-figures.ts';
import type { ToolListing } from './tools/tool-listing.ts';

/** What `reloadTools` did. */
export interface ToolReload {
  /** Modules whose file changed: now loaded at their new version. */
  readonly changed: readonly ModuleChange[];
  /** Modules whose file could not be loaded now (they keep their cached version). */
  readonly failed: readonly { path: string; error: string }[];
  /** Live instances retired because a module they use changed. */
  readonly retired: number;
  readonly modules: ModuleVersionStats;
}

/** A tool of the listing with the project's figures. */
export type ToolWithFigures = ToolListing & { readonly figures: ToolCounts };

/** Agents read per listing at most; a project with more is listed from its first ones (`truncated`). */
export const MAX_LISTED_AGENTS = 10_000;

const NO_CALLS: ToolCounts = Object.freeze({ calls: 0, errors: 0, timeouts: 0, durationMs: 0 });

/**
 * Checks the cached tool and hook modules (or the one at `path`) now, loads those that changed,
 * and retires the live instances using them.
 */
export async function reloadTools(
  deps: { tools: ToolCatalog; pool: InstancePool },
  path?: string,
): Promise<ToolReload> {
  const { tools, pool } = deps;
  const { changed, failed } = await tools.modules.refresh(path);
  const paths = new Set(changed.map((c) => c.path));
  const retired =
    paths.size === 0
      ? 0
      : pool.retireWhere((instance) => {
          const usesTool = instance.resources?.tools.some((tool) => {
            const module = tools.originOf(tool)?.module;
            return module !== undefined && paths.has(module.path);
          });
          return (
            usesTool === true ||
            hookModulePaths(tools.modules, instance.agent.spec.hooks).some((p) => paths.has(p))
          );
        });
  return { changed, failed, retired, modules: tools.modules.stats() };
}

/** What `project` can use (see tools/tool-listing.ts), its declared MCP servers' tools included, each with the project's figures. */
export async function projectTools(
  deps: { tools: ToolCatalog; agents: AgentRegistry; mcp: McpServers },
  project: string,
): Promise<{ project: string; data: ToolWithFigures[]; truncated: boolean }> {
  const refs = new Set<string>();
  let cursor: string | undefined;
  let read = 0;
  do {
    const page = await deps.agents.list(project, { limit: 1000, ...(cursor !== undefined && { cursor }) });
    for (const agent of page.data) for (const ref of agent.spec.tools) refs.add(ref);
    read += page.data.length;
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined && read < MAX_LISTED_AGENTS);
  const listed = [...deps.tools.list(refs), ...(await deps.mcp.listTools(project))];
  const data = listed.map((tool) => ({
    ...tool,
    figures:
      tool.name === null
        ? NO_CALLS
        : (deps.tools.figures.projectCounts(project, tool.name, tool.source) ?? NO_CALLS),
  }));
  return { project, data, truncated: cursor !== undefined };
}
