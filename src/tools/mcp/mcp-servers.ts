/**
 * The MCP servers of a pool: each project's declarations (put, get, list, delete, through the
 * McpServerStore every node shares, shown back with their secrets hidden), and the resolution of
 * `mcp:` tool references into live tool sets over the shared sessions. What the routes, the config
 * file, `apply -f` and the tool catalog call.
 */
import type { JSONSchema7 } from '@ai-sdk/provider';
import type { Clock } from '../../core/clock.ts';
import { AgentPoolError, isAgentPoolError, validationError } from '../../core/errors.ts';
import type { McpServerStore } from '../../store/mcp-server-ports.ts';
import type { Tool } from '../tool.ts';
import type { ToolListing } from '../tool-listing.ts';
import {
  checkMcpServerName,
  type DeclarationWriter,
  type McpServerRecord,
  parseMcpServerDeclaration,
  publicDeclaration,
} from './declarations.ts';
import { McpToolSet, modelToolNames } from './mcp-tools.ts';
import type { McpSession, ToolList } from './session.ts';
import type { McpSessions, McpStats } from './sessions.ts';

/** Servers one project may declare at most. */
export const MAX_MCP_SERVERS_PER_PROJECT = 100;

/** What the tool catalog asks of MCP: the live tools of one `mcp:` reference of a project's agent. */
export interface McpToolProvider {
  resolve(
    project: string,
    server: string,
    tool: string | null,
    prepare: (tool: Tool) => Tool,
  ): Promise<McpToolSet>;
}

/** What {@link McpServers} is built from. */
export interface McpServersDeps {
  readonly store: McpServerStore;
  readonly sessions: McpSessions;
  readonly clock: Clock;
}

/** Declared MCP servers and their tools. */
export class McpServers implements McpToolProvider {
  readonly sessions: McpSessions;
  readonly #deps: McpServersDeps;

  constructor(deps: McpServersDeps) {
    this.#deps = deps;
    this.sessions = deps.sessions;
  }

