/**
 * The working-set checkpoint across a restart: the cache hit ratio of the first 10,000 requests
 * after a node restarts, without a checkpoint (it starts cold) and with one (it prewarms its last
 * working set and restores TinyLFU's frequency sketch before saying ready), against the hit ratio
 * the node had before it stopped. Drives real pools (createAgentPool) on one SQLite file through
 * acquire and release, on a Zipf trace: what is measured is what ships.
 *
 *   node bench/restart.bench.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AgentPool, createAgentPool } from '../src/agent-pool.ts';
import type { CheckpointOptions } from '../src/pool/checkpoint-options.ts';
import { table, writeResult } from './harness.ts';
import { zipfTrace } from './traces.ts';

const AGENTS = 5000;
const MAX_ACTIVE = 500;
const BEFORE = 100_000;
const AFTER = 10_000;
const P = 'default';

/** Hits among `trace[from, to)`, acquiring and releasing each agent in turn. */
async function serve(pool: AgentPool, trace: Int32Array, from: number, to: number): Promise<number> {
  const hits0 = pool.instances.stats().hits;
  for (let i = from; i < to; i++) {
    const name = `agent-${trace[i]}`;
    const lease = pool.instances.tryAcquire(P, name) ?? (await pool.instances.acquire(P, name));
    lease.release();
  }
  return pool.instances.stats().hits - hits0;
}

interface Row {
  variant: string;
  s: number;
  hitRatio: number;
  /** Hit ratio in the first 1,000 requests alone. */
  firstThousand: number;
  warmed: number;
  warmupMs: number;
}

async function restart(
  dir: string,
  trace: Int32Array,
  variant: string,
  s: number,
  checkpoint: CheckpointOptions,
): Promise<Row> {
  const pool = await createAgentPool({
    dataDir: dir,
    pool: { maxActive: MAX_ACTIVE, maxIdleMs: 0, checkpoint },
  });
  try {
    const report = await pool.checkpoint.start();
    const first = await serve(pool, trace, BEFORE, BEFORE + 1000);
    const rest = await serve(pool, trace, BEFORE + 1000, BEFORE + AFTER);
    return {
      variant,
      s,
      hitRatio: (first + rest) / AFTER,
      firstThousand: first / 1000,
      warmed: report?.warmed ?? 0,
      warmupMs: report?.durationMs ?? 0,
    };
  } finally {
    await pool.close(); // with a checkpoint, saves over the one read: the caller puts it back
  }
}

const rows: Row[] = [];
for (const s of [0.8, 1.0]) {
  const dir = mkdtempSync(join(tmpdir(), 'agentpool-restart-bench-'));
  try {
    const trace = zipfTrace({ keys: AGENTS, s, requests: BEFORE + AFTER, seed: 12 });
    const setup = await createAgentPool({ dataDir: dir, pool: { maxActive: MAX_ACTIVE, maxIdleMs: 0 } });
    for (let i = 0; i < AGENTS; i++) await setup.agents.create(P, { name: `agent-${i}` });
    await setup.checkpoint.start();
    await serve(setup, trace, 0, BEFORE - AFTER);
    const steady = await serve(setup, trace, BEFORE - AFTER, BEFORE);
    await setup.close(); // saves the working set
    rows.push({
      variant: 'before the restart (steady state)',
      s,
      hitRatio: steady / AFTER,
      firstThousand: NaN,
      warmed: 0,
      warmupMs: 0,
    });
    // Each variant restarts from the same checkpoint (one without it saves none; after one with
    // it, the checkpoint read is put back).
    rows.push(await restart(dir, trace, 'restart without checkpoint', s, { enabled: false }));
    const saved = await snapshotOf(dir);
    rows.push(
      await restart(dir, trace, 'restart with checkpoint, warmupCount 100', s, {
        warmupCount: 100,
      }),
    );
    await restoreSnapshot(dir, saved);
    rows.push(
      await restart(
        dir,
        trace,
        `restart with checkpoint (default warmupCount: all ${MAX_ACTIVE - 1})`,
        s,
        {},
      ),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.error(
    rows
      .filter((r) => r.s === s)
      .map((r) => `${r.variant}: ${(100 * r.hitRatio).toFixed(1)}%`)
      .join('\n'),
  );
}

/** The checkpoint row as saved, so each variant starts from the same one. */
async function snapshotOf(dir: string) {
  const { openSqliteStores } = await import('../src/store/sqlite-stores.ts');
  const stores = openSqliteStores(join(dir, 'agentpool.db'), { workingSets: true });
  try {
    return await stores.workingSets!.loadWorkingSet('local');
  } finally {
    await Promise.all([
      stores.agents.close(),
      stores.runs.close(),
      stores.projects.close(),
      stores.workingSets!.close(),
    ]);
  }
}

async function restoreSnapshot(dir: string, saved: Awaited<ReturnType<typeof snapshotOf>>) {
  if (saved === undefined) return;
  const { openSqliteStores } = await import('../src/store/sqlite-stores.ts');
  const stores = openSqliteStores(join(dir, 'agentpool.db'), { workingSets: true });
  try {
    await stores.workingSets!.saveWorkingSet(saved);
  } finally {
    await Promise.all([
      stores.agents.close(),
      stores.runs.close(),
      stores.projects.close(),
      stores.workingSets!.close(),
    ]);
  }
}

const pct = (x: number) => (Number.isNaN(x) ? '—' : (100 * x).toFixed(1));
writeResult({
  name: 'restart',
  title: 'Restart: hit ratio of the first 10,000 requests with and without the working-set checkpoint',
  command: 'node bench/restart.bench.ts',
  summary: [
    `${AGENTS.toLocaleString('en-US')} agents on one SQLite file, \`maxActive\` ${MAX_ACTIVE}, tinylfu; ${BEFORE.toLocaleString('en-US')} Zipf requests before the restart (the node saves its working set as it stops), then the next ${AFTER.toLocaleString('en-US')} of the same trace after it. "Before the restart" is the hit ratio of the last ${AFTER.toLocaleString('en-US')} requests before it stopped. A prewarm's activations are not counted as misses of the trace (they happen before the node says ready).`,
    '',
    table(
      ['Zipf s', 'variant', 'hit ratio %', 'first 1,000 %', 'prewarmed', 'prewarm ms'],
      rows.map((r) => [
        r.s,
        r.variant,
        pct(r.hitRatio),
        pct(r.firstThousand),
        r.warmed,
        r.warmupMs.toFixed(0),
      ]),
    ),
  ].join('\n'),
  data: { agents: AGENTS, maxActive: MAX_ACTIVE, before: BEFORE, after: AFTER, rows },
});
