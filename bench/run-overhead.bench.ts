/**
 * Per-run overhead of the runtime on a zero-latency in-process model, against popular TypeScript
 * agent frameworks on the same mock, measured in the same run, each contender in its own process:
 * (A) a plain answer; (B) one tool call, then an answer. agentpool runs on a new thread each time
 * (created with the run: `runs.start(…, { thread: {} })`), with the thread, its messages and the
 * run record persisted to SQLite (and to memory), and
 * stateless (no thread: only the run record persisted to SQLite). The peers (bench/peers, installed
 * separately) keep no state.
 *
 *   npm ci --prefix bench/peers && node --expose-gc bench/run-overhead.bench.ts
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createAgentPool } from '../src/agent-pool.ts';
import { newId } from '../src/core/ids.ts';
import { SqliteRunStore } from '../src/store/sqlite-runs.ts';
import { openDatabase } from '../src/store/sqlite-schema.ts';
import { defineTool } from '../src/tools/tool.ts';
import { runRecord } from '../test/support/run-record.ts';
import { tempDir } from '../test/support/temp-dir.ts';
import { concurrentUs, sequentialUs, table, writeResult } from './harness.ts';
import { type Contender, type ContenderCost, combineRounds, measureContender } from './peers/measure.ts';
import { createInstantModel, SCRIPT } from './peers/mock-model.ts';

const SELF = fileURLToPath(import.meta.url);
const PEERS_DIR = join(dirname(SELF), 'peers');
const AGENTPOOL = ['agentpool-sqlite', 'agentpool-sqlite-stateless', 'agentpool-memory'] as const;
const PEER_KEYS = ['floor', 'ai-sdk', 'mastra', 'langgraph'] as const;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

/** What this script uses of bench/peers/peers.ts, declared here so the root type check never follows it. */
interface PeersModule {
  PEERS: readonly { key: string; factory: () => Promise<Contender> }[];
  checkPeers(): Promise<string[]>;
  peerVersions(): Promise<Record<string, string>>;
}
/** A path in a variable keeps the peers' dependencies out of the root type check and install. */
const loadPeers = () => import(join(PEERS_DIR, 'peers.ts')) as Promise<PeersModule>;

/** agentpool as a contender: one pool, two agents, a new thread per run (or none: stateless). */
async function agentpool(store: 'sqlite' | 'memory', stateless: boolean) {
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
  // A new thread per run, created with the run (`thread: {}`: one call, one write); or none.
  const thread = stateless ? {} : { thread: {} };
  const run = async (agent: string) =>
    (await pool.runs.start('bench', agent, { input: SCRIPT.prompt, ...thread })).result;
  // self-check: the scenarios really happen
  const a = await run('plain');
  const b = await run('tooled');
  if (a.output !== SCRIPT.plainText || a.steps !== 1) throw new Error(`agentpool A: ${JSON.stringify(a)}`);
  if (b.output !== SCRIPT.finalText || b.steps !== 2 || toolRuns !== 1)
    throw new Error(`agentpool B: ${JSON.stringify(b)}`);
  return {
    contender: {
      name: `agentpool (${store === 'sqlite' ? 'SQLite file' : 'memory store'}, ${stateless ? 'stateless' : 'new thread per run'})`,
      plain: () => run('plain'),
      toolCall: () => run('tooled'),
    },
    async close() {
      await pool.close();
      cleanup();
    },
  };
}

/** A contender's figures: sequential (per-run latency) and concurrent (wall time / runs). */
type Figures = ContenderCost & {
  concurrent: { plainUs: number; toolCallUs: number };
  commitFloorUs?: number;
  /** The run store's own write of a plain run (see storeWriteUs): on a new thread, and stateless. */
  storeWriteUs?: { thread: number; stateless: number };
};

/**
 * The baseline of persistence: one transaction inserting two small rows, on a file opened with
 * the store's own pragmas, one at a time. A durable run commits at least three times (thread,
 * start, finish), so this bounds from below what a persisted run can cost on this disk.
 */
