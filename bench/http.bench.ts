/**
 * HTTP: requests/s and latency p50/p99 of a wait-mode run (`POST /v1/agents/<agent>/runs
 * {input}`) with a zero-latency model over loopback, against a bare fastify handler calling the
 * same instant model (`doStream`, as agentpool's runner does) and returning its text, measured in
 * the same run with the same load (autocannon, 10 connections, warm-up then 8 s).
 *
 * Each server under test runs in its own child process (this script with `--serve <target>`), so
 * the load generator in this process does not share an event loop with it:
 *   - `bare`: one fastify POST route → model.doStream → `{ output }`;
 *   - `bare-record`: the bare route, plus the SQLite write that makes a stateless wait run durable
 *     (insert its terminal record once the model answered), through agentpool's own run store:
 *     the floor of any server that records every run;
 *   - `agentpool`: `createAgentPool({ store: 'sqlite', … })` + `buildServer(pool)`, an agent on
 *     `mock/instant`; every run is recorded and committed to SQLite like in production.
 * Scenarios for agentpool: stateless runs, and runs on a thread (one thread per connection, so
 * each run also loads the thread's history and commits its messages).
 *
 *   node --expose-gc bench/http.bench.ts
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { createAgentPool } from '../src/agent-pool.ts';
import { buildServer } from '../src/server/app.ts';
import { SqliteRunStore } from '../src/store/sqlite-runs.ts';
import { tempDir } from '../test/support/temp-dir.ts';
import { table, writeResult } from './harness.ts';
import { FLOOR_AGENT as AGENT, FLOOR_INSTRUCTIONS as INSTRUCTIONS, floorApp } from './http-floor.ts';
import { createInstantModel, SCRIPT } from './peers/mock-model.ts';

const CONNECTIONS = 10;
const WARMUP_S = 3;
const DURATION_S = 8;

// ---------------------------------------------------------------------------------------------
// autocannon (no type declarations shipped; the part of its API used here)

interface AutocannonClient {
  setBody(body: string): void;
}
interface AutocannonOptions {
  url: string;
  connections: number;
  duration: number;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  setupClient?: (client: AutocannonClient) => void;
}
interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; average: number; max: number };
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
}
const autocannon = createRequire(import.meta.url)('autocannon') as (
  options: AutocannonOptions,
) => Promise<AutocannonResult>;

// ---------------------------------------------------------------------------------------------
// servers under test (child processes)

async function serveBare(record = false): Promise<{ port: number; close: () => Promise<void> }> {
  const tmp = record ? tempDir('agentpool-bench-floor-') : undefined;
  const store = tmp === undefined ? undefined : new SqliteRunStore({ path: join(tmp.dir, 'runs.db') });
  const app = floorApp('/run', store);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    port,
    close: async () => {
      await app.close();
      await store?.close();
      tmp?.cleanup();
    },
  };
}

async function serveAgentpool(): Promise<{ port: number; close: () => Promise<void> }> {
  const tmp = tempDir('agentpool-bench-http-');
  const model = createInstantModel();
  const pool = await createAgentPool({
    store: 'sqlite',
    dataDir: tmp.dir,
    ttlSweepIntervalMs: 0,
    models: { custom: { mock: () => model } },
  });
  await pool.agents.create('default', { name: AGENT, instructions: INSTRUCTIONS, model: 'mock/instant' });
  const app = await buildServer(pool);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    port,
    close: async () => {
      await app.close();
      await pool.close();
      tmp.cleanup();
    },
  };
}

function startChild(
  target: 'bare' | 'bare-record' | 'agentpool',
): Promise<{ child: ChildProcess; base: string }> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve', target], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /PORT (\d+)/.exec(out);
      if (match) resolve({ child, base: `http://127.0.0.1:${match[1]}` });
    });
    child.once('exit', (code) => reject(new Error(`${target} server exited with ${code}`)));
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await exited;
}

// ---------------------------------------------------------------------------------------------
// the load

interface Figure {
  name: string;
  requestsPerSecond: number;
  total: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
}

async function load(name: string, options: AutocannonOptions, measure = true): Promise<Figure> {
  const r = await autocannon({ ...options, duration: measure ? DURATION_S : WARMUP_S });
  if (r.errors > 0 || r.non2xx > 0 || r.timeouts > 0) {
    throw new Error(`${name}: ${r.errors} errors, ${r.timeouts} timeouts, ${r.non2xx} non-2xx answers`);
  }
  return {
    name,
    requestsPerSecond: r.requests.average,
    total: r.requests.total,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    meanMs: r.latency.average,
  };
}

/** Warm-up, then the measured load. */
async function measure(name: string, options: AutocannonOptions): Promise<Figure> {
  await load(name, options, false);
  // The warm-up's last requests were cut when it stopped: let their runs end (cancelled) and
  // release their threads before the measured load starts on the same threads.
  await sleep(500);
  const figure = await load(name, options);
  console.log(
    `${name}: ${figure.requestsPerSecond.toFixed(0)} req/s, p50 ${figure.p50Ms} ms, p99 ${figure.p99Ms} ms`,
  );
  return figure;
}

