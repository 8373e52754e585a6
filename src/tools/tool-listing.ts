/**
 * What a project can use, as `GET /v1/tools` lists it: the builtin and registered (`custom:`)
 * tools every project has, then the tools of each module its agents reference (the module's
 * loaded version; a module not loaded yet is listed by its reference with `loaded: false`, since
 * listing must not run a module's code). The tools of the project's declared MCP servers are added
 * by the pool (mcp/mcp-servers.ts, `listTools`).
 */
import type { JSONSchema7 } from '@ai-sdk/provider';
import type { ToolCatalog, ToolRef } from './catalog.ts';
import type { Tool } from './tool.ts';

/** One entry of the listing. */
export interface ToolListing {
  /** The tool's name; null for a module not loaded yet. */
  readonly name: string | null;
  readonly description: string | null;
  /** `builtin`, `custom`, `module` or `mcp:<server>`. */
  readonly source: string;
  /** What an agent's `tools` writes to use it. */
  readonly ref: string;
  readonly inputSchema: JSONSchema7 | null;
  /** A module tool's file and content version. */
  readonly module?: { readonly path: string; readonly version: string | null };
  /** False for a module no activation has loaded yet, or an MCP server that cannot be listed now. */
  readonly loaded: boolean;
  /** Why an MCP server's tools are not listed (`MCP_UNAVAILABLE`…). */
  readonly error?: { readonly code: string; readonly message: string };
}

/** The tools `refs` (a project's agents' references, parsed) make usable, with the catalog's own first. */
export function listTools(catalog: ToolCatalog, refs: Iterable<ToolRef>): ToolListing[] {
  const listed: ToolListing[] = catalog
    .ownTools()
    .map(({ tool, origin }) => entry(tool, origin.source, origin.ref));
  const modules = new Map<string, string>(); // absolute path → the first reference naming it
  for (const parsed of refs) {
    switch (parsed.kind) {
      case 'builtin':
      case 'custom':
      case 'mcp':
        break; // listed above, or by the project's MCP servers
      case 'module': {
        let path: string;
        try {
          path = catalog.modules.resolvePath(parsed.path);
        } catch {
          continue;
        }
        if (!modules.has(path)) modules.set(path, `module:${parsed.path}`);
        break;
      }
    }
  }
  const cached = new Map(catalog.modules.cachedModules().map((m) => [m.path, m]));
  for (const [path, ref] of [...modules].sort(([a], [b]) => a.localeCompare(b))) {
    const module = cached.get(path);
    if (module?.tools === undefined) {
      listed.push({
        name: null,
        description: null,
        source: 'module',
        ref,
        inputSchema: null,
        module: { path, version: module?.version ?? null },
        loaded: false,
      });
      continue;
    }
    for (const tool of module.tools) {
      listed.push({
        ...entry(tool, 'module', `${ref}#${tool.name}`),
        module: { path, version: module.version },
      });
    }
  }
  return listed;
}

function entry(tool: Tool, source: string, ref: string): ToolListing {
  return {
    name: tool.name,
    description: tool.description,
    source,
    ref,
    inputSchema: tool.jsonSchema,
    loaded: true,
  };
}
