/**
 * Agents' persisted usage in the SQLite file (table `agent_usage`): the upsert recordUse runs in
 * its transaction, and the keyset-paged reads of AgentStore.getUsage / listUsage.
 */
import type Database from 'better-sqlite3';
import type { AgentUsageRecord, AgentUse, ListUsageQuery, Page, UsageSort } from './ports.ts';
import { boundedPage, pageLimit } from './paging.ts';
import {
  decodeUsageCursor,
  encodeUsageCursor,
  toUsage,
  USAGE_COLUMN,
  type UsageRow,
} from './usage-paging.ts';

const SELECT = `SELECT u.*, a.name FROM agent_usage u JOIN agents a ON a.id = u.agent_id`;

/** The statements of agents' usage on one connection. */
export class SqliteUsage {
  readonly #db: Database.Database;
  readonly #upsert: Database.Statement;
  readonly #get: Database.Statement<[string], UsageRow>;
  /** Listing statements by sort, scope and first/next page: at most 16, prepared when first used. */
  readonly #lists = new Map<string, Database.Statement<unknown[], UsageRow>>();

  constructor(db: Database.Database) {
    this.#db = db;
    // INSERT … SELECT: an id whose agent is gone inserts nothing (deleted meanwhile).
    this.#upsert = db.prepare(`
      INSERT INTO agent_usage (agent_id, project, uses, successes, failures, latency_ms_total,
        latency_count, cost_usd, last_used_at)
      SELECT id, project, @uses, @successes, @failures, @latencyMsTotal, @latencyCount, @costUsd, @at
      FROM agents WHERE id = @id
      ON CONFLICT (agent_id) DO UPDATE SET uses = uses + excluded.uses,
        successes = successes + excluded.successes, failures = failures + excluded.failures,
        latency_ms_total = latency_ms_total + excluded.latency_ms_total,
        latency_count = latency_count + excluded.latency_count, cost_usd = cost_usd + excluded.cost_usd,
        last_used_at = max(last_used_at, excluded.last_used_at)`);
    this.#get = db.prepare<[string], UsageRow>(`${SELECT} WHERE u.agent_id = ?`);
  }

  /** Adds one use to its agent's row (inside the caller's transaction). */
  record(use: AgentUse): void {
    const r = use.runs;
    this.#upsert.run({
      id: use.id,
      at: use.at,
      uses: r?.uses ?? 0,
      successes: r?.successes ?? 0,
      failures: r?.failures ?? 0,
      latencyMsTotal: r?.latencyMsTotal ?? 0,
      latencyCount: r?.latencyCount ?? 0,
      costUsd: r?.costUsd ?? 0,
    });
  }

  get(id: string): AgentUsageRecord | undefined {
    const row = this.#get.get(id);
    return row && toUsage(row);
  }

  list(query: ListUsageQuery): Page<AgentUsageRecord> {
    const limit = pageLimit(query.limit);
    const { sort, project } = query;
    const after = query.cursor === undefined ? undefined : decodeUsageCursor(sort, query.cursor);
    const statement = this.#list(sort, project !== undefined, after !== undefined);
    const args: unknown[] = [];
    if (project !== undefined) args.push(project);
    if (after !== undefined) args.push(after.value, after.value, after.id);
    args.push(limit + 1);
    return boundedPage(statement.iterate(...args), limit, toUsage, (r) =>
      encodeUsageCursor(sort, toUsage(r)),
    );
  }

  #list(sort: UsageSort, scoped: boolean, next: boolean): Database.Statement<unknown[], UsageRow> {
    const key = `${sort}:${scoped}:${next}`;
    let statement = this.#lists.get(key);
    if (statement === undefined) {
      const c = `u.${USAGE_COLUMN[sort]}`;
      const where = [
        ...(scoped ? ['u.project = ?'] : []),
        ...(next ? [`(${c} < ? OR (${c} = ? AND u.agent_id > ?))`] : []),
      ];
      statement = this.#db.prepare<unknown[], UsageRow>(
        `${SELECT} ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY ${scoped ? 'u.project, ' : ''}${c} DESC, u.agent_id LIMIT ?`,
      );
      this.#lists.set(key, statement);
    }
    return statement;
  }
}
