/**
 * The cost of a `/metrics` scrape when very many agents have run: the 22,000 agents, each
 * with a few finished runs, under the bounded per-agent series (`metrics.maxAgentSeries`, 100),
 * against the baseline measured in the same run: one prom-client counter series per agent and
 * status, direction, cost (what agentpool exported before). Also the cost of counting one
 * finished run, which every run pays.
 *
 *   node --expose-gc bench/metrics.bench.ts
 */
import { Counter, Registry } from 'prom-client';
import { createAgentPool } from '../src/index.ts';
import { runRecord } from '../test/support/run-record.ts';
import { summarize, table, timeBatches, writeResult } from './harness.ts';

const AGENTS = 22_000;
const RUNS_PER_AGENT = 3;
const SCRAPES = 30;

const runOf = (i: number, n: number) =>
  runRecord({
    id: `run_${i}_${n}`,
    project: `p${i % 50}`,
    agentName: `agent-${i}`,
    status: n === 2 && i % 7 === 0 ? 'failed' : 'succeeded',
    inputTokens: 120 + (i % 13),
    outputTokens: 40 + (i % 5),
    cost: 0.0003,
    createdAt: 1,
    finishedAt: 2,
  });

async function timeScrapes(
  scrape: () => Promise<string>,
): Promise<{ ms: ReturnType<typeof summarize>; bytes: number }> {
  let bytes = 0;
  for (let i = 0; i < 3; i++) bytes = (await scrape()).length; // warm-up
  const samples: number[] = [];
  for (let i = 0; i < SCRAPES; i++) {
    const t0 = process.hrtime.bigint();
    bytes = (await scrape()).length;
    samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return { ms: summarize(samples), bytes };
}

const countLines = (text: string) => text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;

// agentpool: the pool's own registry, fed the finished runs as the run layer would.
const pool = await createAgentPool({ store: 'memory', ttlSweepIntervalMs: 0 });
for (let n = 0; n < RUNS_PER_AGENT; n++)
  for (let i = 0; i < AGENTS; i++) pool.metrics.runFinished(runOf(i, n));
const bounded = await timeScrapes(async () => (await pool.metrics.scrape()).body);
const boundedSamples = countLines((await pool.metrics.scrape()).body);
const records = Array.from({ length: AGENTS }, (_, i) => runOf(i, 0));
let next = 0;
const finished = summarize(
  await timeBatches(() => pool.metrics.runFinished(records[next++ % AGENTS] as never), {
    batches: 30,
    batch: 20_000,
  }),
);
const activity = summarize(
  await timeBatches(() => pool.metrics.agents.record(records[next++ % AGENTS] as never), {
    batches: 30,
    batch: 20_000,
  }),
);
await pool.close();

// baseline: one series per agent, as before the bound.
const registry = new Registry();
const runs = new Counter({
  name: 'runs_total',
  help: 'runs',
  labelNames: ['agent', 'status'],
  registers: [registry],
});
const tokens = new Counter({
  name: 'tokens_total',
  help: 'tokens',
  labelNames: ['agent', 'direction'],
  registers: [registry],
});
const cost = new Counter({
  name: 'cost_usd_total',
  help: 'cost',
  labelNames: ['agent'],
  registers: [registry],
});
for (let n = 0; n < RUNS_PER_AGENT; n++) {
  for (let i = 0; i < AGENTS; i++) {
    const run = runOf(i, n);
    const agent = `${run.project}/${run.agentName}`;
    runs.inc({ agent, status: run.status });
    tokens.inc({ agent, direction: 'input' }, run.inputTokens);
    tokens.inc({ agent, direction: 'output' }, run.outputTokens);
    cost.inc({ agent }, run.cost);
  }
}
const unbounded = await timeScrapes(() => registry.metrics());
const unboundedSamples = countLines(await registry.metrics());

const kib = (b: number) => `${(b / 1024).toFixed(0)} KiB`;
const ms = (x: number) => x.toFixed(2);
const summary = [
  `${AGENTS.toLocaleString('en')} agents in 50 projects, ${RUNS_PER_AGENT} finished runs each; median and p99 of ${SCRAPES} scrapes.`,
  '',
  table(
    ['exposition', 'samples', 'body', 'scrape median ms', 'scrape p99 ms'],
    [
      [
        'agentpool: whole registry, agent series bounded to 100 + (other)',
        boundedSamples,
        kib(bounded.bytes),
        ms(bounded.ms.median),
        ms(bounded.ms.p99),
      ],
      [
        'baseline (same run): per-agent runs, tokens and cost series only, unbounded',
        unboundedSamples,
        kib(unbounded.bytes),
        ms(unbounded.ms.median),
        ms(unbounded.ms.p99),
      ],
    ],
  ),
  '',
  `Counting one finished run, which every run pays: ${(finished.median / 1000).toFixed(2)} µs median, of which the per-agent figures (totals, the agent's figures, its series or (other)) ${(activity.median / 1000).toFixed(2)} µs and the rest the run-duration histogram.`,
].join('\n');

writeResult({
  name: 'metrics',
  title: 'Metrics: a /metrics scrape after 22,000 agents ran',
  command: 'node --expose-gc bench/metrics.bench.ts',
  summary,
  data: {
    agents: AGENTS,
    runsPerAgent: RUNS_PER_AGENT,
    bounded: { samples: boundedSamples, bytes: bounded.bytes, ms: bounded.ms },
    unbounded: { samples: unboundedSamples, bytes: unbounded.bytes, ms: unbounded.ms },
    runFinishedNs: finished,
    agentActivityNs: activity,
  },
});
