/**
 * What preloading buys: a trace of recurring workflows (A → B → C …, each instance on a thread of
 * its own, several instances interleaved) mixed with Zipf noise (stateless runs), replayed as real
 * runs of a real pool (memory store, the built-in zero-latency demo model) on a manual clock, with
 * preloading off, with the idle-capacity fill only, with prefetch only, and with both. Measured:
 * cold activations on the request path (acquires that had to activate), the hit ratio, and
 * preloads issued, used and wasted (evicted or idled out before any use; still unused at the end
 * counted apart).
 *
 *   node bench/preload.bench.ts
 */
import { ManualClock } from '../src/core/clock.ts';
import { createAgentPool } from '../src/index.ts';
import type { PreloadOptions } from '../src/pool/preload-options.ts';
import { mulberry32 } from '../test/support/seeded-random.ts';
import { table, writeResult } from './harness.ts';
import { permutation, zipfCdf } from './traces.ts';

const P = 'bench';
const AGENTS = 2000;
const MAX_ACTIVE = 150;
const REQUESTS = 20_000;
const WORKFLOWS = 25;
/** Workflow instances in progress at once (each on its own thread). */
const CONCURRENT = 4;
/** Share of requests that are noise. */
const NOISE = 0.5;
const ZIPF_S = 0.9;
/** Simulated time between two requests, ms. */
const STEP_MS = 200;
/** Every this many requests traffic pauses for PAUSE_MS (a quiet hour): idle instances leave. */
const BURST = 4000;
const PAUSE_MS = 15 * 60_000;
const SEED = 12;

/** One request: an agent, on a thread (a workflow step) or none (noise). */
interface Request {
  agent: number;
  /** Index of the workflow instance, or -1 for noise. */
  instance: number;
}

/** Workflows (3–5 agents from the Zipf tail, so they are not kept warm by the noise anyway), and the trace. */
function buildTrace(): { workflows: number[][]; requests: Request[] } {
  const random = mulberry32(SEED);
  const perm = permutation(AGENTS, random);
  const workflows: number[][] = [];
  let next = AGENTS - 1; // the least popular ranks
  for (let w = 0; w < WORKFLOWS; w++) {
    const length = 3 + Math.floor(random() * 3);
    const steps: number[] = [];
    for (let i = 0; i < length; i++) steps.push(perm[next--]!);
    workflows.push(steps);
  }
  const cdf = zipfCdf(AGENTS, ZIPF_S);
  const sample = () => {
    const u = random();
    let lo = 0;
    let hi = cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return perm[lo]!;
  };
  const wfCdf = zipfCdf(WORKFLOWS, 0.8); // some workflows recur more than others
  const pickWorkflow = () => {
    const u = random();
    let i = 0;
    while (wfCdf[i]! < u) i++;
    return i;
  };
  const active: { workflow: number; step: number; instance: number }[] = [];
  let instances = 0;
  const requests: Request[] = [];
  while (requests.length < REQUESTS) {
    if (random() < NOISE) {
      requests.push({ agent: sample(), instance: -1 });
      continue;
    }
    while (active.length < CONCURRENT)
      active.push({ workflow: pickWorkflow(), step: 0, instance: instances++ });
    const i = Math.floor(random() * active.length);
    const a = active[i]!;
    requests.push({ agent: workflows[a.workflow]![a.step]!, instance: a.instance });
    if (++a.step === workflows[a.workflow]!.length) active.splice(i, 1);
  }
  return { workflows, requests };
}

interface Outcome {
  mode: string;
  coldActivations: number;
  hitRatio: number;
  workflowColdSteps: number;
  issued: number;
  used: number;
  wasted: number;
  unusedAtEnd: number;
  /** Preloads that activated nothing, by source and reason. */
  skipped: unknown;
  seconds: number;
}

