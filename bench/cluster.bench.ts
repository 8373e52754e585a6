/**
 * Cluster mode (PostgreSQL + Redis) against a single node, measured in the same run:
 *
 * 1. Per-run overhead in process, on the instant in-process model of run-overhead, a new thread per
 *    run: single-node SQLite (the baseline), PostgreSQL without Redis, and a cluster node
 *    (PostgreSQL + Redis); a plain run and a tool-call run; one at a time (median µs) and 32 in
 *    flight (wall time per run). Each store in its own child process.
 * 2. What one run sends: Redis commands (MONITOR, only the commands of this node's connections
 *    naming this run's key prefix, not those a Lua script runs inside Redis, net of what the idle
 *    node sends in the same time), Redis round trips (socket writes to Redis, those of one
 *    connection in one event-loop turn counted once), and SQL statements (the stores'
 *    diagnostics channel, as bench/postgres-store.bench.ts counts them).
 * 3. HTTP wait-mode runs/s: `agentpool serve` processes on this machine, one node on SQLite (the
 *    baseline), one on PostgreSQL alone, one cluster node, three cluster nodes (autocannon, a fixed
 *    number of keep-alive connections spread round robin over the nodes), on the demo model.
 * 4. Failover: three nodes; K wait-mode and K background runs in flight on one node (a fake model
 *    that takes 30 s per reply); `kill -9` of that node; the time until every wait run is
 *    `interrupted` and every background run has called the model again from another node.
 *
 * PostgreSQL and Redis are the machine's (AGENTPOOL_BENCH_DATABASE_URL, default
 * postgres://postgres@127.0.0.1:5432/postgres; AGENTPOOL_BENCH_REDIS_URL, default
 * redis://127.0.0.1:6379); each part uses a database and a key prefix of its own, dropped and
 * deleted afterwards.
 *
 *   node --expose-gc bench/cluster.bench.ts [overhead] [http] [failover]
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import diagnostics from 'node:diagnostics_channel';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { createRequire } from 'node:module';
import net from 'node:net';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { type AgentPool, createAgentPool } from '../src/agent-pool.ts';
import { POSTGRES_QUERY_CHANNEL } from '../src/store/postgres/database.ts';
import { defineTool } from '../src/tools/tool.ts';
import { startFakeOpenAI } from '../test/support/fake-openai.ts';
import { tempDir } from '../test/support/temp-dir.ts';
import { concurrentUs, sequentialUs, summarize, table, writeResult } from './harness.ts';
import { createInstantModel, SCRIPT } from './peers/mock-model.ts';

const SELF = fileURLToPath(import.meta.url);
const MAIN = resolve(SELF, '../../src/cli/main.ts');
const DATABASE_URL =
  process.env.AGENTPOOL_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.AGENTPOOL_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const SEQUENTIAL_RUNS = Number(process.env.BENCH_RUNS ?? 1000);
const COUNTED_RUNS = 200;
const CONCURRENCY = 32;
const HTTP_CONNECTIONS = 12;
const HTTP_WARMUP_S = 3;
const HTTP_DURATION_S = 8;
const HTTP_ROUNDS = Number(process.env.BENCH_HTTP_ROUNDS ?? 3);
const FAILOVER_REPS = Number(process.env.BENCH_FAILOVER_REPS ?? 3);
const FAILOVER_K = 4;
const SLOW_REPLY_MS = 30_000;

// ---------------------------------------------------------------------------------------------
// databases and prefixes of our own

async function freshDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `agentpool_cbench_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const dropper = new pg.Client({ connectionString: DATABASE_URL });
      await dropper.connect();
      try {
        await dropper.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await dropper.end();
      }
    },
  };
}

function freshPrefix(): { prefix: string; remove: () => Promise<number> } {
  const prefix = `agentpool-cbench:${randomBytes(6).toString('hex')}:`;
  return {
    prefix,
    remove: async () => {
      const admin = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
      let removed = 0;
      try {
        let cursor = '0';
        do {
          const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
          cursor = next;
          if (keys.length > 0) removed += await admin.del(...keys);
        } while (cursor !== '0');
      } finally {
        admin.disconnect();
      }
      return removed;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// part 1 and 2: per-run overhead in process (a child process per store)

type StoreKey = 'sqlite' | 'postgres' | 'cluster';
const STORES: { key: StoreKey; label: string }[] = [
  { key: 'sqlite', label: 'single node, SQLite (baseline)' },
  { key: 'postgres', label: 'single node, PostgreSQL (no Redis)' },
  { key: 'cluster', label: 'cluster node, PostgreSQL + Redis' },
];
type Scenario = 'plain' | 'tool';
const SCENARIOS: Scenario[] = ['plain', 'tool'];

interface Counted {
  runs: number;
  /** Redis commands per run, net of the idle node's. */
  redisCommands: number;
  /** The idle node's commands per second (heartbeats, polls, BullMQ's blocking waits). */
  idleCommandsPerSecond: number;
  /** Round trips per run (socket writes, one per connection and event-loop turn), net of idle. */
  redisRoundTrips: number;
  redisWrites: number;
  /** Commands per run by name (EVALSHA by its first key), not net of idle. */
  byCommand: Record<string, number>;
  sqlStatements: number;
  sqlByText: string[];
}