const json = { 'content-type': 'application/json' };

async function checkOnce(url: string, body: unknown, expect: (answer: Record<string, unknown>) => boolean) {
  const response = await fetch(url, { method: 'POST', headers: json, body: JSON.stringify(body) });
  const answer = (await response.json()) as Record<string, unknown>;
  if (response.status !== 200 || !expect(answer)) {
    throw new Error(`self-check of ${url} failed: ${response.status} ${JSON.stringify(answer)}`);
  }
}

async function main(): Promise<void> {
  const base = { connections: CONNECTIONS, duration: DURATION_S, method: 'POST', headers: json };
  const body = JSON.stringify({ input: SCRIPT.prompt });

  // bare fastify handler, measured before and after agentpool (this machine's throughput drifts);
  // the baseline is the mean of the two
  const measureBare = async (label: string): Promise<Figure> => {
    const bare = await startChild('bare');
    try {
      await checkOnce(`${bare.base}/run`, { input: SCRIPT.prompt }, (a) => a['output'] === SCRIPT.plainText);
      return await measure(label, { ...base, url: `${bare.base}/run`, body });
    } finally {
      await stopChild(bare.child);
    }
  };
  const bareBefore = await measureBare('bare fastify handler (before)');

  // the floor of recording every run: the bare handler plus the run record's SQLite write
  const floorServer = await startChild('bare-record');
  let floor: Figure;
  try {
    await checkOnce(
      `${floorServer.base}/run`,
      { input: SCRIPT.prompt },
      (a) => a['output'] === SCRIPT.plainText,
    );
    floor = await measure('bare handler + a durable run record (1 SQLite write)', {
      ...base,
      url: `${floorServer.base}/run`,
      body,
    });
  } finally {
    await stopChild(floorServer.child);
  }

  // agentpool: stateless runs, then runs on a thread (one thread per connection)
  const ap = await startChild('agentpool');
  let stateless: Figure;
  let onThread: Figure;
  try {
    const runUrl = `${ap.base}/v1/agents/${AGENT}/runs`;
    await checkOnce(
      runUrl,
      { input: SCRIPT.prompt },
      (a) => a['status'] === 'succeeded' && a['output'] === SCRIPT.plainText,
    );
    stateless = await measure('agentpool, stateless runs', { ...base, url: runUrl, body });

    const threads: string[] = [];
    for (let i = 0; i < CONNECTIONS; i++) {
      const response = await fetch(`${ap.base}/v1/threads`, { method: 'POST', headers: json, body: '{}' });
      threads.push(((await response.json()) as { id: string }).id);
    }
    let next = 0;
    // each connection (autocannon client) keeps one thread, so runs never queue behind each other
    const setupClient = (client: AutocannonClient): void =>
      client.setBody(JSON.stringify({ input: SCRIPT.prompt, threadId: threads[next++ % threads.length] }));
    await checkOnce(
      runUrl,
      { input: SCRIPT.prompt, threadId: threads[0] },
      (a) => a['status'] === 'succeeded' && a['threadId'] === threads[0],
    );
    onThread = await measure('agentpool, runs on a thread', { ...base, url: runUrl, setupClient });
  } finally {
    await stopChild(ap.child);
  }

  const bareAfter = await measureBare('bare fastify handler (after)');
  const bareFigure: Figure = {
    name: 'bare fastify handler (mean of before and after)',
    requestsPerSecond: (bareBefore.requestsPerSecond + bareAfter.requestsPerSecond) / 2,
    total: bareBefore.total + bareAfter.total,
    p50Ms: (bareBefore.p50Ms + bareAfter.p50Ms) / 2,
    p99Ms: (bareBefore.p99Ms + bareAfter.p99Ms) / 2,
    meanMs: (bareBefore.meanMs + bareAfter.meanMs) / 2,
  };
  const pct = (f: Figure) => (100 * f.requestsPerSecond) / bareFigure.requestsPerSecond;
  const ofFloor = (100 * stateless.requestsPerSecond) / floor.requestsPerSecond;
  const row = (f: Figure, ratio: string) => [
    f.name,
    f.requestsPerSecond.toFixed(0),
    ratio,
    f.p50Ms.toFixed(1),
    f.p99Ms.toFixed(1),
    f.meanMs.toFixed(2),
  ];
  const summary = [
    `Wait-mode runs (\`POST /v1/agents/${AGENT}/runs {input}\`) with a zero-latency model over loopback: autocannon, ${CONNECTIONS} connections, ${WARMUP_S} s warm-up then ${DURATION_S} s, each server in its own process. The baseline is a bare fastify route calling the same instant model's \`doStream\` and returning its text. agentpool records every run in SQLite (WAL): a wait run is written once, its terminal record with its finished step; on a thread that write also commits the user's and the assistant's messages and sends the model the thread's recent history (up to 200 messages, from the in-memory history cache); one thread per connection, so each grows to thousands of messages during the measurement.`,
    '',
    table(
      ['server', 'requests/s', 'of bare', 'p50 (ms)', 'p99 (ms)', 'mean (ms)'],
      [
        row(bareBefore, `${pct(bareBefore).toFixed(0)}%`),
        row(bareAfter, `${pct(bareAfter).toFixed(0)}%`),
        row(bareFigure, '100%'),
        row(floor, `${pct(floor).toFixed(0)}%`),
        row(stateless, `${pct(stateless).toFixed(0)}%`),
        row(onThread, `${pct(onThread).toFixed(0)}%`),
      ],
    ),
    '',
    `The floor row is the bare handler doing nothing but making each run durable the way agentpool does (the same run store, group commit and schema): ${pct(floor).toFixed(0)}% of bare. Target: stateless runs ≥ 90% of that floor — ${ofFloor.toFixed(0)}% (${ofFloor >= 90 ? 'met' : 'missed'}); they are ${pct(stateless).toFixed(0)}% of the bare handler, and runs on a thread ${pct(onThread).toFixed(0)}%.`,
  ].join('\n');
  writeResult({
    name: 'http',
    title: 'HTTP: wait-mode runs against a bare fastify handler',
    command: 'node --expose-gc bench/http.bench.ts',
    summary,
    data: {
      connections: CONNECTIONS,
      warmupSeconds: WARMUP_S,
      durationSeconds: DURATION_S,
      bareBefore,
      bareAfter,
      bare: bareFigure,
      bareWithRunRecord: { ...floor, percentOfBare: pct(floor) },
      agentpoolStateless: { ...stateless, percentOfBare: pct(stateless) },
      agentpoolOnThread: { ...onThread, percentOfBare: pct(onThread) },
    },
  });
}

if (process.argv[2] === '--serve') {
  const target = process.argv[3];
  const server = target === 'agentpool' ? await serveAgentpool() : await serveBare(target === 'bare-record');
  process.once('SIGTERM', () => {
    void server.close().then(() => process.exit(0));
  });
  console.log(`PORT ${server.port}`);
} else {
  await main();
}
