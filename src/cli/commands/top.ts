/**
 * `agentpool top`: the dashboard's live figures in a terminal, refreshed like `top`
 * (`GET /v1/pool/live` every `--interval` seconds): the pool, health, runs over the last minutes,
 * the slowest runs, money and models, and the cluster's nodes. `q` or Ctrl-C quits; `--once`
 * prints one frame and exits (for scripts), `--json` prints the live view's JSON once.
 */
import { AgentPoolClient, type ClientFlags } from '../http-client.ts';
import type { CliIo } from '../io.ts';
import type { LiveWindow, SlowRun } from '../../live-figures.ts';

/** Flags of `agentpool top`. */
export interface TopFlags extends ClientFlags {
  /** Seconds between frames. @default 2 */
  interval?: number;
  once?: boolean;
  json?: boolean;
}

/** Clears the terminal and moves the cursor home. */
const CLEAR = '\x1b[2J\x1b[H';

interface Budget {
  spentUsd: number;
  limitUsd: number | null;
}

/** `GET /v1/pool/live` as `top` reads it. */
interface LiveView {
  scope: 'pool' | 'project';
  project: string | null;
  at: number;
  stats: {
    active: number;
    maxActive?: number;
    hits: number;
    misses: number;
    activations: number;
    evictions?: number;
    waiting?: number;
    hitRatio: number;
    byState: Record<string, number>;
    byTier: Record<string, number>;
    models: { model: string; breaker: string; fallbacks?: number; retries?: number }[];
  };
  health: { status: string; checks: { name: string; status: string }[] };
  runs: LiveWindow['runs'] & { inFlight: { queued: number; running: number } };
  bucketMs: number;
  series: {
    runs: { succeeded: number; failed: number; cancelled: number };
    pool?: { active: number } | null;
  }[];
  slowest: SlowRun[];
  money: {
    projects: { project: string; today: Budget; month: Budget }[];
    topAgents: { name: string; project: string; uses: number; costUsd: number }[];
  };
  cluster: {
    mode: string;
    node: string;
    nodes: { id: string; runsInFlight: number; liveInstances: number }[];
  } | null;
}

const BARS = '▁▂▃▄▅▆▇█';

/** A one-line chart of `values`. */
function spark(values: readonly number[]): string {
  const max = Math.max(0, ...values);
  if (max === 0) return BARS[0]!.repeat(values.length);
  return values.map((v) => BARS[Math.min(7, Math.round((v / max) * 7))]).join('');
}

const usd = (n: number | null) => (n === null ? '-' : `$${n.toFixed(4)}`);
const ms = (n: number | null) => (n === null ? '-' : `${n} ms`);
const counts = (byKey: Record<string, number>) =>
  Object.entries(byKey)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ') || 'none';

