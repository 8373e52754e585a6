/**
 * Agents files: a YAML or JSON list of agent definitions (and, under `mcpServers:`, the MCP servers
 * they use: mcp-servers-file.ts) applied declaratively (`agentpool apply -f`, and `agentpool serve`
 * at start). Every entry is checked before anything is written (its
 * fields, then what it refers to: tools and model providers), so a bad entry applies nothing; a
 * failure while writing stops at that entry and says which agents were applied before it.
 */
import { resolve } from 'node:path';
import { AgentPoolError, isAgentPoolError } from '../core/errors.ts';
import { assertSlug, DEFAULT_PROJECT, parseAgentSpec } from '../registry/definition.ts';
import type { AgentRegistry, ApplyResult } from '../registry/registry.ts';
import { parseToolRef } from '../tools/catalog.ts';
import { readStructuredFile } from './config.ts';
import { isPlainObject } from '../core/options.ts';
import type { McpServers } from '../tools/mcp/mcp-servers.ts';
import { type AppliedMcpServer, applyMcpServers, parseMcpServersSection } from './mcp-servers-file.ts';

/** The bundled examples (`examples/agents.yaml` of the package), which `serve` applies when no file is configured. */
export const DEFAULT_AGENTS_FILE = resolve(import.meta.dirname, '../../examples/agents.yaml');

/** One entry of an agents file, checked: the project it goes to and the spec as the registry takes it. */
export interface AgentsFileEntry {
  /** Position in the file's list, from 0. */
  index: number;
  project: string;
  name: string;
  /** The entry without `project`: what `registry.apply` receives. */
  spec: Record<string, unknown>;
}

/** What applying one entry did. */
export interface AppliedAgent {
  project: string;
  name: string;
  result: ApplyResult;
  /** The agent's active version after applying. */
  version: number;
}

/** Options of {@link applyAgentsFile}. */
export interface ApplyAgentsFileOptions {
  /** Called after each agent is applied, in file order (to print progress). */
  onApplied?: (applied: AppliedAgent) => void;
  /** Called after each MCP server of `mcpServers:` is applied (before the agents). */
  onServerApplied?: (applied: AppliedMcpServer) => void;
}

/** Bad entries an error lists at most (the count says how many there were). */
const MAX_REPORTED_ENTRIES = 100;

function entryLabel(index: number, name: unknown): string {
  return typeof name === 'string' ? `agents[${index}] (${JSON.stringify(name)})` : `agents[${index}]`;
}

/**
 * Checks the parsed contents of an agents file, `{ agents: [spec, …] }` or a bare list, and returns
 * its entries. Errors are `VALIDATION_FAILED` naming the file, the entry and the field; when several
 * entries are bad, one error lists them all, one per line, and `details.errors` holds each one's
 * `{ message, index, name?, field? }`.
 */
export function parseAgentsFile(path: string, contents: unknown): AgentsFileEntry[] {
  let list: unknown = contents;
  if (isPlainObject(contents)) {
    const unknown = Object.keys(contents).find((key) => key !== 'agents' && key !== 'mcpServers');
    if (unknown !== undefined) {
      throw new AgentPoolError(
        'VALIDATION_FAILED',
        `agents file ${path} has an unknown key ${JSON.stringify(unknown)} (expected only "agents" and "mcpServers")`,
        { file: path, field: unknown },
      );
    }
    list = contents.agents ?? [];
  }
  if (!Array.isArray(list)) {
    throw new AgentPoolError(
      'VALIDATION_FAILED',
      `agents file ${path} must hold a list of agents, or an object with an "agents" list`,
      { file: path },
    );
  }
  // Every entry is checked, so one run of `apply` reports every mistake rather than the first.
  const seen = new Map<string, number>();
  const entries: AgentsFileEntry[] = [];
  const bad: AgentPoolError[] = [];
  list.forEach((raw: unknown, index) => {
    const name = isPlainObject(raw) ? raw.name : undefined;
    try {
      if (!isPlainObject(raw)) throw new AgentPoolError('VALIDATION_FAILED', 'must be an object');
      const { project: rawProject, ...spec } = raw;
      const project = rawProject === undefined ? DEFAULT_PROJECT : assertSlug('project', rawProject);
      const parsed = parseAgentSpec(spec);
      parsed.tools.forEach((ref) => parseToolRef(ref));
      const key = `${project}/${parsed.name}`;
      const earlier = seen.get(key);
      if (earlier !== undefined) {
        throw new AgentPoolError(
          'VALIDATION_FAILED',
          `repeats ${key}, already defined by agents[${earlier}]`,
        );
      }
      seen.set(key, index);
      entries.push({ index, project, name: parsed.name, spec });
    } catch (err) {
      if (!isAgentPoolError(err)) throw err;
      bad.push(
        new AgentPoolError(
          'VALIDATION_FAILED',
          `${entryLabel(index, name)}: ${err.message}`,
          { index, ...(typeof name === 'string' && { name }), ...err.details },
          { cause: err },
        ),
      );
    }
  });
  if (bad.length === 1) {
    // One bad entry: its own message and details (field, index, name), with the file.
    const [only] = bad as [AgentPoolError];
    throw new AgentPoolError(
      'VALIDATION_FAILED',
      `agents file ${path}: ${only.message}`,
      { file: path, ...only.details, errors: [{ message: only.message, ...only.details }] },
      { cause: only },
    );
  }
  if (bad.length > 1) {
    const shown = bad.slice(0, MAX_REPORTED_ENTRIES);
    const more = bad.length - shown.length;
    throw new AgentPoolError(
      'VALIDATION_FAILED',
      [
        `agents file ${path} has ${bad.length} bad entries:`,
        ...shown.map((e) => `  ${e.message}`),
        ...(more > 0 ? [`  … and ${more} more`] : []),
      ].join('\n'),
      { file: path, count: bad.length, errors: shown.map((e) => ({ message: e.message, ...e.details })) },
      { cause: bad[0] },
    );
  }
  return entries;
}

