/**
 * The PostgreSQL store against SQLite, on the instant in-process model of run-overhead (so what is
 * measured is the runtime and its store): SQL statements per run on PostgreSQL, counted through the
 * stores' diagnostics channel, and the time per run, one at a time and with 32 in flight, for a
 * plain run on a new thread, a tool-call run on a new thread, and a stateless run. PostgreSQL is the
 * machine's (AGENTPOOL_BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test), in a
 * schema of its own that is dropped afterwards.
 *
 *   node --expose-gc bench/postgres-store.bench.ts
 */
import { randomBytes } from 'node:crypto';
import diagnostics from 'node:diagnostics_channel';
import pg from 'pg';
import { createAgentPool, type AgentPool } from '../src/agent-pool.ts';
import { POSTGRES_QUERY_CHANNEL } from '../src/store/postgres/database.ts';
import { defineTool } from '../src/tools/tool.ts';
import { tempDir } from '../test/support/temp-dir.ts';
import { concurrentUs, sequentialUs, table, writeResult } from './harness.ts';
import { createInstantModel, SCRIPT } from './peers/mock-model.ts';

const DATABASE_URL = process.env.AGENTPOOL_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const SEQUENTIAL_RUNS = Number(process.env.BENCH_RUNS ?? 1000);
const CONCURRENCY = 32;

type Scenario = 'thread' | 'tool' | 'stateless';
const SCENARIOS: Scenario[] = ['thread', 'tool', 'stateless'];

/** The stores compared: SQLite, PostgreSQL durable at each commit, and without waiting for the WAL flush. */
const STORES = [
  { key: 'sqlite', label: 'SQLite' },
  { key: 'postgres', label: 'PostgreSQL' },
  { key: 'postgres-async', label: 'PostgreSQL, synchronous_commit=off' },
] as const;
type StoreKey = (typeof STORES)[number]['key'];

function asyncCommitUrl(url: string): string {
  const u = new URL(url);
  u.searchParams.set('options', '-c synchronous_commit=off');
  return u.toString();
}

async function openPool(store: StoreKey, schema: string, dir: string): Promise<AgentPool> {
  const add = defineTool({
    name: 'add',
    description: 'Adds two numbers',
    inputSchema: { type: 'object', properties: { a: { type: 'number' }, b: { type: 'number' } } },
    execute: (input) => (input.a as number) + (input.b as number),
  });
  const model = createInstantModel('instant');
  const pool = await createAgentPool({
    ...(store === 'sqlite'
      ? { store: 'sqlite' as const, dataDir: dir }
      : {
          store: 'postgres' as const,
          databaseUrl: store === 'postgres' ? DATABASE_URL : asyncCommitUrl(DATABASE_URL),
          postgres: { schema: `${schema}_${store === 'postgres' ? 'sync' : 'async'}` },
        }),
    models: { custom: { mock: () => model }, env: {} },
    tools: { tools: [add] },
    runs: { recentStreams: 100 },
    ttlSweepIntervalMs: 0,
  });
  await pool.agents.create('bench', { name: 'plain', model: 'mock/instant', instructions: 'You are terse.' });
  await pool.agents.create('bench', {
    name: 'tooled',
    model: 'mock/instant',
    instructions: 'You are terse.',
    tools: ['custom:add'],
  });
  return pool;
}

function runner(pool: AgentPool, scenario: Scenario): () => Promise<unknown> {
  return async () => {
    const threadId = scenario === 'stateless' ? undefined : (await pool.threads.create('bench')).id;
    const agent = scenario === 'tool' ? 'tooled' : 'plain';
    const run = await (
      await pool.runs.start('bench', agent, {
        input: SCRIPT.prompt,
        ...(threadId !== undefined && { threadId }),
      })
    ).result;
    if (run.status !== 'succeeded') throw new Error(`run ${run.status}: ${JSON.stringify(run.error)}`);
    return run;
  };
}

/** Statements PostgreSQL received while `fn` ran, by the first words of their text. */
async function statements(fn: () => Promise<unknown>): Promise<string[]> {
  const texts: string[] = [];
  const listener = (message: unknown) => {
    const text = (message as { text: string }).text.replace(/\s+/g, ' ').trim();
    texts.push(text.replace(/\(.*$/, '').slice(0, 40));
  };
  diagnostics.subscribe(POSTGRES_QUERY_CHANNEL, listener);
  try {
    await fn();
  } finally {
    diagnostics.unsubscribe(POSTGRES_QUERY_CHANNEL, listener);
  }
  return texts;
}

const schema = `agentpool_bench_${randomBytes(4).toString('hex')}`;
const { dir, cleanup } = tempDir('agentpool-bench-');
const figures: Record<string, Record<Scenario, { median: number; p99: number; concurrent: number }>> = {};
const counted: Record<Scenario, string[]> = { thread: [], tool: [], stateless: [] };
try {
  for (const { key: store } of STORES) {
    const pool = await openPool(store, schema, dir);
    try {
      figures[store] = {} as Record<Scenario, { median: number; p99: number; concurrent: number }>;
      for (const scenario of SCENARIOS) {
        const fn = runner(pool, scenario);
        await fn(); // warm: activation, prepared statements
        if (store === 'postgres') counted[scenario] = await statements(fn);
        const seq = await sequentialUs(fn, SEQUENTIAL_RUNS);
        figures[store][scenario] = { ...seq, concurrent: await concurrentUs(fn, CONCURRENCY) };
        console.error(`measured ${store} ${scenario}`);
      }
    } finally {
      await pool.close();
    }
  }
} finally {
  cleanup();
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  for (const mode of ['sync', 'async']) await admin.query(`DROP SCHEMA IF EXISTS ${schema}_${mode} CASCADE`);
  await admin.end();
}

const label: Record<Scenario, string> = {
  thread: 'plain run, new thread',
  tool: 'tool call, new thread',
  stateless: 'stateless run',
};
const us = (x: number) => `${x.toFixed(0)} µs`;
const rows = SCENARIOS.flatMap((s) =>
  STORES.map(({ key, label: store }) => {
    const f = figures[key]![s];
    const count = key === 'sqlite' ? '—' : counted[s].length;
    return [label[s], store, count, us(f.median), us(f.p99), us(f.concurrent)];
  }),
);
const summary = [
  table(
    [
      'scenario',
      'store',
      'SQL statements per run',
      'median, one at a time',
      'p99',
      `wall time per run, ${CONCURRENCY} in flight`,
    ],
    rows,
  ),
  '',
  'Statements of one run, in order:',
  '',
  ...SCENARIOS.map((s) => `- ${label[s]}: ${counted[s].join(' → ')}`),
  '',
  'The instant in-process model of run-overhead answers at once, so the times are the runtime and its store. PostgreSQL is the local server over TCP; SQLite a file in the temporary directory (WAL, synchronous=NORMAL: it does not wait for the disk at each commit). PostgreSQL as configured waits for the WAL flush at every commit, which is most of its time on a disk with slow fsync; with synchronous_commit=off (in the URL, the role or the database) it does not, and a crash of the server may lose the last few hundred milliseconds of commits, never consistency.',
].join('\n');
writeResult({
  name: 'postgres-store',
  title: 'PostgreSQL store against SQLite: statements and time per run',
  command: 'node --expose-gc bench/postgres-store.bench.ts',
  summary,
  data: { figures, statements: counted, sequentialRuns: SEQUENTIAL_RUNS, concurrency: CONCURRENCY },
});
