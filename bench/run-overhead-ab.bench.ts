/**
 * agentpool's per-run cost against another checkout of itself (the tree before a change), both in
 * this one process, in alternating batches, so machine load hits both alike: a change's effect on
 * the per-run overhead, when the separate-process bench (run-overhead.bench.ts) is too noisy to
 * read. Plain runs and one-tool-call runs on a new thread each, zero-latency mock model.
 *
 *   git worktree add ../agentpool-base <rev> && (cd ../agentpool-base && ln -s ../agentpool/node_modules .)
 *   node --expose-gc bench/run-overhead-ab.bench.ts ../agentpool-base [sqlite|memory] [stateless] [inflight]
 *
 * `inflight` times 32 runs started together (wall time / 32) instead of one run at a time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as AgentPoolModule from '../src/agent-pool.ts';
import type * as ToolModule from '../src/tools/tool.ts';
import type * as MockModule from './peers/mock-model.ts';
import { ADD_TOOL } from './peers/mock-model.ts';

const HERE = resolve(fileURLToPath(import.meta.url), '../..');
const other = process.argv[2];
if (other === undefined) {
  console.error(
    'usage: node --expose-gc bench/run-overhead-ab.bench.ts <other checkout> [sqlite|memory] [stateless] [inflight]',
  );
  process.exit(2);
}
const store = process.argv[3] === 'memory' ? 'memory' : 'sqlite';
const flags = process.argv.slice(4);
/** `stateless`: runs without a thread (only the run record is written). */
const stateless = flags.includes('stateless');
/** `inflight`: each sample is 32 runs started together, timed as wall time / 32. */
const IN_FLIGHT = flags.includes('inflight') ? 32 : 1;
const ROUNDS = 40;
const BATCH = 25;

/** What both trees export alike, loaded from each tree's own sources. */
async function contender(root: string) {
  const { createAgentPool } = (await import(join(root, 'src/agent-pool.ts'))) as typeof AgentPoolModule;
  const { defineTool } = (await import(join(root, 'src/tools/tool.ts'))) as typeof ToolModule;
  const { createInstantModel, SCRIPT } = (await import(
    join(root, 'bench/peers/mock-model.ts')
  )) as typeof MockModule;
  const add = defineTool(ADD_TOOL);
  const model = createInstantModel('instant');
  const dir = mkdtempSync(join(tmpdir(), 'agentpool-ab-'));
  const pool = await createAgentPool({
    store,
    dataDir: dir,
    models: { custom: { mock: () => model }, env: {} },
    tools: { tools: [add] },
    runs: { recentStreams: 100 },
  });
  await pool.agents.create('bench', { name: 'plain', model: 'mock/instant', instructions: 'You are terse.' });
  await pool.agents.create('bench', {
    name: 'tooled',
    model: 'mock/instant',
    instructions: 'You are terse.',
    tools: ['custom:add'],
  });
  const run = async (agent: string) => {
    const thread = stateless ? {} : { threadId: (await pool.threads.create('bench')).id };
    return (await pool.runs.start('bench', agent, { input: SCRIPT.prompt, ...thread })).result;
  };
  return {
    run,
    close: async () => {
      await pool.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

const trees = { other: await contender(resolve(other)), this: await contender(HERE) };
const times = {
  other: { plain: [] as number[], tool: [] as number[] },
  this: { plain: [] as number[], tool: [] as number[] },
};
for (let i = 0; i < 200; i++) {
  for (const t of Object.values(trees)) {
    await t.run('plain');
    await t.run('tooled');
  }
}
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 === 0 ? (['other', 'this'] as const) : (['this', 'other'] as const);
  for (const name of order) {
    for (const [scenario, agent] of [
      ['plain', 'plain'],
      ['tool', 'tooled'],
    ] as const) {
      for (let k = 0; k < BATCH; k++) {
        const started = performance.now();
        if (IN_FLIGHT === 1) await trees[name].run(agent);
        else await Promise.all(Array.from({ length: IN_FLIGHT }, () => trees[name].run(agent)));
        times[name][scenario].push(((performance.now() - started) * 1000) / IN_FLIGHT);
      }
    }
  }
}
await trees.other.close();
await trees.this.close();
console.log(
  `store ${store}${stateless ? ', stateless' : ''}${IN_FLIGHT > 1 ? `, ${IN_FLIGHT} runs in flight` : ''}, ${ROUNDS * BATCH * IN_FLIGHT} runs per tree and scenario, median µs per run`,
);
console.log('| scenario | other tree | this tree | this / other |');
console.log('| --- | --- | --- | --- |');
for (const scenario of ['plain', 'tool'] as const) {
  const a = median(times.other[scenario]);
  const b = median(times.this[scenario]);
  console.log(`| ${scenario} | ${a.toFixed(1)} | ${b.toFixed(1)} | ${(b / a).toFixed(3)} |`);
}
