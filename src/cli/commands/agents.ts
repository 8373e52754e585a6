/**
 * `agentpool agents ls|get|rm`: lists, shows and deletes the agents of a running server over
 * its HTTP API (`GET /v1/agents`, `GET|DELETE /v1/agents/{name}`).
 */
import { AgentPoolClient, type ClientFlags } from '../http-client.ts';
import type { CliIo } from '../io.ts';
import { formatTable, printRecord } from '../output.ts';

export type { ClientFlags } from '../http-client.ts';

/** Flags of `agentpool agents ls`. */
export interface AgentsLsFlags extends ClientFlags {
  /** `key=value` filters; all must match. */
  label?: string[];
  /** One page of this many; without it every page is followed. */
  limit?: number;
  json?: boolean;
}

/** Flags of `agentpool agents get`. */
export interface AgentsGetFlags extends ClientFlags {
  json?: boolean;
}

/** The parts of an agent (the `Agent` schema) the commands print. */
interface AgentView {
  id: string;
  project: string;
  name: string;
  activeVersion: number;
  latestVersion: number;
  spec: { model?: string; tier?: string; tools?: string[] } & Record<string, unknown>;
  createdAt: number;
  updatedAt: number;
  lastUsedAt: number;
  expiresAt: number | null;
}

/** Lists agents as a table (or JSON), following `nextCursor` unless `--limit` asks for one page. */
export async function agentsLsCommand(flags: AgentsLsFlags, io: CliIo): Promise<void> {
  const client = AgentPoolClient.from(flags, io.env);
  const label = flags.label !== undefined && flags.label.length > 0 ? flags.label : undefined;
  const { data: all, nextCursor } = await client.list<AgentView>('/v1/agents', { label }, flags.limit);
  if (flags.json === true) {
    io.out(JSON.stringify({ data: all, nextCursor }, null, 2));
    return;
  }
  if (all.length === 0) {
    io.err(label === undefined ? 'no agents' : `no agents with ${label.join(', ')}`);
    return;
  }
  for (const line of formatAgentsTable(all)) io.out(line);
  if (flags.limit !== undefined && nextCursor !== null) {
    io.err(`(more agents: raise --limit, or leave it out to list them all)`);
  }
}

/** The `agents ls` table: NAME / VERSION / MODEL / TIER / TOOLS, columns padded to fit. */
export function formatAgentsTable(agents: readonly AgentView[]): string[] {
  return formatTable([
    ['NAME', 'VERSION', 'MODEL', 'TIER', 'TOOLS'],
    ...agents.map((a) => [
      a.name,
      String(a.activeVersion),
      a.spec.model ?? '-',
      a.spec.tier ?? '-',
      a.spec.tools !== undefined && a.spec.tools.length > 0 ? a.spec.tools.join(',') : '-',
    ]),
  ]);
}

/** Prints one agent with its active definition, as YAML (or JSON). */
export async function agentsGetCommand(name: string, flags: AgentsGetFlags, io: CliIo): Promise<void> {
  const client = AgentPoolClient.from(flags, io.env);
  const agent = await client.request<AgentView>('GET', `/v1/agents/${encodeURIComponent(name)}`);
  if (flags.json === true) {
    printRecord(io, agent, true);
    return;
  }
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  const view = {
    name: agent.name,
    id: agent.id,
    project: agent.project,
    version: agent.activeVersion,
    latestVersion: agent.latestVersion,
    createdAt: iso(agent.createdAt),
    updatedAt: iso(agent.updatedAt),
    lastUsedAt: iso(agent.lastUsedAt),
    expiresAt: iso(agent.expiresAt),
    spec: agent.spec,
  };
  printRecord(io, view, false);
}

/** Deletes an agent and its versions; prints `deleted <name>`. */
export async function agentsRmCommand(name: string, flags: ClientFlags, io: CliIo): Promise<void> {
  const client = AgentPoolClient.from(flags, io.env);
  await client.request<undefined>('DELETE', `/v1/agents/${encodeURIComponent(name)}`);
  io.out(`deleted ${name}`);
}
