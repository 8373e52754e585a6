/**
 * Resilience: under 50% provider failures with one healthy fallback, the share of runs that
 * succeed and the latency they add at p50/p99, against a baseline of the same runs on a healthy
 * model measured in the same run.
 *
 * The provider is the fake OpenAI-compatible server (test/support/fake-openai.ts, zero latency,
 * streaming) in its own child process (this script with `--provider`), so it does not share an
 * event loop with the pool. It serves three model ids: `steady` and `backup` always answer;
 * `flaky` fails a request with HTTP 500 when the next draw of a seeded generator (mulberry32,
 * SEED) is below 0.5. A fresh provider (and generator) per scenario: the k-th request to `flaky`
 * fails in every scenario and every run of the script alike.
 *
 * Each scenario is a fresh pool on the memory store running WARMUP then RUNS stateless wait-mode
 * runs through `pool.runs.start(…).result`, CONCURRENCY at a time; a run's latency is from
 * `start()` to its terminal record. ROUNDS rounds, the scenarios interleaved; counts are summed,
 * latencies are the median of the rounds' p50 and p99. A discarded round of WARMUP_ROUND_RUNS per
 * scenario goes first, so no scenario pays for the cold process.
 *   (a) baseline: agent on `steady`;
 *   (b) agent on `flaky` with fallback `backup`, the default retry policy (3 attempts) with short
 *       backoffs (RETRY below) instead of the 250 ms default;
 *   (c) the same with retries off (maxAttempts 1): the fallback alone;
 *   (d) context: (b) with the default breaker left to open (5 consecutive failed attempts, 10 s
 *       half-open) — what the defaults do to such a provider.
 * In (a)–(c) the breaker is kept closed (threshold 1,000,000), so every run meets the failures.
 *
 *   node --expose-gc bench/resilience.bench.ts        (about a minute and a half; BENCH_RUNS, BENCH_ROUNDS override)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createAgentPool } from '../src/agent-pool.ts';
import type { ModelResilienceOptions } from '../src/models/resilience-options.ts';
import { startFakeOpenAI } from '../test/support/fake-openai.ts';
import { quantile, table, writeResult } from './harness.ts';
import { mulberry32 } from '../test/support/seeded-random.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 2000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const WARMUP = 200;
const WARMUP_ROUND_RUNS = 500;
const CONCURRENCY = 16;
const SEED = 20_261_123;
const FAILURE_RATE = 0.5;
/** Short backoffs, so the figure is about failing over rather than about waiting. */
const RETRY = { initialDelayMs: 5, maxDelayMs: 50 };
const NEVER_OPENS = { threshold: 1_000_000 };
const P = 'bench';
const INPUT = 'What is the capital of France?';

// ---------------------------------------------------------------------------------------------
// the provider (child process)

async function serveProvider(): Promise<void> {
  const random = mulberry32(SEED);
  const fake = await startFakeOpenAI({
    maxRecorded: 0,
    models: ['steady', 'flaky', 'backup'],
    handler: (req) =>
      req.model === 'flaky' && random() < FAILURE_RATE
        ? { status: 500, body: { error: { message: 'injected failure' } } }
        : { text: `Paris (${req.model})`, usage: { prompt_tokens: 20, completion_tokens: 4 } },
  });
  process.once('SIGTERM', () => void fake.close().then(() => process.exit(0)));
  console.log(`URL ${fake.url}`);
}

function startProvider(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--provider'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /URL (\S+)/.exec(out);
      if (match) resolve({ child, url: match[1] as string });
    });
    child.once('exit', (code) => reject(new Error(`provider exited with ${code}`)));
  });
}

async function stopProvider(child: ChildProcess): Promise<void> {
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await exited;
}

// ---------------------------------------------------------------------------------------------
// the scenarios

interface Scenario {
  key: string;
  label: string;
  model: string;
  fallbacks: string[];
  resilience: ModelResilienceOptions;
}

