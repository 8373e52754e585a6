/**
 * The HTTP server's cost per wait-mode run against another checkout of itself (the tree before a
 * change), and against the durable floor of bench/http.bench.ts (a bare fastify route calling the
 * model and writing the run's record): each server in its own child process, all three listening
 * at once, loaded in turn by autocannon in short alternating bursts, so that this shared machine's
 * load hits them alike. What is compared is the server process's CPU time per request (user +
 * system, from `process.cpuUsage()` around each burst), which moves much less with the machine's
 * load than requests/s do; requests/s are reported beside it.
 *
 *   git archive <rev> | (mkdir -p /tmp/base && tar -x -C /tmp/base) && ln -s "$PWD/node_modules" /tmp/base/
 *   node bench/http-ab.bench.ts /tmp/base [sqlite|memory] [inject]
 *
 * With `inject`, the three servers are built in this one process and answer `app.inject` instead
 * (no sockets: the HTTP layer's own work stands out more), alternating batches of 25 requests.
 * With `memory`, the agentpool servers use the memory store and the floor writes nothing.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance } from 'fastify';
import type * as AgentPoolModule from '../src/agent-pool.ts';
import { newId } from '../src/core/ids.ts';
import type * as AppModule from '../src/server/app.ts';
import { SqliteRunStore } from '../src/store/sqlite-runs.ts';
import { runRecord } from '../test/support/run-record.ts';
import { tempDir } from '../test/support/temp-dir.ts';
import type * as MockModule from './peers/mock-model.ts';
import { createInstantModel, SCRIPT } from './peers/mock-model.ts';

const HERE = resolve(fileURLToPath(import.meta.url), '../..');
const ROUNDS = Number(process.env['AB_ROUNDS'] ?? 8);
const BURST_S = 2;
const WARMUP_S = 2;
const CONNECTIONS = 10;
const AGENT = 'instant';
const INSTRUCTIONS = 'You are a calculator.';

// ---------------------------------------------------------------------------------------------
// the servers (child processes)

interface Served {
  port: number;
  /** One wait-mode run through `app.inject` (no socket). */
  inject(): Promise<void>;
  close(): Promise<void>;
}

async function listen(app: FastifyInstance, listening: boolean): Promise<number> {
  if (!listening) {
    await app.ready();
    return 0;
  }
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  return typeof address === 'object' && address !== null ? address.port : 0;
}

function injector(app: FastifyInstance, name: string): () => Promise<void> {
  const url = `/v1/agents/${AGENT}/runs`;
  const headers = { 'content-type': 'application/json' };
  const payload = JSON.stringify({ input: SCRIPT.prompt });
  return async () => {
    const response = await app.inject({ method: 'POST', url, headers, payload });
    if (response.statusCode !== 200) throw new Error(`${name}: ${response.statusCode} ${response.body}`);
  };
}

/** `buildServer(pool)` of the tree at `root`, loaded from its own sources. */
async function serveAgentpool(root: string, store: 'sqlite' | 'memory', listening = true): Promise<Served> {
  const { createAgentPool } = (await import(join(root, 'src/agent-pool.ts'))) as typeof AgentPoolModule;
  const { buildServer } = (await import(join(root, 'src/server/app.ts'))) as typeof AppModule;
  const mock = (await import(join(root, 'bench/peers/mock-model.ts'))) as typeof MockModule;
  const model = mock.createInstantModel();
  const tmp = tempDir('agentpool-http-ab-');
  const pool = await createAgentPool({
    store,
    dataDir: tmp.dir,
    ttlSweepIntervalMs: 0,
    models: { custom: { mock: () => model }, env: {} },
  });
  await pool.agents.create('default', { name: AGENT, instructions: INSTRUCTIONS, model: 'mock/instant' });
  const app = await buildServer(pool);
  const port = await listen(app, listening);
  return {
    port,
    inject: injector(app, root),
    async close() {
      await app.close();
      await pool.close();
      tmp.cleanup();
    },
  };
}

