/**
 * Warm acquire + release, and cold activation from the embedded SQLite store.
 * Baselines measured in the same run: the timer's own cost per sample (for the warm path) and a
 * bare SQLite read of the agent row (for activation), so figures are reported as ratios too.
 *
 *   node --expose-gc bench/acquire.bench.ts
 */
import { createAgentPool } from '../src/index.ts';
import { tempDir } from '../test/support/temp-dir.ts';
import { summarize, table, writeResult } from './harness.ts';

const P = 'bench';
const WARM_SAMPLES = 200_000;
const COLD_AGENTS = 20_000;

function ns(fn: () => void, samples: number): number[] {
  const out = new Array<number>(samples);
  for (let i = 0; i < samples; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    out[i] = Number(process.hrtime.bigint() - t0);
  }
  return out;
}

async function nsAsync(fn: () => Promise<void>, samples: number): Promise<number[]> {
  const out = new Array<number>(samples);
  for (let i = 0; i < samples; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    out[i] = Number(process.hrtime.bigint() - t0);
  }
  return out;
}

const { dir, cleanup } = tempDir('agentpool-bench-');
try {
  const pool = await createAgentPool({ dataDir: dir, pool: { maxActive: COLD_AGENTS + 10, maxIdleMs: 0 } });
  for (let i = 0; i < COLD_AGENTS; i++) {
    await pool.agents.create(P, {
      name: `agent-${i}`,
      instructions: `You are agent ${i}.`,
      labels: { n: String(i % 10) },
    });
  }

  // warm: one agent, acquire + release in a loop
  const warmOp = async () => {
    const lease = await pool.instances.acquire(P, 'agent-0');
    lease.release();
  };
  await nsAsync(warmOp, 20_000); // warm-up: JIT and the activation itself
  const timer = summarize(ns(() => undefined, WARM_SAMPLES));
  const warm = summarize(await nsAsync(warmOp, WARM_SAMPLES));
  // batched: total time over many ops, free of per-sample timer cost
  const batches: number[] = [];
  for (let b = 0; b < 50; b++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 10_000; i++) await warmOp();
    batches.push(Number(process.hrtime.bigint() - t0) / 10_000);
  }
  const warmBatched = summarize(batches);

  // cold: every acquire activates a different agent from SQLite
  const rawStore = pool.stores.agents;
  const rawRead = summarize(
    await nsAsync(async () => {
      await rawStore.getByName(P, `agent-${1 + Math.floor(Math.random() * (COLD_AGENTS - 1))}`);
    }, 20_000),
  );
  let next = 1;
  const cold = summarize(
    await nsAsync(async () => {
      const lease = await pool.instances.acquire(P, `agent-${next++}`);
      lease.release();
    }, COLD_AGENTS - 1),
  );
  const stats = pool.instances.stats();
  await pool.close();

  const us = (x: number) => (x / 1000).toFixed(2);
  const summary = [
    table(
      ['operation', 'median µs', 'p99 µs', 'target', 'baseline (same run)', 'median vs baseline'],
      [
        [
          'warm acquire + release (per-sample timing)',
          us(warm.median),
          us(warm.p99),
          '≤ 2 µs median',
          `timer alone ${us(timer.median)} µs`,
          `${(warm.median / timer.median).toFixed(1)}×`,
        ],
        [
          'warm acquire + release (mean of 10,000-op batches)',
          us(warmBatched.median),
          us(warmBatched.p99),
          '≤ 2 µs median',
          '—',
          '—',
        ],
        [
          `cold activation from SQLite (${COLD_AGENTS - 1} agents, each once)`,
          us(cold.median),
          us(cold.p99),
          '≤ 200 µs median',
          `bare SQLite getByName ${us(rawRead.median)} µs`,
          `${(cold.median / rawRead.median).toFixed(1)}×`,
        ],
      ],
    ),
    '',
    `Warm target met: ${warmBatched.median <= 2000 ? 'yes' : 'no'}. Cold target met: ${cold.median <= 200_000 ? 'yes' : 'no'}. ` +
      `Pool activation histogram p50 ≤ ${stats.activationLatencyMs.p50} ms (bucket bound).`,
  ].join('\n');
  writeResult({
    name: 'acquire',
    title: 'Pool: warm acquire + release, cold activation from SQLite',
    command: 'node --expose-gc bench/acquire.bench.ts',
    summary,
    data: { warmNs: warm, warmBatchedNs: warmBatched, timerNs: timer, coldNs: cold, rawReadNs: rawRead },
  });
} finally {
  cleanup();
}
