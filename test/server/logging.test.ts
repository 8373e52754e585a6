/**
 * Logs: the logger `agentpool serve` builds, the access line per request, and the lines the pool
 * writes for failed runs, breaker changes, fallbacks, failed activations, recovered runs and a
 * failing ttl sweep. Each test captures the JSON lines a real pino logger writes.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { afterEach, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { type AgentPool, type AgentPoolOptions, createAgentPool } from '../../src/agent-pool.ts';
import { ManualClock } from '../../src/core/clock.ts';
import { isAgentPoolError } from '../../src/core/errors.ts';
import { createLogger, type LogLevel } from '../../src/core/logger.ts';
import { buildServer, markDraining, type ServerOptions } from '../../src/server/app.ts';
import { MemoryAgentStore } from '../../src/store/memory.ts';
import { MemoryRunStore } from '../../src/store/memory-runs.ts';
import type { RunRecord } from '../../src/store/ports.ts';
import { type FakeOpenAI, startFakeOpenAI } from '../support/fake-openai.ts';

type Line = Record<string, unknown> & { level: string; msg: string };

/** A real pino logger writing JSON lines into `lines`. */
function capture(level: LogLevel = 'debug') {
  const lines: Line[] = [];
  const text: string[] = [];
  const logger = createLogger({
    level,
    destination: {
      write: (line: string) => {
        text.push(line);
        lines.push(JSON.parse(line) as Line);
      },
    },
  });
  return { logger, lines, text };
}

const ADMIN = 'admin-key-0123456789abcdef';

