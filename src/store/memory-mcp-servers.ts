/**
 * The in-memory McpServerStore: declarations live as long as the process (tests, and pools on the
 * memory store). Stored as JSON like the other adapters, so a caller's later change to the object
 * it put does not reach the store. Bounded by what the service above allows per project.
 */
import { AgentPoolError } from '../core/errors.ts';
import {
  mcpServerRecord,
  type McpServerPut,
  type McpServerStore,
  type McpServerDeclaration,
  type McpServerRecord,
} from './mcp-server-ports.ts';

interface Row {
  declaration: string;
  createdAt: number;
  updatedAt: number;
}

/** MCP server declarations in process memory. */
export class MemoryMcpServerStore implements McpServerStore {
  /** project → name → row */
  readonly #rows = new Map<string, Map<string, Row>>();
  #closed = false;

  async putMcpServer(
    project: string,
    name: string,
    declaration: McpServerDeclaration,
    now: number,
  ): Promise<McpServerPut> {
    this.#assertOpen();
    let servers = this.#rows.get(project);
    if (servers === undefined) this.#rows.set(project, (servers = new Map()));
    const previous = servers.get(name);
    const row = {
      declaration: JSON.stringify(declaration),
      createdAt: previous?.createdAt ?? now,
      updatedAt: now,
    };
    servers.set(name, row);
    return { record: this.#record(project, name, row), created: previous === undefined };
  }

  async getMcpServer(project: string, name: string): Promise<McpServerRecord | undefined> {
    this.#assertOpen();
    const row = this.#rows.get(project)?.get(name);
    return row === undefined ? undefined : this.#record(project, name, row);
  }

  async listMcpServers(project: string): Promise<McpServerRecord[]> {
    this.#assertOpen();
    const servers = this.#rows.get(project);
    if (servers === undefined) return [];
    return [...servers.keys()]
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
      .map((name) => this.#record(project, name, servers.get(name)!));
  }

  async deleteMcpServer(project: string, name: string): Promise<boolean> {
    this.#assertOpen();
    const servers = this.#rows.get(project);
    const deleted = servers?.delete(name) ?? false;
    if (servers?.size === 0) this.#rows.delete(project);
    return deleted;
  }

  async deleteProjectMcpServers(project: string): Promise<number> {
    this.#assertOpen();
    const n = this.#rows.get(project)?.size ?? 0;
    this.#rows.delete(project);
    return n;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #record(project: string, name: string, row: Row): McpServerRecord {
    return mcpServerRecord(project, name, row.declaration, row.createdAt, row.updatedAt);
  }

  #assertOpen(): void {
    if (this.#closed) throw new AgentPoolError('STORE_FAILED', 'the memory MCP server store is closed');
  }
}
