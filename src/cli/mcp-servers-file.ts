/**
 * The `mcpServers:` section of an agents file: each project's MCP servers declared next to the
 * agents that use them, applied before those agents (`agentpool apply -f`, and `agentpool serve`
 * at start). A file is trusted as the admin key is (it may declare stdio servers, unless
 * `tools.mcp.allowStdio` is `none`, and reference any environment variable). Every entry is
 * checked before anything is written.
 */
import { AgentPoolError, isAgentPoolError } from '../core/errors.ts';
import { isPlainObject } from '../core/options.ts';
import { assertSlug, DEFAULT_PROJECT } from '../registry/definition.ts';
import { checkMcpServerName, parseMcpServerDeclaration } from '../tools/mcp/declarations.ts';
import type { McpServers } from '../tools/mcp/mcp-servers.ts';

/** One checked `mcpServers` entry. */
export interface McpServerFileEntry {
  index: number;
  project: string;
  name: string;
  /** The entry without `name` and `project`: the declaration. */
  declaration: Record<string, unknown>;
}

/** What applying one entry did. */
export interface AppliedMcpServer {
  project: string;
  name: string;
  result: 'created' | 'updated' | 'unchanged';
}

/** One line of `apply` output: `created    default/mcp:github`. */
export function formatAppliedServer(applied: AppliedMcpServer): string {
  return `${applied.result.padEnd(9)}  ${applied.project}/mcp:${applied.name}`;
}

/**
 * Checks a file's `mcpServers` list (absent: none); `VALIDATION_FAILED` naming the file, the entry
 * and the field. `servers` checks each declaration as the pool will (its `tools.mcp` options).
 */
export function parseMcpServersSection(
  path: string,
  list: unknown,
  servers: Pick<McpServers, 'sessions'> | undefined,
): McpServerFileEntry[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) {
    throw new AgentPoolError('VALIDATION_FAILED', `agents file ${path}: mcpServers must be a list`, {
      file: path,
      field: 'mcpServers',
    });
  }
  const seen = new Set<string>();
  return list.map((raw: unknown, index) => {
    const label = `mcpServers[${index}]`;
    try {
      if (!isPlainObject(raw)) throw new AgentPoolError('VALIDATION_FAILED', 'must be an object');
      const { name, project: rawProject, ...declaration } = raw;
      checkMcpServerName(name);
      const project = rawProject === undefined ? DEFAULT_PROJECT : assertSlug('project', rawProject);
      if (servers !== undefined) {
        parseMcpServerDeclaration(declaration, { admin: true }, servers.sessions.options, 'mcpServer');
      }
      const key = `${project}/${name as string}`;
      if (seen.has(key)) throw new AgentPoolError('VALIDATION_FAILED', `repeats ${key}`);
      seen.add(key);
      return { index, project, name: name as string, declaration };
    } catch (err) {
      if (!isAgentPoolError(err)) throw err;
      throw new AgentPoolError(
        'VALIDATION_FAILED',
        `agents file ${path}: ${label}: ${err.message}`,
        { file: path, index, ...err.details },
        { cause: err },
      );
    }
  });
}

/** Applies checked entries in order; a failure names the entry (entries before it stay applied). */
export async function applyMcpServers(
  path: string,
  entries: readonly McpServerFileEntry[],
  servers: Pick<McpServers, 'apply'>,
  onApplied?: (applied: AppliedMcpServer) => void,
): Promise<AppliedMcpServer[]> {
  const applied: AppliedMcpServer[] = [];
  for (const entry of entries) {
    try {
      const result = await servers.apply(entry.project, entry.name, entry.declaration, { admin: true });
      const done = { project: entry.project, name: entry.name, result };
      applied.push(done);
      onApplied?.(done);
    } catch (err) {
      if (!isAgentPoolError(err)) throw err;
      throw new AgentPoolError(
        err.code,
        `agents file ${path}: mcpServers[${entry.index}] (${JSON.stringify(entry.name)}): ${err.message}`,
        { file: path, index: entry.index, ...err.details },
        { cause: err },
      );
    }
  }
  return applied;
}
