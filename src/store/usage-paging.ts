/**
 * What every adapter shares of agents' persisted usage (AgentStore.getUsage / listUsage): the
 * column each sort orders by, keyset cursors carrying that value and the agent id, and the sum of
 * run figures, so the three adapters page and add up identically (the conformance suite checks).
 */
import { validationError } from '../core/errors.ts';
import { decodeCursor, encodeCursor } from './paging.ts';
import type { AgentRunTotals, AgentUsageRecord, UsageSort } from './ports.ts';

/** Where a page of a usage listing continues: after this value and id. */
export interface UsageCursor {
  readonly value: number;
  readonly id: string;
}

/** The cursor after `record` in a listing sorted by `sort`. */
export function encodeUsageCursor(sort: UsageSort, record: AgentUsageRecord): string {
  return encodeCursor(`usage-${sort}`, `${usageValue(sort, record)}:${record.agentId}`);
}

/** Decodes a cursor of a listing sorted by `sort`; `VALIDATION_FAILED` for another listing's. */
export function decodeUsageCursor(sort: UsageSort, cursor: string): UsageCursor {
  const text = decodeCursor(`usage-${sort}`, cursor);
  const at = text.indexOf(':');
  const value = Number(text.slice(0, at));
  if (at < 0 || !Number.isFinite(value)) throw validationError('cursor', 'is not a cursor of this listing');
  return { value, id: text.slice(at + 1) };
}

/** The value `record` is ordered by under `sort`. */
export function usageValue(sort: UsageSort, record: AgentUsageRecord): number {
  switch (sort) {
    case 'uses':
      return record.uses;
    case 'recent':
      return record.lastUsedAt;
    case 'failures':
      return record.failures;
    case 'cost':
      return record.costUsd;
  }
}

/** True when `record` comes after the cursor in the listing's order. */
export function isAfterUsageCursor(sort: UsageSort, record: AgentUsageRecord, after: UsageCursor): boolean {
  const v = usageValue(sort, record);
  return v < after.value || (v === after.value && record.agentId > after.id);
}

/** Orders records as a listing sorted by `sort` does. */
export function compareUsage(sort: UsageSort, a: AgentUsageRecord, b: AgentUsageRecord): number {
  const d = usageValue(sort, b) - usageValue(sort, a);
  return d !== 0 ? d : a.agentId < b.agentId ? -1 : a.agentId > b.agentId ? 1 : 0;
}

/** Zero run figures. */
export function zeroRunTotals(): AgentRunTotals {
  return { uses: 0, successes: 0, failures: 0, latencyMsTotal: 0, latencyCount: 0, costUsd: 0 };
}

/** `a + b`, field by field. */
export function addRunTotals(a: AgentRunTotals, b: AgentRunTotals): AgentRunTotals {
  return {
    uses: a.uses + b.uses,
    successes: a.successes + b.successes,
    failures: a.failures + b.failures,
    latencyMsTotal: a.latencyMsTotal + b.latencyMsTotal,
    latencyCount: a.latencyCount + b.latencyCount,
    costUsd: a.costUsd + b.costUsd,
  };
}

/** A row of `agent_usage` joined with its agent's name, as the SQL adapters read it. */
export interface UsageRow {
  agent_id: string;
  project: string;
  name: string;
  uses: number;
  successes: number;
  failures: number;
  latency_ms_total: number;
  latency_count: number;
  cost_usd: number;
  last_used_at: number;
}

/** The column each sort orders by in the SQL adapters; fixed names, never input. */
export const USAGE_COLUMN: Readonly<Record<UsageSort, string>> = {
  uses: 'uses',
  recent: 'last_used_at',
  failures: 'failures',
  cost: 'cost_usd',
};

/** A usage row as the port hands it out. */
export function toUsage(r: UsageRow): AgentUsageRecord {
  return {
    agentId: r.agent_id,
    project: r.project,
    name: r.name,
    uses: r.uses,
    successes: r.successes,
    failures: r.failures,
    latencyMsTotal: r.latency_ms_total,
    latencyCount: r.latency_count,
    costUsd: r.cost_usd,
    lastUsedAt: r.last_used_at,
  };
}
