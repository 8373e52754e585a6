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
 * With `inject`, each server process runs batches of 200 sequential `app.inject` runs instead (no
 * sockets, so the HTTP layer's own work stands out more; light-my-request's cost is in every
 * figure). Each tree has a process of its own in both modes: built in one process, the server
 * built last read up to 10 % cheaper whichever tree it was.
 * With `memory`, the agentpool servers use the memory store and the floor writes nothing.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type * as AgentPoolModule from '../src/agent-pool.ts';
import type * as AppModule from '../src/server/app.ts';
import { SqliteRunStore } from '../src/store/sqlite-runs.ts';
import { tempDir } from '../test/support/temp-dir.ts';
import { FLOOR_AGENT as AGENT, FLOOR_INSTRUCTIONS as INSTRUCTIONS, floorApp } from './http-floor.ts';
import type * as MockModule from './peers/mock-model.ts';
import { SCRIPT } from './peers/mock-model.ts';

const HERE = resolve(fileURLToPath(import.meta.url), '../..');
const ROUNDS = Number(process.env['AB_ROUNDS'] ?? 8);
const BURST_S = 2;
const WARMUP_S = 2;
const CONNECTIONS = 10;

// ---------------------------------------------------------------------------------------------
// the servers (child processes)

interface Served {
  port: number;
  /** One wait-mode run through `app.inject` (no socket). */
  inject(): Promise<void>;
  close(): Promise<void>;
}

async function listen(app: FastifyInstance): Promise<number> {
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
async function serveAgentpool(root: string, store: 'sqlite' | 'memory'): Promise<Served> {
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
  const port = await listen(app);
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
async function serveFloor(store: 'sqlite' | 'memory'): Promise<Served> {
  const tmp = tempDir('agentpool-http-ab-floor-');
  const runs = store === 'sqlite' ? new SqliteRunStore({ path: join(tmp.dir, 'runs.db') }) : undefined;
  const app = floorApp(`/v1/agents/${AGENT}/runs`, runs);
  const port = await listen(app);
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

/** `count` sequential `inject`ed runs; the CPU time they took, per run. */
async function injectBatch(served: Served, count: number): Promise<number> {
  const before = process.cpuUsage();
  for (let i = 0; i < count; i++) await served.inject();
  const spent = process.cpuUsage(before);
  return (spent.user + spent.system) / count;
}

async function serve(target: string, store: 'sqlite' | 'memory'): Promise<void> {
  const served = target === 'floor' ? await serveFloor(store) : await serveAgentpool(target, store);
  process.on('message', (message) => {
    if (typeof message === 'object' && message !== null && 'inject' in message) {
      void injectBatch(served, Number(message.inject)).then((cpuMicros) => process.send?.({ cpuMicros }));
    } else if (message === 'cpu') {
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

function ask(child: ChildProcess, message: string | { inject: number }): Promise<Record<string, number>> {
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

/** Per burst in `inject` mode: this many sequential runs through `app.inject`. */
const INJECT_BATCH = 200;

async function injectBurst(server: Server, count: number): Promise<void> {
  const { cpuMicros } = await ask(server.child, { inject: count });
  server.cpuMicros.push(cpuMicros ?? NaN);
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

interface Figures {
  floor: { cpu: number; rps: number };
  other: { cpu: number; rps: number };
  this: { cpu: number; rps: number };
}

/** One session: the three servers started afresh, measured in alternating rounds. */
async function session(other: string, store: 'sqlite' | 'memory', inject: boolean): Promise<Figures> {
  const servers = [
    await start('floor', 'floor', store),
    await start('other', resolve(other), store),
    await start('this', HERE, store),
  ];
  try {
    const rounds = inject ? ROUNDS * 5 : ROUNDS;
    const run = (server: Server, warm: boolean) =>
      inject
        ? injectBurst(server, warm ? 5 * INJECT_BATCH : INJECT_BATCH)
        : burst(server, warm ? WARMUP_S : BURST_S);
    for (const server of servers) {
      await run(server, true);
      server.cpuMicros.length = 0;
      server.perSecond.length = 0;
    }
    for (let round = 0; round < rounds; round++) {
      for (const server of round % 2 === 0 ? servers : [...servers].reverse()) await run(server, false);
    }
  } finally {
    for (const server of servers) server.child.send('close');
  }
  const [floor, before, after] = servers.map((s) => ({ cpu: median(s.cpuMicros), rps: median(s.perSecond) }));
  return { floor: floor!, other: before!, this: after! };
}

async function main(other: string, store: 'sqlite' | 'memory', inject: boolean): Promise<void> {
  const repeats = Number(process.env['AB_REPEATS'] ?? 3);
  console.log(
    inject
      ? `store ${store}, inject: ${repeats} sessions (fresh processes) of ${ROUNDS * 5} rounds of ${INJECT_BATCH} sequential app.inject runs per server, alternating; medians over the rounds`
      : `store ${store}: ${repeats} sessions (fresh processes) of ${ROUNDS} rounds of ${BURST_S} s bursts per server (autocannon, ${CONNECTIONS} connections), alternating; medians over the rounds`,
  );
  console.log(
    '| session | floor CPU µs per request | other tree | this tree | this / other | floor / this | requests/s floor, other, this |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  const ratios: number[] = [];
  const ofFloor: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const f = await session(other, store, inject);
    ratios.push(f.this.cpu / f.other.cpu);
    ofFloor.push(f.floor.cpu / f.this.cpu);
    const rps = inject ? '—' : [f.floor, f.other, f.this].map((x) => x.rps.toFixed(0)).join(', ');
    console.log(
      `| ${i + 1} | ${f.floor.cpu.toFixed(1)} | ${f.other.cpu.toFixed(1)} | ${f.this.cpu.toFixed(1)} | ${(f.this.cpu / f.other.cpu).toFixed(3)} | ${(f.floor.cpu / f.this.cpu).toFixed(3)} | ${rps} |`,
    );
  }
  console.log(
    `median over the sessions: this / other ${median(ratios).toFixed(3)}, floor / this ${median(ofFloor).toFixed(3)}`,
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
  await main(other, store, process.argv[4] === 'inject');
}