interface OverheadFigures {
  store: StoreKey;
  /**
   * One round trip, median µs, on connections of its own: Redis `PING`, a trivial `EVALSHA` on an
   * auto-pipelined connection (as the node's), PostgreSQL `SELECT 1`.
   */
  roundTripUs?: { redis: number; redisScript: number; postgres: number };
  scenarios: Record<Scenario, { median: number; p99: number; concurrent: number; counted?: Counted }>;
}

async function openPool(
  store: StoreKey,
  databaseUrl: string | undefined,
  prefix: string | undefined,
  dir: string,
) {
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
          databaseUrl: databaseUrl as string,
          ...(store === 'cluster' && {
            redisUrl: REDIS_URL,
            redisPrefix: prefix as string,
            cluster: { nodeId: 'bench' },
          }),
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
    const thread = await pool.threads.create('bench');
    const run = await (
      await pool.runs.start('bench', scenario === 'tool' ? 'tooled' : 'plain', {
        input: SCRIPT.prompt,
        threadId: thread.id,
      })
    ).result;
    if (run.status !== 'succeeded') throw new Error(`run ${run.status}: ${JSON.stringify(run.error)}`);
    if (run.steps !== (scenario === 'tool' ? 2 : 1)) throw new Error(`run took ${run.steps} steps`);
    return run;
  };
}

/**
 * Counts socket writes to Redis (port of REDIS_URL) of this process: all of them, and once per
 * socket and event-loop turn (writes of one connection before the next `setImmediate` fires).
 */
function redisWriteCounter(): { writes: number; turns: number; reset(): void; stop(): void } {
  const port = Number(new URL(REDIS_URL).port || 6379);
  const original = net.Socket.prototype.write;
  const thisTurn = new Set<net.Socket>();
  const counter = {
    writes: 0,
    turns: 0,
    reset() {
      counter.writes = 0;
      counter.turns = 0;
    },
    stop() {
      net.Socket.prototype.write = original;
    },
  };
  net.Socket.prototype.write = function (this: net.Socket, ...args: unknown[]) {
    if (this.remotePort === port) {
      counter.writes++;
      if (!thisTurn.has(this)) {
        if (thisTurn.size === 0) setImmediate(() => thisTurn.clear());
        thisTurn.add(this);
        counter.turns++;
      }
    }
    return (original as (...a: unknown[]) => boolean).apply(this, args);
  } as typeof original;
  return counter;
}

/** What Redis received from other connections while `fn` ran: commands naming `prefix`. */
async function monitorDuring(prefix: string, fn: () => Promise<unknown>): Promise<string[][]> {
  const monitor = await new Redis(REDIS_URL).monitor();
  const seen: string[][] = [];
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (source === 'lua') return; // run inside a script: no command of the node
    if (args.some((a) => a.includes(prefix))) seen.push(args);
  });
  try {
    await sleep(50);
    await fn();
    await sleep(50);
  } finally {
    monitor.disconnect();
  }
  return seen;
}

/** A command's label: its name, and for scripts the first key with ids replaced by `*`. */
function commandLabel(args: string[], prefix: string): string {
  const name = (args[0] ?? '').toLowerCase();
  if (name === 'evalsha' || name === 'eval') {
    const key = (args[3] ?? '').replace(prefix, '').replace(/[a-z]{3}_[A-Za-z0-9]+/g, '*');
    return `${name} ${key}`;
  }
  return name;
}