interface Figure {
  key: string;
  label: string;
  runs: number;
  succeeded: number;
  successShare: number;
  /** Runs the fallback answered. */
  answeredByFallback: number;
  /** Failure codes of the runs that did not succeed. */
  failures: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  wallSeconds: number;
  /** What the guard of the agent's model counted during the measured runs. */
  primary: { calls: number; retries: number; fallbacks: number; rejected: number; failures: number };
  /** `breaker.opened` events of the scenario, warm-up included. */
  breakerOpenings: number;
}

const SCENARIOS: Scenario[] = [
  {
    key: 'baseline',
    label: '(a) baseline: healthy model',
    model: 'openai-compatible/steady',
    fallbacks: [],
    resilience: { retry: RETRY, breaker: NEVER_OPENS },
  },
  {
    key: 'retries-and-fallback',
    label: '(b) 50% failures, 3 attempts, then the fallback',
    model: 'openai-compatible/flaky',
    fallbacks: ['openai-compatible/backup'],
    resilience: { retry: RETRY, breaker: NEVER_OPENS },
  },
  {
    key: 'fallback-only',
    label: '(c) 50% failures, no retries (maxAttempts 1), then the fallback',
    model: 'openai-compatible/flaky',
    fallbacks: ['openai-compatible/backup'],
    resilience: { retry: { ...RETRY, maxAttempts: 1 }, breaker: NEVER_OPENS },
  },
  {
    key: 'default-breaker',
    label: '(d) as (b), with the default breaker (context)',
    model: 'openai-compatible/flaky',
    fallbacks: ['openai-compatible/backup'],
    resilience: { retry: RETRY },
  },
];

async function measure(s: Scenario, runs = RUNS): Promise<Figure> {
  const provider = await startProvider();
  const pool = await createAgentPool({
    store: 'memory',
    ttlSweepIntervalMs: 0,
    models: { providers: { 'openai-compatible': { baseURL: provider.url, apiKey: 'bench' } }, env: {} },
    resilience: s.resilience,
    runs: { recentStreams: 100 },
  });
  let breakerOpenings = 0;
  pool.events.on('breaker.opened', () => void breakerOpenings++);
  try {
    await pool.agents.create(P, { name: 'agent', model: s.model, fallbacks: s.fallbacks });
    const latencies: number[] = [];
    let succeeded = 0;
    let answeredByFallback = 0;
    const failures: Record<string, number> = {};
    const one = async (record: boolean): Promise<void> => {
      const started = performance.now();
      const run = await (await pool.runs.start(P, 'agent', { input: INPUT })).result;
      const ms = performance.now() - started;
      if (!record) return;
      latencies.push(ms);
      if (run.status === 'succeeded') {
        succeeded++;
        if (run.output !== `Paris (${run.model.split('/')[1]})`) throw new Error(`unexpected ${run.output}`);
      } else {
        const code = run.error?.code ?? run.status;
        failures[code] = (failures[code] ?? 0) + 1;
      }
      if (run.model !== s.model) answeredByFallback++;
    };
    const drive = async (total: number, record: boolean): Promise<void> => {
      let next = 0;
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next++ < total) await one(record);
        }),
      );
    };
    await drive(WARMUP, false);
    const guardOf = () => pool.guards.stats().find((m) => m.model === s.model);
    const warm = guardOf();
    globalThis.gc?.();
    const wallStart = performance.now();
    await drive(runs, true);
    const wallSeconds = (performance.now() - wallStart) / 1000;
    const sorted = latencies.sort((a, b) => a - b);
    const stats = guardOf();
    const delta = (k: 'calls' | 'retries' | 'fallbacks' | 'rejected' | 'failures') =>
      (stats?.[k] ?? 0) - (warm?.[k] ?? 0);
    const figure: Figure = {
      key: s.key,
      label: s.label,
      runs: sorted.length,
      succeeded,
      successShare: succeeded / sorted.length,
      answeredByFallback,
      failures,
      p50Ms: quantile(sorted, 0.5),
      p99Ms: quantile(sorted, 0.99),
      meanMs: sorted.reduce((sum, x) => sum + x, 0) / sorted.length,
      wallSeconds,
      primary: {
        calls: delta('calls'),
        retries: delta('retries'),
        fallbacks: delta('fallbacks'),
        rejected: delta('rejected'),
        failures: delta('failures'),
      },
      breakerOpenings,
    };
    console.log(
      `${s.label}: ${(100 * figure.successShare).toFixed(2)}% succeeded, ${answeredByFallback} by the fallback, p50 ${figure.p50Ms.toFixed(2)} ms, p99 ${figure.p99Ms.toFixed(2)} ms`,
    );
    return figure;
  } finally {
    await pool.close();
    await stopProvider(provider.child);
  }
}