async function replay(mode: string, preload: PreloadOptions, requests: Request[]): Promise<Outcome> {
  const clock = new ManualClock();
  const pool = await createAgentPool({
    store: 'memory',
    clock,
    ttlSweepIntervalMs: 0,
    pool: { maxActive: MAX_ACTIVE, maxIdleMs: 120_000, preload },
  });
  try {
    for (let i = 0; i < AGENTS; i++) await pool.agents.create(P, { name: `a${i}` });
    const threads = new Map<number, string>();
    const started = performance.now();
    let workflowColdSteps = 0;
    for (let n = 0; n < requests.length; n++) {
      const r = requests[n]!;
      if (n > 0 && n % BURST === 0) {
        // a quiet period, in steps, so the idle sweeps, usage writes and fills run as they would
        for (let t = 0; t < PAUSE_MS; t += 5000) {
          clock.advance(5000);
          for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
        }
      }
      clock.advance(STEP_MS);
      // timers the clock fired (usage writes, fills) run their store calls now
      await new Promise((resolve) => setImmediate(resolve));
      let threadId: string | undefined;
      if (r.instance >= 0) {
        threadId = threads.get(r.instance);
        if (threadId === undefined) {
          threadId = (await pool.threads.create(P)).id;
          threads.set(r.instance, threadId);
        }
      }
      const missesBefore = pool.instances.stats().misses;
      const handle = await pool.runs.start(P, `a${r.agent}`, { input: 'go', ...(threadId && { threadId }) });
      const run = await handle.result;
      if (run.status !== 'succeeded') throw new Error(`run ${run.id} ${run.status}: ${run.error?.message}`);
      if (r.instance >= 0 && pool.instances.stats().misses > missesBefore) workflowColdSteps++;
    }
    const seconds = (performance.now() - started) / 1000;
    const stats = pool.instances.stats();
    const counts = pool.instances.preloadStats();
    const issued = counts.preload.issued + counts.prefetch.issued;
    const used = counts.preload.used + counts.prefetch.used;
    const wasted = counts.preload.wasted + counts.prefetch.wasted;
    return {
      mode,
      coldActivations: stats.misses,
      hitRatio: stats.hits / (stats.hits + stats.misses),
      workflowColdSteps,
      issued,
      used,
      wasted,
      unusedAtEnd: issued - used - wasted,
      skipped: pool.preloader.stats().skipped,
      seconds,
    };
  } finally {
    await pool.close();
  }
}

const { workflows, requests } = buildTrace();
const workflowSteps = requests.filter((r) => r.instance >= 0).length;
const modes: [string, PreloadOptions][] = [
  ['off', { enabled: false }],
  ['fill only', { prefetch: false }],
  ['fill only, threshold 0.5', { prefetch: false, threshold: 0.5 }],
  ['prefetch only', { intervalMs: 0 }],
  ['fill + prefetch (default)', {}],
];
const outcomes: Outcome[] = [];
for (const [mode, options] of modes) outcomes.push(await replay(mode, options, requests));
const off = outcomes[0]!;
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const summary = [
  `${REQUESTS.toLocaleString('en')} runs over ${AGENTS.toLocaleString('en')} agents, maxActive ${MAX_ACTIVE}, in bursts of ${BURST.toLocaleString('en')} runs separated by ${PAUSE_MS / 60_000} quiet minutes (idle instances leave): ${pct(NOISE)} stateless Zipf(${ZIPF_S}) noise, the rest steps of ${WORKFLOWS} recurring workflows of 3–5 agents from the Zipf tail (${workflowSteps.toLocaleString('en')} steps; ${CONCURRENT} instances in progress at once, each on its own thread; workflows chosen Zipf(0.8)); ${STEP_MS} ms of the manual clock between runs, maxIdleMs 120 s. Preload options at their defaults unless the mode says. Cold activations: acquires on the request path that had to activate. Wasted: preloaded instances that left (evicted, idle) before any use; unused: still waiting at the end.`,
  '',
  table(
    [
      'mode',
      'cold activations',
      'vs off',
      'workflow steps cold',
      'hit ratio',
      'preloads',
      'used',
      'wasted',
      'unused at end',
      'replay s',
    ],
    outcomes.map((o) => [
      o.mode,
      o.coldActivations,
      o === off ? '—' : pct(o.coldActivations / off.coldActivations - 1),
      `${o.workflowColdSteps} (${pct(o.workflowColdSteps / workflowSteps)})`,
      pct(o.hitRatio),
      o.issued,
      o.used,
      o.wasted,
      o.unusedAtEnd,
      o.seconds.toFixed(1),
    ]),
  ),
].join('\n');
writeResult({
  name: 'preload',
  title: 'Preloading: cold activations on recurring workflows mixed with Zipf noise',
  command: 'node bench/preload.bench.ts',
  summary,
  data: { workflows, outcomes },
});
