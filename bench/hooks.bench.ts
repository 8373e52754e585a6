/**
 * What run hooks and diagnostics channels cost a run: the same runs (plain, and one tool call) on
 * pools without hooks (the baseline), with a no-op function at each of the five hook points, and
 * without hooks but with a subscriber on each of the five `agentpool:*` channels; memory store,
 * stateless runs, zero-latency mock model, one process, alternating batches so machine load hits
 * every case alike. The baseline is what every run pays when nobody hooks or subscribes.
 *
 *   node --expose-gc bench/hooks.bench.ts
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createAgentPool, defineTool, DIAGNOSTICS_CHANNELS, type RunHooks } from '../src/index.ts';
import { ADD_TOOL, createInstantModel, SCRIPT } from './peers/mock-model.ts';

const ROUNDS = 40;
const BATCH = 25;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

const add = defineTool(ADD_TOOL);
let observed = 0;
const noop = (): void => {
  observed++;
};

async function contender(hooks: RunHooks | undefined) {
  const model = createInstantModel('instant');
  const pool = await createAgentPool({
    store: 'memory',
    models: { custom: { mock: () => model }, env: {} },
    tools: { tools: [add] },
    runs: { recentStreams: 100 },
    ...(hooks !== undefined && { hooks }),
  });
  await pool.agents.create('bench', { name: 'plain', model: 'mock/instant', instructions: 'You are terse.' });
  await pool.agents.create('bench', {
    name: 'tooled',
    model: 'mock/instant',
    instructions: 'You are terse.',
    tools: ['custom:add'],
  });
  return {
    run: async (agent: string) => (await pool.runs.start('bench', agent, { input: SCRIPT.prompt })).result,
    close: () => pool.close(),
  };
}

const channels = Object.values(DIAGNOSTICS_CHANNELS);
const cases = {
  'no hooks (baseline)': { pool: await contender(undefined), subscribed: false },
  'a no-op at each hook point': {
    pool: await contender({
      beforeModelCall: noop,
      afterModelCall: noop,
      beforeToolCall: noop,
      afterToolCall: noop,
      onRunFinished: noop,
    }),
    subscribed: false,
  },
  'a subscriber on each channel': { pool: await contender(undefined), subscribed: true },
};
const names = Object.keys(cases) as (keyof typeof cases)[];
const times = new Map(names.map((n) => [n, { plain: [] as number[], tool: [] as number[] }]));
const withChannels = async <T>(on: boolean, work: () => Promise<T>): Promise<T> => {
  if (!on) return work();
  for (const c of channels) subscribe(c, noop);
  try {
    return await work();
  } finally {
    for (const c of channels) unsubscribe(c, noop);
  }
};
for (let i = 0; i < 200; i++) {
  for (const name of names) {
    const { pool, subscribed } = cases[name];
    await withChannels(subscribed, async () => {
      await pool.run('plain');
      await pool.run('tooled');
    });
  }
}
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 === 0 ? names : [...names].reverse();
  for (const name of order) {
    const { pool, subscribed } = cases[name];
    await withChannels(subscribed, async () => {
      for (const [scenario, agent] of [
        ['plain', 'plain'],
        ['tool', 'tooled'],
      ] as const) {
        for (let k = 0; k < BATCH; k++) {
          const started = performance.now();
          await pool.run(agent);
          times.get(name)![scenario].push((performance.now() - started) * 1000);
        }
      }
    });
  }
}
for (const name of names) await cases[name].pool.close();
const base = times.get(names[0]!)!;
console.log(
  `memory store, stateless, ${ROUNDS * BATCH} runs per case and scenario, median µs per run (${observed} no-op calls)`,
);
console.log('| case | plain | / baseline | one tool call | / baseline |');
console.log('| --- | --- | --- | --- | --- |');
for (const name of names) {
  const t = times.get(name)!;
  const plain = median(t.plain);
  const tool = median(t.tool);
  console.log(
    `| ${name} | ${plain.toFixed(1)} | ${(plain / median(base.plain)).toFixed(3)} | ${tool.toFixed(1)} | ${(tool / median(base.tool)).toFixed(3)} |`,
  );
}