async function countRuns(
  pool: AgentPool,
  scenario: Scenario,
  prefix: string | undefined,
  writes: ReturnType<typeof redisWriteCounter> | undefined,
): Promise<Counted> {
  const fn = runner(pool, scenario);
  const sql: string[] = [];
  const listener = (message: unknown) => {
    const text = (message as { text: string }).text.replace(/\s+/g, ' ').trim();
    sql.push(text.replace(/\(.*$/, '').slice(0, 40));
  };
  let duration = 0;
  let busyWrites = 0;
  let busyTurns = 0;
  const runAll = async () => {
    writes?.reset();
    const t0 = performance.now();
    diagnostics.subscribe(POSTGRES_QUERY_CHANNEL, listener);
    try {
      for (let i = 0; i < COUNTED_RUNS; i++) await fn();
    } finally {
      diagnostics.unsubscribe(POSTGRES_QUERY_CHANNEL, listener);
    }
    duration = performance.now() - t0;
    busyWrites = writes?.writes ?? 0;
    busyTurns = writes?.turns ?? 0;
  };
  if (prefix === undefined) {
    await runAll();
    return {
      runs: COUNTED_RUNS,
      redisCommands: 0,
      idleCommandsPerSecond: 0,
      redisRoundTrips: 0,
      redisWrites: 0,
      byCommand: {},
      sqlStatements: sql.length / COUNTED_RUNS,
      sqlByText: sql.slice(0, sql.length / COUNTED_RUNS),
    };
  }
  const busy = await monitorDuring(prefix, runAll);
  // the idle node over as long: heartbeats, ledger renewals, event-log polls, BullMQ's waits
  // at least 5 s of it (its traffic comes every few seconds), scaled to the runs' duration
  const idleMs = Math.max(duration, 5000);
  const scale = duration / idleMs;
  let idleTurns = 0;
  let idleWrites = 0;
  const idle = await monitorDuring(prefix, async () => {
    writes?.reset();
    await sleep(idleMs);
    idleTurns = (writes?.turns ?? 0) * scale;
    idleWrites = (writes?.writes ?? 0) * scale;
  });
  const byCommand: Record<string, number> = {};
  for (const args of busy) {
    const label = commandLabel(args, prefix);
    byCommand[label] = (byCommand[label] ?? 0) + 1 / COUNTED_RUNS;
  }
  return {
    runs: COUNTED_RUNS,
    redisCommands: (busy.length - idle.length * scale) / COUNTED_RUNS,
    idleCommandsPerSecond: idle.length / (idleMs / 1000),
    redisRoundTrips: (busyTurns - idleTurns) / COUNTED_RUNS,
    redisWrites: (busyWrites - idleWrites) / COUNTED_RUNS,
    byCommand,
    sqlStatements: sql.length / COUNTED_RUNS,
    sqlByText: sql.slice(0, sql.length / COUNTED_RUNS),
  };
}

/** The floor of a round trip to each server: median µs of 2,000 after 500, one at a time. */
async function roundTrips(
  databaseUrl: string,
): Promise<{ redis: number; redisScript: number; postgres: number }> {
  const time = async (fn: () => Promise<unknown>) => {
    for (let i = 0; i < 500; i++) await fn();
    const samples: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const t0 = process.hrtime.bigint();
      await fn();
      samples.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
    return summarize(samples).median;
  };
  const redis = new Redis(REDIS_URL);
  const pipelined = new Redis(REDIS_URL, { enableAutoPipelining: true });
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const sha = (await redis.script('LOAD', 'return 1')) as string;
    return {
      redis: await time(() => redis.ping()),
      redisScript: await time(() => pipelined.evalsha(sha, 0)),
      postgres: await time(() => client.query('SELECT 1')),
    };
  } finally {
    redis.disconnect();
    pipelined.disconnect();
    await client.end();
  }
}

async function overheadChild(store: StoreKey): Promise<OverheadFigures> {
  const db = store === 'sqlite' ? undefined : await freshDatabase();
  const prefix = store === 'cluster' ? freshPrefix() : undefined;
  const { dir, cleanup } = tempDir('agentpool-cbench-');
  const writes = store === 'cluster' ? redisWriteCounter() : undefined;
  const figures = { store, scenarios: {} } as OverheadFigures;
  try {
    if (store === 'cluster' && db !== undefined) figures.roundTripUs = await roundTrips(db.url);
    const pool = await openPool(store, db?.url, prefix?.prefix, dir);
    try {
      for (const scenario of SCENARIOS) {
        const fn = runner(pool, scenario);
        await fn();
        const counted =
          store === 'sqlite' ? undefined : await countRuns(pool, scenario, prefix?.prefix, writes);
        const seq = await sequentialUs(fn, SEQUENTIAL_RUNS);
        figures.scenarios[scenario] = {
          ...seq,
          concurrent: await concurrentUs(fn, CONCURRENCY),
          ...(counted !== undefined && { counted }),
        };
        console.error(`measured ${store} ${scenario}`);
      }
    } finally {
      await pool.close();
    }
  } finally {
    writes?.stop();
    cleanup();
    await db?.drop();
    await prefix?.remove();
  }
  return figures;
}

// ---------------------------------------------------------------------------------------------
// node processes (parts 3 and 4)

interface Node {
  id: string;
  url: string;
  child: ChildProcess;
  output: () => string;
}

async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = net.createServer();
    server.on('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => done(port));
    });
  });
}