describe('the server logger (createLogger)', () => {
  it('writes one JSON line per call: level by name, ISO time, pid, hostname, fields and msg', () => {
    const { logger, lines, text } = capture('info');
    logger.child({ component: 'runs' }).warn({ runId: 'run_1' }, 'run failed');
    logger.debug('not written below info');
    assert.equal(lines.length, 1);
    assert.ok(text[0]?.endsWith('\n'));
    const [line] = lines;
    assert.equal(line?.level, 'warn');
    assert.equal(line?.component, 'runs');
    assert.equal(line?.runId, 'run_1');
    assert.equal(line?.msg, 'run failed');
    assert.equal(line?.pid, process.pid);
    assert.match(String(line?.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it('never writes an authorization header or cookie, even when a headers object is logged', () => {
    const { logger, text } = capture();
    logger.info({ req: { headers: { authorization: `Bearer ${ADMIN}`, cookie: 's=1' } } }, 'oops');
    logger.info({ headers: { authorization: `Bearer ${ADMIN}` } }, 'oops again');
    assert.equal(text.length, 2);
    for (const line of text) {
      assert.ok(!line.includes(ADMIN), line);
      assert.ok(line.includes('[redacted]'), line);
    }
  });

  it('writes human lines, not JSON, when pretty', () => {
    const text: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        text.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger({ pretty: true, colors: false, destination });
    logger.child({ component: 'http' }).info({ status: 200 }, 'GET /healthz 200');
    const out = text.join('');
    assert.match(out, /INFO.*GET \/healthz 200/);
    assert.match(out, /"status":200/);
    assert.throws(() => JSON.parse(out));
  });

  it('rejects an unknown level with VALIDATION_FAILED naming logger.level', () => {
    assert.throws(
      () => createLogger({ level: 'verbose' as LogLevel }),
      (e) => isAgentPoolError(e, 'VALIDATION_FAILED') && e.details['field'] === 'logger.level',
    );
  });
});

describe('the access log', () => {
  let pool: AgentPool | undefined;
  let app: FastifyInstance | undefined;
  afterEach(async () => {
    await app?.close();
    await pool?.close();
    app = pool = undefined;
  });

  async function server(level: LogLevel = 'debug', options: ServerOptions = {}, poolLogger = false) {
    const log = capture(level);
    pool = await createAgentPool({
      store: 'memory',
      ttlSweepIntervalMs: 0,
      ...(poolLogger && { logger: log.logger }),
    });
    app = await buildServer(pool, poolLogger ? options : { ...options, logger: log.logger });
    const access = () => log.lines.filter((l) => l.component === 'http' && typeof l.status === 'number');
    return { app, pool, ...log, access };
  }

  it('writes one line per request: method, route pattern, url, status, duration, project, request id; never the key', async () => {
    const s = await server('info', { adminKey: ADMIN });
    await s.pool.projects.create({ id: 'acme' }); // the admin may act only in a project that exists
    const auth = { authorization: `Bearer ${ADMIN}`, 'agentpool-project': 'acme' };
    const put = await s.app.inject({
      method: 'PUT',
      url: '/v1/agents/support',
      headers: auth,
      payload: { instructions: 'Help.', model: 'demo/echo' },
    });
    assert.equal(put.statusCode, 201);
    const get = await s.app.inject({ method: 'GET', url: '/v1/agents/support?x=1', headers: auth });
    assert.equal(get.statusCode, 200);

    const lines = s.access();
    assert.equal(lines.length, 2, JSON.stringify(s.lines));
    const [first, second] = lines;
    assert.equal(first?.level, 'info');
    assert.equal(first?.method, 'PUT');
    assert.equal(first?.route, '/v1/agents/:idOrName');
    assert.equal(first?.url, '/v1/agents/support');
    assert.equal(first?.status, 201);
    assert.equal(first?.project, 'acme');
    assert.equal(typeof first?.durationMs, 'number');
    assert.equal(typeof first?.reqId, 'string');
    assert.equal(first?.msg, 'PUT /v1/agents/support 201');
    assert.equal(second?.url, '/v1/agents/support?x=1');
    assert.notEqual(second?.reqId, first?.reqId);
    // fastify's own "incoming request" / "request completed" lines are off
    assert.equal(s.lines.filter((l) => /request completed|incoming request/.test(l.msg)).length, 0);
    // neither the key nor the body reaches the log
    assert.ok(!s.text.join('').includes(ADMIN));
    assert.ok(!s.text.join('').includes('Help.'));
  });

  it('a 4xx is info with its error code, a 401 names no project, a 500 is error, a 503 is warn', async () => {
    const s = await server('info', { adminKey: ADMIN });
    s.app.get('/boom', () => {
      throw new Error('a bug');
    });
    const auth = { authorization: `Bearer ${ADMIN}` };
    assert.equal(
      (await s.app.inject({ method: 'GET', url: '/v1/agents/nope', headers: auth })).statusCode,
      404,
    );
    assert.equal((await s.app.inject({ method: 'GET', url: '/v1/agents' })).statusCode, 401);
    assert.equal((await s.app.inject({ method: 'GET', url: '/boom', headers: auth })).statusCode, 500);
    assert.equal(
      (await s.app.inject({ method: 'GET', url: '/no/such/route', headers: auth })).statusCode,
      404,
    );
    markDraining(s.app);
    const refused = await s.app.inject({
      method: 'POST',
      url: '/v1/agents/a/runs',
      headers: auth,
      payload: { input: 'x' },
    });
    assert.equal(refused.statusCode, 503);

    const [missing, unauthenticated, boom, unknown, draining] = s.access();
    assert.deepEqual(
      [missing?.level, missing?.status, missing?.code, missing?.project],
      ['info', 404, 'AGENT_NOT_FOUND', 'default'],
    );
    assert.deepEqual([unauthenticated?.level, unauthenticated?.code], ['info', 'UNAUTHENTICATED']);
    assert.ok(!('project' in (unauthenticated ?? {})));
    assert.deepEqual([boom?.level, boom?.status, boom?.code], ['error', 500, 'INTERNAL_ERROR']);
    assert.deepEqual([unknown?.level, unknown?.route], ['info', null]);
    assert.deepEqual([draining?.level, draining?.code], ['warn', 'SHUTTING_DOWN']);
    // the cause of the 500 is logged (by the error handler), never sent
    assert.ok(s.lines.some((l) => l.level === 'error' && l.msg === 'unhandled error'));
  });

  it('writes probes (/healthz, /readyz, /metrics, the docs) at debug, so info stays quiet', async () => {
    const s = await server('debug');
    for (const url of ['/healthz', '/readyz', '/metrics', '/openapi.json']) {
      assert.equal((await s.app.inject({ method: 'GET', url })).statusCode, 200, url);
    }
    markDraining(s.app);
    assert.equal((await s.app.inject({ method: 'GET', url: '/readyz' })).statusCode, 503);
    const lines = s.access();
    assert.equal(lines.length, 5);
    for (const line of lines) assert.equal(line.level, 'debug', JSON.stringify(line));
  });

  it("logs through the pool's logger when the server is given none", async () => {
    const s = await server('info', {}, true);
    await s.app.inject({ method: 'GET', url: '/v1/agents' });
    assert.equal(s.access().length, 1);
    assert.equal(s.access()[0]?.route, '/v1/agents');
  });

  it('is silent by default: a pool and a server built without a logger write nothing', async () => {
    pool = await createAgentPool({ store: 'memory', ttlSweepIntervalMs: 0 });
    assert.equal(pool.logger.level, 'silent');
    app = await buildServer(pool);
    assert.equal(app.log.level, 'silent');
  });
});

describe('what the pool logs', () => {
  let pool: AgentPool | undefined;
  let fake: FakeOpenAI | undefined;
  afterEach(async () => {
    await pool?.close();
    await fake?.close();
    pool = fake = undefined;
  });

  async function poolWithFake(options: AgentPoolOptions = {}, level: LogLevel = 'info') {
    const log = capture(level);
    fake = await startFakeOpenAI();
    pool = await createAgentPool({
      store: 'memory',
      ttlSweepIntervalMs: 0,
      models: { providers: { 'openai-compatible': { baseURL: fake.url, apiKey: 'test-key' } }, env: {} },
      logger: log.logger,
      ...options,
    });
    return { pool, fake, ...log };
  }

  it('writes one warn line per failed run (code, message, run, project, agent, model, duration) and none at info for a succeeded run', async () => {
    const f = await poolWithFake({ resilience: { retry: { maxAttempts: 1 } } });
    await f.pool.agents.create('acme', { name: 'helper', model: 'openai-compatible/m' });
    f.fake.script({ text: 'fine' });
    const ok = await (await f.pool.runs.start('acme', 'helper', { input: 'a secret prompt' })).result;
    assert.equal(ok.status, 'succeeded');
    assert.equal(f.lines.length, 0, JSON.stringify(f.lines));

    f.fake.script({ status: 400, body: { error: { message: 'bad request to the provider' } } });
    const failed = await (await f.pool.runs.start('acme', 'helper', { input: 'a secret prompt' })).result;
    assert.equal(failed.status, 'failed');
    assert.equal(f.lines.length, 1, JSON.stringify(f.lines));
    const [line] = f.lines;
    assert.equal(line?.level, 'warn');
    assert.equal(line?.component, 'runs');
    assert.equal(line?.msg, 'run failed');
    assert.equal(line?.runId, failed.id);
    assert.equal(line?.project, 'acme');
    assert.equal(line?.agent, 'helper');
    assert.equal(line?.model, 'openai-compatible/m');
    assert.equal(line?.code, failed.error?.code);
    assert.equal(line?.error, failed.error?.message);
    assert.equal(line?.durationMs, (failed.finishedAt ?? 0) - (failed.startedAt ?? 0));
    assert.ok(!f.text.join('').includes('a secret prompt'), 'the input is never logged');
  });

  it('writes succeeded runs at debug', async () => {
    const f = await poolWithFake({}, 'debug');
    await f.pool.agents.create('acme', { name: 'helper', model: 'openai-compatible/m' });
    const run = await (await f.pool.runs.start('acme', 'helper', { input: 'hi' })).result;
    const line = f.lines.find((l) => l.runId === run.id);
    assert.deepEqual([line?.level, line?.msg, line?.status], ['debug', 'run succeeded', 'succeeded']);
  });

  it('writes a breaker opening and a fallback as warn lines, from real provider failures', async () => {
    const f = await poolWithFake({
      resilience: { retry: { maxAttempts: 1 }, breaker: { threshold: 1, halfOpenAfterMs: 600_000 } },
    });
    await f.pool.agents.create('acme', {
      name: 'helper',
      model: 'openai-compatible/primary',
      fallbacks: ['openai-compatible/backup'],
    });
    f.fake.script(
      { status: 500, body: { error: { message: 'the provider is down' } } },
      { text: 'from backup' },
    );
    const run = await (await f.pool.runs.start('acme', 'helper', { input: 'hi' })).result;
    assert.equal(run.status, 'succeeded');

    const opened = f.lines.find((l) => l.msg.startsWith('model breaker opened'));
    assert.equal(opened?.level, 'warn');
    assert.equal(opened?.component, 'models');
    assert.equal(opened?.model, 'openai-compatible/primary');
    assert.equal(opened?.code, 'MODEL_CALL_FAILED');
    const fallback = f.lines.find((l) => l.msg.startsWith('model call fell back'));
    assert.equal(fallback?.level, 'warn');
    assert.deepEqual(
      [fallback?.from, fallback?.to, fallback?.project, fallback?.agent, fallback?.runId],
      ['openai-compatible/primary', 'openai-compatible/backup', 'acme', 'helper', run.id],
    );
  });

  it('writes a breaker going half-open or closed as info lines', async () => {
    const f = await poolWithFake();
    f.pool.events.emit({ type: 'breaker.half_opened', at: 1, model: 'openai-compatible/m' });
    f.pool.events.emit({ type: 'breaker.closed', at: 2, model: 'openai-compatible/m' });
    assert.deepEqual(
      f.lines.map((l) => [l.level, l.model, l.msg]),
      [
        ['info', 'openai-compatible/m', 'model breaker half-open: a trial call goes through'],
        ['info', 'openai-compatible/m', 'model breaker closed: calls flow again'],
      ],
    );
  });

  it('writes an event listener that throws as an error line', async () => {
    const f = await poolWithFake();
    f.pool.events.on('breaker.closed', () => {
      throw new Error('a listener bug');
    });
    f.pool.events.emit({ type: 'breaker.closed', at: 1, model: 'openai-compatible/m' });
    const line = f.lines.find((l) => l.component === 'events');
    assert.deepEqual(
      [line?.level, line?.event, line?.msg],
      ['error', 'breaker.closed', 'an event listener threw'],
    );
    assert.match(JSON.stringify(line?.err), /a listener bug/);
  });

  it('writes a failed activation as a warn line naming the agent and the cause', async () => {
    const f = await poolWithFake({
      models: {
        custom: {
          broken: () => {
            throw new Error('the model cannot be built');
          },
        },
      },
    });
    await f.pool.agents.create('acme', { name: 'fragile', model: 'broken/x' });
    await assert.rejects(f.pool.instances.acquire('acme', 'fragile'));
    const line = f.lines.find((l) => l.msg === 'activation failed');
    assert.equal(line?.level, 'warn');
    assert.equal(line?.component, 'pool');
    assert.deepEqual([line?.project, line?.agent, line?.version], ['acme', 'fragile', 1]);
    assert.match(String(line?.error), /the model cannot be built/);
  });

  it('writes the runs a crash left unfinished as one warn line at start', async () => {
    const runs = new MemoryRunStore();
    const now = Date.now();
    const running: RunRecord = {
      id: 'run_crashed',
      project: 'acme',
      agentId: 'agt_x',
      agentName: 'x',
      agentVersion: 1,
      threadId: null,
      status: 'running',
      input: 'hi',
      output: null,
      model: 'demo/echo',
      steps: 0,
      inputTokens: 0,
      outputTokens: 0,
      cost: 0,
      error: null,
      metadata: {},
      createdAt: now,
      startedAt: now,
      finishedAt: null,
    };
    await runs.createRun(running, []);
    const log = capture('info');
    pool = await createAgentPool({
      store: { agents: new MemoryAgentStore(), runs },
      ttlSweepIntervalMs: 0,
      logger: log.logger,
    });
    assert.equal(pool.recoveredRuns, 1);
    assert.equal(log.lines.length, 1);
    assert.deepEqual([log.lines[0]?.level, log.lines[0]?.recoveredRuns], ['warn', 1]);
  });

  it('writes a failing ttl sweep as an error line (not to the console)', async () => {
    const clock = new ManualClock();
    const agents = new MemoryAgentStore();
    agents.listExpired = () => Promise.reject(new Error('the disk is gone'));
    const log = capture('info');
    pool = await createAgentPool({
      store: { agents, runs: new MemoryRunStore() },
      clock,
      ttlSweepIntervalMs: 1000,
      logger: log.logger,
    });
    clock.advance(1000);
    for (let i = 0; i < 100 && log.lines.length === 0; i++) await new Promise((r) => setImmediate(r));
    assert.equal(log.lines.length, 1);
    const [line] = log.lines;
    assert.deepEqual([line?.level, line?.component, line?.msg], ['error', 'pool', 'ttl sweep failed']);
    assert.match(JSON.stringify(line?.err), /the disk is gone/);
  });
});
