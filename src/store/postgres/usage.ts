/**
 * Agents' persisted usage on PostgreSQL (table `agent_usage`): the batched upsert recordUse runs
 * after moving `lastUsedAt`, and the keyset-paged reads of AgentStore.getUsage / listUsage.
 */
import type { AgentUsageRecord, AgentUse, ListUsageQuery, Page } from '../ports.ts';
import { boundedPage, pageLimit } from '../paging.ts';
import {
  decodeUsageCursor,
  encodeUsageCursor,
  toUsage,
  USAGE_COLUMN,
  type UsageRow,
} from '../usage-paging.ts';
import type { StoreConnection } from './connection.ts';

/**
 * Adds `uses` (one entry per agent, in id order, so two nodes lock rows in the same order) to
 * their agents' rows in one statement; ids whose agent is gone insert nothing.
 */
export async function upsertUsage(conn: StoreConnection, uses: readonly AgentUse[]): Promise<void> {
  if (uses.length === 0) return;
  const col = (f: (u: AgentUse) => number) => uses.map(f);
  await conn.result(
    `INSERT INTO agent_usage AS t (agent_id, project, uses, successes, failures, latency_ms_total,
       latency_count, cost_usd, last_used_at)
     SELECT a.id, a.project, u.uses, u.successes, u.failures, u.latency_ms_total, u.latency_count,
       u.cost_usd, u.at
     FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::double precision[],
       $6::bigint[], $7::double precision[], $8::bigint[])
       AS u (id, uses, successes, failures, latency_ms_total, latency_count, cost_usd, at)
     JOIN agents a ON a.id = u.id
     ORDER BY a.id
     ON CONFLICT (agent_id) DO UPDATE SET uses = t.uses + excluded.uses,
       successes = t.successes + excluded.successes, failures = t.failures + excluded.failures,
       latency_ms_total = t.latency_ms_total + excluded.latency_ms_total,
       latency_count = t.latency_count + excluded.latency_count, cost_usd = t.cost_usd + excluded.cost_usd,
       last_used_at = greatest(t.last_used_at, excluded.last_used_at)`,
    [
      uses.map((u) => u.id),
      col((u) => u.runs?.uses ?? 0),
      col((u) => u.runs?.successes ?? 0),
      col((u) => u.runs?.failures ?? 0),
      col((u) => u.runs?.latencyMsTotal ?? 0),
      col((u) => u.runs?.latencyCount ?? 0),
      col((u) => u.runs?.costUsd ?? 0),
      col((u) => u.at),
    ],
  );
}

const SELECT = 'SELECT u.*, a.name FROM agent_usage u JOIN agents a ON a.id = u.agent_id';

export async function getUsage(conn: StoreConnection, id: string): Promise<AgentUsageRecord | undefined> {
  const [row] = await conn.rows<UsageRow>(`${SELECT} WHERE u.agent_id = $1`, [id]);
  return row && toUsage(row);
}

export async function listUsage(
  conn: StoreConnection,
  query: ListUsageQuery,
): Promise<Page<AgentUsageRecord>> {
  const limit = pageLimit(query.limit);
  const { sort, project } = query;
  const after = query.cursor === undefined ? undefined : decodeUsageCursor(sort, query.cursor);
  const c = `u.${USAGE_COLUMN[sort]}`;
  const where: string[] = [];
  const args: unknown[] = [];
  if (project !== undefined) {
    args.push(project);
    where.push(`u.project = $${args.length}`);
  }
  if (after !== undefined) {
    args.push(after.value, after.id);
    where.push(
      `(${c} < $${args.length - 1} OR (${c} = $${args.length - 1} AND u.agent_id > $${args.length}))`,
    );
  }
  args.push(limit + 1);
  const rows = await conn.rows<UsageRow>(
    `${SELECT} ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
     ORDER BY ${project !== undefined ? 'u.project, ' : ''}${c} DESC, u.agent_id LIMIT $${args.length}`,
    args,
  );
  return boundedPage(rows, limit, toUsage, (r) => encodeUsageCursor(sort, toUsage(r)));
}