/** The lines of one frame. */
function formatTop(v: LiveView, width = 60): string[] {
  const s = v.stats;
  const recent = v.series.slice(-width);
  const runsPerBucket = recent.map((b) => b.runs.succeeded + b.runs.failed + b.runs.cancelled);
  const lines = [
    `agentpool top — ${v.scope === 'pool' ? 'whole pool' : `project ${v.project}`} — ${new Date(v.at).toISOString()}   health ${v.health.status}`,
    '',
    `instances  ${s.active}${s.maxActive === undefined ? '' : ` / ${s.maxActive}`}   by state: ${counts(s.byState)}   by tier: ${counts(s.byTier)}`,
    `cache      hits ${s.hits}  misses ${s.misses}  hit ratio ${(s.hitRatio * 100).toFixed(1)}%  activations ${s.activations}${s.evictions === undefined ? '' : `  evictions ${s.evictions}`}${s.waiting === undefined ? '' : `  waiting ${s.waiting}`}`,
    `health     ${v.health.checks.map((c) => `${c.name} ${c.status}`).join(', ') || '-'}`,
    '',
    `runs       in flight ${v.runs.inFlight.running} running, ${v.runs.inFlight.queued} queued   last minute ${v.runs.lastMinute}`,
    `window     succeeded ${v.runs.succeeded}  failed ${v.runs.failed}  cancelled ${v.runs.cancelled}  p50 ${ms(v.runs.p50Ms)}  p99 ${ms(v.runs.p99Ms)}  cost ${usd(v.runs.cost)}`,
    `runs/${v.bucketMs / 1000}s   ${spark(runsPerBucket)}`,
  ];
  if (v.scope === 'pool') {
    lines.push(`instances  ${spark(recent.map((b) => b.pool?.active ?? 0))}`);
  }
  if (v.slowest.length > 0) {
    lines.push('', 'slowest runs');
    for (const r of v.slowest.slice(0, 5)) {
      lines.push(`  ${r.runId}  ${r.project}/${r.agent}  ${r.status}  ${r.durationMs} ms`);
    }
  }
  lines.push('', 'money      today / daily budget, month / monthly budget');
  for (const p of v.money.projects.slice(0, 10)) {
    lines.push(
      `  ${p.project.padEnd(20)} ${usd(p.today.spentUsd)} / ${usd(p.today.limitUsd)}   ${usd(p.month.spentUsd)} / ${usd(p.month.limitUsd)}`,
    );
  }
  if (v.money.topAgents.length > 0) {
    lines.push(
      `top cost   ${v.money.topAgents.map((a) => `${a.project}/${a.name} ${usd(a.costUsd)}`).join(', ')}`,
    );
  }
  if (s.models.length > 0) {
    lines.push(
      `models     ${s.models.map((m) => `${m.model} ${m.breaker}${m.fallbacks === undefined ? '' : ` (fallbacks ${m.fallbacks})`}`).join(', ')}`,
    );
  }
  const nodes = v.cluster?.nodes ?? [];
  if (nodes.length > 1) {
    lines.push('', 'nodes');
    for (const n of nodes) lines.push(`  ${n.id}  runs ${n.runsInFlight}  instances ${n.liveInstances}`);
  }
  return lines;
}

/** What `top` waits on between frames: a key press of `q` / Ctrl-C, or the next tick. */
interface TopInput {
  /** Resolves after `ms`, or early (true) when the user asked to quit. */
  wait(ms: number): Promise<boolean>;
  close(): void;
}

/** The terminal's keys: raw mode on a TTY, so `q` quits without Enter; SIGINT quits too. */
function terminalInput(): TopInput {
  const stdin = process.stdin;
  let quit = false;
  let wake: (() => void) | undefined;
  const stop = () => {
    quit = true;
    wake?.();
  };
  const onData = (data: Buffer) => {
    const key = data.toString();
    if (key === 'q' || key === 'Q' || key === '\u0003') stop();
  };
  if (stdin.isTTY) {
    stdin.setRawMode(true);
    stdin.on('data', onData);
    stdin.resume();
  }
  process.on('SIGINT', stop);
  return {
    wait: (waitMs) =>
      new Promise((resolve) => {
        if (quit) return resolve(true);
        const timer = setTimeout(() => resolve(quit), waitMs);
        wake = () => {
          clearTimeout(timer);
          resolve(true);
        };
      }),
    close: () => {
      process.off('SIGINT', stop);
      if (stdin.isTTY) {
        stdin.off('data', onData);
        stdin.setRawMode(false);
        stdin.pause();
      }
    },
  };
}

/** Prints frames of the live view until `q`, Ctrl-C, or after one with `--once` / `--json`. */
export async function topCommand(
  flags: TopFlags,
  io: CliIo,
  input: () => TopInput = terminalInput,
): Promise<void> {
  const client = AgentPoolClient.from(flags, io.env);
  const path =
    flags.project === undefined
      ? '/v1/pool/live'
      : `/v1/pool/live?project=${encodeURIComponent(flags.project)}`;
  const read = () => client.request<LiveView>('GET', path);
  if (flags.json === true) {
    io.out(JSON.stringify(await read(), null, 2));
    return;
  }
  if (flags.once === true) {
    for (const line of formatTop(await read())) io.out(line);
    return;
  }
  const keys = input();
  try {
    for (;;) {
      const frame = formatTop(await read(), Math.max(10, (process.stdout.columns ?? 80) - 12));
      io.out(`${CLEAR}${frame.join('\n')}\n\n(q to quit)`);
      if (await keys.wait((flags.interval ?? 2) * 1000)) return;
    }
  } finally {
    keys.close();
  }
}
