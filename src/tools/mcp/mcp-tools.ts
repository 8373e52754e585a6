/**
 * MCP tools as agentpool tools: the names the model sees (`<server>__<tool>`, made unambiguous and
 * short enough), each listed tool turned into a {@link Tool} whose calls go through the server's
 * shared session, and the live set of one reference (`mcp:<server>` or `mcp:<server>/<tool>`) that
 * follows the server's cached list: rebuilt when the list's version changes, never waiting on it.
 */
import { createHash } from 'node:crypto';
import type { JSONSchema7 } from '@ai-sdk/provider';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { AgentPoolError } from '../../core/errors.ts';
import { defineTool, type Tool } from '../tool.ts';
import type { ListedTool, McpSession, ToolList } from './session.ts';

/** Longest tool name model providers accept. */
const MAX_NAME = 64;

/**
 * The names the model sees for a server's tools, by MCP tool name: `<server>__<tool>`, characters
 * outside `[a-zA-Z0-9_-]` replaced by `_`. A name longer than 64 characters, or one another tool of
 * the list already took (two MCP names sanitised alike), is cut and ends with `_` and 8 hex digits
 * of the MCP name's SHA-256, so it stays stable and distinct. Server names hold no `_`, so the
 * first `__` always splits server from tool.
 */
export function modelToolNames(server: string, tools: readonly { name: string }[]): Map<string, string> {
  const names = new Map<string, string>();
  const taken = new Set<string>();
  for (const { name } of tools) {
    let candidate = `${server}__${name.replace(/[^a-zA-Z0-9_-]/g, '_')}`;
    if (candidate.length > MAX_NAME || taken.has(candidate)) {
      const suffix = `_${createHash('sha256').update(name).digest('hex').slice(0, 8)}`;
      candidate = candidate.slice(0, MAX_NAME - suffix.length) + suffix;
    }
    taken.add(candidate);
    names.set(name, candidate);
  }
  return names;
}

/** What a tool result becomes for the model: structured content, the text, or the content items. */
export function toolOutput(server: string, tool: string, result: CallToolResult): unknown {
  const text = (): string =>
    result.content
      .filter((c) => c.type === 'text')
      .map((c) => c.text)
      .join('\n');
  if (result.isError === true) {
    const message = text();
    throw new AgentPoolError(
      'TOOL_FAILED',
      `MCP tool "${tool}" of "${server}" failed${message === '' ? '' : `: ${message}`}`,
      { server, tool },
    );
  }
  if (result.structuredContent !== undefined) return result.structuredContent;
  const [only] = result.content;
  if (result.content.length === 1 && only?.type === 'text') return only.text; // the usual answer
  if (result.content.every((c) => c.type === 'text')) return text();
  return result.content;
}

/** Where a reference's tools get their session: the current one of the server and identity. */
export type SessionSource = () => McpSession;

/** Turns a listed tool into a Tool calling it through `session()`; undefined when its schema is unusable. */
function toTool(
  server: string,
  listed: ListedTool,
  name: string,
  session: SessionSource,
  prepare: (tool: Tool) => Tool,
): Tool | undefined {
  const { $schema: _dialect, ...schema } = listed.inputSchema as Record<string, unknown>;
  try {
    return prepare(
      defineTool({
        name,
        description:
          listed.description ?? listed.title ?? `The tool "${listed.name}" of the MCP server "${server}".`,
        inputSchema: { ...schema, type: 'object' } as JSONSchema7,
        execute: async (input, ctx) =>
          toolOutput(server, listed.name, await session().call(listed.name, input, ctx.signal)),
        ownTimeout: true, // the session's call timeout (the declaration's timeoutMs)
      }),
    );
  } catch {
    return undefined; // a schema ajv cannot compile: the tool is left out rather than failing the agent
  }
}

/**
 * A tool the list does not (yet) show, named by `mcp:<server>/<tool>` while the server is
 * unreachable: calls go to the server anyway (and fail fast with `MCP_UNAVAILABLE` while its
 * breaker is open); it takes any object until the list says more.
 */
function placeholder(
  server: string,
  tool: string,
  name: string,
  session: SessionSource,
  prepare: (tool: Tool) => Tool,
): Tool {
  return prepare(
    defineTool({
      name,
      description: `The tool "${tool}" of the MCP server "${server}" (its description is not known yet).`,
      inputSchema: { type: 'object' } as JSONSchema7,
      execute: async (input, ctx) => toolOutput(server, tool, await session().call(tool, input, ctx.signal)),
      ownTimeout: true,
    }),
  );
}

/**
 * The tools of one reference, following the server's cached list: `current()` is a lookup while
 * the list is unchanged, a rebuild when its version moved; it never waits for `tools/list`.
 */
export class McpToolSet {
  readonly #server: string;
  readonly #tool: string | null;
  readonly #session: SessionSource;
  readonly #prepare: (tool: Tool) => Tool;
  #built: { list: ToolList | undefined; tools: readonly Tool[] } | undefined;

  constructor(server: string, tool: string | null, session: SessionSource, prepare: (tool: Tool) => Tool) {
    this.#server = server;
    this.#tool = tool;
    this.#session = session;
    this.#prepare = prepare;
  }

  /**
   * The tools as of the cached list (a refresh past the TTL starts in the background). A new
   * session (the declaration changed) keeps the tools of the last list until its own arrives.
   */
  current(): readonly Tool[] {
    let list: ToolList | undefined;
    const built = this.#built;
    try {
      list = this.#session().cachedTools();
      if (list === undefined && built?.list !== undefined) return built.tools;
    } catch {
      list = undefined; // deleted, or its credentials cannot be resolved now: calls say why
    }
    if (built !== undefined && built.list === list) return built.tools;
    const tools = this.#build(list);
    this.#built = { list, tools };
    return tools;
  }

  /**
   * At activation: `TOOL_NOT_FOUND` when `mcp:<server>/<tool>` names a tool the server's list
   * lacks. (A tool that leaves the list later simply leaves the agent's tools.)
   */
  assertFound(): void {
    const list = this.#built?.list;
    if (this.#tool === null || list === undefined || list.tools.some((t) => t.name === this.#tool)) return;
    throw new AgentPoolError(
      'TOOL_NOT_FOUND',
      `the MCP server "${this.#server}" has no tool "${this.#tool}" (it has: ${list.tools.map((t) => t.name).join(', ') || 'none'})`,
      { server: this.#server, tool: this.#tool },
    );
  }

  #build(list: ToolList | undefined): readonly Tool[] {
    const server = this.#server;
    if (list === undefined) {
      if (this.#tool === null) return [];
      const [name] = modelToolNames(server, [{ name: this.#tool }]).values();
      return [placeholder(server, this.#tool, name!, this.#session, this.#prepare)];
    }
    const names = modelToolNames(server, list.tools);
    const wanted = this.#tool === null ? list.tools : list.tools.filter((t) => t.name === this.#tool);
    const tools: Tool[] = [];
    for (const listed of wanted) {
      const tool = toTool(server, listed, names.get(listed.name)!, this.#session, this.#prepare);
      if (tool !== undefined) tools.push(tool);
    }
    return tools;
  }
}
