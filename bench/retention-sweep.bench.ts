/**
 * Retention's sweep against the requests it must not stall: a SQLite file holds N old threads
 * (two messages and a finished run each) and N / 4 old stateless runs; requests (a turn on the
 * event loop, then a read of a live thread's recent messages) are timed one after another, first
 * alone (the baseline), then while `pool.retention.sweep()` deletes everything old in batches of
 * `retention.batchSize`. Reports the sweep's throughput and the reads' median, p99 and max during
 * the sweep as ratios to the baseline, and the longest event-loop delay seen.
 *
 *   node --expose-gc bench/retention-sweep.bench.ts [threads, default 20000] [batchSize, default 100]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { createAgentPool } from '../src/agent-pool.ts';
import { ManualClock } from '../src/core/clock.ts';
import type { NewMessage, RunRecord } from '../src/store/ports.ts';
import { quantile, table } from './harness.ts';

const THREADS = Number(process.argv[2] ?? 20_000);
const BATCH = Number(process.argv[3] ?? 100);
const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);

const msg = (id: string, at: number): NewMessage => ({
  id,
  role: 'user',
  content: id,
  runId: null,
  createdAt: at,
});
const run = (id: string, threadId: string | null, at: number): RunRecord => ({
  id,
  project: 'default',
  agentId: 'agt_bench',
  agentName: 'bench',
  agentVersion: 1,
  threadId,
  status: 'succeeded',
  input: 'hi',
  output: 'hello',
  model: 'demo/assistant',
  steps: 1,
  inputTokens: 1,
  outputTokens: 1,
  cost: 0,
  error: null,
  metadata: {},
  createdAt: at,
  startedAt: at,
  finishedAt: at,
});

const dir = mkdtempSync(join(tmpdir(), 'agentpool-retention-'));
const clock = new ManualClock(T0);
const pool = await createAgentPool({
  dataDir: dir,
  clock,
  ttlSweepIntervalMs: 0,
  retention: { intervalMs: 0, batchSize: BATCH },
});
try {
  const store = pool.stores.runs;
  for (let i = 0; i < THREADS; i++) {
    const id = `thr_${String(i).padStart(8, '0')}`;
    await store.createThread({ id, project: 'default', metadata: {}, ttlSeconds: null, now: T0 });
    await store.createRun(run(`run_t${i}`, id, T0), [msg(`m${i}a`, T0), msg(`m${i}b`, T0)]);
  }
  for (let i = 0; i < THREADS / 4; i++) await store.createRun(run(`run_s${i}`, null, T0), []);
  clock.advance(31 * DAY);
  await store.createThread({
    id: 'thr_live',
    project: 'default',
    metadata: {},
    ttlSeconds: null,
    now: clock.now(),
  });
  await store.createRun(run('run_live', 'thr_live', clock.now()), [
    msg('live1', clock.now()),
    msg('live2', clock.now()),
  ]);

  /**
   * Times requests one after another until `done()`: each waits for its turn on the event loop
   * (behind whatever runs there, a sweep's batch included), then reads the live thread's recent
   * messages (what a run sends to the model); µs from its start to its answer.
   */
  const reads = async (done: () => boolean): Promise<number[]> => {
    const samples: number[] = [];
    while (!done()) {
      const started = performance.now();
      await new Promise<void>((resolve) => setImmediate(resolve));
      await store.recentMessages('thr_live', 200);
      samples.push((performance.now() - started) * 1000);
    }
    return samples;
  };

  globalThis.gc?.();
  const baselineUntil = performance.now() + 2000;
  const baseline = (await reads(() => performance.now() > baselineUntil)).sort((a, b) => a - b);

  globalThis.gc?.();
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  let finished = false;
  const started = performance.now();
  const sweeping = pool.retention.sweep().finally(() => (finished = true));
  const during = (await reads(() => finished)).sort((a, b) => a - b);
  const sweep = await sweeping;
  const seconds = (performance.now() - started) / 1000;
  delay.disable();

  const row = (name: string, f: (s: number[]) => number) => [
    name,
    f(baseline).toFixed(1),
    f(during).toFixed(1),
    (f(during) / f(baseline)).toFixed(2),
  ];
  console.log(
    `SQLite, ${THREADS} old threads (2 messages and a run each) and ${THREADS / 4} old stateless runs, batchSize ${BATCH}`,
  );
  console.log(
    `sweep: ${sweep?.threads} threads, ${sweep?.messages} messages, ${sweep?.runs} runs in ${seconds.toFixed(2)} s ` +
      `(${Math.round(((sweep?.threads ?? 0) + (sweep?.statelessRuns ?? 0)) / seconds)} threads and stateless runs/s); ` +
      `longest event-loop delay ${(delay.max / 1e6).toFixed(1)} ms`,
  );
  console.log(
    table(
      ['request: a turn, then a read of a live thread (µs)', 'alone', 'during the sweep', 'during / alone'],
      [
        row('median', (s) => quantile(s, 0.5)),
        row('p99', (s) => quantile(s, 0.99)),
        row('max', (s) => s[s.length - 1] ?? 0),
      ],
    ),
  );
  console.log(`reads: ${baseline.length} alone, ${during.length} during the sweep`);
} finally {
  await pool.close();
  rmSync(dir, { recursive: true, force: true });
}
