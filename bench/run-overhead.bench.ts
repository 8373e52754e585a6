/**
 * Per-run overhead of the runtime on a zero-latency in-process model, against popular TypeScript
 * agent frameworks on the same mock, measured in the same run, each contender in its own process:
 * (A) a plain answer; (B) one tool call, then an answer. agentpool runs on a new thread each time,
 * with the thread, its messages and the run record persisted to SQLite (and, for reference, to
 * memory). The peers (bench/peers, installed separately) keep no state.
 *
 *   npm ci --prefix bench/peers && node --expose-gc bench/run-overhead.bench.ts
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createAgentPool } from '../src/agent-pool.ts';
import { defineTool } from '../src/tools/tool.ts';
import { tempDir } from '../test/support/temp-dir.ts';
import { table, writeResult } from './harness.ts';
import { type ContenderCost, combineRounds, measureContender } from './peers/measure.ts';
import { createInstantModel, SCRIPT } from './peers/mock-model.ts';

const SELF = fileURLToPath(import.meta.url);
const PEERS_DIR = join(dirname(SELF), 'peers');
const AGENTPOOL = ['agentpool-sqlite', 'agentpool-memory'] as const;
const PEER_KEYS = ['floor', 'ai-sdk', 'mastra', 'langgraph'] as const;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

/** agentpool as a contender: one pool, two agents, a new thread per run. */
async function agentpool(store: 'sqlite' | 'memory') {
  const { dir, cleanup } = tempDir('agentpool-bench-');
  let toolRuns = 0;
  const add = defineTool({
    name: 'add',
    description: 'Adds two numbers',
    inputSchema: {
      type: 'object',
      properties: { a: { type: 'number' }, b: { type: 'number' } },
      required: ['a', 'b'],
    },
    execute: (input) => {
      toolRuns++;
      return (input.a as number) + (input.b as number);
    },
  });
  const model = createInstantModel('instant');
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
    const thread = await pool.threads.create('bench');
    return (await pool.runs.start('bench', agent, { input: SCRIPT.prompt, threadId: thread.id })).result;
  };
  // self-check: the scenarios really happen
  const a = await run('plain');
  const b = await run('tooled');
  if (a.output !== SCRIPT.plainText || a.steps !== 1) throw new Error(`agentpool A: ${JSON.stringify(a)}`);
  if (b.output !== SCRIPT.finalText || b.steps !== 2 || toolRuns !== 1) throw new Error(`agentpool B: ${JSON.stringify(b)}`);
  return {
    contender: {
      name: `agentpool (${store === 'sqlite' ? 'SQLite file' : 'memory store'}, new thread per run)`,
      plain: () => run('plain'),
      toolCall: () => run('tooled'),
    },
    async close() {
      await pool.close();
      cleanup();
    },
  };
}

async function child(key: string): Promise<ContenderCost> {
  if (key === 'agentpool-sqlite' || key === 'agentpool-memory') {
    const a = await agentpool(key === 'agentpool-sqlite' ? 'sqlite' : 'memory');
    try {
      return await measureContender(a.contender);
    } finally {
      await a.close();
    }
  }
  // a path in a variable keeps the peers' dependencies out of the root type check
  const peersModule = join(PEERS_DIR, 'peers.ts');
  const { PEERS } = (await import(peersModule)) as typeof import('./peers/peers.ts');
  const entry = PEERS.find((p) => p.key === key);
  if (entry === undefined) throw new Error(`unknown contender ${key}`);
  return measureContender(await entry.factory());
}

const childIndex = process.argv.indexOf('--child');
if (childIndex >= 0) {
  console.log(JSON.stringify(await child(process.argv[childIndex + 1] ?? '')));
  process.exit(0);
}

const peersInstalled = existsSync(join(PEERS_DIR, 'node_modules', 'ai'));
if (!peersInstalled) {
  console.error('bench/peers is not installed: run `npm ci --prefix bench/peers` first');
  process.exit(1);
}
const { checkPeers, peerVersions } = (await import(join(PEERS_DIR, 'peers.ts'))) as typeof import('./peers/peers.ts');
await checkPeers();

const results = new Map<string, ContenderCost>();
for (const key of [...AGENTPOOL, ...PEER_KEYS]) {
  const rounds: ContenderCost[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const out = spawnSync(process.execPath, ['--expose-gc', SELF, '--child', key], { encoding: 'utf8' });
    if (out.status !== 0) throw new Error(`${key} failed:\n${out.stderr}`);
    const last = out.stdout.trim().split('\n').at(-1) ?? '';
    rounds.push(JSON.parse(last) as ContenderCost);
  }
  results.set(key, combineRounds(rounds));
  console.error(`measured ${key}`);
}

const get = (k: string) => results.get(k) as ContenderCost;
const us = (x: number) => x.toFixed(1);
const kib = (x: number) => (x / 1024).toFixed(1);
const rows = [...results.values()].map((c) => [
  c.name,
  us(c.plain.medianUs),
  us(c.plain.p99Us),
  kib(c.plain.heapBytesPerRun),
  us(c.toolCall.medianUs),
  us(c.toolCall.p99Us),
  kib(c.toolCall.heapBytesPerRun),
]);
const ap = get('agentpool-sqlite');
const ratio = (peer: string, scenario: 'plain' | 'toolCall') => ap[scenario].medianUs / get(peer)[scenario].medianUs;
const targets = [
  ['AI SDK generateText', 'ai-sdk', 1 / 3],
  ['Mastra Agent.generate', 'mastra', 1 / 10],
  ['LangGraph createReactAgent', 'langgraph', 1 / 10],
] as const;
const targetRows = targets.map(([label, key, limit]) => [
  label,
  `≤ ${limit === 1 / 3 ? '1/3' : '1/10'}`,
  ratio(key, 'plain').toFixed(3),
  ratio(key, 'toolCall').toFixed(3),
  ratio(key, 'plain') <= limit && ratio(key, 'toolCall') <= limit ? 'met' : 'missed',
]);
const versions = await peerVersions();
const summary = [
  `Zero-latency in-process mock model (the same scripted replies for everyone); ${ROUNDS} rounds per contender, each in its own process, median of each figure across rounds. Heap is bytes allocated per run (garbage included). Peers: ${Object.entries(
    versions,
  )
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')}.`,
  '',
  table(
    ['contender', 'A: plain median µs', 'A p99 µs', 'A heap KiB', 'B: tool call median µs', 'B p99 µs', 'B heap KiB'],
    rows,
  ),
  '',
  'agentpool with SQLite persistence, median per run, as a share of each peer (target in the second column):',
  '',
  table(['peer', 'target', 'A', 'B', 'target'], targetRows),
].join('\n');
writeResult({
  name: 'run-overhead',
  title: 'Runs: per-run overhead against AI SDK, Mastra and LangGraph.js',
  command: 'npm ci --prefix bench/peers && node --expose-gc bench/run-overhead.bench.ts',
  summary,
  data: Object.fromEntries(results),
});