  /**
   * Declares (or replaces) `project`'s server `name`; `writer.admin` is false for a project key
   * (stdio and environment references are then restricted, see `tools.mcp.allowStdio` and
   * `projectEnvPrefix`). Sessions of the previous declaration on this node close.
   */
  async put(
    project: string,
    name: string,
    body: unknown,
    writer: DeclarationWriter = { admin: true },
  ): Promise<{ server: McpServerRecord; created: boolean }> {
    checkMcpServerName(name);
    const declaration = parseMcpServerDeclaration(body, writer, this.sessions.options, 'body');
    const { store } = this.#deps;
    if ((await store.getMcpServer(project, name)) === undefined) {
      const count = (await store.listMcpServers(project)).length;
      if (count >= MAX_MCP_SERVERS_PER_PROJECT) {
        throw validationError(
          'name',
          `cannot be declared: the project has ${count} MCP servers, the most it may have`,
          { limit: MAX_MCP_SERVERS_PER_PROJECT },
        );
      }
    }
    const put = await store.putMcpServer(project, name, declaration, this.#deps.clock.now());
    await this.sessions.forget(project, name);
    return { server: shown(put.record), created: put.created };
  }

  /**
   * Declares `project`'s server `name` as a declarations file does (`apply -f`, `serve` at start):
   * `unchanged` when the stored declaration is the same, else as {@link put}.
   */
  async apply(
    project: string,
    name: string,
    body: unknown,
    writer: DeclarationWriter = { admin: true },
  ): Promise<'created' | 'updated' | 'unchanged'> {
    checkMcpServerName(name);
    const declaration = parseMcpServerDeclaration(body, writer, this.sessions.options, 'body');
    const existing = await this.#deps.store.getMcpServer(project, name);
    if (existing !== undefined && JSON.stringify(existing.declaration) === JSON.stringify(declaration)) {
      return 'unchanged';
    }
    return (await this.put(project, name, declaration, writer)).created ? 'created' : 'updated';
  }

  /** One declared server as shown (secrets hidden); `MCP_SERVER_NOT_FOUND` when undeclared. */
  async get(project: string, name: string): Promise<McpServerRecord> {
    return shown(await this.#record(project, name));
  }

  /** A project's declared servers, by name, as shown. */
  async list(project: string): Promise<McpServerRecord[]> {
    return (await this.#deps.store.listMcpServers(project)).map(shown);
  }

  /** Forgets a declared server and closes its sessions here; `MCP_SERVER_NOT_FOUND` when undeclared. */
  async delete(project: string, name: string): Promise<void> {
    if (!(await this.#deps.store.deleteMcpServer(project, name))) throw notFound(project, name);
    await this.sessions.forget(project, name);
  }

  /** Forgets a deleted project's servers and sessions. */
  async forgetProject(project: string): Promise<void> {
    await this.#deps.store.deleteProjectMcpServers(project);
    await this.sessions.forget(project);
  }

  /**
   * The live tools of `mcp:<server>` (`tool` null) or `mcp:<server>/<tool>` for an agent of
   * `project`, at activation: the list is read from the cache, or listed now when there is none; a
   * server that cannot be reached contributes no tools yet (or a placeholder for a named tool),
   * and they appear once its list arrives. `MCP_SERVER_NOT_FOUND` when undeclared.
   */
  async resolve(
    project: string,
    server: string,
    tool: string | null,
    prepare: (tool: Tool) => Tool,
  ): Promise<McpToolSet> {
    const { declaration } = await this.#record(project, server);
    const { sessions } = this;
    let session: McpSession | undefined;
    const source = (): McpSession => {
      if (session === undefined || session.retired) session = sessions.session(project, server, declaration);
      return session;
    };
    try {
      await source().tools();
    } catch (err) {
      // Unreachable now: the agent starts without these tools (its other tools work), and they
      // appear once a background listing succeeds.
      if (!isAgentPoolError(err, 'MCP_UNAVAILABLE')) throw err;
    }
    const set = new McpToolSet(server, tool, source, prepare);
    set.current();
    set.assertFound();
    return set;
  }

  /**
   * What `project`'s declared servers offer, for `GET /v1/tools`: each server's tools under the
   * names the model sees, from the cached list (listed now when there is none); a server that
   * cannot be reached is one entry with `loaded: false` and the reason.
   */
  async listTools(project: string): Promise<ToolListing[]> {
    const listed: ToolListing[] = [];
    for (const { name: server, declaration } of await this.#deps.store.listMcpServers(project)) {
      const source = `mcp:${server}`;
      let tools: ToolList;
      try {
        const session = this.sessions.session(project, server, declaration);
        tools = session.cachedTools() ?? (await session.tools());
      } catch (err) {
        if (!isAgentPoolError(err)) throw err;
        listed.push({
          name: null,
          description: null,
          source,
          ref: source,
          inputSchema: null,
          loaded: false,
          error: { code: err.code, message: err.message },
        });
        continue;
      }
      const names = modelToolNames(server, tools.tools);
      for (const tool of tools.tools) {
        listed.push({
          name: names.get(tool.name) ?? tool.name,
          description: tool.description ?? null,
          source,
          ref: `${source}/${tool.name}`,
          inputSchema: tool.inputSchema as JSONSchema7,
          loaded: true,
        });
      }
    }
    return listed;
  }

  /** Per-server figures (`GET /v1/pool/stats`'s `mcp`). */
  stats(): McpStats {
    return this.sessions.stats();
  }

  /** Closes every session. */
  close(): Promise<void> {
    return this.sessions.close();
  }

  async #record(project: string, name: string): Promise<McpServerRecord> {
    const record = await this.#deps.store.getMcpServer(project, name);
    if (record === undefined) throw notFound(project, name);
    return record;
  }
}

function shown(record: McpServerRecord): McpServerRecord {
  return { ...record, declaration: publicDeclaration(record.declaration) };
}

function notFound(project: string, name: string): AgentPoolError {
  return new AgentPoolError(
    'MCP_SERVER_NOT_FOUND',
    `no MCP server named ${JSON.stringify(name)} is declared in project ${JSON.stringify(project)}`,
    { project, server: name },
  );
}
