/**
 * A cluster of real `agentpool serve` processes for the end-to-end cluster tests: N nodes on one
 * fresh PostgreSQL database and one fresh Redis prefix, each on its own port with its own
 * `--node-id`, started in parallel and ready once `/readyz` answers 200 on each. Nodes can be
 * killed (`kill -9` is the fault the tests inject) and restarted with the same id and port. Each
 * node's output is kept, and printed when a test of the suite fails, since a cluster failure is
 * rarely explained by the test's side alone.
 *
 * The model is the fake OpenAI-compatible server (`openai-compatible/<model>` reaches it); agents
 * are created with `PUT /v1/agents/{name}` through the first node. The nodes start with an empty
 * agents file so that none applies the bundled examples.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, afterEach, before } from 'node:test';
import pg from 'pg';
import { type CliChild, freePort, spawnCli } from './cli-process.ts';
import { type FakeOpenAI, type FakeOpenAIOptions, startFakeOpenAI } from './fake-openai.ts';
import { testDatabase } from './postgres.ts';
import { redisPrefix } from './redis.ts';
import { tempDir } from './temp-dir.ts';

/** The admin key every node of a test cluster shares. */
export const ADMIN_KEY = 'cluster-test-admin-key-0123456789';

/** What {@link startCluster} starts. */
export interface ClusterOptions {
  /** Nodes to start. @default 3 */
  size?: number;
  /** A label for the database, the Redis prefix and the node ids. @default 'cluster' */
  label?: string;
  /** Options of the fake provider the nodes' `openai-compatible` models reach. */
  fake?: FakeOpenAIOptions;
  /** The config file's contents (YAML), passed to every node with `--config`. @default none */
  config?: string;
  /** More environment variables of every node. */
  env?: Record<string, string>;
  /** Node i's Redis URL instead of the shared one (a TCP proxy in front of it). */
  redisUrlFor?: (i: number, url: string) => string;
  /** Node i's database URL instead of the shared one (a TCP proxy in front of it). */
  databaseUrlFor?: (i: number, url: string) => string;
  /** The nodes' `--log-level`. @default 'warn' */
  logLevel?: string;
  /** Give the nodes the admin key ({@link ADMIN_KEY}): authentication on. @default true */
  adminKey?: boolean;
}

/** One `agentpool serve` process of the cluster. */
export interface ClusterNode {
  /** Its `--node-id`: `<label>-0`, `<label>-1`, … */
  readonly id: string;
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** The process now running (the latest after a restart). */
  readonly child: CliChild;
  /** Everything it printed, over all its starts. */
  output(): string;
}

/** A running test cluster. */
export interface TestCluster {
  readonly nodes: readonly ClusterNode[];
  readonly fake: FakeOpenAI;
  /** The database every node uses (before any per-node proxy). */
  readonly databaseUrl: string;
  readonly redisUrl: string;
  readonly redisPrefix: string;
  /** Sends `signal` to node i (SIGKILL: `kill -9`) and waits for it to exit. */
  kill(i: number, signal?: NodeJS.Signals): Promise<void>;
  /** Starts node i again, same id and port, and waits until `/readyz` answers 200. */
  restart(i: number): Promise<void>;
  /** An API call to node i as the admin (JSON in, the response back). */
  call(
    i: number,
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<Response>;
  /** `PUT /v1/agents/{name}` through node i (0 unless told); asserts 200 or 201. */
  putAgent(
    spec: Record<string, unknown> & { name: string },
    i?: number,
  ): Promise<{ id: string; version: number; result: string }>;
  /** One SQL statement on the cluster's database (its own connection): the rows. */
  query<T extends Record<string, unknown>>(text: string, values?: unknown[]): Promise<T[]>;
  /** The tail of every node's output, for a failure message. */
  logs(tailChars?: number): string;
  /** SIGTERM every node, SIGKILL what is left after a few seconds, then drop the database and prefix. */
  stop(): Promise<void>;
}

/** The headers of an admin call with a JSON body. */
export const adminHeaders = { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' };

/** Polls `url` until it answers `status`; fails when the child exits or `timeoutMs` passes. */
export async function waitForStatus(
  url: string,
  status: number,
  child: CliChild | undefined,
  timeoutMs = 30_000,
): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline && (child === undefined || child.process.exitCode === null)) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
      if (response.status === status) return response;
      last = `${response.status} ${await response.text()}`;
    } catch (err) {
      last = String(err);
    }
    await sleep(50);
  }
  return assert.fail(`${url} never answered ${status} (last: ${last})`);
}