/** The floor: a bare route calling the model, plus the run record's SQLite write with `sqlite`. */
async function serveFloor(store: 'sqlite' | 'memory', listening = true): Promise<Served> {
  const model = createInstantModel();
  const tmp = tempDir('agentpool-http-ab-floor-');
  const runs = store === 'sqlite' ? new SqliteRunStore({ path: join(tmp.dir, 'runs.db') }) : undefined;
  const app = Fastify({ logger: false });
  app.post<{ Body: { input: string } }>(
    `/v1/agents/${AGENT}/runs`,
    {
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['input'],
          properties: { input: { type: 'string' } },
        },
      },
    },
    async (request) => {
      const now = Date.now();
      const { stream } = await model.doStream({
        prompt: [
          { role: 'system', content: INSTRUCTIONS },
          { role: 'user', content: [{ type: 'text', text: request.body.input }] },
        ],
      });
      let output = '';
      for await (const part of stream) if (part.type === 'text-delta') output += part.delta;
      const run = runRecord({
        id: newId('run', now),
        project: 'default',
        agentId: 'agt_floor',
        agentName: AGENT,
        input: request.body.input,
        model: 'mock/instant',
        createdAt: now,
        startedAt: now,
      });
      await runs?.createRun({ ...run, status: 'succeeded', output, steps: 1, finishedAt: Date.now() }, []);
      return { output };
    },
  );
  const port = await listen(app, listening);
  return {
    port,
    inject: injector(app, 'floor'),
    async close() {
      await app.close();
      await runs?.close();
      tmp.cleanup();
    },
  };
}

async function serve(target: string, store: 'sqlite' | 'memory'): Promise<void> {
  const served = target === 'floor' ? await serveFloor(store) : await serveAgentpool(target, store);
  process.on('message', (message) => {
    if (message === 'cpu') {
      const { user, system } = process.cpuUsage();
      process.send?.({ cpuMicros: user + system });
    } else if (message === 'close') {
      void served.close().then(() => process.exit(0));
    }
  });
  process.send?.({ port: served.port });
}

// ---------------------------------------------------------------------------------------------
// the load (this process)

interface AutocannonResult {
  requests: { total: number };
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
}
const autocannon = createRequire(import.meta.url)('autocannon') as (options: {
  url: string;
  connections: number;
  duration: number;
  method: string;
  headers: Record<string, string>;
  body: string;
}) => Promise<AutocannonResult>;

interface Server {
  name: string;
  child: ChildProcess;
  url: string;
  cpuMicros: number[];
  perSecond: number[];
}

function ask(child: ChildProcess, message: string): Promise<Record<string, number>> {
  return new Promise((done) => {
    child.once('message', (answer) => done(answer as Record<string, number>));
    child.send(message);
  });
}

async function start(name: string, target: string, store: string): Promise<Server> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve', target, store], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const { port } = await ask(child, 'ready?');
  return {
    name,
    child,
    url: `http://127.0.0.1:${port}/v1/agents/${AGENT}/runs`,
    cpuMicros: [],
    perSecond: [],
  };
}

