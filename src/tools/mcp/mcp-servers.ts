/**
 * The MCP servers of a pool: each project's declarations (put, get, list, delete, through the
 * McpServerStore every node shares, shown back with their secrets hidden), and the resolution of
 * `mcp:` tool references into live tool sets over the shared sessions. What the routes, the config
 * file, `apply -f` and the tool catalog call.
 */
import type { JSONSchema7 } from '@ai-sdk/provider';
import type { Clock } from '../../core/clock.ts';
import { AgentPoolError, isAgentPoolError, validationError } from '../../core/errors.ts';
import type { McpServerDeclaration, McpServerRecord, McpServerStore } from '../../store/mcp-server-ports.ts';
import type { Tool } from '../tool.ts';
import type { ToolListing } from '../tool-listing.ts';
import {
  checkMcpServerName,
  type DeclarationWriter,
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

/** Told to the other nodes of a cluster when a declaration is put or deleted. */
export interface McpServerChangedEvent {
  readonly type: 'mcp.server_changed';
  readonly at: number;
  /** The node that took the change (it ignores its own event). */
  readonly node: string;
  readonly project: string;
  readonly server: string;
}

/** What {@link McpServers} is built from. */
export interface McpServersDeps {
  readonly store: McpServerStore;
  readonly sessions: McpSessions;
  readonly clock: Clock;
  /** Tells the other nodes of a cluster of a changed declaration (they call {@link McpServers.changedElsewhere}). */
  readonly share?: (event: McpServerChangedEvent) => void;
  /** This node's id, in the events it shares. @default 'local' */
  readonly nodeId?: string;
}

/** The declaration the live tools of one server use now; undefined once deleted. */
interface HeldDeclaration {
  declaration: McpServerDeclaration | undefined;
}

/** Declared MCP servers and their tools. */
export class McpServers implements McpToolProvider {
  readonly sessions: McpSessions;
  readonly #deps: McpServersDeps;
  /**
   * By `project` NUL `server`, the declaration of the servers whose tools live instances hold, so
   * a put or delete reaches them at their next call without an activation; a delete forgets the
   * entry, so the map holds declared servers only.
   */
  readonly #held = new Map<string, HeldDeclaration>();

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
    return this.#put(project, name, parseMcpServerDeclaration(body, writer, this.sessions.options, 'body'));
  }

  async #put(
    project: string,
    name: string,
    declaration: McpServerDeclaration,
  ): Promise<{ server: McpServerRecord; created: boolean }> {
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
    await this.#changed(project, name, put.record.declaration);
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
    return (await this.#put(project, name, declaration)).created ? 'created' : 'updated';
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
    await this.#changed(project, name, undefined);
  }

  /**
   * Another node put or deleted `project`'s server `server`: the declaration is read again and its
   * sessions here close, as on the node that took the change.
   */
  async changedElsewhere({ node, project, server }: McpServerChangedEvent): Promise<void> {
    if (node === (this.#deps.nodeId ?? 'local')) return; // told back by the relay: applied already
    const held = this.#held.get(heldKey(project, server));
    if (held === undefined) {
      await this.sessions.forget(project, server);
      return;
    }
    const declaration = (await this.#deps.store.getMcpServer(project, server))?.declaration;
    // A late or repeated message about what this node already has: nothing to redo.
    if (JSON.stringify(declaration) === JSON.stringify(held.declaration)) return;
    await this.#changed(project, server, declaration, false);
  }

  /** Forgets a deleted project's servers and sessions. */
  async forgetProject(project: string): Promise<void> {
    await this.#deps.store.deleteProjectMcpServers(project);
    for (const key of this.#held.keys()) if (key.startsWith(`${project}\u0000`)) this.#held.delete(key);
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
    const key = heldKey(project, server);
    let held = this.#held.get(key);
    if (held === undefined) this.#held.set(key, (held = { declaration }));
    else held.declaration = declaration;
    let session: McpSession | undefined;
    // A put or delete retires the sessions: the next call takes the declaration as it is now.
    const source = (): McpSession => {
      if (session === undefined || session.retired) {
        if (held.declaration === undefined) throw notFound(project, server);
        session = sessions.session(project, server, held.declaration);
      }
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

  /**
   * Applies a put (`declaration`) or delete (undefined) of `project`'s server `name` on this node:
   * the live tools of it take the new declaration at their next call, its sessions close, and a
   * listing with the new declaration starts so the next run finds the tools; told to the other
   * nodes unless it came from one.
   */
  async #changed(
    project: string,
    name: string,
    declaration: McpServerDeclaration | undefined,
    share = true,
  ): Promise<void> {
    const key = heldKey(project, name);
    const held = this.#held.get(key);
    if (held !== undefined) held.declaration = declaration;
    // The live tools of a deleted server keep their holder (undefined: they fail); the map forgets it.
    if (declaration === undefined) this.#held.delete(key);
    await this.sessions.forget(project, name);
    if (held !== undefined && declaration !== undefined) {
      // Errors are the breaker's and the next call's to report.
      this.sessions
        .session(project, name, declaration)
        .tools()
        .catch(() => undefined);
    }
    if (share) {
      const node = this.#deps.nodeId ?? 'local';
      this.#deps.share?.({
        type: 'mcp.server_changed',
        at: this.#deps.clock.now(),
        node,
        project,
        server: name,
      });
    }
  }

  async #record(project: string, name: string): Promise<McpServerRecord> {
    const record = await this.#deps.store.getMcpServer(project, name);
    if (record === undefined) throw notFound(project, name);
    return record;
  }
}

function heldKey(project: string, server: string): string {
  return `${project}\u0000${server}`;
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