function commitFloorUs(): number {
  const { dir, cleanup } = tempDir('agentpool-bench-');
  const db = openDatabase(join(dir, 'floor.db'), 5000);
  try {
    db.exec('CREATE TABLE floor (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
    const insert = db.prepare('INSERT INTO floor (body) VALUES (?)');
    const commit = db.transaction(() => {
      insert.run('x'.repeat(200));
      insert.run('y'.repeat(200));
    }).immediate;
    for (let i = 0; i < 2000; i++) commit();
    const samples: number[] = [];
    for (let i = 0; i < 10_000; i++) {
      const t0 = process.hrtime.bigint();
      commit();
      samples.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    return samples.sort((a, b) => a - b)[samples.length >> 1] as number;
  } finally {
    db.close();
    cleanup();
  }
}

/**
 * The floor of agentpool's own persistence: the SQLite run store's write of what a plain run
 * writes, called directly, one at a time, median µs. On a new thread: the thread, the user's
 * message, the answer and the finished record, in one `createRun` (one transaction, as a run makes
 * it); stateless: the record alone. What a run costs above this is the runtime's, not the disk's.
 */
async function storeWriteUs(stateless: boolean): Promise<number> {
  const { dir, cleanup } = tempDir('agentpool-bench-');
  const store = new SqliteRunStore({ path: join(dir, 'store.db') });
  const write = () => {
    const now = Date.now();
    const id = newId('run', now);
    const threadId = stateless ? null : newId('thr', now);
    const run = runRecord({
      id,
      project: 'bench',
      agentName: 'plain',
      threadId,
      status: 'succeeded',
      input: SCRIPT.prompt,
      output: SCRIPT.plainText,
      model: 'mock/instant',
      steps: 1,
      inputTokens: SCRIPT.usage.inputTokens,
      outputTokens: SCRIPT.usage.outputTokens,
      createdAt: now,
      startedAt: now,
      finishedAt: now,
    });
    if (threadId === null) return store.createRun(run, []);
    const message = (role: 'user' | 'assistant', content: unknown) => ({
      id: newId('msg', now),
      role,
      content,
      runId: id,
      createdAt: now,
    });
    const messages = [
      message('user', SCRIPT.prompt),
      message('assistant', [{ type: 'text', text: SCRIPT.plainText }]),
    ];
    return store.createRun(run, messages, undefined, {
      id: threadId,
      project: 'bench',
      metadata: {},
      ttlSeconds: null,
      now,
    });
  };
  try {
    return (await sequentialUs(write, 10_000)).median;
  } finally {
    await store.close();
    cleanup();
  }
}

const CONCURRENCY = 32;

async function measure(c: Contender): Promise<Figures> {
  const cost = await measureContender(c);
  return {
    ...cost,
    concurrent: {
      plainUs: await concurrentUs(c.plain, CONCURRENCY),
      toolCallUs: await concurrentUs(c.toolCall, CONCURRENCY),
    },
  };
}

async function child(key: string): Promise<Figures> {
  if ((AGENTPOOL as readonly string[]).includes(key)) {
    const a = await agentpool(key === 'agentpool-memory' ? 'memory' : 'sqlite', key.endsWith('-stateless'));
    try {
      const figures = await measure(a.contender);
      if (key !== 'agentpool-sqlite') return figures;
      const storeWrite = { thread: await storeWriteUs(false), stateless: await storeWriteUs(true) };
      return { ...figures, commitFloorUs: commitFloorUs(), storeWriteUs: storeWrite };
    } finally {
      await a.close();
    }
  }
  const { PEERS } = await loadPeers();
  const entry = PEERS.find((p) => p.key === key);
  if (entry === undefined) throw new Error(`unknown contender ${key}`);
  return measure(await entry.factory());
}

const childIndex = process.argv.indexOf('--child');
if (childIndex >= 0) {
  console.log(JSON.stringify(await child(process.argv[childIndex + 1] ?? '')));
  process.exit(0);
}

if (!existsSync(join(PEERS_DIR, 'node_modules', 'ai'))) {
  console.error('bench/peers is not installed: run `npm ci --prefix bench/peers` first');
  process.exit(1);
}
const { checkPeers, peerVersions } = await loadPeers();
await checkPeers();

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const results = new Map<string, Figures>();
for (const key of [...AGENTPOOL, ...PEER_KEYS]) {
  const rounds: Figures[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const out = spawnSync(process.execPath, ['--expose-gc', SELF, '--child', key], { encoding: 'utf8' });
    if (out.status !== 0) throw new Error(`${key} failed:\n${out.stderr}`);
    rounds.push(JSON.parse(out.stdout.trim().split('\n').at(-1) ?? '') as Figures);
  }
  const floors = rounds.flatMap((r) => (r.commitFloorUs === undefined ? [] : [r.commitFloorUs]));
  const writes = rounds.flatMap((r) => (r.storeWriteUs === undefined ? [] : [r.storeWriteUs]));
  results.set(key, {
    ...combineRounds(rounds),
    ...(floors.length > 0 && { commitFloorUs: median(floors) }),
    ...(writes.length > 0 && {
      storeWriteUs: {
        thread: median(writes.map((w) => w.thread)),
        stateless: median(writes.map((w) => w.stateless)),
      },
    }),
    concurrent: {
      plainUs: median(rounds.map((r) => r.concurrent.plainUs)),
      toolCallUs: median(rounds.map((r) => r.concurrent.toolCallUs)),
    },
  });
  console.error(`measured ${key}`);
}

const get = (k: string) => results.get(k) as Figures;
const us = (x: number) => x.toFixed(1);
const kib = (x: number) => (x / 1024).toFixed(1);
const rows = [...results.values()].map((c) => [
  c.name,
  us(c.plain.medianUs),
  us(c.plain.p99Us),
  kib(c.plain.heapBytesPerRun),
  us(c.concurrent.plainUs),
  us(c.toolCall.medianUs),
  us(c.toolCall.p99Us),
  kib(c.toolCall.heapBytesPerRun),
  us(c.concurrent.toolCallUs),
]);
const ap = get('agentpool-sqlite');
const targets = [
  ['AI SDK generateText', 'ai-sdk', 1 / 3, '1/3'],
  ['Mastra Agent.generate', 'mastra', 1 / 10, '1/10'],
  ['LangGraph createReactAgent', 'langgraph', 1 / 10, '1/10'],
] as const;
const verdict = (a: number, b: number, limit: number) => (a <= limit && b <= limit ? 'met' : 'missed');
const targetRows = targets.map(([label, key, limit, shown]) => {
  const peer = get(key);
  const a = ap.plain.medianUs / peer.plain.medianUs;
  const b = ap.toolCall.medianUs / peer.toolCall.medianUs;
  const ca = ap.concurrent.plainUs / peer.concurrent.plainUs;
  const cb = ap.concurrent.toolCallUs / peer.concurrent.toolCallUs;
  const f = (x: number) => x.toFixed(3);
  return [label, `≤ ${shown}`, f(a), f(b), verdict(a, b, limit), f(ca), f(cb), verdict(ca, cb, limit)];
});
/** agentpool against the AI SDK, each figure with its goal (issue 11): ratios of this run. */
const sdk = get('ai-sdk');
const stateless = get('agentpool-sqlite-stateless');
const memory = get('agentpool-memory');
/** A and B of a contender as shares of the AI SDK's: median latency, or wall time per run in flight. */
const shares = (c: Figures, inFlight: boolean): [number, number] =>
  inFlight
    ? [c.concurrent.plainUs / sdk.concurrent.plainUs, c.concurrent.toolCallUs / sdk.concurrent.toolCallUs]
    : [c.plain.medianUs / sdk.plain.medianUs, c.toolCall.medianUs / sdk.toolCall.medianUs];
const goals: [string, [number, number], number][] = [
  ['SQLite, new thread, one at a time', shares(ap, false), 1.0],
  ['SQLite, stateless, one at a time', shares(stateless, false), 0.6],
  [`SQLite, new thread, ${CONCURRENCY} in flight`, shares(ap, true), 0.5],
  ['memory store, new thread, one at a time', shares(memory, false), 0.3],
];
const goalRows = goals.map(([label, [a, b], goal]) => [
  label,
  a.toFixed(2),
  b.toFixed(2),
  `≤ ${goal.toFixed(1)}`,
  a <= goal && b <= goal ? 'met' : 'missed',
]);
const heapKiB = ap.plain.heapBytesPerRun / 1024;
/** A plain SQLite run against its store's own write: the disk's part and the runtime's. */
const storeWrite = ap.storeWriteUs ?? { thread: Number.NaN, stateless: Number.NaN };
const storeRows = (
  [
    ['new thread', ap.plain.medianUs, storeWrite.thread],
    ['stateless', stateless.plain.medianUs, storeWrite.stateless],
  ] as const
).map(([label, run, write]) => [
  label,
  us(run),
  us(write),
  us(run - write),
  (write / sdk.plain.medianUs).toFixed(2),
  ((run - write) / sdk.plain.medianUs).toFixed(2),
]);
const versions = await peerVersions();
const peerList = Object.entries(versions)
  .map(([k, v]) => `${k} ${v}`)
  .join(', ');
const summary = [
  `Zero-latency in-process mock model (the same scripted replies for everyone); ${ROUNDS} rounds per contender, each in its own process, median of each figure across rounds. Heap is bytes allocated per run (garbage included). "In flight" runs ${CONCURRENCY} runs at a time for 2 s and divides the wall time by the runs. Peers: ${peerList}. Note for the AI SDK figures: with zod 4.6 (used here, as in agentpool's own install) the AI SDK spends much of a run in zod's recursion check; with zod 4.5 it measured about half (A ≈ 26 µs) in a quick check.`,
  '',
  table(
    [
      'contender',
      'A: plain, median µs',
      'A p99 µs',
      'A heap KiB',
      `A, ${CONCURRENCY} in flight, µs/run`,
      'B: tool call, median µs',
      'B p99 µs',
      'B heap KiB',
      `B, ${CONCURRENCY} in flight, µs/run`,
    ],
    rows,
  ),
  '',
  `Baseline measured in the same run: one bare SQLite commit of two small rows, with the store's pragmas, costs ${us(ap.commitFloorUs ?? Number.NaN)} µs (median) here; a persisted run on a new thread commits once (A: the thread, the run and its messages) or twice (B: and its second step), so persistence alone costs at least ${us(ap.commitFloorUs ?? Number.NaN)} µs and ${us(2 * (ap.commitFloorUs ?? Number.NaN))} µs one run at a time; a stateless run commits once too (B: twice). A thread created by its own call first (\`threads.create\`, then the run) costs one commit more. The store group-commits the writes of one event-loop turn into one transaction.`,
  '',
  "A plain SQLite run (A, one at a time) against the run store's own write of what it writes (`SqliteRunStore.createRun` called directly, one at a time, median): on a new thread the thread, two messages and the finished record in one transaction; stateless the record alone. The write is the floor the disk and the schema set; the rest is the runtime's.",
  '',
  table(
    ['SQLite, plain', 'run µs', 'store write µs', 'the rest µs', 'store write / AI SDK', 'the rest / AI SDK'],
    storeRows,
  ),
  '',
  'agentpool as a share of the AI SDK (median latency one at a time; wall time per run in flight), against its goals:',
  '',
  table(['agentpool', 'A', 'B', 'goal', ''], goalRows),
  '',
  `Heap allocated per plain run (SQLite, new thread): ${heapKiB.toFixed(1)} KiB (goal ≤ 20 KiB: ${heapKiB <= 20 ? 'met' : 'missed'}).`,
  '',
  'agentpool with SQLite persistence as a share of each peer, one run at a time (median latency) and with runs in flight (wall time per run):',
  '',
  table(['peer', 'target', 'A', 'B', 'one at a time', 'A in flight', 'B in flight', 'in flight'], targetRows),
].join('\n');
writeResult({
  name: 'run-overhead',
  title: 'Runs: per-run overhead against AI SDK, Mastra and LangGraph.js',
  command: 'npm ci --prefix bench/peers && node --expose-gc bench/run-overhead.bench.ts',
  summary,
  data: Object.fromEntries(results),
});