/** Starts the fake provider and N nodes on a fresh database and Redis prefix. */
export async function startCluster(options: ClusterOptions = {}): Promise<TestCluster> {
  const size = options.size ?? 3;
  const label = options.label ?? 'cluster';
  const tmp = tempDir();
  const cleanups: (() => Promise<void> | void)[] = [() => tmp.cleanup()];
  const fake = await startFakeOpenAI(options.fake);
  cleanups.push(() => fake.close());
  const db = await testDatabase(label);
  cleanups.push(db.cleanup);
  const redis = await redisPrefix(label);
  cleanups.push(redis.cleanup);
  const agentsFile = join(tmp.dir, 'agents.json');
  writeFileSync(agentsFile, JSON.stringify({ agents: [] }));
  let configFile: string | undefined;
  if (options.config !== undefined) {
    configFile = join(tmp.dir, 'agentpool.yaml');
    writeFileSync(configFile, options.config);
  }

  interface Slot {
    id: string;
    port: number;
    url: string;
    child: CliChild | undefined;
    earlier: string;
  }
  const slots: Slot[] = [];
  for (let i = 0; i < size; i++) {
    const port = await freePort();
    slots.push({ id: `${label}-${i}`, port, url: `http://127.0.0.1:${port}`, child: undefined, earlier: '' });
  }
  const printed = (slot: Slot): string =>
    slot.earlier + (slot.child === undefined ? '' : slot.child.stdout() + slot.child.stderr());

  const spawnNode = (i: number): CliChild => {
    const slot = slots[i] ?? assert.fail(`no node ${i}`);
    if (slot.child !== undefined) slot.earlier = `${printed(slot)}\n--- restarted ---\n`;
    const args = [
      'serve',
      '--store',
      'postgres',
      '--database-url',
      options.databaseUrlFor?.(i, db.url) ?? db.url,
      '--redis-url',
      options.redisUrlFor?.(i, redis.url) ?? redis.url,
      '--redis-prefix',
      redis.prefix,
      '--node-id',
      slot.id,
      '--port',
      String(slot.port),
      '--agents-file',
      agentsFile,
      '--log-level',
      options.logLevel ?? 'warn',
      '--shutdown-timeout-ms',
      '1000',
      ...(configFile === undefined ? [] : ['--config', configFile]),
    ];
    const child = spawnCli(args, {
      AGENTPOOL_OPENAI_COMPATIBLE_BASE_URL: fake.url,
      AGENTPOOL_OPENAI_COMPATIBLE_API_KEY: 'test',
      ...(options.adminKey !== false && { AGENTPOOL_ADMIN_KEY: ADMIN_KEY }),
      ...options.env,
    });
    slot.child = child;
    return child;
  };

  const ready = async (i: number): Promise<void> => {
    const slot = slots[i] ?? assert.fail(`no node ${i}`);
    try {
      await waitForStatus(`${slot.url}/readyz`, 200, slot.child);
    } catch (err) {
      throw new Error(`node ${slot.id} did not become ready:\n${printed(slot)}`, { cause: err });
    }
  };

  const kill = async (i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    const child = slots[i]?.child;
    if (child === undefined || child.process.exitCode !== null || child.process.signalCode !== null) return;
    child.process.kill(signal);
    await child.exited;
  };

  const stopAll = async (): Promise<void> => {
    await Promise.all(
      slots.map(async (slot, i) => {
        const child = slot.child;
        if (child === undefined || child.process.exitCode !== null || child.process.signalCode !== null)
          return;
        child.process.kill('SIGTERM');
        const exited = await Promise.race([child.exited.then(() => true), sleep(5000, false)]);
        if (!exited) await kill(i, 'SIGKILL');
      }),
    );
    let failure: unknown;
    for (const cleanup of cleanups.reverse()) {
      try {
        await cleanup();
      } catch (err) {
        failure ??= err;
      }
    }
    if (failure !== undefined) throw failure;
  };

  try {
    for (let i = 0; i < size; i++) spawnNode(i);
    await Promise.all(slots.map((_, i) => ready(i)));
  } catch (err) {
    await stopAll().catch(() => undefined);
    throw err;
  }

  const call = (
    i: number,
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Response> => {
    const slot = slots[i] ?? assert.fail(`no node ${i}`);
    return fetch(`${slot.url}${path}`, {
      method,
      // A JSON content type only with a body: fastify refuses an empty one (a DELETE's) that says JSON.
      headers: {
        authorization: adminHeaders.authorization,
        ...(body !== undefined && { 'content-type': adminHeaders['content-type'] }),
        ...headers,
      },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
  };

  return {
    nodes: slots.map((slot) => ({
      id: slot.id,
      port: slot.port,
      url: slot.url,
      get child() {
        return slot.child ?? assert.fail('not started');
      },
      output: () => printed(slot),
    })),
    fake,
    databaseUrl: db.url,
    redisUrl: redis.url,
    redisPrefix: redis.prefix,
    kill,
    async restart(i) {
      await kill(i, 'SIGKILL');
      spawnNode(i);
      await ready(i);
    },
    call,
    async putAgent(spec, i = 0) {
      const { name, ...rest } = spec;
      const response = await call(i, 'PUT', `/v1/agents/${name}`, rest);
      const text = await response.text();
      assert.ok(
        response.status === 200 || response.status === 201,
        `PUT ${name}: ${response.status} ${text}`,
      );
      const { agent, result } = JSON.parse(text) as {
        agent: { id: string; activeVersion: number };
        result: string;
      };
      return { id: agent.id, version: agent.activeVersion, result };
    },
    async query<T extends Record<string, unknown>>(text: string, values: unknown[] = []) {
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      try {
        return (await client.query<T>(text, values)).rows;
      } finally {
        await client.end();
      }
    },
    logs(tailChars = 6000) {
      return slots
        .map((slot) => `===== node ${slot.id} (${slot.url}) =====\n${printed(slot).slice(-tailChars)}`)
        .join('\n');
    },
    stop: stopAll,
  };
}

/**
 * Starts a cluster before the enclosing suite and stops it after (call inside `describe`); when a
 * test of the suite fails, every node's recent output is printed. `cluster` is readable in tests.
 */
export function clusterForSuite(options: ClusterOptions = {}): { readonly cluster: TestCluster } {
  let cluster: TestCluster | undefined;
  before(async () => {
    cluster = await startCluster(options);
  });
  afterEach((t) => {
    // `passed` is on every test context since Node 21; the bundled typings lag behind.
    if ((t as { passed?: boolean }).passed === false && cluster !== undefined)
      process.stderr.write(`${cluster.logs()}\n`);
  });
  after(async () => {
    await cluster?.stop();
  });
  return {
    get cluster() {
      return cluster ?? assert.fail('the cluster is not started yet');
    },
  };
}

/** Reads an SSE response body into events (`id`, `event`, parsed `data`) until it ends or `stop` says so. */
export async function readSse(
  response: Response,
  stop: (event: SseEvent, all: readonly SseEvent[]) => boolean = () => false,
): Promise<SseEvent[]> {
  const events: SseEvent[] = [];
  const body = response.body ?? assert.fail('no body');
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return events;
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event: SseEvent = { id: undefined, event: '', data: undefined };
        for (const line of block.split('\n')) {
          if (line.startsWith('id: ')) event.id = Number(line.slice(4));
          else if (line.startsWith('event: ')) event.event = line.slice(7);
          else if (line.startsWith('data: ')) event.data = JSON.parse(line.slice(6)) as unknown;
        }
        if (event.event === '') continue;
        events.push(event);
        if (stop(event, events)) return events;
      }
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

/** One server-sent event. */
export interface SseEvent {
  id: number | undefined;
  event: string;
  data: unknown;
}

/** Whether an SSE event ends its run. */
export const isTerminalEvent = (e: SseEvent): boolean =>
  e.event === 'run.finished' || e.event === 'run.failed';

/** A run record as the API answers it (the fields the tests read). */
export interface ApiRun {
  id: string;
  status: string;
  threadId: string | null;
  output: string | null;
  cost: number;
  error: { code: string; message: string } | null;
  agentVersion: number;
}

/** Polls `GET /v1/runs/{id}` through node i until `done(run)` holds or `timeoutMs` passes. */
export async function pollRun(
  cluster: TestCluster,
  i: number,
  runId: string,
  done: (run: ApiRun) => boolean,
  timeoutMs = 60_000,
): Promise<ApiRun> {
  const deadline = Date.now() + timeoutMs;
  let last: ApiRun | undefined;
  while (Date.now() < deadline) {
    const response = await cluster.call(i, 'GET', `/v1/runs/${runId}`).catch(() => undefined);
    if (response?.status === 200) {
      last = (await response.json()) as ApiRun;
      if (done(last)) return last;
    }
    await sleep(100);
  }
  return assert.fail(
    `run ${runId} never reached the state asked within ${timeoutMs} ms: ${JSON.stringify(last)}`,
  );
}
