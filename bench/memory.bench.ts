/**
 * Memory: heap bytes per active instance, heap bytes per registered-but-inactive agent, and RSS
 * with 1,000,000 agents registered in SQLite and 10,000 active. The baseline is the same process
 * before the agents are registered and before they are activated.
 *
 *   node --expose-gc bench/memory.bench.ts [registered=1000000] [active=10000]
 */
import { createAgentPool } from '../src/index.ts';
import { tempDir } from '../test/support/temp-dir.ts';
import { table, writeResult } from './harness.ts';

const REGISTERED = Number(process.argv[2] ?? 1_000_000);
const ACTIVE = Number(process.argv[3] ?? 10_000);
const P = 'bench';
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc');

function settle(): { heap: number; rss: number } {
  for (let i = 0; i < 3; i++) gc?.();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, rss: m.rss };
}

const { dir, cleanup } = tempDir('agentpool-bench-');
try {
  const pool = await createAgentPool({ dataDir: dir, pool: { maxActive: ACTIVE, maxIdleMs: 0 } });
  const empty = settle();

  const t0 = performance.now();
  for (let i = 0; i < REGISTERED; i++) {
    await pool.agents.create(P, {
      name: `agent-${i}`,
      instructions: `You are agent number ${i}. Answer briefly and cite your sources.`,
      labels: { team: `t${i % 100}` },
    });
  }
  const insertSeconds = (performance.now() - t0) / 1000;
  const registered = settle();

  for (let i = 0; i < ACTIVE; i++) {
    const lease = await pool.instances.acquire(P, `agent-${i * Math.floor(REGISTERED / ACTIVE)}`);
    lease.release();
  }
  const active = settle();
  const stats = pool.instances.stats();
  await pool.close();

  const perInactive = (registered.heap - empty.heap) / REGISTERED;
  const perActive = (active.heap - registered.heap) / ACTIVE;
  const mib = (b: number) => (b / 2 ** 20).toFixed(1);
  const summary = [
    table(
      ['measure', 'value'],
      [
        ['agents registered in SQLite', REGISTERED.toLocaleString('en')],
        [
          'time to register them through `agents.create` (one transaction each)',
          `${insertSeconds.toFixed(1)} s (${((insertSeconds * 1e6) / REGISTERED).toFixed(1)} µs per agent)`,
        ],
        ['heap bytes per registered-but-inactive agent', perInactive.toFixed(2)],
        ['active instances', stats.resident.toLocaleString('en')],
        ['heap bytes per active instance (measured)', perActive.toFixed(0)],
        [
          'bytes per active instance as the pool estimates it',
          (stats.bytes / Math.max(1, stats.resident)).toFixed(0),
        ],
        [
          'heap: empty pool → registered → active (MiB)',
          `${mib(empty.heap)} → ${mib(registered.heap)} → ${mib(active.heap)}`,
        ],
        [
          'RSS: empty pool → registered → active (MiB)',
          `${mib(empty.rss)} → ${mib(registered.rss)} → ${mib(active.rss)}`,
        ],
      ],
    ),
    '',
    'RSS includes SQLite’s page cache for the file; the heap figures are what the catalogue costs the JS process.',
  ].join('\n');
  writeResult({
    name: 'memory',
    title: `Memory: ${REGISTERED.toLocaleString('en')} registered agents, ${ACTIVE.toLocaleString('en')} active`,
    command: `node --expose-gc bench/memory.bench.ts ${REGISTERED} ${ACTIVE}`,
    summary,
    data: {
      REGISTERED,
      ACTIVE,
      insertSeconds,
      empty,
      registered,
      active,
      perInactive,
      perActive,
      estimatedBytes: stats.bytes,
    },
  });
} finally {
  cleanup();
}