/** One scenario over every round: counts summed, latencies the median of the rounds' figures. */
interface Combined {
  key: string;
  label: string;
  runs: number;
  succeeded: number;
  successShare: number;
  answeredByFallback: number;
  failures: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
  p50RangeMs: [number, number];
  p99RangeMs: [number, number];
  runsPerSecond: number;
  retries: number;
  breakerOpenings: number;
  rounds: Figure[];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

function combine(rounds: Figure[]): Combined {
  const first = rounds[0] as Figure;
  const sum = (f: (x: Figure) => number) => rounds.reduce((n, x) => n + f(x), 0);
  const failures: Record<string, number> = {};
  for (const r of rounds)
    for (const [code, n] of Object.entries(r.failures)) failures[code] = (failures[code] ?? 0) + n;
  const p50s = rounds.map((r) => r.p50Ms);
  const p99s = rounds.map((r) => r.p99Ms);
  return {
    key: first.key,
    label: first.label,
    runs: sum((r) => r.runs),
    succeeded: sum((r) => r.succeeded),
    successShare: sum((r) => r.succeeded) / sum((r) => r.runs),
    answeredByFallback: sum((r) => r.answeredByFallback),
    failures,
    p50Ms: median(rounds.map((r) => r.p50Ms)),
    p99Ms: median(p99s),
    p50RangeMs: [Math.min(...p50s), Math.max(...p50s)],
    p99RangeMs: [Math.min(...p99s), Math.max(...p99s)],
    runsPerSecond: median(rounds.map((r) => r.runs / r.wallSeconds)),
    retries: sum((r) => r.primary.retries),
    breakerOpenings: sum((r) => r.breakerOpenings),
    rounds,
  };
}

async function main(): Promise<void> {
  // Rounds interleave the scenarios, so a slow spell of the machine does not land on one of them.
  const byKey = new Map<string, Figure[]>(SCENARIOS.map((s) => [s.key, []]));
  // A discarded round first: the first scenario of a cold process would otherwise pay for the JIT.
  console.log(`warm-up round (discarded, ${WARMUP_ROUND_RUNS} runs per scenario)`);
  for (const s of SCENARIOS) await measure(s, WARMUP_ROUND_RUNS);
  for (let round = 1; round <= ROUNDS; round++) {
    console.log(`round ${round} of ${ROUNDS}`);
    for (const s of SCENARIOS) byKey.get(s.key)?.push(await measure(s));
  }
  const figures = SCENARIOS.map((s) => combine(byKey.get(s.key) ?? []));
  const base = figures[0] as Combined;
  const ms = (x: number) => x.toFixed(1);
  const added = (x: number, b: number) => `${x - b >= 0 ? '+' : '−'}${ms(Math.abs(x - b))}`;
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const rows = figures.map((f) => [
    f.label,
    `${pct(f.successShare)} (${f.succeeded}/${f.runs})`,
    `${pct(f.answeredByFallback / f.runs)}`,
    `${ms(f.p50Ms)} (${ms(f.p50RangeMs[0])}–${ms(f.p50RangeMs[1])})`,
    `${ms(f.p99Ms)} (${ms(f.p99RangeMs[0])}–${ms(f.p99RangeMs[1])})`,
    f === base ? '—' : added(f.p50Ms, base.p50Ms),
    f === base ? '—' : added(f.p99Ms, base.p99Ms),
    f.runsPerSecond.toFixed(0),
    f === base ? '—' : String(f.retries),
    String(f.breakerOpenings),
  ]);
  const b = figures.find((f) => f.key === 'retries-and-fallback') as Combined;
  const c = figures.find((f) => f.key === 'fallback-only') as Combined;
  const d = figures.find((f) => f.key === 'default-breaker') as Combined;
  const all = (f: Combined) =>
    f.succeeded === f.runs ? 'every run succeeded' : `${pct(f.successShare)} of runs succeeded`;
  const summary = [
    `${RUNS.toLocaleString('en-US')} stateless wait-mode runs per scenario and round (after ${WARMUP} warm-up runs), ${CONCURRENCY} in flight, memory store, a fresh pool per scenario; ${ROUNDS} rounds, the scenarios interleaved; counts are summed over the rounds, latencies are the median of the rounds' p50 and p99 (the range across rounds in brackets), after a discarded warm-up round. Latency is from \`runs.start()\` to the terminal record. The provider is the fake OpenAI-compatible server (zero latency, streaming over loopback HTTP) in its own process. The primary fails ${pct(FAILURE_RATE)} of its requests with HTTP 500, drawn from a seeded generator (mulberry32, seed ${SEED}, a fresh one per scenario: the k-th request to the primary fails alike in every scenario and run; which run makes the k-th request depends on scheduling); the fallback always answers. Retries use the default policy (3 attempts, equal-jitter exponential backoff) with short backoffs: initialDelayMs ${RETRY.initialDelayMs}, maxDelayMs ${RETRY.maxDelayMs} (with the default initialDelayMs of 250 ms, each retried run would wait 125–250 ms more). In (a)–(c) the breaker is kept closed (threshold 1,000,000) so every run meets the failures; (d) leaves the default breaker (5 consecutive failed attempts, half-open after 10 s). Added latency is against the baseline (a) of the same run. With ${CONCURRENCY} runs in flight this process is busy (runs/s), so much of a run's latency is its wait behind the others: extra requests to the failing provider slow every run a little, not only the runs that failed over.`,
    '',
    table(
      [
        'scenario',
        'succeeded',
        'answered by the fallback',
        'p50 (ms)',
        'p99 (ms)',
        'added p50 (ms)',
        'added p99 (ms)',
        'runs/s',
        'retries',
        'breaker openings (incl. warm-up)',
      ],
      rows,
    ),
    '',
    `With 3 attempts (b), ${all(b)}; retries answered most failed calls on the primary and left ${pct(b.answeredByFallback / b.runs)} of runs to the fallback (0.5³ = 12.5% expected). With the fallback alone (c), ${all(c)}; the fallback answered ${pct(c.answeredByFallback / c.runs)} (50% expected). With the default breaker (d), the primary's breaker opens within the first runs and stays open for 10 s, so runs go straight to the fallback: ${pct(d.answeredByFallback / d.runs)} answered by it, added p50 ${added(d.p50Ms, base.p50Ms)} ms (the baseline's own p50 ranged ${ms(base.p50RangeMs[0])}–${ms(base.p50RangeMs[1])} ms across rounds).`,
  ].join('\n');
  writeResult({
    name: 'resilience',
    title: 'Resilience: runs under 50% provider failures with one fallback',
    command: 'node --expose-gc bench/resilience.bench.ts',
    summary,
    data: {
      runsPerRound: RUNS,
      rounds: ROUNDS,
      warmup: WARMUP,
      concurrency: CONCURRENCY,
      seed: SEED,
      failureRate: FAILURE_RATE,
      retry: RETRY,
      store: 'memory',
      scenarios: figures,
    },
  });
}

if (process.argv[2] === '--provider') {
  await serveProvider();
} else {
  await main();
}