/** Starts `agentpool serve` with `args`; resolves once `/readyz` answers 200. */
async function startNode(id: string, args: string[]): Promise<Node> {
  const port = await freePort();
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AGENTPOOL_')));
  const child = spawn(
    process.execPath,
    [MAIN, 'serve', '--port', String(port), '--host', '127.0.0.1', '--log-level', 'warn', ...args],
    { env: { ...env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-20_000)));
  child.stderr?.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-20_000)));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && child.exitCode === null) {
    try {
      if ((await fetch(`${url}/readyz`)).ok) return { id, url, child, output: () => output };
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  child.kill('SIGKILL');
  throw new Error(`node ${id} never became ready:\n${output}`);
}

async function stopNode(node: Node, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (node.child.exitCode !== null || node.child.signalCode !== null) return;
  const exited = new Promise<void>((done) => node.child.once('exit', () => done()));
  node.child.kill(signal);
  const timer = setTimeout(() => node.child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

const JSON_HEADERS = { 'content-type': 'application/json' };

async function postJson(
  url: string,
  body: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url, { method: 'POST', headers: JSON_HEADERS, body: JSON.stringify(body) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

// ---------------------------------------------------------------------------------------------
// part 3: HTTP runs/s

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; average: number };
  errors: number;
  timeouts: number;
  non2xx: number;
}
const autocannon = createRequire(import.meta.url)('autocannon') as (options: {
  url: string | string[];
  connections: number;
  duration: number;
  method: string;
  headers: Record<string, string>;
  body: string;
}) => Promise<AutocannonResult>;

const HTTP_AGENT = 'triage';
const HTTP_INPUT = 'My invoice shows the wrong amount, who can help?';

interface HttpFigure {
  label: string;
  nodes: number;
  runsPerSecond: number;
  total: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  /** CPU time (user + system) the node processes spent per run during the measurement, ms. */
  nodeCpuMsPerRun: number;
}

/** CPU seconds (user + system) a process has used, from /proc (Linux); NaN elsewhere. */
function cpuSeconds(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return Number.NaN;
  }
}

async function loadNodes(label: string, nodes: Node[]): Promise<HttpFigure> {
  const urls = nodes.map((n) => `${n.url}/v1/agents/${HTTP_AGENT}/runs`);
  for (const url of urls) {
    const check = await postJson(url, { input: HTTP_INPUT });
    if (check.status !== 200 || check.body['status'] !== 'succeeded') {
      throw new Error(`self-check of ${url}: ${check.status} ${JSON.stringify(check.body)}`);
    }
  }
  const options = {
    url: urls.length === 1 ? (urls[0] as string) : urls,
    connections: HTTP_CONNECTIONS,
    method: 'POST',
    headers: JSON_HEADERS,
    body: JSON.stringify({ input: HTTP_INPUT }),
  };
  await autocannon({ ...options, duration: HTTP_WARMUP_S });
  await sleep(500);
  const cpuBefore = nodes.reduce((sum, n) => sum + cpuSeconds(n.child.pid), 0);
  const r = await autocannon({ ...options, duration: HTTP_DURATION_S });
  const cpuAfter = nodes.reduce((sum, n) => sum + cpuSeconds(n.child.pid), 0);
  if (r.errors > 0 || r.non2xx > 0 || r.timeouts > 0) {
    throw new Error(`${label}: ${r.errors} errors, ${r.timeouts} timeouts, ${r.non2xx} non-2xx answers`);
  }
  const figure = {
    label,
    nodes: nodes.length,
    runsPerSecond: r.requests.average,
    total: r.requests.total,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    meanMs: r.latency.average,
    nodeCpuMsPerRun: ((cpuAfter - cpuBefore) * 1000) / r.requests.total,
  };
  console.error(
    `${label}: ${figure.runsPerSecond.toFixed(0)} runs/s, ${figure.nodeCpuMsPerRun.toFixed(2)} CPU ms/run, p50 ${figure.p50Ms} ms, p99 ${figure.p99Ms} ms`,
  );
  return figure;
}

async function httpRound(): Promise<HttpFigure[]> {
  const figures: HttpFigure[] = [];
  // SQLite, one node (baseline)
  {
    const { dir, cleanup } = tempDir('agentpool-cbench-http-');
    const node = await startNode('sqlite', ['--data-dir', dir]);
    try {
      figures.push(await loadNodes('1 node, SQLite (baseline)', [node]));
    } finally {
      await stopNode(node);
      cleanup();
    }
  }
  // PostgreSQL alone, one node
  {
    const db = await freshDatabase();
    const node = await startNode('pg', ['--store', 'postgres', '--database-url', db.url]);
    try {
      figures.push(await loadNodes('1 node, PostgreSQL (no Redis)', [node]));
    } finally {
      await stopNode(node);
      await db.drop();
    }
  }
  // the cluster: one node, then three
  for (const count of [1, 3]) {
    const db = await freshDatabase();
    const prefix = freshPrefix();
    const args = (id: string) => [
      '--store',
      'postgres',
      '--database-url',
      db.url,
      '--redis-url',
      REDIS_URL,
      '--redis-prefix',
      prefix.prefix,
      '--node-id',
      id,
    ];
    const nodes: Node[] = [];
    try {
      // the first applies the bundled examples into the empty store; the others find them there
      nodes.push(await startNode('node-1', args('node-1')));
      nodes.push(
        ...(await Promise.all(
          Array.from({ length: count - 1 }, (_, i) => startNode(`node-${i + 2}`, args(`node-${i + 2}`))),
        )),
      );
      figures.push(
        await loadNodes(`${count} node${count > 1 ? 's' : ''}, cluster (PostgreSQL + Redis)`, nodes),
      );
    } finally {
      await Promise.all(nodes.map((n) => stopNode(n)));
      await db.drop();
      await prefix.remove();
    }
  }
  return figures;
}

/**
 * HTTP_ROUNDS rounds of every row, the rows in the same order in each (this machine's throughput
 * drifts); each figure the median over the rounds, with every round's runs/s kept.
 */
async function httpPart(): Promise<(HttpFigure & { rounds: number[] })[]> {
  const rounds: HttpFigure[][] = [];
  for (let r = 0; r < HTTP_ROUNDS; r++) rounds.push(await httpRound());
  const med = (xs: number[]) => summarize(xs).median;
  return (rounds[0] as HttpFigure[]).map((first, i) => {
    const all = rounds.map((round) => round[i] as HttpFigure);
    return {
      ...first,
      runsPerSecond: med(all.map((f) => f.runsPerSecond)),
      total: all.reduce((sum, f) => sum + f.total, 0),
      p50Ms: med(all.map((f) => f.p50Ms)),
      p99Ms: med(all.map((f) => f.p99Ms)),
      meanMs: med(all.map((f) => f.meanMs)),
      nodeCpuMsPerRun: med(all.map((f) => f.nodeCpuMsPerRun)),
      rounds: all.map((f) => f.runsPerSecond),
    };
  });
}

// ---------------------------------------------------------------------------------------------
// part 4: kill -9 of a node

interface FailoverRep {
  /** From the kill to each wait run's `interrupted` record, seconds. */
  waitInterruptedS: number[];
  /** From the kill to each background run's model call from another node, seconds. */
  backgroundResumedS: number[];
  /** From the kill until the dead node is no longer listed by GET /v1/cluster, seconds. */
  delistedS: number | null;
  /** From the kill until every run was interrupted or resumed, seconds. */
  allS: number;
  waitStatuses: string[];
}

async function failoverRep(rep: number, fakeUrl: string, calls: Map<string, number[]>): Promise<FailoverRep> {
  const db = await freshDatabase();
  const prefix = freshPrefix();
  const { dir, cleanup } = tempDir('agentpool-cbench-failover-');
  const config = join(dir, 'agentpool.json');
  writeFileSync(
    config,
    JSON.stringify({ models: { providers: { fake: { kind: 'openai-compatible', baseURL: fakeUrl } } } }),
  );
  const args = (id: string) => [
    '--config',
    config,
    '--store',
    'postgres',
    '--database-url',
    db.url,
    '--redis-url',
    REDIS_URL,
    '--redis-prefix',
    prefix.prefix,
    '--node-id',
    id,
  ];
  const nodes: Node[] = [];
  const pending: Promise<unknown>[] = [];
  try {
    // node a alone takes the background runs; b and c join once every run is in flight on a
    const a = await startNode(`a${rep}`, args(`a${rep}`));
    nodes.push(a);
    const created = await postJson(`${a.url}/v1/agents`, {
      name: 'slow',
      model: 'fake/fake-model',
      instructions: 'You are slow.',
    });
    if (created.status !== 201) throw new Error(`agent: ${created.status} ${JSON.stringify(created.body)}`);
    const tag = `r${rep}-${randomBytes(3).toString('hex')}`;
    const background: { id: string; input: string }[] = [];
    for (let i = 0; i < FAILOVER_K; i++) {
      const input = `background ${tag} ${i}`;
      const r = await postJson(`${a.url}/v1/agents/slow/runs`, { input, background: true });
      if (r.status !== 202) throw new Error(`background run: ${r.status} ${JSON.stringify(r.body)}`);
      background.push({ id: r.body['id'] as string, input });
    }
    const waitInputs = Array.from({ length: FAILOVER_K }, (_, i) => `wait ${tag} ${i}`);
    for (const input of waitInputs) {
      pending.push(postJson(`${a.url}/v1/agents/slow/runs`, { input }).catch(() => undefined));
    }
    const inputs = [...background.map((b) => b.input), ...waitInputs];
    for (const deadline = Date.now() + 20_000; !inputs.every((i) => calls.has(i));) {
      if (Date.now() > deadline) throw new Error(`runs never reached the model:\n${a.output()}`);
      await sleep(50);
    }
    nodes.push(
      ...(await Promise.all([startNode(`b${rep}`, args(`b${rep}`)), startNode(`c${rep}`, args(`c${rep}`))])),
    );
    const b = nodes[1] as Node;
    // the wait runs were never answered: their ids are read from the store
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const found = await client
      .query<{ id: string }>(`SELECT id FROM runs WHERE input LIKE $1`, [`%wait ${tag} %`])
      .finally(() => client.end());
    const waitIds = found.rows.map((r) => r.id);
    if (waitIds.length !== FAILOVER_K) throw new Error(`found ${waitIds.length} wait runs`);
    await sleep(1000); // b and c have heartbeated and their workers wait on the queue

    const killedAt = Date.now();
    a.child.kill('SIGKILL');
    const waitDone = new Map<string, { at: number; status: string }>();
    const resumed = new Map<string, number>();
    let delisted: number | null = null;
    while (Date.now() - killedAt < 60_000) {
      for (const id of waitIds) {
        if (waitDone.has(id)) continue;
        const run = (await fetch(`${b.url}/v1/runs/${id}`).then((r) => r.json())) as { status: string };
        if (!['queued', 'running'].includes(run.status))
          waitDone.set(id, { at: Date.now(), status: run.status });
      }
      for (const { input } of background) {
        const later = (calls.get(input) ?? []).find((t) => t > killedAt);
        if (later !== undefined) resumed.set(input, later);
      }
      if (delisted === null) {
        const cluster = (await fetch(`${b.url}/v1/cluster`).then((r) => r.json())) as {
          data: { id: string }[];
        };
        if (!cluster.data.some((n) => n.id === a.id)) delisted = Date.now();
      }
      if (waitDone.size === waitIds.length && resumed.size === background.length && delisted !== null) break;
      await sleep(100);
    }
    if (waitDone.size !== waitIds.length || resumed.size !== background.length) {
      throw new Error(
        `after 60 s: ${waitDone.size} wait runs ended, ${resumed.size} background runs resumed`,
      );
    }
    const s = (t: number) => (t - killedAt) / 1000;
    const waitS = [...waitDone.values()].map((d) => s(d.at));
    const backgroundS = [...resumed.values()].map(s);
    const rep_ = {
      waitInterruptedS: waitS,
      backgroundResumedS: backgroundS,
      delistedS: delisted === null ? null : s(delisted),
      allS: Math.max(...waitS, ...backgroundS),
      waitStatuses: [...waitDone.values()].map((d) => d.status),
    };
    console.error(`failover ${rep}: ${JSON.stringify(rep_)}`);
    return rep_;
  } finally {
    await Promise.all(nodes.map((n) => stopNode(n, 'SIGKILL')));
    await Promise.all(pending);
    await db.drop();
    await prefix.remove();
    cleanup();
  }
}

async function failoverPart(): Promise<FailoverRep[]> {
  /** Each input the fake model was asked about, and when (ms since the epoch). */
  const calls = new Map<string, number[]>();
  const fake = await startFakeOpenAI({
    maxRecorded: 0,
    handler: (request) => {
      const last = [...request.messages].reverse().find((m) => m.role === 'user');
      const text = typeof last?.content === 'string' ? last.content : JSON.stringify(last?.content ?? '');
      const input = /(background|wait) r\d+-[0-9a-f]+ \d+/.exec(text)?.[0] ?? text;
      calls.set(input, [...(calls.get(input) ?? []), Date.now()]);
      return { delayMs: SLOW_REPLY_MS, then: { text: 'done' } };
    },
  });
  const reps: FailoverRep[] = [];
  try {
    for (let rep = 1; rep <= FAILOVER_REPS; rep++) reps.push(await failoverRep(rep, fake.url, calls));
  } finally {
    await fake.close();
  }
  return reps;
}

// ---------------------------------------------------------------------------------------------
// the report

const childIndex = process.argv.indexOf('--child');
if (childIndex >= 0) {
  console.log(JSON.stringify(await overheadChild(process.argv[childIndex + 1] as StoreKey)));
  process.exit(0);
}

const parts = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const want = (part: string) => parts.length === 0 || parts.includes(part);
const started = performance.now();
const loadBefore = loadavg()[0] as number;

const overhead: OverheadFigures[] = [];
if (want('overhead')) {
  for (const { key } of STORES) {
    const out = spawnSync(process.execPath, ['--expose-gc', SELF, '--child', key], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    if (out.status !== 0) throw new Error(`overhead of ${key} failed (exit ${out.status ?? out.signal})`);
    overhead.push(JSON.parse(out.stdout.trim().split('\n').at(-1) ?? '') as OverheadFigures);
  }
}
const http = want('http') ? await httpPart() : [];
const failover = want('failover') ? await failoverPart() : [];
const benchSeconds = (performance.now() - started) / 1000;
const loadAfter = loadavg()[0] as number;

const median = (xs: number[]) => summarize(xs).median;
const us = (x: number) => x.toFixed(0);
const ratio = (x: number, base: number) => `${(x / base).toFixed(2)}×`;
const sections: string[] = [];

if (overhead.length > 0) {
  const base = overhead.find((o) => o.store === 'sqlite') as OverheadFigures;
  const label = (store: StoreKey) => STORES.find((s) => s.key === store)?.label ?? store;
  const rows = SCENARIOS.flatMap((scenario) =>
    overhead.map((o) => {
      const f = o.scenarios[scenario];
      const b = base.scenarios[scenario];
      return [
        scenario === 'plain' ? 'A: plain' : 'B: one tool call',
        label(o.store),
        us(f.median),
        us(f.p99),
        ratio(f.median, b.median),
        us(f.concurrent),
        ratio(f.concurrent, b.concurrent),
      ];
    }),
  );
  const cluster = overhead.find((o) => o.store === 'cluster');
  const pgAlone = overhead.find((o) => o.store === 'postgres');
  const countRows = SCENARIOS.flatMap((scenario) => {
    const c = cluster?.scenarios[scenario].counted;
    const p = pgAlone?.scenarios[scenario].counted;
    const name = scenario === 'plain' ? 'A: plain' : 'B: one tool call';
    return [
      [name, label('postgres'), '—', '—', p === undefined ? '—' : p.sqlStatements.toFixed(2)],
      [
        name,
        label('cluster'),
        c === undefined ? '—' : c.redisCommands.toFixed(2),
        c === undefined ? '—' : c.redisRoundTrips.toFixed(2),
        c === undefined ? '—' : c.sqlStatements.toFixed(2),
      ],
    ];
  });
  const breakdown = SCENARIOS.map((scenario) => {
    const c = cluster?.scenarios[scenario].counted;
    if (c === undefined) return '';
    const parts = Object.entries(c.byCommand)
      .filter(([, n]) => n >= 0.05)
      .sort((x, y) => y[1] - x[1])
      .map(([k, n]) => `\`${k}\` ${n.toFixed(2)}`);
    return `- ${scenario === 'plain' ? 'A' : 'B'}: ${parts.join(', ')}`;
  }).filter((l) => l !== '');
  const idle = cluster?.scenarios.plain.counted?.idleCommandsPerSecond ?? Number.NaN;
  const plainCluster = cluster?.scenarios.plain;
  const plainPg = pgAlone?.scenarios.plain;
  const clusterRoundTrips = plainCluster?.counted?.redisRoundTrips.toFixed(1) ?? '—';
  const extra =
    plainCluster !== undefined && plainPg !== undefined ? plainCluster.median - plainPg.median : Number.NaN;
  const clusterExtraUs = us(extra);
  const perTrip = us(extra / (plainCluster?.counted?.redisRoundTrips ?? Number.NaN));
  sections.push(
    [
      `### Per-run overhead in process`,
      '',
      `The instant in-process model of run-overhead (zero latency), a new thread for every run (created through \`pool.threads.create\`, then one run on it), so the thread lease, history read and commits are those of a thread's first run. One at a time: median and p99 over ${SEQUENTIAL_RUNS} runs after 200 warm-up runs; in flight: ${CONCURRENCY} runs at a time for 2 s (after 0.5 s), wall time divided by the runs. Each store in its own process, one after the other; PostgreSQL and Redis are the local servers over TCP (PostgreSQL at its defaults: \`synchronous_commit = on\`). Ratios are against single-node SQLite measured in the same run.`,
      '',
      table(
        [
          'scenario',
          'node',
          'median µs, one at a time',
          'p99 µs',
          'vs SQLite',
          `µs/run, ${CONCURRENCY} in flight`,
          'vs SQLite',
        ],
        rows,
      ),
      '',
      `Baselines of the same run, on connections of their own: one Redis round trip (\`PING\`) ${cluster?.roundTripUs?.redis.toFixed(0) ?? '—'} µs median, a trivial \`EVALSHA\` (\`return 1\`) on an auto-pipelined connection like the node's ${cluster?.roundTripUs?.redisScript.toFixed(0) ?? '—'} µs, one PostgreSQL round trip (\`SELECT 1\`) ${cluster?.roundTripUs?.postgres.toFixed(0) ?? '—'} µs. What limits a run one at a time is waiting, not CPU: on PostgreSQL its statements run one after the other (each commit waiting for the WAL flush); a cluster node adds about ${clusterRoundTrips} Redis round trips (below), awaited in turn on the run's path (the thread lease and the admission before the first model call; the token count after each call; the lease and place released at the end; the event-log batches), and the cluster's median exceeds PostgreSQL alone's by ${clusterExtraUs} µs, about ${perTrip} µs per round trip: more than a bare round trip, because in a busy process each answer also waits its turn in the event loop, and a script does more than \`return 1\`.`,
      '',
      `What one run sends (${COUNTED_RUNS} runs one at a time, counted apart from the timed runs):`,
      '',
      table(
        ['scenario', 'node', 'Redis commands per run', 'Redis round trips per run', 'SQL statements per run'],
        countRows,
      ),
      '',
      `Redis commands are counted by Redis itself: a \`MONITOR\` connection opened for the count records every command that names this run's key prefix, except those a Lua script runs inside Redis (\`source = lua\`): an \`EVALSHA\` counts once, whatever it does inside. The node's idle traffic (heartbeats, hold renewals, BullMQ's blocking waits and stalled checks: ${idle.toFixed(1)} commands/s) is measured for 5 s (or as long as the runs took, if longer) right after, and its share of the runs' time subtracted. Round trips are counted in the node's process: writes of its sockets to Redis, those of one connection in one event-loop turn (until the next \`setImmediate\`) counted once, so commands auto-pipelined together count once; idle writes subtracted likewise. Commands of a run by kind (not net of idle):`,
      '',
      ...breakdown,
      '',
      `The SQL statements are those of the PostgreSQL store alone; the cluster adds none per run (its thread lease, admission and event log live in Redis). SQL statements are counted through the stores' diagnostics channel, as in bench/postgres-store.bench.ts.`,
    ].join('\n'),
  );
}

if (http.length > 0) {
  const base = http[0] as HttpFigure & { rounds: number[] };
  const one = http.find((f) => f.label.startsWith('1 node, cluster'));
  const three = http.find((f) => f.nodes === 3);
  const rows = http.map((f) => [
    f.label,
    f.runsPerSecond.toFixed(0),
    f.rounds.map((x) => x.toFixed(0)).join(' / '),
    ratio(f.runsPerSecond, base.runsPerSecond),
    f.p50Ms.toFixed(1),
    f.p99Ms.toFixed(1),
    f.meanMs.toFixed(2),
    f.nodeCpuMsPerRun.toFixed(2),
  ]);
  sections.push(
    [
      `### HTTP: wait-mode runs/s, one node and three`,
      '',
      `\`agentpool serve\` processes (\`node src/cli/main.ts serve --store postgres --database-url … --redis-url … --redis-prefix … --node-id …\`, each on its own port, \`--log-level warn\`), a fresh database and key prefix per row; the bundled examples applied into the empty store by the first node. Load: autocannon in the bench process, ${HTTP_CONNECTIONS} keep-alive connections spread round robin over the nodes, ${HTTP_WARMUP_S} s warm-up then ${HTTP_DURATION_S} s, \`POST /v1/agents/${HTTP_AGENT}/runs {input}\`: stateless wait-mode runs of the \`${HTTP_AGENT}\` example agent on the built-in demo model (no network). Every answer was a 200 with a succeeded run. ${HTTP_ROUNDS} rounds of the four rows in this order, each figure the median over the rounds. Node CPU: user + system time of the node processes (from /proc) over the measured seconds, divided by the runs.`,
      '',
      table(
        [
          'nodes',
          'runs/s',
          'each round',
          'vs 1 node on SQLite',
          'p50 ms',
          'p99 ms',
          'mean ms',
          'node CPU ms per run',
        ],
        rows,
      ),
      '',
      one !== undefined && three !== undefined
        ? `Three cluster nodes against one: ${ratio(three.runsPerSecond, one.runsPerSecond)} of the runs/s. What limits it is this machine's ${cpus().length} cores: the node processes, PostgreSQL, Redis and the load generator all run on them, so a second and third node bring no CPU, and each run costs more of it: the node processes spent ${three.nodeCpuMsPerRun.toFixed(2)} CPU ms per run with three nodes against ${one.nodeCpuMsPerRun.toFixed(2)} with one (${ratio(three.nodeCpuMsPerRun, one.nodeCpuMsPerRun)}; PostgreSQL's and Redis's share is not in that column). Spread over three processes, each node gets a third of the connections, so fewer requests share an event-loop turn: fewer commands per auto-pipelined Redis write and fewer queries per flush to PostgreSQL, more system calls and context switches per run; and each node has its own PostgreSQL pool, so PostgreSQL serves three times the backends. A CPU profile of one of the three nodes under this load, taken while writing this bench (\`--cpu-prof\`, not part of it), spent about a third of its time idle and 12% in socket writes (ioredis's auto-pipeline flush and pg's query submit, about equally), with no hot spot of agentpool's own. The figure is what the coordination costs when everything shares two cores, not how a cluster scales on machines of its own, where each node brings its cores and the one PostgreSQL and the one Redis set the limit.`
        : '',
    ].join('\n'),
  );
}

if (failover.length > 0) {
  const all = failover.map((r) => r.allS);
  const waitMax = failover.map((r) => Math.max(...r.waitInterruptedS));
  const bgMax = failover.map((r) => Math.max(...r.backgroundResumedS));
  const delisted = failover.flatMap((r) => (r.delistedS === null ? [] : [r.delistedS]));
  const range = (xs: number[]) =>
    `${median(xs).toFixed(1)} (${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)})`;
  const statuses = [...new Set(failover.flatMap((r) => r.waitStatuses))].join(', ');
  sections.push(
    [
      `### A node killed: time until its runs are interrupted or resumed`,
      '',
      `Three cluster nodes (\`agentpool serve\`, default cluster timings: the \`cluster\` options are not settable from the config file), a fake OpenAI-compatible model (test/support/fake-openai.ts in the bench process) that answers each call after ${SLOW_REPLY_MS / 1000} s. Node a starts alone and accepts ${FAILOVER_K} background runs (it takes them from the queue itself) and ${FAILOVER_K} wait-mode runs; once all ${2 * FAILOVER_K} are waiting on the model, nodes b and c start, and 1 s after they are ready a is killed with SIGKILL. Then every 100 ms node b is asked for each wait run's record and for \`GET /v1/cluster\`; a background run counts as resumed when the fake model receives its call again (from b or c: a is dead), since its record stays \`running\` throughout. ${failover.length} repetition${failover.length > 1 ? 's' : ''}, each on a fresh database and key prefix; seconds from the kill, median (range) over the repetitions of the last run in each group.`,
      '',
      table(
        ['from kill -9 of a node', 'seconds', 'documented bound'],
        [
          [
            `every wait run ended (${statuses})`,
            range(waitMax),
            'deadAfterMs + sweepIntervalMs = 10 + 2 = 12 s',
          ],
          [
            'the node no longer listed by `GET /v1/cluster`',
            delisted.length > 0 ? range(delisted) : '—',
            'deadAfterMs = 10 s after its last heartbeat (every heartbeatMs = 2 s)',
          ],
          [
            'every background run calling the model again on another node',
            range(bgMax),
            'lockDurationMs + stalledIntervalMs = 10 + 5 = 15 s; the thread lease, leaseTtlMs = 15 s',
          ],
          ['every run interrupted or resumed', range(all), '—'],
        ],
      ),
      '',
      `The bounds count from the dead node's last heartbeat, lock renewal or lease renewal, which came up to a heartbeat (2 s) or a renewal interval (5 s) before the kill; so a figure under a bound's main term is expected. Each wait run's figure: ${failover.map((r) => r.waitInterruptedS.map((x) => x.toFixed(1)).join(' / ')).join('; ')}. Each background run's: ${failover.map((r) => r.backgroundResumedS.map((x) => x.toFixed(1)).join(' / ')).join('; ')}.`,
    ].join('\n'),
  );
}

sections.unshift(
  `The whole bench took ${benchSeconds.toFixed(0)} s; the machine's 1-minute load average was ${loadBefore.toFixed(1)} at its start and ${loadAfter.toFixed(1)} at its end (this machine is shared: other processes ran during the measurement, so absolute figures drift between runs; the ratios compare figures measured minutes apart in the same run).`,
);
const data = {
  overhead,
  http,
  failover,
  benchSeconds,
  loadAverage: { before: loadBefore, after: loadAfter },
};
if (parts.length === 0) {
  writeResult({
    name: 'cluster',
    title: 'Cluster: PostgreSQL + Redis',
    command: 'node --expose-gc bench/cluster.bench.ts',
    summary: sections.join('\n\n'),
    data,
  });
} else {
  console.log(sections.join('\n\n'));
  console.log(JSON.stringify(data, null, 2));
}