/** Reads and checks an agents file (`.json` as JSON, anything else as YAML). */
export function readAgentsFile(path: string): AgentsFileEntry[] {
  return parseAgentsFile(path, readStructuredFile(path, 'agents file'));
}

/**
 * Applies the file's MCP servers (`mcpServers:`, through `pool.mcp`), then every agent of the file
 * in order (`registry.apply`: created, updated or unchanged) and returns what each agent did. Every entry's references are checked first (`registry.validate`), so an
 * unknown tool or model provider anywhere in the file applies nothing. A failure while writing
 * stops at that entry; its error names the file and the entry, and `details.applied` lists the
 * agents applied before it.
 */
export async function applyAgentsFile(
  pool: {
    readonly agents: Pick<AgentRegistry, 'apply' | 'validate'>;
    readonly mcp?: Pick<McpServers, 'apply' | 'sessions'>;
  },
  path: string,
  options: ApplyAgentsFileOptions = {},
): Promise<AppliedAgent[]> {
  const contents = readStructuredFile(path, 'agents file');
  const entries = parseAgentsFile(path, contents);
  const servers = parseMcpServersSection(
    path,
    isPlainObject(contents) ? contents.mcpServers : undefined,
    pool.mcp,
  );
  if (servers.length > 0 && pool.mcp === undefined) {
    throw new AgentPoolError('VALIDATION_FAILED', `agents file ${path}: mcpServers cannot be applied here`, {
      file: path,
      field: 'mcpServers',
    });
  }
  for (const entry of entries) {
    try {
      await pool.agents.validate(entry.spec);
    } catch (err) {
      if (!isAgentPoolError(err)) throw err;
      throw new AgentPoolError(
        err.code,
        `agents file ${path}: ${entryLabel(entry.index, entry.name)}: ${err.message} (nothing was applied)`,
        { file: path, index: entry.index, name: entry.name, ...err.details },
        { cause: err },
      );
    }
  }
  if (pool.mcp !== undefined) await applyMcpServers(path, servers, pool.mcp, options.onServerApplied);
  const applied: AppliedAgent[] = [];
  for (const entry of entries) {
    try {
      const { agent, result } = await pool.agents.apply(entry.project, entry.spec);
      const done = { project: entry.project, name: agent.name, result, version: agent.activeVersion };
      applied.push(done);
      options.onApplied?.(done);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const appliedNames = applied.map((a) => `${a.project}/${a.name}`);
      throw new AgentPoolError(
        isAgentPoolError(err) ? err.code : 'INTERNAL_ERROR',
        `agents file ${path}: ${entryLabel(entry.index, entry.name)}: ${message} ` +
          `(applied before it: ${appliedNames.length === 0 ? 'none' : appliedNames.join(', ')})`,
        { file: path, index: entry.index, name: entry.name, applied },
        { cause: err },
      );
    }
  }
  return applied;
}