async function burst(server: Server, seconds: number): Promise<void> {
  const before = (await ask(server.child, 'cpu'))['cpuMicros'] ?? 0;
  const r = await autocannon({
    url: server.url,
    connections: CONNECTIONS,
    duration: seconds,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ input: SCRIPT.prompt }),
  });
  const after = (await ask(server.child, 'cpu'))['cpuMicros'] ?? 0;
  if (r.errors > 0 || r.timeouts > 0 || r.non2xx > 0) {
    throw new Error(`${server.name}: ${r.errors} errors, ${r.timeouts} timeouts, ${r.non2xx} non-2xx`);
  }
  server.cpuMicros.push((after - before) / r.requests.total);
  server.perSecond.push(r.requests.total / r.duration);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function main(other: string, store: 'sqlite' | 'memory'): Promise<void> {
  const servers = [
    await start('floor', 'floor', store),
    await start('other', resolve(other), store),
    await start('this', HERE, store),
  ];
  try {
    for (const server of servers) {
      await burst(server, WARMUP_S);
      server.cpuMicros.length = 0;
      server.perSecond.length = 0;
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const server of round % 2 === 0 ? servers : [...servers].reverse()) await burst(server, BURST_S);
    }
  } finally {
    for (const server of servers) server.child.send('close');
  }
  const [floor, before, after] = servers.map((s) => ({
    name: s.name,
    cpu: median(s.cpuMicros),
    rps: median(s.perSecond),
  })) as [
    { name: string; cpu: number; rps: number },
    { cpu: number; rps: number },
    { cpu: number; rps: number },
  ];
  console.log(
    `store ${store}: ${ROUNDS} rounds of ${BURST_S} s bursts per server (autocannon, ${CONNECTIONS} connections), alternating; median over the rounds`,
  );
  console.log('| server | server CPU µs per request | requests/s | floor CPU / its CPU |');
  console.log('| --- | --- | --- | --- |');
  for (const [name, s] of [
    ['floor', floor],
    ['other tree', before],
    ['this tree', after],
  ] as const) {
    console.log(
      `| ${name} | ${s.cpu.toFixed(1)} | ${s.rps.toFixed(0)} | ${(floor.cpu / s.cpu).toFixed(3)} |`,
    );
  }
  console.log(`this / other, CPU per request: ${(after.cpu / before.cpu).toFixed(3)}`);
}

/**
 * The same three servers in this one process, without sockets: alternating batches of `inject`ed
 * requests, the process's CPU time per request. light-my-request's own cost is in every figure.
 */
async function mainInject(other: string, store: 'sqlite' | 'memory'): Promise<void> {
  const rounds = ROUNDS * 10;
  const batch = 25;
  const servers = {
    floor: await serveFloor(store, false),
    other: await serveAgentpool(resolve(other), store, false),
    this: await serveAgentpool(HERE, store, false),
  };
  const names = ['floor', 'other', 'this'] as const;
  const cpu: Record<(typeof names)[number], number[]> = { floor: [], other: [], this: [] };
  try {
    for (let i = 0; i < 500; i++) for (const name of names) await servers[name].inject();
    for (let round = 0; round < rounds; round++) {
      for (const name of round % 2 === 0 ? names : [...names].reverse()) {
        const before = process.cpuUsage();
        for (let k = 0; k < batch; k++) await servers[name].inject();
        const spent = process.cpuUsage(before);
        cpu[name].push((spent.user + spent.system) / batch);
      }
    }
  } finally {
    for (const name of names) await servers[name].close();
  }
  const m = { floor: median(cpu.floor), other: median(cpu.other), this: median(cpu.this) };
  console.log(
    `store ${store}, inject: ${rounds} alternating batches of ${batch} requests per server, median CPU µs per request`,
  );
  console.log('| server | CPU µs per request | over the floor |');
  console.log('| --- | --- | --- |');
  for (const name of names)
    console.log(`| ${name} | ${m[name].toFixed(1)} | ${(m[name] - m.floor).toFixed(1)} |`);
  console.log(
    `this / other: ${(m.this / m.other).toFixed(3)}; over the floor, this / other: ${((m.this - m.floor) / (m.other - m.floor)).toFixed(3)}`,
  );
}

if (process.argv[2] === '--serve') {
  await serve(process.argv[3] ?? 'floor', process.argv[4] === 'memory' ? 'memory' : 'sqlite');
} else {
  const other = process.argv[2];
  if (other === undefined) {
    console.error('usage: node bench/http-ab.bench.ts <other checkout> [sqlite|memory]');
    process.exit(2);
  }
  const store = process.argv[3] === 'memory' ? 'memory' : 'sqlite';
  await (process.argv[4] === 'inject' ? mainInject(other, store) : main(other, store));
}
