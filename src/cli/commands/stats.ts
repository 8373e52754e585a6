/**
 * `agentpool stats`: a compact summary of a running server's pool (`GET /v1/pool/stats`, the
 * pool's `PoolStats`): instances against the bound, states and tiers, cache hits, activations
 * and their latency, deactivations by cause, and tool calls with the module loader's figures.
 */
import type { PoolStats } from '../../pool/pool.ts';
import type { ModuleVersionStats } from '../../tools/module-tools.ts';
import type { ToolFigureRow } from '../../tools/tool-figures.ts';
import { AgentPoolClient, type ClientFlags } from '../http-client.ts';
import type { CliIo } from '../io.ts';

/** Flags of `agentpool stats`. */
export interface StatsFlags extends ClientFlags {
  json?: boolean;
}

/**
 * `PoolStats` as it arrives over JSON: an empty histogram's NaN quantiles come as `null`, and
 * fields a server of another version lacks may be missing.
 */
type WireStats = Partial<Omit<PoolStats, 'activationLatencyMs'>> & {
  activationLatencyMs?: { count?: number; p50?: number | null; p99?: number | null };
  tools?: { sources?: Partial<ToolFigureRow>[]; modules?: Partial<ModuleVersionStats> };
};

/** Prints the pool's stats as a few labelled lines (or the raw JSON). */
export async function statsCommand(flags: StatsFlags, io: CliIo): Promise<void> {
  const client = AgentPoolClient.from(flags, io.env);
  const stats = await client.request<WireStats>('GET', '/v1/pool/stats');
  if (flags.json === true) {
    io.out(JSON.stringify(stats, null, 2));
    return;
  }
  for (const line of formatStats(stats)) io.out(line);
}

/** The summary lines of `agentpool stats`. */
export function formatStats(s: WireStats): string[] {
  const n = (v: number | undefined) => (v === undefined ? '?' : String(v));
  const counts = (byKey: Record<string, number> | undefined) => {
    const parts = Object.entries(byKey ?? {})
      .filter(([, count]) => count > 0)
      .map(([key, count]) => `${key} ${count}`);
    return parts.length > 0 ? parts.join(', ') : 'none';
  };
  const ms = (v: number | null | undefined) =>
    typeof v === 'number' && Number.isFinite(v) ? `${v} ms` : '-';
  const ratio =
    typeof s.hitRatio === 'number' && Number.isFinite(s.hitRatio) ? `${(s.hitRatio * 100).toFixed(1)}%` : '-';
  const latency = s.activationLatencyMs;
  // The policy's name; its internals are in --json.
  const policy = String(s.policy?.name ?? s.policy?.policy ?? '');
  return [
    `active       ${n(s.active)} / ${n(s.maxActive)}  (resident ${n(s.resident)}, one-shot ${n(s.oneShot)}, activating ${n(s.activating)}, pinned ${n(s.pinned)}, waiting ${n(s.waiting)})`,
    `by state     ${counts(s.byState)}`,
    `by tier      ${counts(s.byTier)}`,
    `cache        ${n(s.hits)} hits / ${n(s.misses)} misses, hit ratio ${ratio}`,
    `activations  ${n(s.activations)} (${n(s.activationFailures)} failed), p50 ${ms(latency?.p50)}, p99 ${ms(latency?.p99)}`,
    `evictions    ${n(s.evictions)}  (idle ${n(s.idleDeactivations)}, retired ${n(s.retirements)}, deactivations ${n(s.deactivations)}, acquire timeouts ${n(s.acquireTimeouts)})`,
    ...(policy === '' ? [] : [`policy       ${policy}`]),
    ...(s.tools === undefined ? [] : [toolsLine(s.tools)]),
  ];
}

/** Tool calls summed over sources, and the module loader's figures. */
function toolsLine(tools: NonNullable<WireStats['tools']>): string {
  let calls = 0;
  let errors = 0;
  let timeouts = 0;
  for (const row of tools.sources ?? []) {
    calls += row.calls ?? 0;
    errors += row.errors ?? 0;
    timeouts += row.timeouts ?? 0;
  }
  const m = tools.modules ?? {};
  const n = (v: number | undefined) => (v === undefined ? '?' : String(v));
  return `tools        ${calls} calls (${errors} failed, ${timeouts} timed out); modules ${n(m.modules)} cached, ${n(m.loads)} loads, ${n(m.reloads)} reloads, ${n(m.cacheHits)} cache hits, ${n(m.reloadsRefused)} reloads refused`;
}
