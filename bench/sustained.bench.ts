/**
 * Whether a pool stays as fast as it started: runs on new threads, 32 in flight, for hundreds of
 * thousands of runs, the wall time per run reported per slice. Every bounded map of the run path
 * (threads remembered for prefetching, the history cache, agents' figures…) fills up within the
 * first slices and evicts from then on; later slices costing more than the store's own growth
 * explains is a cost that grows with the pool's age (the table's last column: each slice against
 * the fastest).
 *
 *   node --expose-gc bench/sustained.bench.ts [sqlite|memory] [runs]
 *
 * Defaults: SQLite, 400,000 runs after 10,000 untimed, slices of 50,000. The memory store keeps
 * every record, so its heap (and GC) grows with the runs; the SQLite file grows too (~1 KB a run).
 */
import { createAgentPool } from '../src/agent-pool.ts';
import { tempDir } from '../test/support/temp-dir.ts';
import { createInstantModel, SCRIPT } from './peers/mock-model.ts';

const store = process.argv[2] === 'memory' ? 'memory' : 'sqlite';
const RUNS = Number(process.argv[3] ?? 400_000);
const SLICE = 50_000;
const IN_FLIGHT = 32;
const WARMUP = 10_000;

const { dir, cleanup } = tempDir('agentpool-sustained-');
const model = createInstantModel('instant');
const pool = await createAgentPool({
  store,
  dataDir: dir,
  models: { custom: { mock: () => model }, env: {} },
  runs: { recentStreams: 100 },
});
await pool.agents.create('bench', { name: 'plain', model: 'mock/instant', instructions: 'You are terse.' });
const run = async () => {
  const { result } = await pool.runs.start('bench', 'plain', { input: SCRIPT.prompt, thread: {} });
  if ((await result).output !== SCRIPT.plainText) throw new Error('unexpected answer');
};

const batch = () => Promise.all(Array.from({ length: IN_FLIGHT }, run));
for (let i = 0; i < WARMUP; i += IN_FLIGHT) await batch(); // JIT and caches, untimed

const slices: { us: number; heapMiB: number }[] = [];
let started = performance.now();
let sliceStart = 0;
for (let done = 0; slices.length < RUNS / SLICE;) {
  await batch();
  done += IN_FLIGHT;
  if (done - sliceStart >= SLICE) {
    const now = performance.now();
    const us = ((now - started) * 1000) / (done - sliceStart);
    slices.push({ us, heapMiB: process.memoryUsage().heapUsed / 2 ** 20 });
    started = now;
    sliceStart = done;
  }
}
await pool.close();
cleanup();

console.log(
  `store ${store}, ${IN_FLIGHT} runs in flight on new threads, µs per run by slice of ${SLICE} runs`,
);
console.log('| runs timed | µs per run | of the fastest slice | heap used MiB |');
console.log('| --- | --- | --- | --- |');
const fastest = Math.min(...slices.map((s) => s.us));
slices.forEach((s, i) =>
  console.log(
    `| ${((i + 1) * SLICE).toLocaleString('en-US')} | ${s.us.toFixed(1)} | ${(s.us / fastest).toFixed(2)} | ${s.heapMiB.toFixed(0)} |`,
  ),
);
